import { performance } from 'node:perf_hooks';
import { ApplicationFailure } from '@temporalio/activity';
import pg from 'pg';
import { z } from 'zod';
import type {
  ActionActivity,
  ActionInput,
  ActionResult,
  ProbeActivity,
} from '../domain/activity-contract.js';
import { durationSchema, formatDuration } from '../domain/duration.js';
import type { Finding, FindingStatus } from '../domain/findings.js';
import { activityError, type ErrorKind, makeFinding, parseActivityArgs, withTimeout } from './common.js';

// Probes and the one action against the FTE platform's PostgreSQL (not our ledger database). Every call
// opens its own short-lived connection: a probe must see whether a NEW connection can be made (an
// exhausted pool is the failure being diagnosed), and nothing stays open between incidents.

export const platformDbConfigSchema = z.object({
  connectionString: z.string().min(1),
  /** Our sessions carry this application_name; killIdleConnections never terminates them. */
  applicationName: z.string().min(1).max(63).default('fte-incident-response'),
  connectTimeoutMs: z.number().int().positive().default(5000),
  queryTimeoutMs: z.number().int().positive().default(10_000),
});
export type PlatformDbConfig = z.input<typeof platformDbConfigSchema>;

export interface PostgresDependencies {
  /** The FTE platform's database. */
  platformDb: PlatformDbConfig;
  /** Our ledger database (migrations applied): killIdleConnections records its idempotency keys there. */
  ledgerPool: pg.Pool;
}

/** Utilisation of the connection limit at which postgresConnections reports degraded / down. */
export const CONNECTION_THRESHOLDS = { degradedAt: 0.8, downAt: 0.95 } as const;

// ---- errors ---------------------------------------------------------------------------------------------

export interface PostgresProblem {
  kind: ErrorKind;
  message: string;
}

const SQLSTATE_KINDS: Record<string, ErrorKind> = {
  '28P01': 'ForbiddenError',
  '28000': 'ForbiddenError',
  '42501': 'ForbiddenError',
  '3D000': 'NotFoundError',
  '42P01': 'NotFoundError',
  '42703': 'PreconditionFailedError',
  '42804': 'PreconditionFailedError',
  '42883': 'PreconditionFailedError',
  '53300': 'UnavailableError',
  '57P01': 'UnavailableError',
  '57P02': 'UnavailableError',
  '57P03': 'UnavailableError',
  '57014': 'TimeoutError',
  '55P03': 'TimeoutError',
};
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EPIPE',
]);

/** Classifies a pg / network error; the message is not yet redacted (callers pass known secrets on). */
export function describePostgresError(error: unknown): PostgresProblem {
  if (error instanceof ApplicationFailure && error.type) {
    return { kind: error.type as ErrorKind, message: error.message };
  }
  const e = error as { code?: unknown; message?: unknown; hint?: unknown };
  const code = typeof e.code === 'string' ? e.code : undefined;
  const text = typeof e.message === 'string' && e.message ? e.message : String(error);
  if (code === '53300') {
    return { kind: 'UnavailableError', message: `PostgreSQL refuses new connections (${text})` };
  }
  if (code && SQLSTATE_KINDS[code]) {
    const hint = typeof e.hint === 'string' ? ` (hint: ${e.hint})` : '';
    return { kind: SQLSTATE_KINDS[code], message: `${text}${hint} [SQLSTATE ${code}]` };
  }
  if (code?.startsWith('08')) return { kind: 'UnavailableError', message: `${text} [SQLSTATE ${code}]` };
  if (code === 'ETIMEDOUT' || /timeout/i.test(text)) return { kind: 'TimeoutError', message: text };
  if ((code && NETWORK_CODES.has(code)) || /connection terminated|connect /i.test(text)) {
    return { kind: 'UnavailableError', message: text };
  }
  return { kind: 'ServerError', message: text };
}

/** Secret values a connection string carries, for redact(): the password and the string itself. */
export function connectionSecrets(connectionString: string): string[] {
  const secrets = [connectionString];
  try {
    const url = new URL(connectionString);
    if (url.password) secrets.push(url.password, decodeURIComponent(url.password));
  } catch {
    const m = /\bpassword\s*=\s*('(?:[^'\\]|\\.)*'|\S+)/i.exec(connectionString);
    if (m?.[1]) secrets.push(m[1], m[1].replace(/^'|'$/g, ''));
  }
  if (process.env.PGPASSWORD) secrets.push(process.env.PGPASSWORD);
  return secrets;
}

