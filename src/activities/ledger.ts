import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApplicationFailure } from '@temporalio/activity';
import type pg from 'pg';
import { z } from 'zod';
import type { LedgerEvent } from '../domain/activity-contract.js';
import { activityError, parseActivityArgs } from './common.js';
import { connectionSecrets, describePostgresError } from './postgres.js';

// The incident ledger in our own PostgreSQL database: one row per incident occurrence, kept up to date,
// and an append-only list of events. The schema lives in migrations/*.sql (see docs/ledger.md).

// ---- migrations -----------------------------------------------------------------------------------------

/** Any constant works; all workers must agree on it so that only one applies migrations at a time. */
const MIGRATION_LOCK_KEY = 4_184_920_117;
const MIGRATION_FILE = /^(\d+)_[a-z0-9_-]+\.sql$/;

/** migrations/ beside src/ (tsx) or beside dist/src (built). */
async function defaultMigrationsDir(): Promise<string> {
  const candidates = ['../../migrations', '../../../migrations'].map((rel) =>
    fileURLToPath(new URL(rel, import.meta.url)),
  );
  for (const dir of candidates) {
    if (
      await readdir(dir).then(
        () => true,
        () => false,
      )
    )
      return dir;
  }
  throw new Error(`no migrations folder found (looked in ${candidates.join(', ')})`);
}

export interface Migration {
  version: string;
  name: string;
  sql: string;
  checksum: string;
}

