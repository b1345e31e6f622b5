import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LedgerEvent } from '../../src/domain/activity-contract.js';
import { applyMigrations, ledgerActivities } from '../../src/activities/ledger.js';
import { createTestDatabase, uniqueName } from '../helpers/services.js';
import { projectRoot as repoRoot } from '../helpers/paths.js';

// Dropping a test database ends whatever connection is still open to it; that is expected, not a failure.
const quiet = (p: pg.Pool) => p.on('error', () => {});

let db: { url: string; drop: () => Promise<void> };
let pool: pg.Pool;
let record: ReturnType<typeof ledgerActivities>['recordIncidentEvent'];

beforeAll(async () => {
  db = await createTestDatabase();
  pool = quiet(new pg.Pool({ connectionString: db.url, max: 8 }));
  await applyMigrations(pool);
  record = ledgerActivities({ pool }).recordIncidentEvent;
});
afterAll(async () => {
  await pool?.end();
  await db?.drop();
});

function eventMaker(incidentId = uniqueName('database-connection-failures/customer-success-fte')) {
  const occurrence = uniqueName('run');
  let seq = 0;
  return {
    incidentId,
    occurrence,
    event: (type: string, at: string, data: LedgerEvent['data'] = {}, by?: string): LedgerEvent => ({
      incidentId,
      occurrence,
      eventId: `${occurrence}:${++seq}`,
      type,
      at,
      data: { severity: 'P1', runbook: 'database-connection-failures', ...data },
      ...(by ? { by } : {}),
    }),
  };
}

async function incidentRow(incidentId: string, occurrence: string) {
  const { rows } = await pool.query(
    `SELECT *, time_to_acknowledge_ms::int AS tta, time_to_resolve_ms::int AS ttr
       FROM incidents WHERE incident_id = $1 AND occurrence = $2`,
    [incidentId, occurrence],
  );
  return rows[0];
}
const eventCount = async (occurrence: string) =>
  (
    await pool.query<{ n: number }>('SELECT count(*)::int AS n FROM incident_events WHERE occurrence = $1', [
      occurrence,
    ])
  ).rows[0]?.n;

