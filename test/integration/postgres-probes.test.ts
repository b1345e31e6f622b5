import { connect, createServer, type Server, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import type { Finding } from '../../src/domain/findings.js';
import { postgresActivities, type PlatformDbConfig } from '../../src/activities/postgres.js';
import {
  createAgentMetricsTable,
  holdConnections,
  insertAgentMetrics,
  type HeldConnections,
} from '../../src/sandbox/platform-data.js';
import { createTestDatabase, services, uniqueName } from '../helpers/services.js';

// The probes against a real PostgreSQL: a private database per file, roles created and dropped here.

let platform: { url: string; drop: () => Promise<void> };
let admin: pg.Pool;
let ledgerPool: pg.Pool;
const roles: string[] = [];
const held: HeldConnections[] = [];

beforeAll(async () => {
  platform = await createTestDatabase();
  // Idle clients are kept, so the connection counts below stay put.
  admin = new pg.Pool({ connectionString: platform.url, max: 2, idleTimeoutMillis: 0 });
  // Probes never touch the ledger; the action's idempotency table is tested in postgres-idle-connections.
  ledgerPool = new pg.Pool({ connectionString: platform.url, max: 1 });
});
afterAll(async () => {
  await Promise.all(held.map((h) => h.release()));
  await ledgerPool?.end();
  await admin?.end();
  await platform?.drop();
  const su = new pg.Client({ connectionString: services().postgresUrl });
  await su.connect();
  for (const role of roles) await su.query(`DROP ROLE IF EXISTS ${role}`);
  await su.end();
});

const probes = (platformDb: PlatformDbConfig) => postgresActivities({ platformDb, ledgerPool });
const probeInput = (args: Record<string, unknown> = {}, probeId = 'postgres'): ProbeInput => ({
  incidentId: 'database-connection-failures/test',
  scope: 'test',
  probeId,
  args,
});
const hold = async (options: Omit<Parameters<typeof holdConnections>[0], 'connectionString'>) => {
  const h = await holdConnections({ connectionString: platform.url, ...options });
  held.push(h);
  return h;
};

/** A login role without extra rights, and a connection string for it to this file's database. */
async function createPlainRole(): Promise<{ name: string; url: string }> {
  const name = uniqueName('probe_role').replace('-', '_');
  const password = randomBytes(12).toString('hex');
  await admin.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
  roles.push(name);
  const url = new URL(platform.url);
  url.username = name;
  url.password = password;
  return { name, url: url.toString() };
}

function urlWithPassword(base: string, password: string, changes: { port?: string; path?: string } = {}) {
  const url = new URL(base);
  url.password = password;
  if (changes.port) url.port = changes.port;
  if (changes.path) url.pathname = changes.path;
  return url.toString();
}

async function closedPort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return String(port);
}

/**
 * A forwarder to the platform database that holds the n-th connection for `delays[n]` ms before connecting it
 * (0 past the list): one slow answer, or two, on demand.
 */