/** "host:port/database" without credentials, to say where a problem is. */
export function describeTarget(connectionString: string): string {
  try {
    const url = new URL(connectionString);
    return `${url.hostname}:${url.port || '5432'}${url.pathname && url.pathname !== '/' ? url.pathname : ''}`;
  } catch {
    return 'the configured database';
  }
}

// ---- connections ----------------------------------------------------------------------------------------

type Config = z.output<typeof platformDbConfigSchema>;

/** Opens one connection, runs `work`, always closes; the whole call is bounded by the configured timeouts. */
async function withPlatformClient<T>(cfg: Config, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({
    connectionString: cfg.connectionString,
    application_name: cfg.applicationName,
    connectionTimeoutMillis: cfg.connectTimeoutMs,
    statement_timeout: cfg.queryTimeoutMs,
    query_timeout: cfg.queryTimeoutMs + 1000,
  });
  // A backend that dies under us surfaces as a query error; the event itself must not crash the worker.
  client.on('error', () => {});
  const bound = cfg.connectTimeoutMs + 2 * cfg.queryTimeoutMs + 2000;
  try {
    return await withTimeout(
      bound,
      `PostgreSQL at ${describeTarget(cfg.connectionString)}`,
      (async () => {
        await client.connect();
        return work(client);
      })(),
    );
  } finally {
    await Promise.race([client.end().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);
  }
}

const round = (n: number, digits = 1) => Math.round(n * 10 ** digits) / 10 ** digits;
const pct = (ratio: number) => `${Math.round(ratio * 100)} %`;

/** Replaces string literals and squeezes whitespace: query text may carry customer data or secrets. */
export function maskQueryText(query: string, max = 160): string {
  const masked = query
    .replace(/'(?:[^']|'')*'/g, "'…'")
    .replace(/\$([a-z_]*)\$[\s\S]*?\$\1\$/gi, '$$…$$')
    .replace(/\s+/g, ' ')
    .trim();
  return masked.length > max ? `${masked.slice(0, max - 1)}…` : masked;
}

// ---- row shapes -----------------------------------------------------------------------------------------

const serverFactsSchema = z.object({
  database: z.string(),
  own_pid: z.number(),
  max_connections: z.number(),
  superuser_reserved: z.number(),
  reserved: z.number(),
  database_limit: z.number(),
  sees_all: z.boolean(),
  role: z.string(),
  database_backends: z.number(),
  server_backends: z.number(),
});
type ServerFacts = z.infer<typeof serverFactsSchema>;

const SERVER_FACTS_SQL = `
  SELECT current_database() AS database,
         pg_backend_pid() AS own_pid,
         current_setting('max_connections')::int AS max_connections,
         current_setting('superuser_reserved_connections')::int AS superuser_reserved,
         COALESCE(NULLIF(current_setting('reserved_connections', true), ''), '0')::int AS reserved,
         (SELECT datconnlimit FROM pg_database WHERE datname = current_database()) AS database_limit,
         pg_has_role('pg_read_all_stats', 'MEMBER') AS sees_all,
         current_user::text AS role,
         -- Readable by every role, unlike other roles' rows in pg_stat_activity.
         (SELECT numbackends FROM pg_stat_database WHERE datname = current_database()) AS database_backends,
         (SELECT COALESCE(sum(numbackends), 0)::int FROM pg_stat_database) AS server_backends`;

async function serverFacts(client: pg.Client): Promise<ServerFacts> {
  const { rows } = await client.query(SERVER_FACTS_SQL);
  return serverFactsSchema.parse(rows[0]);
}

const sessionSchema = z.object({
  pid: z.number(),
  usename: z.string().nullable(),
  application_name: z.string().nullable(),
  state: z.string().nullable(),
  in_database: z.boolean().nullable(),
  state_seconds: z.number().nullable(),
  /** A superuser, replication or monitoring (pg_monitor) role: its sessions are never ended. */
  privileged: z.boolean().nullable(),
});
type Session = z.infer<typeof sessionSchema>;