describe('migrations', () => {
  it('applies each migration once, in order, and a second run applies nothing', async () => {
    const again = await applyMigrations(pool);
    expect(again.applied).toEqual([]);
    expect(again.alreadyApplied).toEqual([
      '001_incident_ledger.sql',
      '002_action_runs.sql',
      '003_incident_drill.sql',
    ]);
    const { rows } = await pool.query('SELECT version, name FROM schema_migrations ORDER BY version');
    expect(rows).toEqual([
      { version: '000001', name: '001_incident_ledger.sql' },
      { version: '000002', name: '002_action_runs.sql' },
      { version: '000003', name: '003_incident_drill.sql' },
    ]);
  });

  it('is safe when two workers migrate a fresh database at the same time', async () => {
    const fresh = await createTestDatabase();
    const workers = [1, 2, 3].map(() => quiet(new pg.Pool({ connectionString: fresh.url, max: 2 })));
    try {
      const reports = await Promise.all(workers.map((w) => applyMigrations(w)));
      expect(reports.flatMap((r) => r.applied).sort()).toEqual([
        '001_incident_ledger.sql',
        '002_action_runs.sql',
        '003_incident_drill.sql',
      ]);
      const { rows } = await workers[0]!.query(
        `SELECT count(*)::int AS n FROM information_schema.tables
          WHERE table_name IN ('incidents', 'incident_events', 'action_runs', 'schema_migrations')`,
      );
      expect(rows[0].n).toBe(4);
    } finally {
      await Promise.all(workers.map((w) => w.end()));
      await fresh.drop();
    }
  });

  it('refuses a migration whose file changed after it was applied', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'migrations-'));
    try {
      await cp(join(repoRoot, 'migrations'), dir, { recursive: true });
      const file = join(dir, '002_action_runs.sql');
      await writeFile(file, `${await readFile(file, 'utf8')}\n-- edited\n`);
      await expect(applyMigrations(pool, { dir })).rejects.toThrow(
        /002_action_runs.sql changed after it was applied/,
      );
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('recordIncidentEvent', () => {
  it('opens, acknowledges and resolves an incident with its times; a retried write adds nothing', async () => {
    const m = eventMaker();
    const opened = m.event('opened', '2026-01-05T10:00:00.000Z', {
      title: 'Database connection failures',
      scope: 'customer-success-fte',
      team: 'platform',
      source: 'alertmanager',
      openedAt: '2026-01-05T10:00:00.000Z',
    });
    await record(opened);
    await record(opened);
    await record(
      m.event('acknowledged', '2026-01-05T10:03:30.000Z', { timeToAcknowledgeMs: 210_000 }, 'alice'),
    );
    await record(
      m.event('step-run', '2026-01-05T10:04:00.000Z', { step: 'kill-idle-connections', changed: true }),
    );
    const resolved = m.event('resolved', '2026-01-05T10:20:00.000Z', { summary: 'pool recovered' }, 'bob');
    await record(resolved);
    await record(resolved);

    expect(await eventCount(m.occurrence)).toBe(4);
    const row = await incidentRow(m.incidentId, m.occurrence);
    expect(row).toMatchObject({
      runbook: 'database-connection-failures',
      title: 'Database connection failures',
      scope: 'customer-success-fte',
      team: 'platform',
      severity: 'P1',
      initial_severity: 'P1',
      acknowledged_by: 'alice',
      resolved_by: 'bob',
      resolution_summary: 'pool recovered',
      status: 'resolved',
      event_count: 4,
      tta: 210_000,
      ttr: 1_200_000,
    });
  });

  it('writes exactly one row when the same event is retried concurrently', async () => {
    const m = eventMaker();
    const opened = m.event('opened', '2026-01-06T08:00:00.000Z', {
      title: 't',
      openedAt: '2026-01-06T08:00:00.000Z',
    });
    const escalated = m.event('escalated', '2026-01-06T08:06:00.000Z', { to: 'platform', reason: 'no ack' });
    await Promise.all([...Array(5)].flatMap(() => [record(opened), record(escalated)]));
    expect(await eventCount(m.occurrence)).toBe(2);
    const row = await incidentRow(m.incidentId, m.occurrence);
    expect(row).toMatchObject({
      escalations: 1,
      last_escalated_to: 'platform',
      event_count: 2,
      status: 'open',
    });
  });

  it('keeps times right when events arrive out of order, and only ever raises severity', async () => {
    const m = eventMaker();
    await record(m.event('acknowledged', '2026-01-07T12:01:00.000Z', { severity: 'P3' }, 'carol'));
    await record(
      m.event('severity-raised', '2026-01-07T12:02:00.000Z', { severity: 'P3', from: 'P3', to: 'P2' }),
    );
    await record(
      m.event('opened', '2026-01-07T12:00:00.000Z', { severity: 'P3', openedAt: '2026-01-07T12:00:00.000Z' }),
    );
    await record(
      m.event('note', '2026-01-07T12:03:00.000Z', {
        severity: 'P3',
        text: 'late event with the old severity',
      }),
    );
    const row = await incidentRow(m.incidentId, m.occurrence);
    expect(row).toMatchObject({
      severity: 'P2',
      initial_severity: 'P3',
      acknowledged_by: 'carol',
      tta: 60_000,
    });
  });

  it('tracks the post-incident report and follow-ups', async () => {
    const m = eventMaker();
    await record(m.event('opened', '2026-01-08T09:00:00.000Z', { openedAt: '2026-01-08T09:00:00.000Z' }));
    await record(
      m.event('report-submitted', '2026-01-08T15:00:00.000Z', { rootCause: 'pool too small' }, 'dave'),
    );
    await record(m.event('follow-up-added', '2026-01-08T15:01:00.000Z', { title: 'raise max_size' }));
    await record(m.event('follow-up-added', '2026-01-08T15:02:00.000Z', { title: 'alert earlier' }));
    await record(m.event('follow-up-done', '2026-01-09T10:00:00.000Z', { id: 1 }));
    const row = await incidentRow(m.incidentId, m.occurrence);
    expect(row).toMatchObject({ report_submitted_by: 'dave', follow_ups_open: 1 });
    expect(row.report_submitted_at.toISOString()).toBe('2026-01-08T15:00:00.000Z');
  });

  it('keeps a second occurrence of the same incident id apart from the first', async () => {
    const first = eventMaker('high-agent-latency/customer-success-fte-shared');
    const second = eventMaker('high-agent-latency/customer-success-fte-shared');
    await record(first.event('opened', '2026-01-10T09:00:00.000Z', { severity: 'P3' }));
    await record(second.event('opened', '2026-01-11T09:00:00.000Z', { severity: 'P3' }));
    const { rows } = await pool.query('SELECT occurrence FROM incidents WHERE incident_id = $1', [
      first.incidentId,
    ]);
    expect(rows.map((r) => r.occurrence).sort()).toEqual([first.occurrence, second.occurrence].sort());
  });

  it('refuses to rewrite history: incident_events is append-only', async () => {
    const m = eventMaker();
    await record(m.event('opened', '2026-01-12T09:00:00.000Z'));
    await expect(
      pool.query("UPDATE incident_events SET type = 'x' WHERE occurrence = $1", [m.occurrence]),
    ).rejects.toThrow(/append-only/);
    await expect(
      pool.query('DELETE FROM incident_events WHERE occurrence = $1', [m.occurrence]),
    ).rejects.toThrow(/append-only/);
  });

  it('rejects a malformed event without retrying, naming the field', async () => {
    const m = eventMaker();
    const bad = { ...m.event('opened', 'yesterday'), type: 'Opened!' };
    const error = await record(bad).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'BadRequestError', nonRetryable: true });
    expect((error as Error).message).toMatch(/\bat: Invalid ISO datetime/);
    expect((error as Error).message).toMatch(/\btype: expected a lower-case event type/);
    expect(await eventCount(m.occurrence)).toBe(0);
  });

  it('fails retryably, without the password, when the ledger database is unreachable', async () => {
    const secret = 'Ledger-Pw-9f3a77c1';
    const unreachable = new pg.Pool({
      connectionString: `postgres://ledger:${secret}@127.0.0.1:1/ledger`,
      connectionTimeoutMillis: 2000,
    });
    try {
      const m = eventMaker();
      const error = await ledgerActivities({ pool: unreachable })
        .recordIncidentEvent(m.event('opened', '2026-01-13T09:00:00.000Z'))
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ type: 'UnavailableError', nonRetryable: false });
      expect((error as Error).message).toMatch(/ECONNREFUSED/);
      expect(JSON.stringify(error)).not.toContain(secret);
      expect((error as Error).message).not.toContain(secret);
    } finally {
      await unreachable.end();
    }
  });
});

