import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { activityEnvSchema, createActivities } from '../../src/activities/index.js';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { contactsFile, runbooksDir } from '../helpers/paths.js';

const env = activityEnvSchema.parse({
  LEDGER_DATABASE_URL: 'postgres://u@127.0.0.1:1/ledger',
  PLATFORM_DATABASE_URL: 'postgres://u@127.0.0.1:1/platform',
  KAFKA_BROKERS: '127.0.0.1:1',
});

describe('the worker activity registry', () => {
  const pool = new pg.Pool({ connectionString: env.LEDGER_DATABASE_URL });
  const registered = Object.keys(
    createActivities({ env, processEnv: {}, ledgerPool: pool, close: () => pool.end() }),
  );

  it('serves every probe and action the runbooks call, and the workflows core activities', async () => {
    const { runbooks } = await loadRunbookDir(runbooksDir, contactsFile);
    const called = new Set([
      'loadRunbook',
      'notify',
      'recordIncidentEvent',
      ...runbooks.flatMap(({ runbook }) => [
        ...runbook.probes.map((p) => p.probe),
        ...runbook.steps.map((s) => s.action),
      ]),
    ]);
    expect([...called].filter((name) => !registered.includes(name))).toEqual([]);
  });

  it('has the same names as the workflow tests fakes', () => {
    expect(Object.keys(new FakePlatform().activities()).sort()).toEqual([...registered].sort());
  });

  it('names the bad variable in configuration errors', () => {
    const result = activityEnvSchema.safeParse({
      LEDGER_DATABASE_URL: 'mysql://x',
      KAFKA_BROKERS: 'nohostport',
    });
    expect(result.success).toBe(false);
    const paths = result.error?.issues.map((i) => String(i.path[0]));
    expect(paths).toEqual(
      expect.arrayContaining(['LEDGER_DATABASE_URL', 'PLATFORM_DATABASE_URL', 'KAFKA_BROKERS']),
    );
  });
});
