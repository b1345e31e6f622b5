import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import type { Alert } from '../../src/domain/alerts.js';
import type { Runbook } from '../../src/domain/runbook.js';
import { deliverAlerts } from '../../src/starters/deliver.js';
import { incidentActions, postIncidentStatusQuery } from '../../src/workflows/api.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { contactsFile, runbooksDir } from '../helpers/paths.js';
import { timeSkippingEnv, uniqueName } from '../helpers/services.js';
import { productWorker, status, until } from '../helpers/workflows.js';

// A drill incident (alerts labelled drill="true", as `incidentctl drill` sends them) is marked everywhere:
// the IncidentDrill search attribute on the incident and its report, the state, the timeline, every
// notification, the actions that reach people and the ledger.

let env: TestWorkflowEnvironment;
let runbooks: Runbook[];
beforeAll(async () => {
  env = await timeSkippingEnv();
  runbooks = (await loadRunbookDir(runbooksDir, contactsFile)).runbooks.map((r) => r.runbook);
});
afterAll(async () => {
  await env?.teardown();
});

const drillAlert = (
  namespace: string,
  status: Alert['status'],
  labels: Record<string, string> = {},
): Alert => ({
  fingerprint: `drill-${namespace}`,
  status,
  labels: { alertname: 'FTEAllChannelsDown', namespace, severity: 'critical', drill: 'true', ...labels },
  annotations: { summary: 'DRILL postgres-down' },
  startsAt: '2026-11-27T03:00:00Z',
});

describe('a drill incident', () => {
  it('is marked from the alert to the report, and its notifications say so', async () => {
    const platform = new FakePlatform().heals('restartStatefulSetPod', {
      postgres: 'ok',
      'api-health': 'ok',
    });
    platform.status = { postgres: 'down', 'api-health': 'down' };
    platform.metrics = { pods: { 'uid/postgres-0': 'uid-1', 'uid/kafka-0': 'uid-2' } };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    const namespace = uniqueName('drill');
    await worker.runUntil(async () => {
      const [delivery] = await deliverAlerts(
        { client: env.client, taskQueue },
        runbooks,
        [drillAlert(namespace, 'firing')],
        'alertmanager',
      );
      const handle = env.client.workflow.getHandle(delivery?.workflowId as string);
      const waiting = await until(
        () => status(handle),
        (s) => s.status === 'AwaitingApproval',
        'the approval wait',
      );
      expect(waiting.drill).toEqual({ notify: false });
      expect(waiting.timeline.find((t) => t.type === 'drill')?.text).toContain('only logged');
      expect((await handle.describe()).searchAttributes.IncidentDrill).toEqual([true]);
      await vi.waitFor(() => {
        expect(platform.sent('opened')[0]?.drill).toEqual({ notify: false });
        expect(platform.sent('approval-needed')[0]?.drill).toEqual({ notify: false });
      });

      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      });
      await env.sleep('1 minute');
      await until(
        () => status(handle),
        (s) => s.steps.find((x) => x.id === 'restart-postgres')?.status === 'recovered',
        'recovery',
      );
      expect(platform.actionsNamed('restartStatefulSetPod')[0]?.input.drill).toEqual({ notify: false });
      await handle.signal('alerts', { alerts: [drillAlert(namespace, 'resolved')] });
      const outcome = (await handle.result()) as { postIncidentWorkflowId?: string };
      expect(platform.sent('resolved')[0]?.drill).toEqual({ notify: false });
      expect(platform.ledger.find((e) => e.type === 'opened')?.data.drill).toBe(true);

      const post = env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string);
      expect((await post.query(postIncidentStatusQuery)).drill).toEqual({ notify: false });
      expect((await post.describe()).searchAttributes.IncidentDrill).toEqual([true]);
      await post.terminate('test over');
    });
  });

  it('with drill_notify="true" lets its notifications reach people', async () => {
    const platform = new FakePlatform();
    platform.status = { 'api-health': 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    const namespace = uniqueName('drill');
    await worker.runUntil(async () => {
      const [delivery] = await deliverAlerts(
        { client: env.client, taskQueue },
        runbooks,
        [drillAlert(namespace, 'firing', { drill_notify: 'true' })],
        'alertmanager',
      );
      const handle = env.client.workflow.getHandle(delivery?.workflowId as string);
      const s = await until(
        () => status(handle),
        (x) => x.findings['api-health'] !== undefined,
        'diagnosis',
      );
      expect(s.drill).toEqual({ notify: true });
      await vi.waitFor(() => expect(platform.sent('opened')[0]?.drill).toEqual({ notify: true }));
      await handle.terminate('test over');
    });
  });

  it('is not what a real alert opens, even beside a drill alert', async () => {
    const platform = new FakePlatform();
    platform.status = { 'api-health': 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    const namespace = uniqueName('real');
    await worker.runUntil(async () => {
      const real: Alert = {
        ...drillAlert(namespace, 'firing'),
        fingerprint: 'real-1',
        labels: { alertname: 'FTEAllChannelsDown', namespace },
      };
      const [delivery] = await deliverAlerts(
        { client: env.client, taskQueue },
        runbooks,
        [real, drillAlert(namespace, 'firing')],
        'alertmanager',
      );
      const handle = env.client.workflow.getHandle(delivery?.workflowId as string);
      const s = await until(
        () => status(handle),
        (x) => x.findings['api-health'] !== undefined,
        'diagnosis',
      );
      expect(s.drill).toBeUndefined();
      expect(s.timeline.some((t) => t.type === 'drill')).toBe(false);
      expect((await handle.describe()).searchAttributes.IncidentDrill).toBeUndefined();
      await vi.waitFor(() => expect(platform.sent('opened')).toHaveLength(1));
      expect(platform.sent('opened')[0]).not.toHaveProperty('drill');
      await handle.terminate('test over');
    });
  });
});
