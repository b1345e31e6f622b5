import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ScheduleDescription } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { FteApiSim } from '../../src/sandbox/fte-api.js';
import { loadMonitorConfig } from '../../src/starters/monitor-config.js';
import { applySchedules } from '../../src/starters/schedules.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { monitorWorker, poll } from './harness.js';

// applySchedules against the suite's real Temporal dev server (the time-skipping server has no Schedules).
// Every test has its own schedule id prefix, task queue and scope: other test files share the server.

let env: TestWorkflowEnvironment;
const prefixes: string[] = [];
const incidents: string[] = [];

beforeAll(async () => {
  env = await devServerEnv();
});

afterAll(async () => {
  for (const prefix of prefixes) {
    for (const id of ['monitor-health', 'monitor-kafka-lag', 'gmail-watch-renewal']) {
      const handle = env.client.schedule.getHandle(`${prefix}${id}`);
      const description = await handle.describe().catch(() => undefined);
      for (const run of description?.info.runningActions ?? []) {
        await env.client.workflow
          .getHandle(run.workflow.workflowId)
          .terminate('test over')
          .catch(() => {});
      }
      await handle.delete().catch(() => {});
    }
  }
  for (const id of incidents)
    await env.client.workflow
      .getHandle(id)
      .terminate('test over')
      .catch(() => {});
  await env?.teardown();
});

function names(prefix: string) {
  prefixes.push(prefix);
  return {
    health: `${prefix}monitor-health`,
    kafka: `${prefix}monitor-kafka-lag`,
    gmail: `${prefix}gmail-watch-renewal`,
  };
}

async function listedWith(prefix: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const s of env.client.schedule.list())
    if (s.scheduleId.startsWith(prefix)) ids.push(s.scheduleId);
  return ids.sort();
}

/** Waits until the schedule has taken `count` actions and none is running any more. */
function runsDone(id: string, count: number): Promise<ScheduleDescription> {
  return poll(
    () => env.client.schedule.getHandle(id).describe(),
    (d) => d.info.recentActions.length >= count && d.info.runningActions.length === 0,
    `run ${count} of schedule ${id}`,
    300,
  );
}

describe('applySchedules on the dev server', () => {
  it('creates the three schedules, then updates them in place: never duplicated', async () => {
    const prefix = `${uniqueName('t')}-`;
    const ids = names(prefix);
    const taskQueue = uniqueName('monitors');
    const scope = uniqueName('ns');

    const first = await applySchedules(env.client, loadMonitorConfig({ MONITOR_SCOPE: scope }), {
      idPrefix: prefix,
      taskQueue,
      paused: true,
    });
    expect(first).toEqual([
      { scheduleId: ids.health, workflowType: 'healthMonitorWorkflow', outcome: 'created' },
      { scheduleId: ids.kafka, workflowType: 'kafkaLagMonitorWorkflow', outcome: 'created' },
      { scheduleId: ids.gmail, workflowType: 'gmailWatchRenewalWorkflow', outcome: 'created' },
    ]);

    const changed = loadMonitorConfig({
      MONITOR_SCOPE: scope,
      MONITOR_HEALTH_INTERVAL: '2m',
      MONITOR_ESCALATION_RATE: '0.4',
      MONITOR_KAFKA_LAG_THRESHOLD: '2500',
    });
    const second = await applySchedules(env.client, changed, { idPrefix: prefix, taskQueue });
    expect(second.map((a) => a.outcome)).toEqual(['updated', 'updated', 'updated']);

    const listed = await poll(
      () => listedWith(prefix),
      (l) => l.length >= 3,
      'the listed schedules',
    );
    expect(listed).toEqual([ids.gmail, ids.health, ids.kafka]);

    const health = await env.client.schedule.getHandle(ids.health).describe();
    expect(health.action).toMatchObject({
      type: 'startWorkflow',
      workflowType: 'healthMonitorWorkflow',
      workflowId: ids.health,
      taskQueue,
    });
    expect(health.action.args?.[0]).toMatchObject({ scope, escalationRate: 0.4, escalationForMs: 600_000 });
    expect(health.spec.intervals).toMatchObject([{ every: 120_000 }]);
    expect(health.policies.overlap).toBe('SKIP');
    expect(health.memo).toMatchObject({ description: expect.stringContaining('fte-api health'), scope });
    expect(health.action.staticSummary).toContain('every 2m');
    // A pause (here: from the first apply) is a person's decision; applying again keeps it.
    expect(health.state.paused).toBe(true);

    const kafka = await env.client.schedule.getHandle(ids.kafka).describe();
    expect(kafka.action.args?.[0]).toMatchObject({ group: 'fte-message-processor', threshold: 2500 });
    const gmail = await env.client.schedule.getHandle(ids.gmail).describe();
    expect(gmail.spec.intervals).toMatchObject([{ every: 6 * 86_400_000 }]);
    expect(gmail.policies.overlap).toBe('SKIP');
  });

  it('a triggered schedule runs its monitor on a worker: a faulted channel opens an incident, recovery resolves it', async () => {
    const prefix = `${uniqueName('t')}-`;
    const ids = names(prefix);
    const taskQueue = uniqueName('monitors');
    const scope = uniqueName('ns');
    const sim = await FteApiSim.start();
    try {
      sim.setChannel('whatsapp', { error_rate: 0.8 });
      const config = loadMonitorConfig({ MONITOR_SCOPE: scope, MONITOR_CHANNEL_DOWN_FOR: '0s' });
      await applySchedules(env.client, config, { idPrefix: prefix, taskQueue, paused: true });
      const { worker } = await monitorWorker(env, taskQueue, sim);
      await worker.runUntil(async () => {
        const health = env.client.schedule.getHandle(ids.health);
        await health.trigger('SKIP');
        const incidentId = incidentWorkflowId('whatsapp-channel-down', scope);
        incidents.push(incidentId);
        const incident = env.client.workflow.getHandle(incidentId);
        const fingerprint = `monitor:channel-down:whatsapp:${scope}`;
        const opened = await poll(
          () => incident.query(incidentStatusQuery),
          (s) => Boolean(s.alerts[fingerprint]),
          'the WhatsApp incident',
          300,
        );
        expect(opened.source).toBe('monitor');
        expect(opened.alerts[fingerprint]).toMatchObject({
          alertname: 'FTEWhatsAppChannelDown',
          status: 'firing',
        });
        const firstRun = await runsDone(ids.health, 1);
        expect(firstRun.info.recentActions[0]?.action.workflow.workflowId).toMatch(
          new RegExp(`^${ids.health}-\\d{4}-`),
        );

        // The next run knows from the previous run's result that the alert fired, and resolves it.
        sim.setChannel('whatsapp', { error_rate: 0.01 });
        await health.trigger('SKIP');
        await poll(
          () => incident.query(incidentStatusQuery),
          (s) => s.alerts[fingerprint]?.status === 'resolved',
          'the resolved alert',
          300,
        );

        const gmail = env.client.schedule.getHandle(ids.gmail);
        await gmail.trigger('SKIP');
        await runsDone(ids.gmail, 1);
        expect(sim.gmailRenewals).toBe(1);
      });
    } finally {
      await sim.stop();
    }
  });
});