const SESSIONS_SQL = `
  SELECT a.pid, a.usename::text, a.application_name, a.state,
         a.datname = current_database() AS in_database,
         EXTRACT(EPOCH FROM (now() - a.state_change))::float8 AS state_seconds,
         (r.rolsuper OR r.rolreplication OR pg_has_role(a.usesysid, 'pg_monitor', 'MEMBER')) AS privileged
    FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
   WHERE a.backend_type = 'client backend'`;

/**
 * Which idle sessions killIdleConnections may end: those of the named roles or applications only (never a
 * superuser's, a replication or a monitoring role's, nor ours), idle longer than olderThanSeconds, at most
 * `max` a run. The connections probe names them the same way before anything is ended (`endable`).
 */
const idleSelectionSchema = z
  .strictObject({
    olderThanSeconds: z.number().int().positive(),
    roles: z.array(z.string().min(1).max(63)).max(50).default([]),
    applications: z.array(z.string().min(1).max(64)).max(50).default([]),
    max: z.number().int().min(1).max(500).default(20),
  })
  .refine((a) => a.roles.length + a.applications.length > 0, {
    message: 'name the roles or applications (application_name) whose idle sessions may be ended',
    path: ['applications'],
  });
type IdleSelection = z.output<typeof idleSelectionSchema>;

/** The sessions a selection ends, oldest first, and how many more it would have ended without its cap. */
export function sessionsToEnd(
  sessions: Session[],
  sel: IdleSelection,
  own: { pid?: number; applicationName: string },
): { ending: Session[]; beyondCap: number } {
  const eligible = sessions
    .filter(
      (s) =>
        s.in_database === true &&
        s.state === 'idle' &&
        (s.state_seconds ?? 0) > sel.olderThanSeconds &&
        s.pid !== own.pid &&
        s.application_name !== own.applicationName &&
        s.privileged === false &&
        ((s.usename !== null && sel.roles.includes(s.usename)) ||
          (s.application_name !== null && sel.applications.includes(s.application_name))),
    )
    .sort((a, b) => (b.state_seconds ?? 0) - (a.state_seconds ?? 0));
  return { ending: eligible.slice(0, sel.max), beyondCap: Math.max(0, eligible.length - sel.max) };
}

const describeSession = (s: Session) =>
  `pid ${s.pid} user ${s.usename ?? '?'} application '${s.application_name ?? ''}' idle ${Math.round(s.state_seconds ?? 0)} s`;

const selectionText = (sel: IdleSelection) =>
  [
    sel.roles.length ? `roles ${sel.roles.join(', ')}` : '',
    sel.applications.length ? `applications ${sel.applications.join(', ')}` : '',
  ]
    .filter(Boolean)
    .join(' or ');

// ---- the probes -----------------------------------------------------------------------------------------

// Strict: an unknown key (a typo) is an error, not an argument silently left out.
const pingArgs = z.strictObject({ slowMs: z.number().int().positive().default(1000) });
const connectionsArgs = z
  .strictObject({
    idleOlderThanSeconds: z.number().int().min(0).default(300),
    degradedAt: z.number().gt(0).max(1).default(CONNECTION_THRESHOLDS.degradedAt),
    downAt: z.number().gt(0).max(1).default(CONNECTION_THRESHOLDS.downAt),
    /** The selection of the runbook's killIdleConnections step: the finding lists what it would end. */
    endable: idleSelectionSchema.optional(),
  })
  .refine((a) => a.downAt >= a.degradedAt, { message: 'downAt must not be below degradedAt' });
const longQueriesArgs = z.strictObject({
  thresholdSeconds: z.number().positive(),
  allDatabases: z.boolean().default(false),
});
const escalationArgs = z.strictObject({
  window: durationSchema,
  threshold: z.number().min(0).max(1),
  minSamples: z.number().int().positive().default(1),
  channel: z.string().min(1).optional(),
});
const killArgs = idleSelectionSchema;

/** Argument schemas of the probes and the action, by name: what they parse and what `runbook lint` checks. */
export const postgresProbeArgs = {
  postgresPing: pingArgs,
  postgresConnections: connectionsArgs,
  postgresLongQueries: longQueriesArgs,
  escalationRate: escalationArgs,
} as const;
export const postgresActionArgs = { killIdleConnections: killArgs } as const;

/** The most recent rows the escalation probe reads from one window. */
export const ESCALATION_ROW_LIMIT = 20_000;

