import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv, uniqueName } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { productWorker, refusal, until } from '../helpers/workflows.js';
import { postIncidentActions, postIncidentStatusQuery } from '../../src/workflows/api.js';
import { postIncidentWorkflow } from '../../src/workflows/post-incident.js';
import type { PostIncidentInput } from '../../src/domain/post-incident.js';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const HOUR = 3_600_000;

async function startReport(taskQueue: string, overrides: Partial<PostIncidentInput> = {}) {
  const handle = await env.client.workflow.start(postIncidentWorkflow, {
    taskQueue,
    workflowId: uniqueName('post-incident-test'),
    args: [
      {
        incidentId: 'incident-all-channels-down--customer-success-fte',
        title: 'All channels down',
        severity: 'P1',
        runbookId: 'all-channels-down',
        team: 'platform',
        resolvedAt: new Date(await env.currentTimeMs()).toISOString(),
        reportOwner: 'alice',
        runbookUpdateRequired: false,
        ...overrides,
      },
    ],
  });
  const read = () => handle.query(postIncidentStatusQuery);
  await until(read, (s) => s.timeline.length > 0, 'the report workflow to start');
  return { handle, read };
}

describe('the post-incident report', () => {
  it('reminds at 12 h and 23 h, turns Overdue at 24 h with the manager told, then reminds daily', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle, read } = await startReport(taskQueue);
      const first = await read();
      expect(Date.parse(first.reportDueAt) - Date.parse(first.resolvedAt)).toBe(24 * HOUR);
      expect((await handle.describe()).searchAttributes.ReportStatus).toEqual(['Pending']);

      await env.sleep(23 * HOUR + 30 * 60_000);
      await vi.waitFor(() => expect(platform.sent('report-reminder')).toHaveLength(2));
      expect((await read()).reportStatus).toBe('Pending');
      expect(platform.sent('report-overdue')).toEqual([]);

      await env.sleep(HOUR);
      const overdue = await until(read, (s) => s.reportStatus === 'Overdue', 'Overdue');
      expect(overdue.timeline.some((t) => t.type === 'report-overdue')).toBe(true);
      await vi.waitFor(() =>
        expect(platform.sent('report-overdue').map((n) => n.roles)).toEqual([['manager']]),
      );
      expect((await handle.describe()).searchAttributes.ReportStatus).toEqual(['Overdue']);

      await env.sleep(2 * 24 * HOUR);
      await vi.waitFor(() => expect(platform.sent('report-overdue')).toHaveLength(3));

      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'postgres ran out of disk', link: 'https://wiki.example/inc-1' }],
      });
      const state = await handle.result();
      expect(state.reportStatus).toBe('Submitted');
      expect(state.report?.rootCause).toBe('postgres ran out of disk');
    });
  });

  it('is never overdue when the report comes in time; follow-ups are reminded when overdue and complete it', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle, read } = await startReport(taskQueue);
      const due = new Date((await env.currentTimeMs()) + 48 * HOUR).toISOString();
      const id = await handle.executeUpdate(postIncidentActions.addFollowUp.update, {
        args: [{ title: 'Alert on disk usage of postgres', owner: 'carol', dueAt: due }],
      });
      expect(id).toBe('FU-1');
      await env.sleep(6 * HOUR);
      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'disk full' }],
      });
      expect(
        await refusal(
          handle.executeUpdate(postIncidentActions.submitReport.update, {
            args: [{ by: 'bob', rootCause: 'x' }],
          }),
        ),
      ).toMatch(/already submitted by alice/);

      await env.sleep(3 * 24 * HOUR);
      const s = await read();
      expect(s.reportStatus).toBe('Submitted');
      expect(platform.sent('report-overdue')).toEqual([]);
      await vi.waitFor(() => expect(platform.sent('follow-up-overdue').length).toBeGreaterThanOrEqual(2));
      expect(platform.sent('follow-up-overdue')[0]?.text).toContain('FU-1');
      expect((await handle.describe()).status.name).toBe('RUNNING');

      expect(
        await refusal(
          handle.executeUpdate(postIncidentActions.completeFollowUp.update, {
            args: [{ id: 'FU-9', by: 'carol' }],
          }),
        ),
      ).toMatch(/unknown follow-up "FU-9"/);
      await handle.executeUpdate(postIncidentActions.completeFollowUp.update, {
        args: [{ id: 'FU-1', by: 'carol' }],
      });
      const done = await handle.result();
      expect(done.followUps[0]).toMatchObject({ status: 'done', doneBy: 'carol' });
      expect(done.completedAt).toBeDefined();
    });
  });

  it('waits for the runbook update when the failure mode was new', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle, read } = await startReport(taskQueue, {
        runbookId: 'triage',
        runbookUpdateRequired: true,
      });
      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'new' }],
      });
      await env.sleep(HOUR);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      // An invalid Signal is recorded, never acted on.
      await handle.signal(postIncidentActions.markRunbookUpdated.signal, { by: 'alice' } as never);
      await until(read, (s) => s.rejectedAttempts === 1, 'the refused signal');
      await handle.signal(postIncidentActions.markRunbookUpdated.signal, {
        by: 'alice',
        ref: 'runbooks/kafka-disk.yaml',
      });
      const state = await handle.result();
      expect(state.runbookUpdate?.ref).toBe('runbooks/kafka-disk.yaml');
    });
  });
});
