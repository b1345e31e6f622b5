import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { FteApiSim } from '../../src/sandbox/fte-api.js';
import { createConsumerLag } from '../../src/sandbox/platform-data.js';
import { incidentActions, incidentStatusQuery } from '../../src/workflows/api.js';
import type { incidentWorkflow } from '../../src/workflows/incident.js';
import type { HealthMonitorInput, KafkaLagMonitorInput } from '../../src/workflows/monitor-rules.js';
import {
  gmailWatchRenewalWorkflow,
  healthMonitorWorkflow,
  kafkaLagMonitorWorkflow,
} from '../../src/workflows/monitors.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { services, timeSkippingEnv, uniqueName } from '../helpers/services.js';
import { monitorWorker, poll } from './harness.js';

// The monitor workflows on the time-skipping server. It has no Schedules, so a cron workflow (one run a
// minute) stands in for one: Temporal hands each cron run the previous run's result just as a Schedule does.

const MIN = 60_000;
let env: TestWorkflowEnvironment;
let runningSim: FteApiSim | undefined;
let taskQueue: string;
let scope: string;

beforeEach(async () => {
  env = await timeSkippingEnv();
  taskQueue = uniqueName('monitors');
  scope = uniqueName('ns');
});
async function startSim(options: Parameters<typeof FteApiSim.start>[0] = {}): Promise<FteApiSim> {
  const started = await FteApiSim.start(options);
  runningSim = started;
  return started;
}
afterEach(async () => {
  await runningSim?.stop();
  runningSim = undefined;
  await env?.teardown();
});

function healthInput(overrides: Partial<HealthMonitorInput> = {}): HealthMonitorInput {
  return {
    scope,
    channelErrorRate: 0.5,
    channelDownForMs: 0,
    p95LatencyMs: 10_000,
    latencyForMs: 0,
    escalationRate: 0.3,
    escalationForMs: 10 * MIN,
    repeatEveryMs: 60 * MIN,
    everyMs: MIN,
    ...overrides,
  };
}

/** Lets one more minute pass and waits until the monitor run of that minute has finished. */
async function nextRun(monitor: WorkflowHandle): Promise<void> {
  const before = (await monitor.describe()).runId;
  await env.sleep('1 minute');
  await poll(
    () => monitor.describe(),
    (d) => d.runId !== before,
    'the next monitor run',
  );
}

function incident(runbookId: string): WorkflowHandle<typeof incidentWorkflow> {
  return env.client.workflow.getHandle<typeof incidentWorkflow>(incidentWorkflowId(runbookId, scope));
}

const incidentState = (handle: WorkflowHandle<typeof incidentWorkflow>) => handle.query(incidentStatusQuery);

