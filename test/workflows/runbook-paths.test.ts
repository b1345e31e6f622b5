import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { alert, productWorker, raise, status, until } from '../helpers/workflows.js';
import { incidentActions } from '../../src/workflows/api.js';
import type { FindingStatus } from '../../src/domain/findings.js';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

interface SeedPath {
  runbook: string;
  alertname: string;
  symptoms: Record<string, FindingStatus>;
  action: string;
  heals: Record<string, FindingStatus>;
  approveAs?: { step: string; by: string };
  report: boolean;
}

// The main symptom of each seed procedure and the remedy the seed prescribes for it.
const paths: SeedPath[] = [
  {
    runbook: 'whatsapp-channel-down',
    alertname: 'FTEWhatsAppChannelDown',
    symptoms: { webhook: 'down', 'channel-metrics': 'down' },
    action: 'rolloutRestart',
    heals: { webhook: 'ok', 'channel-metrics': 'ok' },
    approveAs: { step: 'restart-processor', by: 'erin' },
    report: true,
  },
  {
    runbook: 'gmail-channel-down',
    alertname: 'FTEGmailChannelDown',
    symptoms: { 'gmail-watch': 'down', 'channel-metrics': 'down' },
    action: 'renewGmailWatch',
    heals: { 'gmail-watch': 'ok', 'channel-metrics': 'ok' },
    report: true,
  },
  {
    runbook: 'high-agent-latency',
    alertname: 'FTEAgentLatencyHigh',
    symptoms: { 'kafka-lag': 'degraded', 'channel-metrics': 'degraded' },
    action: 'scaleDeployment',
    heals: { 'kafka-lag': 'ok', 'channel-metrics': 'ok' },
    report: false,
  },
  {
    runbook: 'database-connection-failures',
    alertname: 'FTEDatabaseConnectionFailures',
    symptoms: { connections: 'down' },
    action: 'killIdleConnections',
    heals: { connections: 'ok' },
    report: true,
  },
];

describe('each seed procedure, main symptom to resolution', () => {
  for (const path of paths) {
    it(`${path.runbook}: ${path.action} fixes it`, async () => {
      const platform = new FakePlatform().heals(path.action, path.heals);
      platform.status = { ...path.symptoms };
      const { worker, taskQueue } = await productWorker(env, platform.activities());
      await worker.runUntil(async () => {
        const handle = await raise(env, taskQueue, path.runbook, [alert(path.alertname, 'fp-main')]);
        if (path.approveAs) {
          await until(
            () => status(handle),
            (s) => s.awaitingApproval.includes(path.approveAs!.step),
            'approval wait',
          );
          await handle.executeUpdate(incidentActions.approve.update, { args: [path.approveAs] });
        }
        await env.sleep('15 minutes');
        await until(
          () => status(handle),
          (s) => s.status === 'Monitoring',
          'recovery',
        );
        await handle.signal('alerts', { alerts: [alert(path.alertname, 'fp-main', 'resolved')] });
        const outcome = await handle.result();
        expect(outcome.resolvedBy).toBe('system');
        expect(platform.timesActed(path.action)).toBe(1);
        expect(Boolean(outcome.postIncidentWorkflowId)).toBe(path.report);
      });
    });
  }

  it('high-escalation-rate: informs the human team, opens the manual tasks and waits for a person', async () => {
    const platform = new FakePlatform();
    platform.status = { 'escalation-rate': 'degraded' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'high-escalation-rate', [
        alert('FTEEscalationRateHigh', 'fp-esc'),
      ]);
      const s = await until(
        () => status(handle),
        (x) => x.status === 'Escalated',
        'waiting for people',
      );
      expect(platform.actionsNamed('notifyTeam')[0]?.input.args).toMatchObject({
        roles: ['on-call', 'manager'],
      });
      expect(s.tasks.map((t) => t.id)).toEqual(['review-reasons', 'tune-rules', 'sentiment-model']);
      await handle.executeUpdate(incidentActions.completeTask.update, {
        args: [{ task: 'tune-rules', by: 'dave' }],
      });
      await handle.executeUpdate(incidentActions.resolve.update, {
        args: [{ by: 'dave', summary: 'false positives from a prompt change; rules tuned' }],
      });
      const outcome = await handle.result();
      expect(outcome.resolvedBy).toBe('dave');
      const final = await handle.query('status');
      expect(final).toMatchObject({ status: 'Resolved' });
    });
  });

  it('an unknown alert opens a triage incident that asks a person to investigate', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'triage', [alert('FTESomethingNew', 'fp-new')]);
      const s = await until(
        () => status(handle),
        (x) => x.tasks.length > 0,
        'triage task',
      );
      expect(s).toMatchObject({ runbookId: 'triage', severity: 'P3', team: 'on-call', newFailureMode: true });
      expect(s.tasks[0]?.id).toBe('investigate');
      await handle.signal('alerts', { alerts: [alert('FTESomethingNew', 'fp-new', 'resolved')] });
      expect((await handle.result()).resolvedBy).toBe('system');
    });
  });
});