describe('docs/ledger.md', () => {
  it('query gives time to acknowledge and resolve per severity (avg, p50, p90)', async () => {
    const fresh = await createTestDatabase();
    const p = quiet(new pg.Pool({ connectionString: fresh.url }));
    try {
      await applyMigrations(p);
      const rec = ledgerActivities({ pool: p }).recordIncidentEvent;
      // Within the query's 90-day window.
      const open = Date.now() - 30 * 86_400_000;
      // P1 incidents acknowledged after 1..5 min and resolved after 10..50 min; one P3 still open.
      for (let i = 1; i <= 5; i++) {
        const m = eventMaker(`p1-${i}`);
        const at = (ms: number) => new Date(open + i * 86_400_000 + ms).toISOString();
        await rec(m.event('opened', at(0), { openedAt: at(0) }));
        await rec(m.event('acknowledged', at(i * 60_000)));
        await rec(m.event('resolved', at(i * 600_000)));
      }
      const m = eventMaker('p3-open');
      await rec(m.event('opened', new Date(open).toISOString(), { severity: 'P3' }));

      const doc = await readFile(join(repoRoot, 'docs/ledger.md'), 'utf8');
      const sql = /<!-- time-to-query -->\s*```sql\n([\s\S]*?)```/.exec(doc)?.[1];
      expect(sql, 'docs/ledger.md has the marked query').toBeTruthy();
      const { rows } = await p.query(sql!);
      const p1 = rows.find((r) => r.severity === 'P1');
      expect(Number(p1.incidents)).toBe(5);
      expect(Number(p1.tta_avg_s)).toBe(180);
      expect(Number(p1.tta_p50_s)).toBe(180);
      expect(Number(p1.tta_p90_s)).toBeCloseTo(276, 5);
      expect(Number(p1.ttr_avg_s)).toBe(1800);
      expect(Number(p1.ttr_p50_s)).toBe(1800);
      expect(Number(p1.ttr_p90_s)).toBeCloseTo(2760, 5);
      const p3 = rows.find((r) => r.severity === 'P3');
      expect(Number(p3.incidents)).toBe(1);
      expect(p3.tta_avg_s).toBeNull();
    } finally {
      await p.end();
      await fresh.drop();
    }
  });
});