describe('health monitor', () => {
  it('escalation rate over 30 %: 9 minutes → no alert, 10 minutes → one alert, recovered → resolved', async () => {
    let escalation = 0.4;
    const sim = await startSim({ escalationRate: () => escalation });
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim);
    await worker.runUntil(async () => {
      const monitor = await env.client.workflow.start(healthMonitorWorkflow, {
        taskQueue,
        workflowId: uniqueName('monitor-health'),
        args: [healthInput()],
        cronSchedule: '* * * * *',
      });
      // Ten observations, minute 0 to minute 9: over the threshold for 9 minutes.
      for (let m = 0; m <= 9; m++) await nextRun(monitor);
      expect(deliveries.lines()).toEqual([]);

      await nextRun(monitor); // minute 10
      expect(deliveries.lines()).toEqual(['FTEEscalationRateHigh firing']);
      const fingerprint = `monitor:escalation-rate:${scope}`;
      const opened = await poll(
        () => incidentState(incident('high-escalation-rate')),
        (s) => Boolean(s.alerts[fingerprint]),
        'the escalation incident',
      );
      expect(opened.source).toBe('monitor');
      expect(opened.scope).toBe(scope);
      expect(opened.alerts[fingerprint]).toMatchObject({
        alertname: 'FTEEscalationRateHigh',
        status: 'firing',
      });
      expect(opened.alerts[fingerprint]?.summary).toContain('escalation rate 40.0 %');

      await nextRun(monitor);
      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEEscalationRateHigh firing']);

      escalation = 0.1;
      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEEscalationRateHigh firing', 'FTEEscalationRateHigh resolved']);
      const outcome = await incident('high-escalation-rate').result();
      expect(outcome.resolvedBy).toBe('system');
      await monitor.terminate();
    });
  });

  it('a failing channel opens its incident; repeats join it; a cleared alert never reopens a closed incident', async () => {
    const sim = await startSim();
    sim.setChannel('whatsapp', { error_rate: 0.9 });
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim);
    await worker.runUntil(async () => {
      const monitor = await env.client.workflow.start(healthMonitorWorkflow, {
        taskQueue,
        workflowId: uniqueName('monitor-health'),
        args: [healthInput({ repeatEveryMs: 2 * MIN })],
        cronSchedule: '* * * * *',
      });
      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEWhatsAppChannelDown firing']);
      const fingerprint = `monitor:channel-down:whatsapp:${scope}`;
      const handle = incident('whatsapp-channel-down');
      const first = await poll(
        () => incidentState(handle),
        (s) => Boolean(s.alerts[fingerprint]),
        'the WhatsApp incident',
      );
      expect(first.alerts[fingerprint]?.deliveries).toBe(1);
      const { runId } = await handle.describe();

      await nextRun(monitor);
      await nextRun(monitor); // two minutes after firing: delivered again, into the same incident
      expect(deliveries.lines()).toEqual(['FTEWhatsAppChannelDown firing', 'FTEWhatsAppChannelDown firing']);
      await poll(
        () => incidentState(handle),
        (s) => s.alerts[fingerprint]?.deliveries === 2,
        'the repeated delivery',
      );
      expect((await handle.describe()).runId).toBe(runId);

      await handle.executeUpdate(incidentActions.resolve.update, {
        args: [{ by: 'alice', summary: 'fixed by hand' }],
      });
      // Polled, not awaited with result(): waiting for a result lets the test server skip time, and a cron
      // run it skips to would deliver the still-failing channel again, opening the next incident.
      await poll(
        () => handle.describe(),
        (d) => d.status.name === 'COMPLETED',
        'the incident closed',
      );
      sim.setChannel('whatsapp', { error_rate: 0.01 });
      await nextRun(monitor);
      expect(deliveries.lines().at(-1)).toBe('FTEWhatsAppChannelDown resolved');
      expect(deliveries.reports.at(-1)).toEqual({
        delivered: [],
        skipped: [{ workflowId: incidentWorkflowId('whatsapp-channel-down', scope), alerts: 1 }],
      });
      const after = await handle.describe();
      expect(after.runId).toBe(runId);
      expect(after.status.name).toBe('COMPLETED');
      await monitor.terminate();
    });
  });
});

