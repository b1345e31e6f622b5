import { describe, expect, it } from 'vitest';
import { useProduct } from './harness.js';

// Seed procedure 2: the WhatsApp channel fails. When the processor is stuck, restarting it (approved) is the
// fix; when Twilio itself is down, nothing automatic helps: the channel team follows the vendor incident and
// the incident resolves once Twilio recovers.

const runbook = 'whatsapp-channel-down';
const product = useProduct(runbook);
const alertname = 'FTEWhatsAppChannelDown';

describe('whatsapp-down', () => {
  it('restarts the stuck processor once approved, and the channel recovers', async () => {
    const { sandbox } = product();
    const before = await sandbox.cluster.podsOf('fte-message-processor');
    const processor = await sandbox.cluster.deployment('fte-message-processor');
    await sandbox.apply('whatsapp-down');

    expect(await product().alert(alertname, 'firing')).toBe(202);
    const waiting = await product().waitFor(
      runbook,
      (s) => s.awaitingApproval.includes('restart-processor'),
      'diagnosis and the approval request',
      120,
    );
    expect(waiting.severity).toBe('P2');
    expect(waiting.findings.webhook?.status).toBe('down');
    expect(['down', 'degraded']).toContain(waiting.findings['channel-metrics']?.status);
    expect(waiting.findings['twilio-status']?.status).toBe('ok');
    expect(waiting.findings['twilio-secret']?.status).toBe('ok');
    expect(waiting.findings['processor-logs']?.status).toBe('degraded');

    expect(
      await product().incidentctl([
        'approve',
        product().incidentId(runbook),
        'restart-processor',
        '--as',
        'erin',
      ]),
    ).toContain('approved step restart-processor');
    const recovered = await product().waitFor(
      runbook,
      (s) => s.status === 'Monitoring',
      'the restart and its verification',
      240,
    );
    expect(recovered.steps.find((s) => s.id === 'restart-processor')).toMatchObject({
      status: 'recovered',
      runs: 1,
    });
    const after = await sandbox.cluster.podsOf('fte-message-processor');
    expect(after.length).toBe(before.length);
    expect(after.every((p) => p.ready && !before.some((b) => b.uid === p.uid))).toBe(true);
    expect((await sandbox.cluster.deployment('fte-message-processor')).generation).toBe(
      processor.generation + 1,
    );

    expect(await product().alert(alertname, 'resolved')).toBe(202);
    const outcome = (await product().handle(runbook).result()) as { postIncidentWorkflowId?: string };
    await product().pendingReport(outcome.postIncidentWorkflowId);
    await product()
      .env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string)
      .terminate('test done');
  }, 420_000);
});

describe('twilio-outage', () => {
  it('opens the Twilio task for the channel team, restarts nothing, and resolves when Twilio recovers', async () => {
    const { sandbox } = product();
    const processor = await sandbox.cluster.deployment('fte-message-processor');
    await sandbox.apply('twilio-outage');

    expect(await product().alert(alertname, 'firing')).toBe(202);
    const open = await product().waitFor(
      runbook,
      (s) => s.tasks.some((t) => t.id === 'twilio-outage') && s.findings.webhook !== undefined,
      'diagnosis and the Twilio task',
      120,
    );
    expect(open.findings['twilio-status']?.status).toBe('down');
    expect(open.tasks.find((t) => t.id === 'twilio-outage')).toMatchObject({
      owner: 'channel',
      status: 'open',
    });
    expect(open.awaitingApproval).toEqual([]);
    expect(open.steps.every((s) => s.runs === 0)).toBe(true);

    const id = product().incidentId(runbook);
    expect(await product().incidentctl(['task', 'done', id, 'twilio-outage', '--as', 'erin'])).toContain(
      'twilio-outage',
    );
    // Twilio recovers upstream; Alertmanager then reports the alert resolved.
    expect(await sandbox.scenarios.recover('twilio-outage')).toBe(true);
    expect(await product().alert(alertname, 'resolved')).toBe(202);
    const outcome = (await product().handle(runbook).result()) as { postIncidentWorkflowId?: string };
    const final = await product().status(runbook);
    expect(final.status).toBe('Resolved');
    expect(final.tasks.find((t) => t.id === 'twilio-outage')?.doneBy).toBe('erin');
    expect(final.steps.every((s) => s.runs === 0)).toBe(true);
    expect((await sandbox.cluster.deployment('fte-message-processor')).generation).toBe(processor.generation);
    await product().pendingReport(outcome.postIncidentWorkflowId);
    await product()
      .env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string)
      .terminate('test done');
  }, 420_000);
});
