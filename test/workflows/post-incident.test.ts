import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { LedgerEvent } from '../../src/domain/activity-contract.js';
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
const INCIDENT = 'incident-all-channels-down--customer-success-fte';
const OCCURRENCE = 'incident-first-run-id';

/** The ledger rows of one type, in the order written. */
const rows = (platform: FakePlatform, type: string): LedgerEvent[] =>
  platform.ledger.filter((e) => e.type === type);
/** Every ledger row in the workflow's order (writes run concurrently: they may arrive in any order). */
const written = (platform: FakePlatform): LedgerEvent[] =>
  [...platform.ledger].sort((a, b) => seq(a) - seq(b));
const seq = (e: LedgerEvent) => Number(e.eventId.split(':').pop());

async function startReport(taskQueue: string, overrides: Partial<PostIncidentInput> = {}) {
  const handle = await env.client.workflow.start(postIncidentWorkflow, {
    taskQueue,
    workflowId: uniqueName('post-incident-test'),
    args: [
      {
        incidentId: INCIDENT,
        occurrence: OCCURRENCE,
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

      // Overdue once in the ledger, however many daily reminders follow.
      expect(rows(platform, 'report-overdue')).toEqual([
        expect.objectContaining({
          incidentId: INCIDENT,
          occurrence: OCCURRENCE,
          data: expect.objectContaining({ dueAt: overdue.reportDueAt, owner: 'alice', severity: 'P1' }),
        }),
      ]);

      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [
          {
            by: 'alice',
            rootCause: 'postgres ran out of disk',
            link: 'https://wiki.example/inc-1',
            noFollowUps: true,
          },
        ],
      });
      const state = await handle.result();
      expect(state.reportStatus).toBe('Submitted');
      expect(state.report).toMatchObject({ rootCause: 'postgres ran out of disk', noFollowUps: true });
      expect(state.missing).toEqual([]);
      expect(rows(platform, 'report-submitted')).toEqual([
        expect.objectContaining({
          by: 'alice',
          data: expect.objectContaining({
            rootCause: 'postgres ran out of disk',
            link: 'https://wiki.example/inc-1',
            noFollowUps: true,
            late: true,
          }),
        }),
      ]);
    });
  });

  it('is never overdue when the report comes in time; follow-ups are reminded when overdue and complete it', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle, read } = await startReport(taskQueue);
      const due = new Date((await env.currentTimeMs()) + 48 * HOUR).toISOString();
      const id = await handle.executeUpdate(postIncidentActions.addFollowUp.update, {
        args: [{ title: 'Alert on disk usage of postgres', owner: 'carol', dueAt: due, by: 'alice' }],
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

      // The ledger tells the story under the incident's id and occurrence, with ids of this workflow's own.
      const runId = (await handle.describe()).runId;
      expect(written(platform).map((e) => e.type)).toEqual([
        'follow-up-added',
        'report-submitted',
        'follow-up-overdue',
        'follow-up-done',
        'post-incident-completed',
      ]);
      expect(written(platform).map((e) => e.eventId)).toEqual([1, 2, 3, 4, 5].map((n) => `${runId}:${n}`));
      for (const e of platform.ledger) {
        expect(e).toMatchObject({
          incidentId: INCIDENT,
          occurrence: OCCURRENCE,
          data: { severity: 'P1', runbook: 'all-channels-down', postIncidentWorkflowId: handle.workflowId },
        });
      }
      expect(rows(platform, 'follow-up-added')[0]).toMatchObject({
        by: 'alice',
        data: { followUp: 'FU-1', title: 'Alert on disk usage of postgres', owner: 'carol', dueAt: due },
      });
      expect(rows(platform, 'report-submitted')[0]).toMatchObject({
        by: 'alice',
        data: { rootCause: 'disk full', link: null, noFollowUps: false, followUps: 1, late: false },
      });
      expect(rows(platform, 'follow-up-overdue')[0]).toMatchObject({
        data: { followUp: 'FU-1', owner: 'carol', dueAt: due },
      });
      expect(rows(platform, 'follow-up-done')[0]).toMatchObject({ by: 'carol', data: { followUp: 'FU-1' } });
      expect(rows(platform, 'post-incident-completed')[0]).toMatchObject({
        data: { followUps: 1, noFollowUps: false, runbookUpdated: false },
      });
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
        args: [{ by: 'alice', rootCause: 'new', noFollowUps: true }],
      });
      await env.sleep(HOUR);
      expect((await read()).missing).toEqual(['the runbook update (new failure mode)']);
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
      expect(rows(platform, 'runbook-updated')).toEqual([
        expect.objectContaining({
          by: 'alice',
          data: expect.objectContaining({ ref: 'runbooks/kafka-disk.yaml', required: true }),
        }),
      ]);
      expect(rows(platform, 'post-incident-completed')[0]?.data).toMatchObject({ runbookUpdated: true });
    });
  });
});

