import { randomBytes } from 'node:crypto';
import { createServer } from 'node:net';
import { ApplicationFailure } from '@temporalio/common';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ActionInput } from '../../src/domain/activity-contract.js';
import { applyMigrations } from '../../src/activities/ledger.js';
import { postgresActivities, type PlatformDbConfig } from '../../src/activities/postgres.js';
import {
  ensureAppRole,
  holdConnections,
  livePids,
  waitUntilIdleFor,
  type HeldConnections,
} from '../../src/sandbox/platform-data.js';
import { createTestDatabase, services, uniqueName } from '../helpers/services.js';

// killIdleConnections against real sessions: the platform application's idle ones older than the threshold go
// (at most the cap); active ones, young ones, other applications', a superuser's and the orchestrator's own
// stay; the idempotency key is kept in a real ledger database.

const OLDER_THAN = 3;
const ORCHESTRATOR_APP = 'fte-incident-response';

let platform: { url: string; drop: () => Promise<void> };
/** The platform application's own (non-superuser) role, as the sandbox's sessions use. */
let appUrl: string;
let ledger: { url: string; drop: () => Promise<void> };
let ledgerPool: pg.Pool;
const roles: string[] = [];
let held: HeldConnections[] = [];

beforeAll(async () => {
  [platform, ledger] = await Promise.all([createTestDatabase(), createTestDatabase()]);
  ledgerPool = new pg.Pool({ connectionString: ledger.url, max: 4 });
  await applyMigrations(ledgerPool);
  const database = new URL(platform.url).pathname.slice(1);
  appUrl = await ensureAppRole(platform.url, database);
  roles.push(new URL(appUrl).username);
});
afterEach(async () => {
  await Promise.all(held.map((h) => h.release()));
  held = [];
});
afterAll(async () => {
  await ledgerPool?.end();
  await Promise.all(held.map((h) => h.release()));
  await Promise.all([platform?.drop(), ledger?.drop()]);
  const su = new pg.Client({ connectionString: services().postgresUrl });
  await su.connect();
  for (const role of roles) await su.query(`DROP ROLE IF EXISTS ${role}`);
  await su.end();
});

const action = (platformDb: PlatformDbConfig = { connectionString: platform.url }, pool = ledgerPool) =>
  postgresActivities({ platformDb, ledgerPool: pool }).killIdleConnections;
const actionInput = (
  idempotencyKey: string,
  olderThanSeconds: unknown = OLDER_THAN,
  more: Record<string, unknown> = {},
): ActionInput => ({
  incidentId: 'database-connection-failures/customer-success-fte',
  scope: 'customer-success-fte',
  stepId: 'kill-idle-connections',
  idempotencyKey,
  args: { olderThanSeconds, applications: ['fte-api'], ...more },
});
const hold = async (
  options: Omit<Parameters<typeof holdConnections>[0], 'connectionString'>,
  connectionString = appUrl,
) => {
  const h = await holdConnections({ connectionString, ...options });
  held.push(h);
  return h;
};
/** Idle platform connections that have been idle longer than the threshold. */
const oldIdle = async (n: number) => {
  const h = await hold({ idle: n });
  await waitUntilIdleFor(platform.url, h.idlePids, OLDER_THAN);
  return h.idlePids;
};
const sorted = (pids: number[]) => [...pids].sort((a, b) => a - b);

