import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/paths.js';
import { until } from '../helpers/workflows.js';
import { useProduct } from './harness.js';

// The whole product on real parts (see harness.ts), driven by the example payload the docs give to
// Alertmanager users: seed procedure 1 when the API itself crash-loops (scenario api-down).

const runbook = 'all-channels-down';
const product = useProduct(runbook);

async function alertmanager(status: 'firing' | 'resolved'): Promise<number> {
  const { namespace, receiverUrl, receiverToken } = product();
  const example = await readFile(`${projectRoot}docs/examples/alertmanager-all-channels-down.json`, 'utf8');
  const payload = example.replaceAll('customer-success-fte', namespace).replaceAll('"firing"', `"${status}"`);
  const response = await fetch(receiverUrl, {
    method: 'POST',
    headers: { authorization: `Bearer ${receiverToken}`, 'content-type': 'application/json' },
    body: payload,
  });
  return response.status;
}

describe('an alert, end to end', () => {
  it('goes from Alertmanager to a verified remediation and a pending post-incident report', async () => {
    const { sandbox } = product();
    await sandbox.apply('api-down');
    const podsBefore = (await sandbox.cluster.podsOf('fte-api')).map((p) => p.uid);
    const apiBefore = await sandbox.cluster.deployment('fte-api');
    await until(
      () => sandbox.cluster.podsOf('fte-api'),
      (pods) => pods.every((p) => p.reason === 'CrashLoopBackOff'),
      'kwok to report the fte-api pods crash-looping',
    );

    expect(await alertmanager('firing')).toBe(202);
    const id = product().incidentId(runbook);
    const waiting = await product().waitFor(
      runbook,
      (s) => s.awaitingApproval.includes('restart-api'),
      'diagnosis and the approval request',
      60,
    );
    expect(waiting.findings['api-health']?.status).toBe('down');
    expect(waiting.findings.pods?.summary).toContain('CrashLoopBackOff');
    expect(waiting.findings['api-logs']?.status).toBe('degraded');
    expect(waiting.findings.postgres?.status).toBe('ok');
    expect(waiting.findings.kafka?.status).toBe('ok');

    expect(await product().incidentctl(['approve', id, 'restart-api', '--as', 'carol'])).toContain(
      'approved step restart-api',
    );
    const recovered = await product().waitFor(
      runbook,
      (s) => s.status === 'Monitoring',
      'verification (20 s of real time)',
      120,
    );
    expect(recovered.steps.find((s) => s.id === 'restart-api')).toMatchObject({
      status: 'recovered',
      runs: 1,
    });
    const podsAfter = await sandbox.cluster.podsOf('fte-api');
    expect(podsAfter.length).toBe(3);
    expect(podsAfter.every((p) => p.ready && !podsBefore.includes(p.uid))).toBe(true);
    expect((await sandbox.cluster.deployment('fte-api')).generation).toBe(apiBefore.generation + 1);

    expect(await alertmanager('resolved')).toBe(202);
    const outcome = (await product().handle(runbook).result()) as {
      postIncidentWorkflowId?: string;
      resolvedBy: string;
    };
    expect(outcome.resolvedBy).toBe('system');
    await product().pendingReport(outcome.postIncidentWorkflowId);
    expect(await product().incidentctl(['list', '--reports'])).toContain(outcome.postIncidentWorkflowId);
    expect(await product().ledgerEvents(id)).toEqual(
      expect.arrayContaining(['opened', 'step-approved', 'step-run', 'step-verified', 'resolved']),
    );
    await product()
      .env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string)
      .terminate('test finished');
  }, 240_000);
});