const agentMetricRowSchema = z.object({
  id: z.union([z.string(), z.number()]),
  recorded_at: z.date(),
  channel: z.string().nullable(),
  escalated: z.boolean(),
  escalation_reason: z.string().nullable(),
  latency_ms: z.number().nullable(),
});

export function postgresActivities(deps: PostgresDependencies) {
  const cfg = platformDbConfigSchema.parse(deps.platformDb);
  const known = connectionSecrets(cfg.connectionString);
  const target = describeTarget(cfg.connectionString);
  const finding = (
    probe: string,
    status: FindingStatus,
    summary: string,
    metrics: Finding['metrics'] = {},
    evidence: string[] = [],
  ) => makeFinding(probe, status, summary, metrics, evidence, known);
  const problemOf = (error: unknown) => describePostgresError(error);

  const postgresPing: ProbeActivity = async (input) => {
    const args = parseActivityArgs(postgresProbeArgs.postgresPing, input.args, 'postgresPing');
    const measure = async () => {
      const started = performance.now();
      const answer = await withPlatformClient(cfg, async (client) => {
        const connectedMs = performance.now() - started;
        await client.query('SELECT 1');
        const { rows } = await client.query<{ v: string }>("SELECT current_setting('server_version') AS v");
        return { connectedMs, version: rows[0]?.v ?? '' };
      });
      return { ...answer, latencyMs: round(performance.now() - started) };
    };
    try {
      let m = await measure();
      let attempts = 1;
      if (m.latencyMs > args.slowMs) {
        // One slow answer may be the probing worker's own pause, not the database's: a diagnosis runs every
        // probe at once, a worker just restarted after a crash also runs the retried ones, a node is busy.
        // Slow means slow twice; the better answer counts.
        const again = await measure();
        attempts = 2;
        if (again.latencyMs < m.latencyMs) m = again;
      }
      const slow = m.latencyMs > args.slowMs;
      return finding(
        input.probeId,
        slow ? 'degraded' : 'ok',
        `PostgreSQL at ${target} answered SELECT 1 in ${Math.round(m.latencyMs)} ms${slow ? ` (slower than ${args.slowMs} ms, twice)` : ''}`,
        {
          latencyMs: m.latencyMs,
          connectMs: round(m.connectedMs),
          serverVersion: m.version,
          ...(attempts > 1 ? { attempts } : {}),
        },
      );
    } catch (error) {
      const p = problemOf(error);
      return finding(input.probeId, 'down', `cannot use PostgreSQL at ${target}: ${p.message}`, {
        error: p.kind,
      });
    }
  };

  const postgresConnections: ProbeActivity = async (input) => {
    const args = parseActivityArgs(postgresProbeArgs.postgresConnections, input.args, 'postgresConnections');
    let facts: ServerFacts;
    let sessions: Session[];
    try {
      [facts, sessions] = await withPlatformClient(cfg, async (client) => {
        const f = await serverFacts(client);
        const { rows } = await client.query(SESSIONS_SQL);
        return [f, z.array(sessionSchema).parse(rows)] as const;
      });
    } catch (error) {
      const p = problemOf(error);
      // Not being able to connect at all (refused, too many clients) is exactly the outage this probes. The
      // SQLSTATE tells a refusal for lack of a slot (53300: the pool exhausted) from an unreachable server.
      const sqlState = error instanceof pg.DatabaseError ? error.code : undefined;
      return finding(input.probeId, 'down', `cannot count connections on ${target}: ${p.message}`, {
        error: p.kind,
        ...(sqlState ? { sqlState } : {}),
      });
    }
    return connectionsFinding(input.probeId, args, facts, sessions, finding, cfg.applicationName);
  };

  const postgresLongQueries: ProbeActivity = async (input) => {
    const args = parseActivityArgs(postgresProbeArgs.postgresLongQueries, input.args, 'postgresLongQueries');
    try {
      return await withPlatformClient(cfg, async (client) => {
        const facts = await serverFacts(client);
        if (!facts.sees_all) {
          return finding(
            input.probeId,
            'unknown',
            `role "${facts.role}" cannot see other sessions' queries on ${target}: grant it pg_read_all_stats`,
          );
        }
        const { rows } = await client.query(
          `SELECT pid, usename::text, datname::text,
                  EXTRACT(EPOCH FROM (now() - query_start))::float8 AS seconds,
                  wait_event_type, wait_event, left(query, 4000) AS query
             FROM pg_stat_activity
            WHERE backend_type = 'client backend' AND state = 'active' AND pid <> pg_backend_pid()
              AND query_start < now() - make_interval(secs => $1)
              AND ($2 OR datname = current_database())
            ORDER BY query_start
            LIMIT 50`,
          [args.thresholdSeconds, args.allDatabases],
        );
        const queries = z
          .array(
            z.object({
              pid: z.number(),
              usename: z.string().nullable(),
              datname: z.string().nullable(),
              seconds: z.number(),
              wait_event_type: z.string().nullable(),
              wait_event: z.string().nullable(),
              query: z.string().nullable(),
            }),
          )
          .parse(rows);
        const where = args.allDatabases ? `on ${target} (all databases)` : `in ${facts.database}`;
        const longest = queries[0];
        const evidence = queries.map(
          (q) =>
            `pid ${q.pid} ${Math.round(q.seconds)} s user ${q.usename ?? '?'}${args.allDatabases ? ` db ${q.datname ?? '?'}` : ''}${q.wait_event ? ` waiting ${q.wait_event_type}/${q.wait_event}` : ''}: ${maskQueryText(q.query ?? '')}`,
        );
        const metrics = {
          longQueries: queries.length,
          longestSeconds: longest ? round(longest.seconds) : 0,
          thresholdSeconds: args.thresholdSeconds,
        };
        if (!longest) {
          return finding(
            input.probeId,
            'ok',
            `no query has run longer than ${args.thresholdSeconds} s ${where}`,
            metrics,
          );
        }
        return finding(
          input.probeId,
          'degraded',
          `${queries.length} ${queries.length === 1 ? 'query has' : 'queries have'} run longer than ${args.thresholdSeconds} s ${where} (longest ${Math.round(longest.seconds)} s, pid ${longest.pid})`,
          metrics,
          evidence,
        );
      });
    } catch (error) {
      const p = problemOf(error);
      return finding(
        input.probeId,
        'unknown',
        `cannot read long-running queries on ${target}: ${p.message}`,
        {
          error: p.kind,
        },
      );
    }
  };

  const escalationRate: ProbeActivity = async (input) => {
    const args = parseActivityArgs(postgresProbeArgs.escalationRate, input.args, 'escalationRate');
    let rows: unknown[];
    try {
      rows = await withPlatformClient(cfg, async (client) => {
        const result = await client.query(
          `SELECT id, recorded_at, channel, escalated, escalation_reason, latency_ms
             FROM agent_metrics
            WHERE recorded_at >= now() - make_interval(secs => $1)
              AND ($3::text IS NULL OR channel = $3)
            ORDER BY recorded_at DESC
            LIMIT $2`,
          [args.window / 1000, ESCALATION_ROW_LIMIT, args.channel ?? null],
        );
        return result.rows as unknown[];
      });
    } catch (error) {
      const p = problemOf(error);
      const code = (error as { code?: unknown }).code;
      const why =
        code === '42P01'
          ? `the platform table agent_metrics does not exist in ${target}`
          : p.kind === 'PreconditionFailedError'
            ? `agent_metrics in ${target} does not have the expected columns (see docs/platform-data.md): ${p.message}`
            : `cannot read agent_metrics from ${target}: ${p.message}`;
      return finding(input.probeId, 'unknown', why, { error: p.kind });
    }
    return escalationFinding(input.probeId, args, rows, finding);
  };

  const killIdleConnections: ActionActivity = async (input) => {
    const args = parseActivityArgs(postgresActionArgs.killIdleConnections, input.args, 'killIdleConnections');
    return once(deps.ledgerPool, 'killIdleConnections', input, known, async () => {
      try {
        return await terminateIdle(cfg, args, target);
      } catch (error) {
        if (error instanceof ApplicationFailure) throw error;
        const p = problemOf(error);
        throw activityError(p.kind, `killIdleConnections on ${target}: ${p.message}`, known);
      }
    });
  };

  return { postgresPing, postgresConnections, postgresLongQueries, escalationRate, killIdleConnections };
}