describe('health monitor: database pool and Gmail watch', () => {
  const incidentExists = (runbookId: string) =>
    incident(runbookId)
      .describe()
      .then(
        () => true,
        () => false,
      );

  it('an exhausted pool opens the database incident, never all-channels-down; a freed pool resolves it', async () => {
    const sim = await startSim();
    // db-connections-exhausted: fte-api's health fails and the pool is at 97.5 % of the database's limit.
    sim.setHealthy(false);
    const platform = new FakePlatform();
    platform.status['db-connections'] = 'down';
    platform.metrics['db-connections'] = { utilisationPct: 97.5, databaseConnections: 39, databaseLimit: 40 };
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim, platform);
    await worker.runUntil(async () => {
      const monitor = await env.client.workflow.start(healthMonitorWorkflow, {
        taskQueue,
        workflowId: uniqueName('monitor-health'),
        // All channels down would fire on the first run: only the pool's explanation keeps it quiet.
        args: [healthInput({ channelDownForMs: 0, poolForMs: MIN })],
        cronSchedule: '* * * * *',
      });
      await nextRun(monitor); // pending
      expect(deliveries.lines()).toEqual([]);
      await nextRun(monitor); // a minute exhausted
      expect(deliveries.lines()).toEqual(['FTEDatabaseConnectionFailures firing']);
      const fingerprint = `monitor:db-connections:${scope}`;
      const opened = await poll(
        () => incidentState(incident('database-connection-failures')),
        (s) => Boolean(s.alerts[fingerprint]),
        'the database incident',
      );
      expect(opened.source).toBe('monitor');
      expect(opened.alerts[fingerprint]).toMatchObject({
        alertname: 'FTEDatabaseConnectionFailures',
        status: 'firing',
      });
      expect(opened.alerts[fingerprint]?.summary).toBe(
        'db-connections is down (exhausted at 95.0 % of the connection limit)',
      );
      // The probe was asked with the configured threshold as its "down".
      const poolCall = platform.probeCalls.find((c) => c.probeId === 'db-connections');
      expect(poolCall?.args).toEqual({ degradedAt: 0.8, downAt: 0.95 });

      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEDatabaseConnectionFailures firing']);
      expect(await incidentExists('all-channels-down')).toBe(false);

      // The idle connections are gone: the pool has room and fte-api answers again.
      platform.status['db-connections'] = 'ok';
      platform.metrics['db-connections'] = { utilisationPct: 10, databaseConnections: 4, databaseLimit: 40 };
      sim.setHealthy(true);
      await nextRun(monitor);
      expect(deliveries.lines()).toEqual([
        'FTEDatabaseConnectionFailures firing',
        'FTEDatabaseConnectionFailures resolved',
      ]);
      await poll(
        () => incidentState(incident('database-connection-failures')),
        (s) => s.alerts[fingerprint]?.status === 'resolved',
        'the resolved alert in the incident',
      );
      expect(await incidentExists('all-channels-down')).toBe(false);

      await monitor.terminate();
      // New runs record the patch that added the probes (older histories replay without them).
      const single = await env.client.workflow.start(healthMonitorWorkflow, {
        taskQueue,
        workflowId: uniqueName('monitor-health'),
        args: [healthInput()],
      });
      await single.result();
      const events = (await single.fetchHistory()).events ?? [];
      const markers = events.flatMap((e) => e.markerRecordedEventAttributes?.markerName ?? []);
      expect(markers).toEqual(['core_patch']);
      const scheduled = events.flatMap(
        (e) => e.activityTaskScheduledEventAttributes?.activityType?.name ?? [],
      );
      expect(scheduled.slice(0, 4).sort()).toEqual([
        'channelMetrics',
        'gmailWatch',
        'httpHealth',
        'postgresConnections',
      ]);
      // The resolved alert and a healthy pool close the incident by itself (a pending approval is withdrawn).
      const outcome = await incident('database-connection-failures').result();
      expect(outcome.resolvedBy).toBe('system');
    });
  });

  it('a database that cannot be reached at all is all channels down, not the pool', async () => {
    const sim = await startSim();
    sim.setHealthy(false);
    const platform = new FakePlatform();
    platform.status['db-connections'] = 'down';
    platform.metrics['db-connections'] = { error: 'UnavailableError' };
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim, platform);
    await worker.runUntil(async () => {
      const monitor = await env.client.workflow.start(healthMonitorWorkflow, {
        taskQueue,
        workflowId: uniqueName('monitor-health'),
        args: [healthInput({ channelDownForMs: 0, poolForMs: 0 })],
        cronSchedule: '* * * * *',
      });
      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEAllChannelsDown firing']);
      await poll(
        () => incidentState(incident('all-channels-down')),
        (s) => Boolean(s.alerts[`monitor:all-channels-down:${scope}`]),
        'the all-channels incident',
      );
      expect(await incidentExists('database-connection-failures')).toBe(false);
      await monitor.terminate();
      await incident('all-channels-down').terminate('test over');
    });
  });

  it('an expired Gmail watch opens gmail-channel-down; the incident renews it and resolves itself', async () => {
    const sim = await startSim();
    // gmail-watch-expired: the watch lapsed an hour ago and the email channel receives nothing.
    sim.setGmailWatch({ expiration: Date.now() - 3_600_000 });
    sim.setChannel('email', { requests: 0 });
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim);
    await worker.runUntil(async () => {
      const monitor = await env.client.workflow.start(healthMonitorWorkflow, {
        taskQueue,
        workflowId: uniqueName('monitor-health'),
        args: [healthInput()],
        cronSchedule: '* * * * *',
      });
      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEGmailChannelDown firing']);
      const fingerprint = `monitor:gmail-watch:${scope}`;
      const handle = incident('gmail-channel-down');
      const opened = await poll(
        () => incidentState(handle),
        (s) => Boolean(s.alerts[fingerprint]),
        'the Gmail incident',
      );
      expect(opened.source).toBe('monitor');
      expect(opened.alerts[fingerprint]?.summary).toMatch(/the Gmail watch expired/);
      // The incident's low-risk step renews the watch (through the real activity, against the sim).
      await poll(
        async () => sim.gmailRenewals,
        (n) => n === 1,
        'the renewal by the incident',
      );
      sim.resetChannel('email');

      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEGmailChannelDown firing', 'FTEGmailChannelDown resolved']);
      const outcome = await handle.result();
      expect(outcome.resolvedBy).toBe('system');
      expect(sim.gmailRenewals).toBe(1);
      await monitor.terminate();
    });
  });
});

