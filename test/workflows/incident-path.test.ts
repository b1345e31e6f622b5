import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { alert, productWorker, raise, status, until } from '../helpers/workflows.js';
import { incidentActions, postIncidentStatusQuery } from '../../src/workflows/api.js';
import { incidentWorkflow } from '../../src/workflows/incident.js';

// A fresh time-skipping server per test: a workflow left open by one test cannot hold the next one's clock.
let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

describe('all channels down, database crashed (P1)', () => {
  it('restarts the postgres pod after approval, verifies, resolves and opens the report', async () => {
    const platform = new FakePlatform().heals('restartStatefulSetPod', {
      postgres: 'ok',
      'api-health': 'ok',
    });
    platform.status = { postgres: 'down', 'api-health': 'down' };
    platform.metrics = { pods: { 'uid/postgres-0': 'uid-1', 'uid/kafka-0': 'uid-2' } };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-1')]);
      const waiting = await until(
        () => status(handle),
        (s) => s.status === 'AwaitingApproval',
        'approval wait',
      );
      expect(waiting.severity).toBe('P1');
      expect(waiting.awaitingApproval).toEqual(['restart-postgres']);
      expect(waiting.findings.postgres?.status).toBe('down');
      await vi.waitFor(() => {
        expect(platform.sent('opened')[0]?.roles.sort()).toEqual(['on-call', 'platform']);
        expect(platform.sent('approval-needed')[0]?.command).toBe(
          `incidentctl approve ${handle.workflowId} restart-postgres`,
        );
      });

      await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      });
      await env.sleep('1 minute');
      await until(
        () => status(handle),
        (s) => s.steps.find((x) => x.id === 'restart-postgres')?.status === 'recovered',
        'recovery',
      );
      expect(platform.actionsNamed('restartStatefulSetPod')[0]?.input.args).toMatchObject({
        statefulset: 'postgres',
        pod: 'postgres-0',
        expectUid: 'uid-1',
      });

      await handle.signal('alerts', { alerts: [alert('FTEAllChannelsDown', 'fp-1', 'resolved')] });
      const outcome = await handle.result();
      expect(outcome.resolvedBy).toBe('system');
      expect(outcome.postIncidentWorkflowId).toBeDefined();

      const post = env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string);
      const report = await post.query(postIncidentStatusQuery);
      expect(report.reportStatus).toBe('Pending');
      expect(Date.parse(report.reportDueAt) - Date.parse(outcome.resolvedAt)).toBe(24 * 3_600_000);
      expect(report.reportOwner).toBe('alice');
      const described = await post.describe();
      expect(described.searchAttributes.ReportStatus).toEqual(['Pending']);
      expect(platform.timesActed('restartStatefulSetPod')).toBe(1);
      expect(platform.ledger.map((e) => e.type)).toEqual(
        expect.arrayContaining([
          'opened',
          'acknowledged',
          'step-approved',
          'step-run',
          'step-verified',
          'resolved',
        ]),
      );
    });
  });
});

describe('a bad trigger', () => {
  it('fails the run with the reason instead of retrying forever', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await env.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: `incident-bad-${taskQueue}`,
        args: [{ trigger: { runbookId: '', scope: 'x', source: 'pager' } as never }],
      });
      const error = await handle.result().then(
        () => undefined,
        (e: { cause?: { message?: string; type?: string } }) => e.cause,
      );
      expect(error?.type).toBe('InvalidTrigger');
      expect(error?.message).toMatch(/runbookId: .*source: /);
      expect(platform.probeCalls).toEqual([]);
    });
  });
});