export async function readMigrations(dir?: string): Promise<Migration[]> {
  const folder = dir ?? (await defaultMigrationsDir());
  const names = (await readdir(folder)).filter((n) => MIGRATION_FILE.test(n));
  const migrations = await Promise.all(
    names.map(async (name) => {
      const sql = await readFile(join(folder, name), 'utf8');
      const version = (MIGRATION_FILE.exec(name)?.[1] ?? '').padStart(6, '0');
      return { version, name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    }),
  );
  migrations.sort((a, b) => a.version.localeCompare(b.version));
  for (let i = 1; i < migrations.length; i++) {
    if (migrations[i]?.version === migrations[i - 1]?.version) {
      throw new Error(
        `two migrations share version ${migrations[i]?.version}: ${migrations[i - 1]?.name}, ${migrations[i]?.name}`,
      );
    }
  }
  return migrations;
}

export interface MigrationReport {
  applied: string[];
  alreadyApplied: string[];
}

/**
 * Applies the migrations not yet recorded in schema_migrations, in version order, each in its own
 * transaction. An advisory lock serialises workers that start together; a migration whose file changed
 * after it was applied is an error (write a new migration instead).
 */
export async function applyMigrations(
  pool: pg.Pool,
  options: { dir?: string } = {},
): Promise<MigrationReport> {
  const migrations = await readMigrations(options.dir);
  const client = await pool.connect();
  try {
    await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK_KEY]);
    try {
      await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version text PRIMARY KEY,
        name text NOT NULL,
        checksum text NOT NULL,
        applied_at timestamptz NOT NULL DEFAULT now()
      )`);
      const { rows } = await client.query<{ version: string; name: string; checksum: string }>(
        'SELECT version, name, checksum FROM schema_migrations',
      );
      const done = new Map(rows.map((r) => [r.version, r]));
      const report: MigrationReport = { applied: [], alreadyApplied: [] };
      for (const m of migrations) {
        const before = done.get(m.version);
        if (before) {
          if (before.checksum !== m.checksum) {
            throw new Error(
              `migration ${m.name} changed after it was applied (as ${before.name}); add a new migration instead`,
            );
          }
          report.alreadyApplied.push(m.name);
          continue;
        }
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query('INSERT INTO schema_migrations (version, name, checksum) VALUES ($1, $2, $3)', [
            m.version,
            m.name,
            m.checksum,
          ]);
          await client.query('COMMIT');
        } catch (error) {
          await client.query('ROLLBACK').catch(() => {});
          const message = error instanceof Error ? error.message : String(error);
          throw new Error(`migration ${m.name} failed: ${message}`);
        }
        report.applied.push(m.name);
      }
      return report;
    } finally {
      await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK_KEY]).catch(() => {});
    }
  } finally {
    client.release();
  }
}

// ---- events ---------------------------------------------------------------------------------------------

const severitySchema = z.enum(['P1', 'P2', 'P3']);
const dataValue = z.union([z.string(), z.number(), z.boolean(), z.null()]);

export const ledgerEventSchema = z.object({
  incidentId: z.string().min(1).max(500),
  occurrence: z.string().min(1).max(200),
  eventId: z.string().min(1).max(300),
  type: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/, 'expected a lower-case event type like "step-run"'),
  at: z.iso.datetime({ offset: true }),
  by: z.string().max(200).optional(),
  data: z.record(z.string(), dataValue).default({}),
});

const text = (v: unknown): string | null => (typeof v === 'string' && v.length > 0 ? v : null);
const severityOf = (v: unknown) => {
  const parsed = severitySchema.safeParse(v);
  return parsed.success ? parsed.data : null;
};

/** How one event changes its incident's row; fields left null change nothing. */
function incidentChanges(e: z.output<typeof ledgerEventSchema>) {
  const d = e.data;
  const is = (type: string) => e.type === type;
  return {
    runbook: text(d.runbook),
    // Every event carries the severity at its time; severity-raised also carries the new one.
    severity: is('severity-raised') ? (severityOf(d.to) ?? severityOf(d.severity)) : severityOf(d.severity),
    initialSeverity: is('opened') ? severityOf(d.severity) : null,
    title: is('opened') ? text(d.title) : null,
    scope: is('opened') ? text(d.scope) : null,
    team: is('opened') ? text(d.team) : null,
    source: is('opened') ? text(d.source) : null,
    openedAt: is('opened') ? (text(d.openedAt) ?? e.at) : null,
    acknowledgedAt: is('acknowledged') ? e.at : null,
    acknowledgedBy: is('acknowledged') ? (e.by ?? null) : null,
    resolvedAt: is('resolved') ? e.at : null,
    resolvedBy: is('resolved') ? (e.by ?? null) : null,
    resolutionSummary: is('resolved') ? text(d.summary) : null,
    escalations: is('escalated') ? 1 : 0,
    escalatedTo: is('escalated') ? text(d.to) : null,
    reportSubmittedAt: is('report-submitted') ? e.at : null,
    reportSubmittedBy: is('report-submitted') ? (e.by ?? null) : null,
    followUpsDelta: is('follow-up-added') ? 1 : is('follow-up-done') ? -1 : 0,
    // A drill incident says so in its `opened` event (migration 003); nothing ever unmarks it.
    drill: is('opened') && d.drill === true,
  };
}

// In UPDATE every right-hand side sees the row as it was, so acknowledged_by compares with the old time.
// Events may arrive out of order (the workflow writes them concurrently): times keep the earliest
// acknowledgement, severity the highest ('P1' sorts first).
const UPDATE_INCIDENT_SQL = `
  UPDATE incidents SET
    runbook = COALESCE(runbook, $3),
    severity = LEAST(severity, $4),
    initial_severity = COALESCE($5, initial_severity),
    title = COALESCE($6, title),
    scope = COALESCE($7, scope),
    team = COALESCE($8, team),
    source = COALESCE($9, source),
    opened_at = COALESCE($10::timestamptz, opened_at),
    acknowledged_by = CASE WHEN $11::timestamptz IS NOT NULL
                            AND (acknowledged_at IS NULL OR $11::timestamptz < acknowledged_at)
                           THEN $12 ELSE acknowledged_by END,
    acknowledged_at = LEAST(acknowledged_at, $11::timestamptz),
    resolved_at = COALESCE($13::timestamptz, resolved_at),
    resolved_by = COALESCE($14, resolved_by),
    resolution_summary = COALESCE($15, resolution_summary),
    escalations = escalations + $16,
    last_escalated_to = COALESCE($17, last_escalated_to),
    report_submitted_at = COALESCE($18::timestamptz, report_submitted_at),
    report_submitted_by = COALESCE($19, report_submitted_by),
    follow_ups_open = GREATEST(0, follow_ups_open + $20),
    event_count = event_count + 1,
    last_event_at = GREATEST(last_event_at, $21::timestamptz),
    drill = drill OR $22
  WHERE incident_id = $1 AND occurrence = $2`;

export interface LedgerDependencies {
  /** Our ledger database, with applyMigrations() run on it. */
  pool: pg.Pool;
}

export function ledgerActivities(deps: LedgerDependencies) {
  const { password, connectionString } = deps.pool.options;
  const known = [
    ...(typeof password === 'string' ? [password] : []),
    ...(connectionString ? connectionSecrets(connectionString) : []),
  ];
  /**
   * Appends one event and updates its incident's row, in one transaction. A retried write (same eventId)
   * adds nothing and changes nothing.
   */
  async function recordIncidentEvent(event: LedgerEvent): Promise<void> {
    const e = parseActivityArgs(ledgerEventSchema, event, 'recordIncidentEvent');
    const c = incidentChanges(e);
    let client: pg.PoolClient | undefined;
    try {
      client = await deps.pool.connect();
      await client.query('BEGIN');
      await client.query(
        'INSERT INTO incidents (incident_id, occurrence) VALUES ($1, $2) ON CONFLICT DO NOTHING',
        [e.incidentId, e.occurrence],
      );
      const inserted = await client.query(
        `INSERT INTO incident_events (event_id, incident_id, occurrence, type, at, by, data)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (event_id) DO NOTHING`,
        [e.eventId, e.incidentId, e.occurrence, e.type, e.at, e.by ?? null, JSON.stringify(e.data)],
      );
      if (inserted.rowCount === 1) {
        await client.query(UPDATE_INCIDENT_SQL, [
          e.incidentId,
          e.occurrence,
          c.runbook,
          c.severity,
          c.initialSeverity,
          c.title,
          c.scope,
          c.team,
          c.source,
          c.openedAt,
          c.acknowledgedAt,
          c.acknowledgedBy,
          c.resolvedAt,
          c.resolvedBy,
          c.resolutionSummary,
          c.escalations,
          c.escalatedTo,
          c.reportSubmittedAt,
          c.reportSubmittedBy,
          c.followUpsDelta,
          e.at,
          c.drill,
        ]);
      }
      await client.query('COMMIT');
    } catch (error) {
      await client?.query('ROLLBACK').catch(() => {});
      if (error instanceof ApplicationFailure) throw error;
      const p = describePostgresError(error);
      throw activityError(p.kind, `recordIncidentEvent ${e.type} for ${e.incidentId}: ${p.message}`, known);
    } finally {
      client?.release();
    }
  }

  return { recordIncidentEvent };
}
