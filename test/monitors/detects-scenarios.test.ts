import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadMonitorConfig, type MonitorConfig } from '../../src/starters/monitor-config.js';
import { applySchedules, SCHEDULE_IDS } from '../../src/starters/schedules.js';
import type { IncidentState } from '../../src/domain/incident.js';
import type { MonitorState } from '../../src/workflows/monitor-rules.js';
import { startProduct, type Product } from '../e2e/harness.js';
import { uniqueName } from '../helpers/services.js';
import { poll } from './harness.js';

// The monitors find the sandbox's faults on their own: the real worker (real activities) runs the health
// monitor from its Schedule against the simulated platform on the real control plane, and nobody sends an
// alert. Only the health schedule runs (the Gmail renewal would repair gmail-watch-expired before it is seen).
// Every 3 seconds instead of every minute, with short "for" durations, to keep the test short: the config is
// built here because MONITOR_HEALTH_INTERVAL refuses less than 10s.

let product: Product;
const prefix = `${uniqueName('detect')}-`;
const healthScheduleId = `${prefix}${SCHEDULE_IDS.health}`;

beforeAll(async () => {
  product = await startProduct();
  const { env, sandbox, namespace, taskQueue } = product;
  // Start from a healthy platform: fte-api answers its health check once its pods are ready.
  await poll(
    () => fetch(`${sandbox.api.url}/health`).then((r) => r.status),
    (status) => status === 200,
    'fte-api healthy',
    600,
  );
  const defaults = loadMonitorConfig({ MONITOR_SCOPE: namespace });
  const config: MonitorConfig = {
    ...defaults,
    health: {
      ...defaults.health,
      everyMs: 3_000,
      // All channels down would fire on the first run that sees health failing: only the exhausted pool's
      // explanation keeps it quiet during db-connections-exhausted.
      channelDownForMs: 0,
      poolForMs: 3_000,
      gmailWatchForMs: 0,
    },
  };
  await applySchedules(env.client, config, { idPrefix: prefix, taskQueue, paused: true });
  await env.client.schedule
    .getHandle(healthScheduleId)
    .unpause('detects-scenarios test: health monitor only');
}, 240_000);

afterAll(async () => {
  if (!product) return;
  for (const id of Object.values(SCHEDULE_IDS)) {
    const handle = product.env.client.schedule.getHandle(`${prefix}${id}`);
    const description = await handle.describe().catch(() => undefined);
    await handle.delete().catch(() => {});
    for (const run of description?.info.runningActions ?? []) {
      await product.env.client.workflow
        .getHandle(run.workflow.workflowId)
        .terminate('test over')
        .catch(() => {});
    }
  }
  await product.stop();
}, 120_000);

/** The state the latest health monitor run returned, once `runs` more runs have completed. */
async function monitorStateAfter(runs: number): Promise<MonitorState> {
  const schedule = product.env.client.schedule.getHandle(healthScheduleId);
  const before = (await schedule.describe()).info.numActionsTaken;
  const described = await poll(
    () => schedule.describe(),
    (d) => d.info.numActionsTaken >= before + runs && d.info.runningActions.length === 0,
    `${runs} more health monitor runs`,
    600,
  );
  const last = described.info.recentActions.at(-1);
  if (!last) throw new Error('no health monitor run yet');
  const { workflowId, firstExecutionRunId } = last.action.workflow;
  return (await product.env.client.workflow
    .getHandle(workflowId, firstExecutionRunId)
    .result()) as MonitorState;
}

/** Polls the incident's status until `predicate` holds; it does not exist until the monitor opens it. */
function waitForIncident(
  runbook: string,
  predicate: (s: IncidentState) => boolean,
  what: string,
  seconds: number,
): Promise<IncidentState> {
  return poll(() => product.status(runbook), predicate, what, seconds * 10);
}

async function incidentExists(runbook: string): Promise<boolean> {
  return product
    .handle(runbook)
    .describe()
    .then(
      () => true,
      () => false,
    );
}

describe('the health monitor detects the sandbox scenarios by itself', () => {
  afterEach(async () => {
    await product.reset('database-connection-failures');
    await product.reset('gmail-channel-down');
  });

  it('db-connections-exhausted → database-connection-failures, and no all-channels-down incident', async () => {
    const { sandbox, namespace } = product;
    await sandbox.apply('db-connections-exhausted');
    expect((await fetch(`${sandbox.api.url}/health`)).status).toBeGreaterThanOrEqual(500);

    const runbook = 'database-connection-failures';
    expect(product.incidentId(runbook)).toBe(`incident-database-connection-failures--${namespace}`);
    const fingerprint = `monitor:db-connections:${namespace}`;
    const opened = await waitForIncident(
      runbook,
      (s) => Boolean(s.alerts[fingerprint]),
      'the database incident opened by the monitor',
      90,
    );
    expect(opened.source).toBe('monitor');
    expect(opened.alerts[fingerprint]).toMatchObject({
      alertname: 'FTEDatabaseConnectionFailures',
      status: 'firing',
    });
    expect(opened.alerts[fingerprint]?.summary).toMatch(/pool exhausted|refuses new connections/);

    // A few more runs while health keeps failing: the pool explains it, so all channels down stays clear.
    const state = await monitorStateAfter(3);
    expect(state.conditions[fingerprint]?.firedAt).toBeDefined();
    expect(state.conditions[`monitor:all-channels-down:${namespace}`]).toBeUndefined();
    expect((await fetch(`${sandbox.api.url}/health`)).status).toBeGreaterThanOrEqual(500);
    expect(await incidentExists('all-channels-down')).toBe(false);
  }, 240_000);

  it('gmail-watch-expired → gmail-channel-down; the incident renews the watch and resolves itself', async () => {
    const { sandbox, namespace } = product;
    await sandbox.apply('gmail-watch-expired');
    expect(sandbox.api.gmailWatch.expiration).toBeLessThan(Date.now());

    const runbook = 'gmail-channel-down';
    const fingerprint = `monitor:gmail-watch:${namespace}`;
    const opened = await waitForIncident(
      runbook,
      (s) => Boolean(s.alerts[fingerprint]),
      'the Gmail incident opened by the monitor',
      90,
    );
    expect(opened.source).toBe('monitor');
    expect(opened.alerts[fingerprint]).toMatchObject({ alertname: 'FTEGmailChannelDown', status: 'firing' });
    expect(opened.alerts[fingerprint]?.summary).toMatch(/the Gmail watch expired/);
    // The monitor's own fingerprint, not the renewal schedule's (which has not run).
    expect(Object.keys(opened.alerts)).toEqual([fingerprint]);

    // The runbook's low-risk step renews the watch; the monitor sees it valid and resolves its alert.
    const resolved = await waitForIncident(
      runbook,
      (s) => s.status === 'Resolved',
      'the incident resolved',
      180,
    );
    expect(resolved.alerts[fingerprint]?.status).toBe('resolved');
    expect(resolved.steps.find((s) => s.id === 'renew-watch')).toMatchObject({
      runs: 1,
      status: 'recovered',
    });
    expect(sandbox.api.gmailRenewals).toBe(1);
    expect(sandbox.api.gmailWatch.expiration).toBeGreaterThan(Date.now());
    const outcome = (await product.handle(runbook).result()) as {
      resolvedBy?: string;
      postIncidentWorkflowId?: string;
    };
    expect(outcome.resolvedBy).toBe('system');
    if (outcome.postIncidentWorkflowId) {
      await product.env.client.workflow
        .getHandle(outcome.postIncidentWorkflowId)
        .terminate('test done')
        .catch(() => {});
    }
  }, 300_000);
});
