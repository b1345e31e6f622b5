import pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { applyMigrations, ledgerActivities } from '../../src/activities/ledger.js';
import { incidentActions, postIncidentActions } from '../../src/workflows/api.js';
import type { postIncidentWorkflow } from '../../src/workflows/post-incident.js';
import { createTestDatabase, timeSkippingEnv } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { alert, productWorker, raise, status, until } from '../helpers/workflows.js';

// A P1 incident and its post-incident workflow writing through the real ledger activity into PostgreSQL:
// the report's events land on the incident's own row, so the ledger tells the whole story of one incident.

let db: { url: string; drop: () => Promise<void> };
let pool: pg.Pool;
let env: TestWorkflowEnvironment;

beforeAll(async () => {
  db = await createTestDatabase();
  // Dropping the test database ends connections still open to it; that is expected, not a failure.
  pool = new pg.Pool({ connectionString: db.url, max: 4 }).on('error', () => {});
  await applyMigrations(pool);
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const HOUR = 3_600_000;

describe('post-incident work in the ledger', () => {
  it('writes report, follow-ups, runbook update and overdue onto the incident row', async () => {
    const platform = new FakePlatform();
    platform.status = { postgres: 'down' };
    const { recordIncidentEvent } = ledgerActivities({ pool });
    const { worker, taskQueue } = await productWorker(env, { ...platform.activities(), recordIncidentEvent });
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-pir'),
      ]);
      await until(
        () => status(handle),
        (s) => s.status === 'AwaitingApproval',
        'approval wait',
      );
      await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
      await handle.executeUpdate(incidentActions.resolve.update, {
        args: [{ by: 'alice', summary: 'disk cleaned', newFailureMode: true }],
      });
      const outcome = await handle.result();
      const incidentId = outcome.incidentId;
      expect(outcome.postIncidentWorkflowId).toBeDefined();
      const post = env.client.workflow.getHandle<typeof postIncidentWorkflow>(
        outcome.postIncidentWorkflowId as string,
      );

      const due = new Date((await env.currentTimeMs()) + HOUR).toISOString();
      await post.executeUpdate(postIncidentActions.addFollowUp.update, {
        args: [{ title: 'alert on disk usage', owner: 'carol', dueAt: due, by: 'alice' }],
      });
      const midway = await until(
        async () =>
          (
            await pool.query<{ follow_ups_open: number }>(
              'SELECT follow_ups_open FROM incidents WHERE incident_id = $1',
              [incidentId],
            )
          ).rows,
        (r) => r[0]?.follow_ups_open === 1,
        'the open follow-up on the incident row',
      );
      expect(midway).toHaveLength(1);

      await env.sleep(25 * HOUR);
      await post.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'bob', rootCause: 'the data disk of postgres-0 filled up' }],
      });
      await post.executeUpdate(postIncidentActions.markRunbookUpdated.update, {
        args: [{ by: 'alice', ref: 'PR #42' }],
      });
      await post.executeUpdate(postIncidentActions.completeFollowUp.update, {
        args: [{ id: 'FU-1', by: 'carol' }],
      });
      const report = await post.result();
      expect(report.timeline.filter((t) => t.type === 'ledger-failed')).toEqual([]);

      // One incident, one row: the report's events joined the incident's occurrence.
      const { rows: incidents } = await pool.query(
        `SELECT occurrence, severity, status, report_submitted_by, report_submitted_at, follow_ups_open,
                event_count, opened_at
           FROM incidents WHERE incident_id = $1`,
        [incidentId],
      );
      expect(incidents).toHaveLength(1);
      const row = incidents[0] as Record<string, unknown>;
      expect(row).toMatchObject({
        severity: 'P1',
        status: 'resolved',
        report_submitted_by: 'bob',
        follow_ups_open: 0,
      });
      expect(row.opened_at).not.toBeNull();
      expect((row.report_submitted_at as Date).toISOString()).toBe(report.report?.submittedAt);

      const { rows: events } = await pool.query<{
        event_id: string;
        occurrence: string;
        type: string;
        by: string | null;
        data: Record<string, unknown>;
      }>('SELECT event_id, occurrence, type, by, data FROM incident_events WHERE incident_id = $1', [
        incidentId,
      ]);
      expect(events).toHaveLength(Number(row.event_count));
      expect(new Set(events.map((e) => e.occurrence))).toEqual(new Set([row.occurrence]));
      const postRunId = (await post.describe()).runId;
      const ours = events.filter((e) => e.event_id.startsWith(`${postRunId}:`));
      expect(ours.map((e) => e.type).sort()).toEqual(
        [
          'follow-up-added',
          'follow-up-done',
          'follow-up-overdue',
          'post-incident-completed',
          'report-overdue',
          'report-submitted',
          'runbook-updated',
        ].sort(),
      );
      // The incident's own events are there too, under its own ids.
      expect(events.filter((e) => !e.event_id.startsWith(`${postRunId}:`)).map((e) => e.type)).toEqual(
        expect.arrayContaining(['opened', 'acknowledged', 'resolved']),
      );
      const submitted = ours.find((e) => e.type === 'report-submitted');
      expect(submitted).toMatchObject({
        by: 'bob',
        data: {
          rootCause: 'the data disk of postgres-0 filled up',
          late: true,
          postIncidentWorkflowId: post.workflowId,
        },
      });
      expect(ours.find((e) => e.type === 'runbook-updated')).toMatchObject({
        by: 'alice',
        data: { ref: 'PR #42', required: true },
      });
    });
  });
});
