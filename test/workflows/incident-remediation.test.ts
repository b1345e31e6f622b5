import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv } from '../helpers/services.js';
import { FakePlatform, forbiddenError, retryableError } from '../helpers/fake-platform.js';
import { alert, productWorker, raise, status, until } from '../helpers/workflows.js';
import { incidentActions } from '../../src/workflows/api.js';

// A fresh time-skipping server per test: a workflow left open by one test cannot hold the next one's clock.
let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

describe('remediation', () => {
  it('retries a failing action with backoff until it succeeds', async () => {
    const platform = new FakePlatform();
    platform.status = { 'kafka-lag': 'degraded' };
    platform.onAction('scaleDeployment', async (_input, attempt) => {
      if (attempt < 3) throw retryableError('the API server is busy');
      platform.status['kafka-lag'] = 'ok';
      return { changed: true, summary: 'scaled fte-message-processor to 5' };
    });
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'high-agent-latency', [
        alert('FTEAgentLatencyHigh', 'fp-retry'),
      ]);
      await handle.signal('alerts', { alerts: [alert('FTEAgentLatencyHigh', 'fp-retry', 'resolved')] });
      const outcome = await handle.result();
      expect(outcome.resolvedBy).toBe('system');
      expect(platform.actionsNamed('scaleDeployment').map((c) => c.attempt)).toEqual([1, 2, 3]);
      // The runbook's default policy (5 s, doubled, at most 3 attempts) is what the server retried with.
      const history = await handle.fetchHistory();
      const scheduled = history.events?.find(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'scaleDeployment',
      )?.activityTaskScheduledEventAttributes;
      expect(Number(scheduled?.retryPolicy?.initialInterval?.seconds)).toBe(5);
      expect(scheduled?.retryPolicy?.backoffCoefficient).toBe(2);
      expect(scheduled?.retryPolicy?.maximumAttempts).toBe(3);
      expect(scheduled?.retryPolicy?.nonRetryableErrorTypes).toContain('ForbiddenError');
      expect(outcome.postIncidentWorkflowId).toBeUndefined(); // P3: no report required
    });
  });

  it('does not retry a forbidden action; the step fails and the incident moves on', async () => {
    const platform = new FakePlatform();
    platform.status = { 'kafka-lag': 'degraded', hpa: 'degraded' };
    platform.onAction('raiseHpaMax', () => {
      throw forbiddenError('horizontalpodautoscalers.autoscaling "fte-message-processor" is forbidden');
    });
    platform.heals('scaleDeployment', { 'kafka-lag': 'ok', hpa: 'ok' });
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'high-agent-latency', [
        alert('FTEAgentLatencyHigh', 'fp-403'),
      ]);
      const s = await until(
        () => status(handle),
        (x) => x.steps.find((st) => st.id === 'scale-workers')?.runs === 1,
        'the next step',
      );
      const failed = s.steps.find((st) => st.id === 'raise-hpa-max');
      expect(failed).toMatchObject({ status: 'failed', runs: 1 });
      expect(failed?.error).toContain('forbidden');
      expect(platform.actionsNamed('raiseHpaMax')).toHaveLength(1);
      await vi.waitFor(() =>
        expect(platform.sent('escalated').some((n) => n.text.includes('Step failed'))).toBe(true),
      );
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'carol' }] });
      await handle.result();
    });
  });
});

describe('verification', () => {
  it('moves to the next step when one does not recover, escalates when none is left, and never repeats a step', async () => {
    const platform = new FakePlatform();
    platform.status = { connections: 'down', 'api-health': 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'database-connection-failures', [
        alert('FTEDatabaseConnectionFailures', 'fp-verify'),
      ]);
      // kill-idle-connections runs at once (low risk) and does not help; restart-api waits for approval.
      await env.sleep('3 minutes');
      let s = await until(
        () => status(handle),
        (x) => x.awaitingApproval.includes('restart-api'),
        'restart-api approval',
      );
      expect(s.steps.find((st) => st.id === 'kill-idle-connections')).toMatchObject({
        status: 'not-recovered',
        runs: 1,
      });
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-api', by: 'carol' }],
      });
      await env.sleep('6 minutes');
      s = await until(
        () => status(handle),
        (x) => x.status === 'Escalated',
        'escalation',
      );
      expect(s.steps.find((st) => st.id === 'restart-api')).toMatchObject({
        status: 'not-recovered',
        runs: 1,
      });
      expect(s.waitingFor).toContain('no runbook step is left');
      await vi.waitFor(() => expect(platform.sent('stuck')).toHaveLength(1));

      // Hours of periodic re-checks and a new alert: still nothing runs twice.
      await env.sleep('3 hours');
      await handle.signal('alerts', { alerts: [alert('FTEDatabaseConnectionFailures', 'fp-verify-2')] });
      await env.sleep('20 minutes');
      expect(platform.timesActed('killIdleConnections')).toBe(1);
      expect(platform.timesActed('rolloutRestart')).toBe(1);
      expect(platform.sent('stuck')).toHaveLength(1);
      const rechecks = (await status(handle)).timeline.filter(
        (t) => t.type === 'diagnosis' && t.text.startsWith('periodic'),
      );
      expect(rechecks.length).toBeGreaterThanOrEqual(10);
      await handle.executeUpdate(incidentActions.resolve.update, {
        args: [{ by: 'carol', summary: 'DBA fixed it' }],
      });
      const outcome = await handle.result();
      expect(outcome.resolvedBy).toBe('carol');
    });
  });
});

describe('alerts', () => {
  it('joins duplicate alerts to one incident and diagnoses once', async () => {
    const platform = new FakePlatform();
    platform.status = { webhook: 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const firing = alert('FTEWhatsAppChannelDown', 'fp-dup');
      const handles = await Promise.all(
        [1, 2, 3, 4, 5].map(() => raise(env, taskQueue, 'whatsapp-channel-down', [firing])),
      );
      expect(new Set(handles.map((h) => h.workflowId)).size).toBe(1);
      const handle = handles[0]!;
      const s = await until(
        () => status(handle),
        (x) => x.alerts['fp-dup']?.deliveries === 5,
        'five deliveries',
      );
      expect(Object.keys(s.alerts)).toEqual(['fp-dup']);
      const webhookProbes = platform.probeCalls.filter((c) => c.probeId === 'webhook');
      expect(webhookProbes).toHaveLength(1);
      expect(s.timeline.filter((t) => t.type === 'alert-firing')).toHaveLength(1);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'erin' }] });
      await handle.result();
    });
  });
});