type FindingMaker = (
  probe: string,
  status: FindingStatus,
  summary: string,
  metrics?: Finding['metrics'],
  evidence?: string[],
) => Finding;

function connectionsFinding(
  probe: string,
  args: z.output<typeof connectionsArgs>,
  facts: ServerFacts,
  sessions: Session[],
  finding: FindingMaker,
  ownApplication: string,
): Finding {
  const usable = Math.max(1, facts.max_connections - facts.superuser_reserved - facts.reserved);
  const inDb = sessions.filter((s) => s.in_database);
  // Without pg_read_all_stats other roles' sessions show no database or state: count them from
  // pg_stat_database instead.
  const serverCount = facts.sees_all ? sessions.length : facts.server_backends;
  const dbCount = facts.sees_all ? inDb.length : facts.database_backends;
  const serverRatio = serverCount / usable;
  const dbRatio =
    facts.database_limit >= 0 ? dbCount / Math.max(1, facts.database_limit) : Number.NEGATIVE_INFINITY;
  const ratio = Math.max(serverRatio, dbRatio);
  const status: FindingStatus = ratio >= args.downAt ? 'down' : ratio >= args.degradedAt ? 'degraded' : 'ok';

  // Our own probing session counts against the limits above but not as platform activity below.
  const others = inDb.filter((s) => s.pid !== facts.own_pid);
  const count = (state: string) => others.filter((s) => s.state === state).length;
  const hidden = facts.sees_all
    ? others.filter((s) => s.state === null).length
    : Math.max(0, dbCount - 1 - others.length);
  const idle = others
    .filter((s) => s.state === 'idle')
    .sort((a, b) => (b.state_seconds ?? 0) - (a.state_seconds ?? 0));
  const oldIdle = idle.filter((s) => (s.state_seconds ?? 0) > args.idleOlderThanSeconds);

  const limitText =
    dbRatio >= serverRatio
      ? `database ${facts.database} has ${dbCount} of its ${facts.database_limit} allowed connections (${pct(dbRatio)})`
      : `${serverCount} of ${usable} usable connections are in use (${pct(serverRatio)})`;
  // The server answers: what is wrong is the room left for the platform's pool, and the summary says so.
  const verdict =
    status === 'down' ? 'pool exhausted: ' : status === 'degraded' ? 'pool nearly exhausted: ' : '';
  const states = [
    `${idle.length} idle (${oldIdle.length} longer than ${args.idleOlderThanSeconds} s)`,
    `${count('active')} active`,
    `${count('idle in transaction')} idle in transaction`,
  ];
  if (hidden > 0) {
    states.push(
      `${hidden} of other roles hidden: grant "${facts.role}" pg_read_all_stats to see their state`,
    );
  }
  // What the runbook's killIdleConnections would end, said before it runs (and before anyone approves it).
  const endable = args.endable
    ? sessionsToEnd(others, args.endable, { pid: facts.own_pid, applicationName: ownApplication })
    : undefined;
  const endableText =
    endable && args.endable
      ? `; killIdleConnections would end ${endable.ending.length} idle session(s) of ${selectionText(args.endable)}${endable.beyondCap ? ` (${endable.beyondCap} more beyond its cap of ${args.endable.max})` : ''}`
      : '';
  return finding(
    probe,
    status,
    `${verdict}${limitText}; in ${facts.database}: ${states.join(', ')}${endableText}`,
    {
      connections: serverCount,
      maxConnections: facts.max_connections,
      usableConnections: usable,
      utilisationPct: round(ratio * 100),
      databaseConnections: dbCount,
      databaseLimit: facts.database_limit,
      idle: idle.length,
      active: count('active'),
      idleInTransaction: count('idle in transaction'),
      idleOlderThan: oldIdle.length,
      idleOlderThanSeconds: args.idleOlderThanSeconds,
      oldestIdleSeconds: Math.round(idle[0]?.state_seconds ?? 0),
      hiddenSessions: hidden,
      ...(endable ? { endable: endable.ending.length } : {}),
    },
    [
      ...(endable?.ending ?? []).slice(0, 10).map((s) => `would end: ${describeSession(s)}`),
      ...oldIdle
        .filter((s) => !endable?.ending.includes(s))
        .slice(0, 10)
        .map((s) => `${endable ? 'left alone: ' : ''}${describeSession(s)}`),
    ],
  );
}