describe('kafka lag monitor', () => {
  it('lag over the threshold for N minutes → FTEAgentLatencyHigh; caught up → resolved', async () => {
    const brokers = services().kafkaBrokers;
    const { topic, group } = await createConsumerLag(
      { brokers },
      {
        lag: 40,
        topic: uniqueName('fte-messages'),
        group: uniqueName('fte-message-processor'),
        partitions: 1,
      },
    );
    const sim = await startSim();
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim);
    const input: KafkaLagMonitorInput = {
      scope,
      group,
      topic,
      threshold: 10,
      forMs: 3 * MIN,
      repeatEveryMs: 60 * MIN,
      everyMs: MIN,
    };
    await worker.runUntil(async () => {
      const monitor = await env.client.workflow.start(kafkaLagMonitorWorkflow, {
        taskQueue,
        workflowId: uniqueName('monitor-kafka-lag'),
        args: [input],
        cronSchedule: '* * * * *',
      });
      for (let m = 0; m <= 2; m++) await nextRun(monitor);
      expect(deliveries.lines()).toEqual([]);
      await nextRun(monitor); // 3 minutes over the threshold
      expect(deliveries.lines()).toEqual(['FTEAgentLatencyHigh firing']);
      const fingerprint = `monitor:kafka-lag:${group}:${scope}`;
      const opened = await poll(
        () => incidentState(incident('high-agent-latency')),
        (s) => Boolean(s.alerts[fingerprint]),
        'the latency incident',
      );
      expect(opened.alerts[fingerprint]?.summary).toContain(`consumer group ${group} lags 40 messages`);

      const admin = new Kafka({ clientId: 'monitor-test', brokers, logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        // The processor catches up: the group commits the end of the log.
        const ends = await admin.fetchTopicOffsets(topic);
        await admin.setOffsets({
          groupId: group,
          topic,
          partitions: ends.map((e) => ({ partition: e.partition, offset: e.high })),
        });
      } finally {
        await admin.disconnect();
      }
      await nextRun(monitor);
      expect(deliveries.lines()).toEqual(['FTEAgentLatencyHigh firing', 'FTEAgentLatencyHigh resolved']);
      await poll(
        () => incidentState(incident('high-agent-latency')),
        (s) => s.alerts[fingerprint]?.status === 'resolved',
        'the resolved alert in the incident',
      );
      await monitor.terminate();
    });
  });
});

describe('gmail watch renewal', () => {
  it('renews the watch once per run and raises nothing when it works', async () => {
    const sim = await startSim();
    const expiringSoon = Date.now() + 20 * 3_600_000;
    sim.setGmailWatch({ expiration: expiringSoon });
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim);
    await worker.runUntil(async () => {
      const state = await env.client.workflow.execute(gmailWatchRenewalWorkflow, {
        taskQueue,
        workflowId: uniqueName('gmail-watch-renewal'),
        args: [{ scope, retryEveryMs: 15 * MIN, retryForMs: 60 * MIN, repeatEveryMs: 60 * MIN }],
      });
      expect(state).toEqual({ conditions: {} });
    });
    expect(sim.gmailRenewals).toBe(1);
    expect(sim.gmailWatch.expiration).toBeGreaterThan(expiringSoon);
    expect(deliveries.calls).toEqual([]);
  });

  it('a failed renewal opens a gmail-channel-down incident; a later successful retry resolves it', async () => {
    const sim = await startSim();
    sim.setFault('gmail-watch', { status: 500 });
    const { worker, deliveries } = await monitorWorker(env, taskQueue, sim);
    await worker.runUntil(async () => {
      const renewal = await env.client.workflow.start(gmailWatchRenewalWorkflow, {
        taskQueue,
        workflowId: uniqueName('gmail-watch-renewal'),
        args: [{ scope, retryEveryMs: 15 * MIN, retryForMs: 60 * MIN, repeatEveryMs: 60 * MIN }],
      });
      await env.sleep('1 minute'); // the renewal activity's own retries
      await poll(
        async () => deliveries.lines(),
        (l) => l.length > 0,
        'the alert',
      );
      expect(deliveries.lines()).toEqual(['FTEGmailChannelDown firing']);
      const fingerprint = `monitor:gmail-watch-renewal:${scope}`;
      const opened = await poll(
        () => incidentState(incident('gmail-channel-down')),
        (s) => Boolean(s.alerts[fingerprint]),
        'the Gmail incident',
      );
      expect(opened.source).toBe('monitor');
      expect(opened.alerts[fingerprint]?.summary).toMatch(/Gmail watch renewal failed: .*500/);

      sim.clearFault('gmail-watch');
      const state = await renewal.result(); // skips to the retry 15 minutes later
      expect(state).toEqual({ conditions: {} });
      expect(deliveries.lines()).toEqual(['FTEGmailChannelDown firing', 'FTEGmailChannelDown resolved']);
      await poll(
        () => incidentState(incident('gmail-channel-down')),
        (s) => s.alerts[fingerprint]?.status === 'resolved',
        'the resolved alert in the incident',
      );
    });
    expect(sim.gmailRenewals).toBe(1);
  });
});