describe('killIdleConnections', () => {
  it('terminates only the idle connections older than the threshold', async () => {
    const active = await hold({ active: 2, activeSeconds: 120 });
    const orchestrator = await hold({ idle: 1, applicationName: ORCHESTRATOR_APP });
    const idle = await oldIdle(3);
    await waitUntilIdleFor(platform.url, orchestrator.idlePids, OLDER_THAN);
    const young = await hold({ idle: 1 });

    const result = await action()(actionInput(uniqueName('incident:step:1')));

    expect(result.changed).toBe(true);
    expect(result.summary).toMatch(
      /^terminated 3 idle connections of applications fte-api older than 3 s in test_/,
    );
    for (const pid of idle) expect(result.summary).toContain(String(pid));
    expect(await livePids(platform.url, idle)).toEqual([]);
    const survivors = [...active.activePids, ...orchestrator.idlePids, ...young.idlePids];
    expect(await livePids(platform.url, survivors)).toEqual(sorted(survivors));
  });

  it('does nothing more when repeated with the same idempotency key, even after new idle connections', async () => {
    const key = uniqueName('incident:step:2');
    const first = await oldIdle(2);
    const done = await action()(actionInput(key));
    expect(done.summary).toMatch(/^terminated 2 /);
    expect(await livePids(platform.url, first)).toEqual([]);

    const second = await oldIdle(2);
    // A fresh activities object stands for a restarted worker: the key is remembered in the ledger database.
    const again = await action()(actionInput(key));
    expect(again).toEqual({ changed: true, summary: `already done under this key: ${done.summary}` });
    expect(await livePids(platform.url, second)).toEqual(sorted(second));

    const next = await action()(actionInput(uniqueName('incident:step:3')));
    expect(next.summary).toMatch(/^terminated 2 /);
    expect(await livePids(platform.url, second)).toEqual([]);

    const { rows } = await ledgerPool.query(
      'SELECT action, step_id, changed, finished_at IS NOT NULL AS finished FROM action_runs WHERE idempotency_key = $1',
      [key],
    );
    expect(rows).toEqual([
      { action: 'killIdleConnections', step_id: 'kill-idle-connections', changed: true, finished: true },
    ]);
  });

  it('acts once when the same key is delivered twice at the same time', async () => {
    await oldIdle(2);
    const key = uniqueName('incident:step:4');
    const results = await Promise.all([action()(actionInput(key)), action()(actionInput(key))]);
    const acted = results.filter((r) => r.summary.startsWith('terminated 2 '));
    const replayed = results.filter((r) =>
      r.summary.startsWith('already done under this key: terminated 2 '),
    );
    expect([acted.length, replayed.length]).toEqual([1, 1]);
  });

  it('reports no change when there is no idle connection old enough', async () => {
    const young = await hold({ idle: 2 });
    const result = await action()(actionInput(uniqueName('incident:step:5'), 3600));
    expect(result).toEqual({
      changed: false,
      summary: expect.stringMatching(
        /^no idle connection of applications fte-api older than 3600 s in test_/,
      ),
    });
    expect(await livePids(platform.url, young.idlePids)).toEqual(sorted(young.idlePids));
  });

  it('is refused, without retrying and without acting, for a role without the needed grants', async () => {
    const idle = await oldIdle(1);
    const name = uniqueName('kill_role').replace('-', '_');
    const password = randomBytes(12).toString('hex');
    const su = new pg.Client({ connectionString: platform.url });
    await su.connect();
    try {
      await su.query(`CREATE ROLE ${name} LOGIN PASSWORD '${password}'`);
      roles.push(name);
      const url = new URL(platform.url);
      url.username = name;
      url.password = password;
      const key = uniqueName('incident:step:6');

      const error = await action({ connectionString: url.toString() })(actionInput(key)).catch(
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(ApplicationFailure);
      expect(error).toMatchObject({ type: 'ForbiddenError', nonRetryable: true });
      expect((error as Error).message).toContain(`role "${name}" may not find or terminate other sessions`);
      expect((error as Error).message).toContain('grant it pg_read_all_stats and pg_signal_backend');
      expect((error as Error).message).not.toContain(password);

      expect(await livePids(platform.url, idle)).toEqual(idle);
      // A refused run leaves no result behind, so the key can be retried once the grants are fixed.
      const { rows } = await ledgerPool.query(
        'SELECT count(*)::int AS n FROM action_runs WHERE idempotency_key = $1',
        [key],
      );
      expect(rows[0].n).toBe(0);
      await su.query(`GRANT pg_read_all_stats, pg_signal_backend TO ${name}`);
      const granted = await action({ connectionString: url.toString() })(actionInput(key));
      expect(granted.summary).toMatch(/^terminated 1 idle connections/);
      expect(await livePids(platform.url, idle)).toEqual([]);
    } finally {
      await su.end();
    }
  });

  it('fails retryably, without the password, when the platform database is unreachable', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    await new Promise((resolve) => server.close(resolve));
    const secret = 'Planted-Pw-5e6f7a8b';
    const url = new URL(platform.url);
    url.password = secret;
    url.port = String(port);

    const error = await action({ connectionString: url.toString() })(actionInput(uniqueName('k'))).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ type: 'UnavailableError', nonRetryable: false });
    expect((error as Error).message).toMatch(
      new RegExp(`killIdleConnections on 127\\.0\\.0\\.1:${port}/test_\\w+: .*ECONNREFUSED`),
    );
    expect(JSON.stringify(error)).not.toContain(secret);
    expect((error as Error).message).not.toContain(secret);
  });

  it('fails retryably, naming the ledger database, when its idempotency record cannot be kept', async () => {
    const secret = 'Ledger-Pw-0c0ffee1';
    const badLedger = new pg.Pool({
      connectionString: `postgres://ledger:${secret}@127.0.0.1:1/ledger`,
      connectionTimeoutMillis: 2000,
    });
    try {
      const idle = await oldIdle(1);
      const error = await action(undefined, badLedger)(actionInput(uniqueName('k'))).catch((e: unknown) => e);
      expect(error).toMatchObject({ type: 'UnavailableError', nonRetryable: false });
      expect((error as Error).message).toMatch(/killIdleConnections: ledger database: .*ECONNREFUSED/);
      expect((error as Error).message).not.toContain(secret);
      expect(await livePids(platform.url, idle)).toEqual(idle);
    } finally {
      await badLedger.end();
    }
  });

  it('rejects a missing or non-positive threshold, and no roles or applications, without retrying', async () => {
    for (const args of [
      { applications: ['fte-api'] },
      { olderThanSeconds: 0, applications: ['fte-api'] },
      { olderThanSeconds: '300', applications: ['fte-api'] },
    ]) {
      const error = await action()({ ...actionInput(uniqueName('k')), args }).catch((e: unknown) => e);
      expect(error).toMatchObject({ type: 'BadRequestError', nonRetryable: true });
      expect((error as Error).message).toMatch(/olderThanSeconds/);
    }
    const unlimited = await action()({
      ...actionInput(uniqueName('k')),
      args: { olderThanSeconds: 60 },
    }).catch((e: unknown) => e);
    expect(unlimited).toMatchObject({ type: 'BadRequestError', nonRetryable: true });
    expect((unlimited as Error).message).toMatch(/name the roles or applications/);
  });

  it('never ends a superuser’s session nor another application’s, and stops at its cap', async () => {
    const superuser = await hold({ idle: 1 }, platform.url);
    const dba = await hold({ idle: 1, applicationName: 'dba-console' });
    const idle = await oldIdle(4);
    await waitUntilIdleFor(platform.url, [...superuser.idlePids, ...dba.idlePids], OLDER_THAN);

    const result = await action()(actionInput(uniqueName('incident:step:cap'), OLDER_THAN, { max: 3 }));
    expect(result.summary).toMatch(
      /^terminated 3 idle connections .*; 1 more left for the next run \(cap 3\)$/,
    );
    expect(await livePids(platform.url, idle)).toHaveLength(1);
    const kept = [...superuser.idlePids, ...dba.idlePids];
    expect(await livePids(platform.url, kept)).toEqual(sorted(kept));
  });

  it('the connections finding names the sessions the action would end, before it ends them', async () => {
    const superuser = await hold({ idle: 1 }, platform.url);
    const idle = await oldIdle(2);
    await waitUntilIdleFor(platform.url, superuser.idlePids, OLDER_THAN);
    const selection = { olderThanSeconds: OLDER_THAN, applications: ['fte-api'], max: 50 };
    const { postgresConnections } = postgresActivities({
      platformDb: { connectionString: platform.url },
      ledgerPool,
    });
    const finding = await postgresConnections({
      incidentId: 'i',
      scope: 'customer-success-fte',
      probeId: 'connections',
      args: { idleOlderThanSeconds: OLDER_THAN, endable: selection },
    });
    const wouldEnd = finding.evidence
      .filter((e) => e.startsWith('would end: '))
      .map((e) => Number(/pid (\d+)/.exec(e)?.[1]));
    expect(sorted(wouldEnd)).toEqual(sorted(idle));
    expect(finding.metrics.endable).toBe(2);
    expect(finding.summary).toContain(
      'killIdleConnections would end 2 idle session(s) of applications fte-api',
    );
    expect(finding.evidence).toContainEqual(
      expect.stringMatching(new RegExp(`^left alone: pid ${superuser.idlePids[0]} `)),
    );
    expect(await livePids(platform.url, idle)).toEqual(sorted(idle));
  });
});