function escalationFinding(
  probe: string,
  args: z.output<typeof escalationArgs>,
  rows: unknown[],
  finding: FindingMaker,
): Finding {
  const valid: z.infer<typeof agentMetricRowSchema>[] = [];
  const problems: string[] = [];
  for (const row of rows) {
    const parsed = agentMetricRowSchema.safeParse(row);
    if (parsed.success) valid.push(parsed.data);
    else {
      const id = (row as { id?: unknown }).id;
      const issues = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      problems.push(`row id ${String(id)}: ${issues}`);
    }
  }
  const windowText = `the last ${formatDuration(args.window)}`;
  const scope = args.channel ? ` on channel ${args.channel}` : '';
  const malformed = problems.length;
  const malformedText = malformed > 0 ? `; ${malformed} malformed rows ignored` : '';
  const base = { samples: valid.length, malformedRows: malformed, windowSeconds: args.window / 1000 };

  if (valid.length < args.minSamples) {
    const why =
      malformed > 0 && valid.length === 0
        ? `all ${malformed} agent_metrics rows in ${windowText}${scope} are malformed (expected the columns in docs/platform-data.md)`
        : `only ${valid.length} agent_metrics rows in ${windowText}${scope}; at least ${args.minSamples} are needed to judge the escalation rate${malformedText}`;
    return finding(probe, 'unknown', why, base, problems.slice(0, 5));
  }

  const escalated = valid.filter((r) => r.escalated);
  const rate = escalated.length / valid.length;
  const downAt = Math.min(1, args.threshold * 2);
  const status: FindingStatus =
    downAt > args.threshold && rate >= downAt ? 'down' : rate > args.threshold ? 'degraded' : 'ok';

  const reasons = new Map<string, number>();
  for (const r of escalated) {
    const reason = r.escalation_reason?.trim() || '(no reason given)';
    reasons.set(reason, (reasons.get(reason) ?? 0) + 1);
  }
  const top = [...reasons.entries()].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  const latencies = valid
    .map((r) => r.latency_ms)
    .filter((v): v is number => v !== null)
    .sort((a, b) => a - b);
  const p90 = latencies.length
    ? latencies[Math.min(latencies.length - 1, Math.ceil(latencies.length * 0.9) - 1)]
    : undefined;
  const truncated = rows.length >= ESCALATION_ROW_LIMIT ? ` (newest ${ESCALATION_ROW_LIMIT} rows)` : '';
  const topText = top.length
    ? `; top reasons: ${top
        .slice(0, 3)
        .map(([reason, n]) => `${reason} (${n})`)
        .join(', ')}`
    : '';

  return finding(
    probe,
    status,
    `${pct(rate)} of ${valid.length} conversations escalated in ${windowText}${scope}${truncated} (threshold ${pct(args.threshold)})${topText}${malformedText}`,
    {
      ...base,
      escalated: escalated.length,
      rate: round(rate, 4),
      ratePct: round(rate * 100),
      threshold: args.threshold,
      ...(top[0] ? { topReason: top[0][0] } : {}),
      ...(p90 !== undefined ? { p90LatencyMs: p90 } : {}),
    },
    [
      ...top
        .slice(0, 10)
        .map(([reason, n]) => `reason ${reason}: ${n} (${pct(n / escalated.length)} of escalations)`),
      ...problems.slice(0, 3),
    ],
  );
}

