import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { activityEnvSchema, createActivities } from '../../src/activities/index.js';
import { actionArgSchemas, probeArgSchemas } from '../../src/activities/runbook-calls.js';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import type { ActionActivity, ProbeActivity } from '../../src/domain/activity-contract.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { contactsFile, runbooksDir } from '../helpers/paths.js';

// The registry's probes and actions, told apart by their signatures (a probe answers a Finding, an action an
// ActionResult): tsc fails here when a probe or action is registered without an argument schema, or the
// reverse.
type Registry = ReturnType<typeof createActivities>;
type NamesOf<F> = { [K in keyof Registry]: Registry[K] extends F ? K : never }[keyof Registry];
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const probesHaveSchemas: Same<keyof typeof probeArgSchemas, NamesOf<ProbeActivity>> = true;
const actionsHaveSchemas: Same<keyof typeof actionArgSchemas, NamesOf<ActionActivity>> = true;

/** The activities workflows call by themselves, not runbooks. */
const WORKFLOW_ACTIVITIES = ['loadRunbook', 'notify', 'recordIncidentEvent', 'deliverMonitorAlerts'];

const env = activityEnvSchema.parse({
  LEDGER_DATABASE_URL: 'postgres://u@127.0.0.1:1/ledger',
  PLATFORM_DATABASE_URL: 'postgres://u@127.0.0.1:1/platform',
  KAFKA_BROKERS: '127.0.0.1:1',
});

describe('the worker activity registry', () => {
  const pool = new pg.Pool({ connectionString: env.LEDGER_DATABASE_URL });
  const registered = Object.keys(
    createActivities({
      env,
      processEnv: {},
      ledgerPool: pool,
      kafka: { brokers: env.KAFKA_BROKERS },
      close: () => pool.end(),
    }),
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

  it('has an argument schema for exactly the probes and actions it registers, as runbook lint checks', () => {
    expect(probesHaveSchemas && actionsHaveSchemas).toBe(true);
    const probes = Object.keys(probeArgSchemas);
    const actions = Object.keys(actionArgSchemas);
    expect(probes.filter((name) => actions.includes(name))).toEqual([]);
    expect([...probes, ...actions].sort()).toEqual(
      registered.filter((name) => !WORKFLOW_ACTIVITIES.includes(name)).sort(),
    );
    for (const schema of [...Object.values(probeArgSchemas), ...Object.values(actionArgSchemas)]) {
      // Strict: an unknown (misspelt) argument is an error.
      expect(schema.safeParse({ surelyNotAnArgument: 1 }).success).toBe(false);
    }
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