describe('follow-ups', () => {
  it('stays open after a report that neither adds a follow-up nor says none is needed, until it says so', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle, read } = await startReport(taskQueue);
      expect((await read()).missing).toEqual([
        'the report (root cause)',
        'a follow-up, or the report saying that none is needed (noFollowUps)',
      ]);
      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'disk full' }],
      });
      await env.sleep(3 * 24 * HOUR);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      const waiting = await read();
      expect(waiting.reportStatus).toBe('Submitted');
      expect(waiting.missing).toEqual([
        'a follow-up, or the report saying that none is needed (noFollowUps)',
      ]);
      expect(platform.sent('report-overdue')).toEqual([]);

      // A second report is refused, except to say that no follow-up is needed.
      expect(
        await refusal(
          handle.executeUpdate(postIncidentActions.submitReport.update, {
            args: [{ by: 'bob', rootCause: 'something else' }],
          }),
        ),
      ).toBe(
        'the report was already submitted by alice; to say that no follow-up is needed, send it again with noFollowUps',
      );
      const verdict = await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'disk full', noFollowUps: true }],
      });
      expect(verdict).toBe('report amended: no follow-up is needed');
      const done = await handle.result();
      expect(done.report).toMatchObject({ by: 'alice', rootCause: 'disk full', noFollowUps: true });
      expect(done.completedAt).toBeDefined();
      expect(written(platform).map((e) => e.type)).toEqual([
        'report-submitted',
        'report-amended',
        'post-incident-completed',
      ]);
      expect(rows(platform, 'report-amended')[0]).toMatchObject({
        by: 'alice',
        data: { noFollowUps: true, rootCause: 'disk full' },
      });
    });
  });

  it('closes on a report that says no follow-up is needed; refuses that statement beside follow-ups', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const first = await startReport(taskQueue);
      const verdict = await first.handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'a one-off operator error', noFollowUps: true }],
      });
      expect(verdict).toBe('report submitted (no follow-up needed)');
      expect((await first.handle.result()).completedAt).toBeDefined();

      const second = await startReport(taskQueue);
      await second.handle.executeUpdate(postIncidentActions.addFollowUp.update, {
        args: [{ title: 'disk alert', owner: 'carol' }],
      });
      expect(
        await refusal(
          second.handle.executeUpdate(postIncidentActions.submitReport.update, {
            args: [{ by: 'alice', rootCause: 'disk full', noFollowUps: true }],
          }),
        ),
      ).toBe('noFollowUps contradicts the follow-ups already added (FU-1)');
      expect((await second.read()).report).toBeUndefined();
      await second.handle.terminate('test over');
    });
  });

  it('accepts follow-ups after the report and stays open until they are done; refuses them once closed', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle, read } = await startReport(taskQueue);
      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'disk full' }],
      });
      await env.sleep(HOUR);
      expect(
        await handle.executeUpdate(postIncidentActions.addFollowUp.update, {
          args: [{ title: 'disk alert', owner: 'carol' }],
        }),
      ).toBe('FU-1');
      await env.sleep(2 * 24 * HOUR);
      expect(
        await handle.executeUpdate(postIncidentActions.addFollowUp.update, {
          args: [{ title: 'bigger disk', owner: 'dave' }],
        }),
      ).toBe('FU-2');
      await handle.executeUpdate(postIncidentActions.completeFollowUp.update, {
        args: [{ id: 'FU-1', by: 'carol' }],
      });
      await env.sleep(HOUR);
      expect((await handle.describe()).status.name).toBe('RUNNING');
      expect((await read()).missing).toEqual(['follow-ups to be done: FU-2']);

      // The last follow-up closes it; the last ledger write is held up, so the run is still open while it
      // waits for it, and whatever comes in then is refused instead of lost with the run.
      let release = () => {};
      const held = new Promise<void>((r) => (release = r));
      platform.onLedgerWrite = async (e) => {
        if (e.type === 'post-incident-completed') await held;
      };
      await handle.executeUpdate(postIncidentActions.completeFollowUp.update, {
        args: [{ id: 'FU-2', by: 'dave' }],
      });
      await until(read, (s) => s.completedAt !== undefined, 'completion');
      expect(
        await refusal(
          handle.executeUpdate(postIncidentActions.addFollowUp.update, {
            args: [{ title: 'one more', owner: 'carol' }],
          }),
        ),
      ).toMatch(/^the post-incident work is complete \(since .*\); it takes no more actions$/);
      await handle.signal(postIncidentActions.addFollowUp.signal, { title: 'by signal', owner: 'carol' });
      await until(read, (s) => s.rejectedAttempts === 1, 'the refused signal');
      release();
      const done = await handle.result();
      expect(done.followUps.map((f) => [f.id, f.status])).toEqual([
        ['FU-1', 'done'],
        ['FU-2', 'done'],
      ]);
      expect(rows(platform, 'follow-up-added').map((e) => e.data.followUp)).toEqual(['FU-1', 'FU-2']);
      expect(rows(platform, 'follow-up-done').map((e) => e.data.followUp)).toEqual(['FU-1', 'FU-2']);

      // Closed: the server itself refuses (incidentctl says "is closed (completed)").
      await expect(
        handle.executeUpdate(postIncidentActions.addFollowUp.update, {
          args: [{ title: 'too late', owner: 'carol' }],
        }),
      ).rejects.toThrow();
      expect((await read()).followUps).toHaveLength(2);
    });
  });

  it('records a ledger write that failed in the timeline and still completes', async () => {
    const platform = new FakePlatform();
    platform.onLedgerWrite = (e) => {
      if (e.type === 'report-submitted') {
        throw ApplicationFailure.nonRetryable('ledger database refused the event', 'BadRequestError');
      }
    };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle } = await startReport(taskQueue);
      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'disk full', noFollowUps: true }],
      });
      const done = await handle.result();
      expect(done.timeline.find((t) => t.type === 'ledger-failed')?.text).toBe(
        'could not write "report-submitted" to the incident ledger: ledger database refused the event',
      );
      expect(written(platform).map((e) => e.type)).toEqual(['post-incident-completed']);
    });
  });

  it('writes to the ledger under its own first run id when no incident occurrence is given', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const { handle } = await startReport(taskQueue, { occurrence: undefined });
      await handle.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'disk full', noFollowUps: true }],
      });
      await handle.result();
      const runId = (await handle.describe()).runId;
      expect(written(platform).map((e) => [e.occurrence, e.eventId])).toEqual([
        [runId, `${runId}:1`],
        [runId, `${runId}:2`],
      ]);
    });
  });
});