// ---- the action -----------------------------------------------------------------------------------------

async function terminateIdle(cfg: Config, sel: IdleSelection, target: string): Promise<ActionResult> {
  return withPlatformClient(cfg, async (client) => {
    const { rows } = await client.query(
      `SELECT rolsuper AS superuser,
              pg_has_role('pg_read_all_stats', 'MEMBER') AS sees_all,
              pg_has_role('pg_signal_backend', 'MEMBER') AS may_signal,
              current_user::text AS role, current_database() AS database,
              pg_backend_pid() AS own_pid
         FROM pg_roles WHERE rolname = current_user`,
    );
    const role = z
      .object({
        superuser: z.boolean(),
        sees_all: z.boolean(),
        may_signal: z.boolean(),
        role: z.string(),
        database: z.string(),
        own_pid: z.number(),
      })
      .parse(rows[0]);
    if (!role.superuser && (!role.sees_all || !role.may_signal)) {
      const missing = [!role.sees_all && 'pg_read_all_stats', !role.may_signal && 'pg_signal_backend'].filter(
        Boolean,
      );
      throw activityError(
        'ForbiddenError',
        `role "${role.role}" may not find or terminate other sessions on ${target}: grant it ${missing.join(' and ')}`,
      );
    }
    const sessions = z.array(sessionSchema).parse((await client.query(SESSIONS_SQL)).rows);
    const { ending, beyondCap } = sessionsToEnd(sessions, sel, {
      pid: role.own_pid,
      applicationName: cfg.applicationName,
    });
    // The state is checked again in the statement that terminates, so a session that turned active since
    // it was listed is left alone.
    const terminated: number[] = [];
    const refused: number[] = [];
    for (const { pid } of ending) {
      try {
        const r = await client.query<{ ok: boolean | null }>(
          `SELECT pg_terminate_backend(pid, 5000) AS ok FROM pg_stat_activity
            WHERE pid = $1 AND state = 'idle' AND state_change < now() - make_interval(secs => $2)`,
          [pid, sel.olderThanSeconds],
        );
        if (r.rows[0]?.ok) terminated.push(pid);
      } catch (error) {
        if ((error as { code?: unknown }).code !== '42501') throw error;
        refused.push(pid);
      }
    }
    if (terminated.length === 0 && refused.length > 0) {
      throw activityError(
        'ForbiddenError',
        `role "${role.role}" may not terminate the ${refused.length} idle sessions on ${target} (pids ${refused.join(', ')}): they belong to a role it may not signal`,
      );
    }
    const of = `of ${selectionText(sel)} older than ${sel.olderThanSeconds} s in ${role.database}`;
    const refusedText = refused.length ? `; ${refused.length} refused (pids ${refused.join(', ')})` : '';
    const capText = beyondCap ? `; ${beyondCap} more left for the next run (cap ${sel.max})` : '';
    return {
      changed: terminated.length > 0,
      summary:
        terminated.length > 0
          ? `terminated ${terminated.length} idle connections ${of} (pids ${terminated.join(', ')})${refusedText}${capText}`
          : `no idle connection ${of}${refusedText}`,
    };
  });
}

