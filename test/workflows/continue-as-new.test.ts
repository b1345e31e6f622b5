import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import proto from '@temporalio/proto';
import { alert, productWorker, raise, status, until } from '../helpers/workflows.js';
import { alertsSignal, incidentActions } from '../../src/workflows/api.js';
import { incidentWorkflow } from '../../src/workflows/incident.js';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

describe('an alert storm', () => {
  it('continues the incident as new when the history grows, keeping its state and its approval wait', async () => {
    const platform = new FakePlatform().heals('restartStatefulSetPod', { postgres: 'ok' });
    platform.status = { postgres: 'down' };
    platform.metrics = { pods: { 'uid/postgres-0': 'uid-1' } };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      // A small history limit so that a storm of a few hundred alerts is enough to cross it.
      const handle = await env.client.workflow.start(incidentWorkflow, {
        taskQueue,
        workflowId: `incident-all-channels-down--storm-${taskQueue}`,
        args: [
          {
            trigger: { runbookId: 'all-channels-down', scope: 'storm', source: 'alertmanager' },
            historyLimit: 150,
          },
        ],
      });
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      const firstRun = (await handle.describe()).runId;
      await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
      for (let i = 0; i < 120; i++) {
        await handle.signal(alertsSignal, { alerts: [alert('FTEAllChannelsDown', `storm-${i}`)] });
      }
      const s = await until(
        () => status(handle),
        (x) => Object.keys(x.alerts).length === 120,
        'every alert kept',
      );
      const latest = env.client.workflow.getHandle(handle.workflowId);
      expect((await latest.describe()).runId).not.toBe(firstRun);
      expect(s.acknowledgedBy).toBe('alice');
      expect(s.awaitingApproval).toEqual(['restart-postgres']);
      expect(s.findings.postgres?.status).toBe('down');
      await vi.waitFor(() => expect(platform.sent('approval-needed')).toHaveLength(1));
      await latest.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      });
      await env.sleep('1 minute');
      const after = await until(
        () => status(latest),
        (x) => x.steps[0]?.status === 'recovered',
        'recovery after CAN',
      );
      expect(platform.timesActed('restartStatefulSetPod')).toBe(1);
      expect(after.timeline.filter((t) => t.type === 'opened')).toHaveLength(1);
      await latest.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      const outcome = await latest.result();
      expect(outcome.timeToAcknowledgeMs).toBeDefined();
    });
  });

  it.each([
    ['waiting for people or alerts', 'high-escalation-rate', 'FTEEscalationRateHigh', {}, 'Monitoring'],
    [
      'waiting for approval',
      'all-channels-down',
      'FTEAllChannelsDown',
      { postgres: 'down' },
      'AwaitingApproval',
    ],
  ] as const)(
    'only counts a known firing alert delivered again while %s: no diagnosis, no command',
    async (_what, runbookId, alertname, broken, waiting) => {
      const platform = new FakePlatform();
      platform.status = { ...broken };
      const { worker, taskQueue } = await productWorker(env, platform.activities());
      await worker.runUntil(async () => {
        const repeat = alert(alertname, 'fp-repeat');
        const handle = await raise(env, taskQueue, runbookId, [repeat]);
        await until(
          () => status(handle),
          (s) => s.status === waiting,
          waiting,
        );
        const probes = platform.probeCalls.length;
        const seen = (await handle.fetchHistory()).events?.length ?? 0;
        for (let i = 0; i < 25; i++) await handle.signal(alertsSignal, { alerts: [repeat] });
        const s = await until(
          () => status(handle),
          (x) => x.alerts['fp-repeat']?.deliveries === 26,
          'every delivery counted',
        );
        expect(s.status).toBe(waiting);
        expect(platform.probeCalls.length).toBe(probes);
        // Activities scheduled before (the approval request's notification and ledger row) may finish
        // meanwhile: their started and completed events are no new work, so they are left out.
        const scheduledBefore = (e: proto.temporal.api.history.v1.IHistoryEvent) => {
          const id =
            e.activityTaskStartedEventAttributes?.scheduledEventId ??
            e.activityTaskCompletedEventAttributes?.scheduledEventId;
          return id !== undefined && id !== null && Number(id) <= seen;
        };
        const events = ((await handle.fetchHistory()).events ?? [])
          .slice(seen)
          .filter((e) => !scheduledBefore(e));
        const kinds = new Set(events.map((e) => String(e.eventType)));
        const { EventType } = proto.temporal.api.enums.v1;
        expect(kinds).toEqual(
          new Set(
            [
              EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED,
              EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED,
              EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
              EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
            ].map(String),
          ),
        );
        expect(events.length).toBeLessThanOrEqual(25 * 4);
        await handle.terminate('test over');
      });
    },
  );
});