async function slowForwarder(delays: number[]): Promise<{ url: string; close: () => Promise<void> }> {
  const target = new URL(platform.url);
  const sockets: Socket[] = [];
  let n = 0;
  const server: Server = createServer((client) => {
    const delay = delays[n++] ?? 0;
    client.pause();
    sockets.push(client);
    setTimeout(() => {
      const upstream = connect(Number(target.port), target.hostname, () => {
        client.pipe(upstream).pipe(client);
        client.resume();
      });
      sockets.push(upstream);
      upstream.on('error', () => client.destroy());
      client.on('error', () => upstream.destroy());
    }, delay);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(platform.url);
  url.port = String((server.address() as { port: number }).port);
  return {
    url: url.toString(),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

/** A TCP server that accepts connections and never answers, like a hung database. */
async function blackHole(): Promise<{ port: string; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server: Server = createServer((socket) => sockets.push(socket));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    port: String(port),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

const expectNoSecret = (finding: Finding, secret: string) =>
  expect(JSON.stringify(finding)).not.toContain(secret);

describe('postgresPing', () => {
  it('answers ok with the latency of SELECT 1', async () => {
    const finding = await probes({ connectionString: platform.url }).postgresPing(probeInput());
    expect(finding.status).toBe('ok');
    expect(finding.summary).toMatch(/answered SELECT 1 in \d+ ms/);
    expect(finding.metrics.latencyMs).toBeGreaterThan(0);
    expect(finding.metrics.serverVersion).toMatch(/^\d+\.\d+/);
  });

  it('measures a slow answer again and stays ok when the second is fast', async () => {
    const slow = await slowForwarder([600]);
    try {
      const finding = await probes({ connectionString: slow.url }).postgresPing(probeInput({ slowMs: 300 }));
      expect(finding.status).toBe('ok');
      expect(finding.metrics.attempts).toBe(2);
      expect(finding.metrics.latencyMs).toBeLessThan(300);
    } finally {
      await slow.close();
    }
  });

  it('is degraded when it answers slowly twice', async () => {
    const slow = await slowForwarder([600, 600]);
    try {
      const finding = await probes({ connectionString: slow.url }).postgresPing(probeInput({ slowMs: 300 }));
      expect(finding.status).toBe('degraded');
      expect(finding.summary).toMatch(/slower than 300 ms, twice/);
      expect(finding.metrics.attempts).toBe(2);
      expect(finding.metrics.latencyMs).toBeGreaterThan(300);
    } finally {
      await slow.close();
    }
  });

  it('is down with a clear message and no password when nothing listens on the port', async () => {
    const secret = 'Planted-Pw-7c1e2f9a';
    const port = await closedPort();
    const connectionString = urlWithPassword(platform.url, secret, { port });
    const finding = await probes({ connectionString }).postgresPing(probeInput());
    expect(finding.status).toBe('down');
    expect(finding.summary).toContain(`127.0.0.1:${port}`);
    expect(finding.summary).toMatch(/ECONNREFUSED/);
    expect(finding.metrics.error).toBe('UnavailableError');
    expectNoSecret(finding, secret);
  });

  it('is down after the connect timeout when the server never answers', async () => {
    const hole = await blackHole();
    try {
      const secret = 'Planted-Pw-0b5d8e21';
      const connectionString = urlWithPassword(platform.url, secret, { port: hole.port });
      const finding = await probes({ connectionString, connectTimeoutMs: 300 }).postgresPing(probeInput());
      expect(finding.status).toBe('down');
      expect(finding.summary).toMatch(/timeout/i);
      expect(finding.metrics.error).toBe('TimeoutError');
      expectNoSecret(finding, secret);
    } finally {
      await hole.close();
    }
  });

  it('is down, naming the failed authentication but not the password, when the password is wrong', async () => {
    const secret = 'Wrong-Pw-4d2a9c0e';
    const finding = await probes({ connectionString: urlWithPassword(platform.url, secret) }).postgresPing(
      probeInput(),
    );
    expect(finding.status).toBe('down');
    expect(finding.summary).toMatch(/password authentication failed/);
    expect(finding.metrics.error).toBe('ForbiddenError');
    expectNoSecret(finding, secret);
  });

  it('is down when the database does not exist', async () => {
    const url = new URL(platform.url);
    url.pathname = '/no_such_platform_db';
    const finding = await probes({ connectionString: url.toString() }).postgresPing(probeInput());
    expect(finding.status).toBe('down');
    expect(finding.summary).toMatch(/database "no_such_platform_db" does not exist/);
    expect(finding.metrics.error).toBe('NotFoundError');
  });
});

describe('postgresConnections', () => {
  it('counts idle and active connections against the database limit and turns degraded, then down', async () => {
    const dbName = new URL(platform.url).pathname.slice(1);
    await admin.query(`ALTER DATABASE ${dbName} CONNECTION LIMIT 10`);
    // The test's superuser connections are not held to the limit, so they can go over it.
    const connections = () =>
      probes({ connectionString: platform.url }).postgresConnections(
        probeInput({ idleOlderThanSeconds: 3600 }, 'connections'),
      );
    const baseline = (await connections()).metrics.databaseConnections as number;

    await hold({ idle: 3, active: 2 });
    let f = await connections();
    expect(f.metrics.databaseConnections).toBe(baseline + 5);
    expect(f.metrics.idle).toBeGreaterThanOrEqual(3);
    expect(f.metrics.active).toBe(2);
    expect(f.metrics.idleOlderThan).toBe(0);
    expect(f.metrics.databaseLimit).toBe(10);

    const toEight = 8 - (f.metrics.databaseConnections as number) + 1;
    await hold({ idle: toEight });
    f = await connections();
    expect(f.metrics.databaseConnections).toBe(9);
    expect(f.status).toBe('degraded');
    expect(f.summary).toMatch(/has 9 of its 10 allowed connections \(90 %\)/);

    await hold({ idle: 2 });
    f = await connections();
    expect(f.status).toBe('down');
    expect(f.metrics.utilisationPct).toBe(110);
    await Promise.all(held.splice(0).map((h) => h.release()));
    await admin.query(`ALTER DATABASE ${dbName} CONNECTION LIMIT -1`);
  });

  it('lists the idle connections older than the threshold as evidence', async () => {
    const h = await hold({ idle: 2, applicationName: 'fte-api-old' });
    const { waitUntilIdleFor } = await import('../../src/sandbox/platform-data.js');
    await waitUntilIdleFor(platform.url, h.idlePids, 1);
    const f = await probes({ connectionString: platform.url }).postgresConnections(
      probeInput({ idleOlderThanSeconds: 1 }, 'connections'),
    );
    expect(f.metrics.idleOlderThan).toBeGreaterThanOrEqual(2);
    for (const pid of h.idlePids) {
      expect(
        f.evidence.some((line) => line.startsWith(`pid ${pid} `) && line.includes("'fte-api-old'")),
      ).toBe(true);
    }
    await h.release();
  });

  it('is down with a clear message when PostgreSQL refuses new connections', async () => {
    const role = await createPlainRole();
    await admin.query(`ALTER ROLE ${role.name} CONNECTION LIMIT 0`);
    const f = await probes({ connectionString: role.url }).postgresConnections(probeInput({}, 'connections'));
    expect(f.status).toBe('down');
    expect(f.summary).toMatch(/refuses new connections \(too many connections for role/);
    // The SQLSTATE tells "no slot left" (the health monitor's pool exhausted) from an unreachable server.
    expect(f.metrics.sqlState).toBe('53300');
    expectNoSecret(f, new URL(role.url).password);
  });

  it('is down without a SQLSTATE when nothing listens on the port', async () => {
    const connectionString = urlWithPassword(platform.url, 'Planted-Pw-5a0c', { port: await closedPort() });
    const f = await probes({ connectionString }).postgresConnections(probeInput({}, 'connections'));
    expect(f.status).toBe('down');
    expect(f.metrics).toEqual({ error: 'UnavailableError' });
  });

  it("says which grant is missing when the role cannot see other sessions' state", async () => {
    const role = await createPlainRole();
    const h = await hold({ idle: 2 });
    const f = await probes({ connectionString: role.url }).postgresConnections(probeInput({}, 'connections'));
    expect(f.metrics.hiddenSessions).toBeGreaterThanOrEqual(2);
    // Counted all the same (from pg_stat_database): the two held, the probe's own.
    expect(f.metrics.databaseConnections).toBeGreaterThanOrEqual(3);
    expect(f.summary).toContain(`grant "${role.name}" pg_read_all_stats`);
    await h.release();
  });

  it('rejects bad arguments without retrying', async () => {
    const error = await probes({ connectionString: platform.url })
      .postgresConnections(probeInput({ idleOlderThanSeconds: 'five minutes' }, 'connections'))
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'BadRequestError', nonRetryable: true });
    expect((error as Error).message).toMatch(/idleOlderThanSeconds/);
  });
});

describe('postgresLongQueries', () => {
  it('is ok when nothing runs longer than the threshold', async () => {
    const f = await probes({ connectionString: platform.url }).postgresLongQueries(
      probeInput({ thresholdSeconds: 3600 }, 'long-queries'),
    );
    expect(f.status).toBe('ok');
    expect(f.metrics.longQueries).toBe(0);
  });

  it('lists long-running queries with pid and duration, their literals masked', async () => {
    const h = await hold({ active: 1, activeSeconds: 60 });
    const leaky = new pg.Client({ connectionString: platform.url });
    leaky.on('error', () => {});
    await leaky.connect();
    const { rows } = await leaky.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const leakyPid = rows[0]!.pid;
    leaky
      .query("SELECT pg_sleep(60), 'password=hunter2-planted' AS note, '4111 1111 1111 1111' AS card")
      .catch(() => {});
    try {
      const probe = probes({ connectionString: platform.url }).postgresLongQueries;
      let f = await probe(probeInput({ thresholdSeconds: 1 }, 'long-queries'));
      for (let tries = 0; (f.metrics.longQueries as number) < 2 && tries < 100; tries++) {
        await new Promise((r) => setTimeout(r, 200));
        f = await probe(probeInput({ thresholdSeconds: 1 }, 'long-queries'));
      }
      expect(f.status).toBe('degraded');
      expect(f.metrics.longQueries).toBe(2);
      expect(f.summary).toMatch(/2 queries have run longer than 1 s in test_/);
      const line = f.evidence.find((l) => l.startsWith(`pid ${leakyPid} `));
      expect(line).toMatch(/^pid \d+ \d+ s user fte.*: SELECT pg_sleep\(60\), '…' AS note, '…' AS card$/);
      expect(JSON.stringify(f)).not.toContain('hunter2');
      expect(JSON.stringify(f)).not.toContain('4111');
      expect(f.evidence.some((l) => l.startsWith(`pid ${h.activePids[0]} `))).toBe(true);
    } finally {
      await admin.query('SELECT pg_terminate_backend($1)', [leakyPid]);
      await leaky.end().catch(() => {});
      await h.release();
    }
  });

  it('is unknown, naming the missing grant, for a role that cannot see other sessions', async () => {
    const role = await createPlainRole();
    const f = await probes({ connectionString: role.url }).postgresLongQueries(
      probeInput({ thresholdSeconds: 30 }, 'long-queries'),
    );
    expect(f.status).toBe('unknown');
    expect(f.summary).toContain(`role "${role.name}" cannot see other sessions' queries`);
    expect(f.summary).toContain('pg_read_all_stats');
  });

  it('is unknown (not a false ok) when the database cannot be reached', async () => {
    const secret = 'Planted-Pw-11aa22bb';
    const connectionString = urlWithPassword(platform.url, secret, { port: await closedPort() });
    const f = await probes({ connectionString }).postgresLongQueries(probeInput({ thresholdSeconds: 30 }));
    expect(f.status).toBe('unknown');
    expect(f.summary).toMatch(/cannot read long-running queries .*ECONNREFUSED/);
    expectNoSecret(f, secret);
  });
});

describe('escalationRate', () => {
  const rate = (args: Record<string, unknown>, url = platform.url) =>
    probes({ connectionString: url }).escalationRate(probeInput(args, 'escalation-rate'));

  beforeAll(async () => {
    await createAgentMetricsTable(admin);
  });

  it('is degraded over the threshold and names the top reasons', async () => {
    await insertAgentMetrics(admin, {
      rows: 100,
      escalationRate: 0.4,
      reasons: { 'billing dispute': 3, 'angry customer': 1 },
      channels: ['whatsapp-degraded'],
      latencyMs: { min: 1000, max: 1000 },
    });
    const f = await rate({ window: '10m', threshold: 0.3, channel: 'whatsapp-degraded' });
    expect(f.status).toBe('degraded');
    expect(f.metrics).toMatchObject({
      samples: 100,
      escalated: 40,
      rate: 0.4,
      ratePct: 40,
      topReason: 'billing dispute',
      p90LatencyMs: 1000,
      malformedRows: 0,
    });
    expect(f.summary).toMatch(
      /^40 % of 100 conversations escalated in the last 10m on channel whatsapp-degraded/,
    );
    expect(f.evidence).toContain('reason billing dispute: 30 (75 % of escalations)');
    expect(f.evidence).toContain('reason angry customer: 10 (25 % of escalations)');
  });

  it('is ok under the threshold and down at twice the threshold', async () => {
    await insertAgentMetrics(admin, { rows: 50, escalationRate: 0.1, channels: ['email-ok'] });
    await insertAgentMetrics(admin, { rows: 50, escalationRate: 0.7, channels: ['web-down'] });
    expect((await rate({ window: '10m', threshold: 0.3, channel: 'email-ok' })).status).toBe('ok');
    const down = await rate({ window: '10m', threshold: 0.3, channel: 'web-down' });
    expect(down.status).toBe('down');
    expect(down.metrics.escalated).toBe(35);
  });

  it('counts only rows inside the window', async () => {
    await insertAgentMetrics(admin, {
      rows: 20,
      escalationRate: 1,
      channels: ['old-rows'],
      endsAt: new Date(Date.now() - 3_600_000),
    });
    const f = await rate({ window: '10m', threshold: 0.3, channel: 'old-rows' });
    expect(f.status).toBe('unknown');
    expect(f.summary).toMatch(/only 0 agent_metrics rows in the last 10m/);
    expect((await rate({ window: '2h', threshold: 0.3, channel: 'old-rows' })).status).toBe('down');
  });

  it('is unknown with a clear message when the table is missing, malformed or not readable', async () => {
    const other = await createTestDatabase();
    const db = new pg.Client({ connectionString: other.url });
    await db.connect();
    try {
      let f = await rate({ window: '10m', threshold: 0.3 }, other.url);
      expect(f.status).toBe('unknown');
      expect(f.summary).toMatch(/the platform table agent_metrics does not exist in 127\.0\.0\.1:\d+\/test_/);

      // The escalated flag stored as text, latency as text: every row fails validation.
      await db.query(`CREATE TABLE agent_metrics (id serial, recorded_at timestamptz DEFAULT now(), channel text,
        conversation_id text, escalated text, escalation_reason text, latency_ms text)`);
      await db.query(`INSERT INTO agent_metrics (channel, escalated, escalation_reason, latency_ms)
        VALUES ('email', 'yes', 'refund', 'slow'), ('email', 'no', NULL, '12')`);
      f = await rate({ window: '10m', threshold: 0.3 }, other.url);
      expect(f.status).toBe('unknown');
      expect(f.summary).toMatch(/all 2 agent_metrics rows in the last 10m are malformed/);
      expect(f.evidence[0]).toMatch(/^row id \d: escalated: .*expected boolean.*latency_ms: /);
      expect(f.metrics.malformedRows).toBe(2);

      // Some rows without the flag: judged on the valid rows, the others reported.
      await db.query('DROP TABLE agent_metrics');
      await db.query(`CREATE TABLE agent_metrics (id serial, recorded_at timestamptz DEFAULT now(), channel text,
        conversation_id text, escalated boolean, escalation_reason text, latency_ms int)`);
      await db.query(`INSERT INTO agent_metrics (channel, escalated, escalation_reason)
        SELECT 'email', i <= 5, CASE WHEN i <= 5 THEN 'refund' END FROM generate_series(1, 10) i`);
      await db.query(
        `INSERT INTO agent_metrics (channel, escalated) VALUES ('email', NULL), ('email', NULL)`,
      );
      f = await rate({ window: '10m', threshold: 0.3 }, other.url);
      expect(f.status).toBe('degraded');
      expect(f.metrics).toMatchObject({ samples: 10, escalated: 5, malformedRows: 2 });
      expect(f.summary).toMatch(/2 malformed rows ignored/);

      // A role that may connect but not read the table.
      const role = await createPlainRole();
      const roleUrl = new URL(role.url);
      roleUrl.pathname = new URL(other.url).pathname;
      f = await rate({ window: '10m', threshold: 0.3 }, roleUrl.toString());
      expect(f.status).toBe('unknown');
      expect(f.summary).toMatch(/permission denied for table agent_metrics/);
      expect(f.metrics.error).toBe('ForbiddenError');
      expectNoSecret(f, roleUrl.password);

      // A column missing altogether.
      await db.query('ALTER TABLE agent_metrics DROP COLUMN escalation_reason');
      f = await rate({ window: '10m', threshold: 0.3 }, other.url);
      expect(f.status).toBe('unknown');
      expect(f.summary).toMatch(
        /does not have the expected columns .*column "escalation_reason" does not exist/,
      );
    } finally {
      await db.end();
      await other.drop();
    }
  });

  it('rejects a window that is not a duration', async () => {
    const error = await rate({ window: '10 minutes', threshold: 0.3 }).catch((e: unknown) => e);
    expect(error).toMatchObject({ type: 'BadRequestError', nonRetryable: true });
    expect((error as Error).message).toMatch(/window: "10 minutes" is not a duration/);
  });
});