/**
 * Runs an action at most once per idempotency key, using our ledger database's action_runs table. The key's
 * row is locked for the duration, so a concurrent duplicate waits and then finds the result; a run that
 * crashed before committing left no row, so its retry acts again.
 */
async function once(
  ledger: pg.Pool,
  action: string,
  input: ActionInput,
  known: readonly string[],
  act: () => Promise<ActionResult>,
): Promise<ActionResult> {
  const inLedger = async <T>(work: () => Promise<T>): Promise<T> => {
    try {
      return await work();
    } catch (error) {
      if (error instanceof ApplicationFailure) throw error;
      const p = describePostgresError(error);
      throw activityError(p.kind, `${action}: ledger database: ${p.message}`, known);
    }
  };
  const client = await inLedger(() => ledger.connect());
  try {
    const done = await inLedger(async () => {
      await client.query('BEGIN');
      await client.query(
        `INSERT INTO action_runs (idempotency_key, action, incident_id, step_id) VALUES ($1, $2, $3, $4)
         ON CONFLICT (idempotency_key) DO NOTHING`,
        [input.idempotencyKey, action, input.incidentId, input.stepId],
      );
      const { rows } = await client.query<{
        action: string;
        changed: boolean | null;
        summary: string | null;
      }>('SELECT action, changed, summary FROM action_runs WHERE idempotency_key = $1 FOR UPDATE', [
        input.idempotencyKey,
      ]);
      return rows[0];
    });
    if (done && done.action !== action) {
      throw activityError(
        'BadRequestError',
        `${action}: idempotency key "${input.idempotencyKey}" was already used by ${done.action}`,
      );
    }
    if (done && done.changed !== null && done.summary !== null) {
      await inLedger(() => client.query('COMMIT'));
      return { changed: done.changed, summary: `already done under this key: ${done.summary}` };
    }
    const result = await act();
    await inLedger(async () => {
      await client.query(
        'UPDATE action_runs SET finished_at = now(), changed = $2, summary = $3 WHERE idempotency_key = $1',
        [input.idempotencyKey, result.changed, result.summary],
      );
      await client.query('COMMIT');
    });
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}
