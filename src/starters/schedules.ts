import { ScheduleAlreadyRunning, type Client, type ScheduleOptions } from '@temporalio/client';
import { formatDuration } from '../domain/duration.js';
import { TASK_QUEUE } from '../workflows/api.js';
import {
  gmailWatchRenewalInputSchema,
  healthMonitorInputSchema,
  kafkaLagMonitorInputSchema,
} from '../workflows/monitor-rules.js';
import type { MonitorConfig } from './monitor-config.js';

/** Schedule ids without a prefix; each scheduled run's workflow id is the schedule id plus its time. */
export const SCHEDULE_IDS = {
  health: 'monitor-health',
  kafkaLag: 'monitor-kafka-lag',
  gmailRenewal: 'gmail-watch-renewal',
} as const;

export interface ApplySchedulesOptions {
  /** Put before every schedule id, e.g. to run a second set beside the first (tests do). */
  idPrefix?: string;
  /** Task queue of the monitor workflows (and, through the worker, of the incidents they open). */
  taskQueue?: string;
  /** Create new schedules paused (existing ones keep whatever state a person gave them). */
  paused?: boolean;
}

export interface AppliedSchedule {
  scheduleId: string;
  workflowType: string;
  outcome: 'created' | 'updated';
}

const pct = (r: number) => `${Math.round(r * 1000) / 10} %`;
const every = (ms: number) => formatDuration(ms);

interface Definition {
  options: ScheduleOptions;
  /** Run once as soon as the schedule is created (the Gmail watch may be close to expiring already). */
  runOnCreate: boolean;
}

/** The schedules `applySchedules` creates, as data: what the Temporal UI shows for each. */
export function scheduleDefinitions(
  config: MonitorConfig,
  options: ApplySchedulesOptions = {},
): Definition[] {
  const prefix = options.idPrefix ?? '';
  const taskQueue = options.taskQueue ?? TASK_QUEUE;
  const { scope, repeatEveryMs, health, kafkaLag, gmailRenewal } = config;
  // After an outage, a run missed by up to one interval is still taken late; older ones are dropped
  // (the server's default catch-up window is a year).
  const catchup = (ms: number) => Math.max(ms, 60_000);
  const make = (
    key: keyof typeof SCHEDULE_IDS,
    workflowType: string,
    everyMs: number,
    args: unknown,
    runTimeoutMs: number,
    description: string,
    details: string,
  ): ScheduleOptions => {
    const scheduleId = `${prefix}${SCHEDULE_IDS[key]}`;
    return {
      scheduleId,
      spec: { intervals: [{ every: everyMs }] },
      action: {
        type: 'startWorkflow',
        workflowType,
        workflowId: scheduleId,
        taskQueue,
        args: [args],
        workflowExecutionTimeout: runTimeoutMs,
        staticSummary: description,
        staticDetails: details,
      },
      policies: { overlap: 'SKIP', catchupWindow: catchup(everyMs), pauseOnFailure: false },
      memo: { description, scope },
    };
  };

  const healthArgs = healthMonitorInputSchema.parse({
    scope,
    channelErrorRate: health.channelErrorRate,
    channelDownForMs: health.channelDownForMs,
    p95LatencyMs: health.p95LatencyMs,
    latencyForMs: health.latencyForMs,
    escalationRate: health.escalationRate,
    escalationForMs: health.escalationForMs,
    poolUtilisation: health.poolUtilisation,
    poolForMs: health.poolForMs,
    gmailWatchForMs: health.gmailWatchForMs,
    repeatEveryMs,
    everyMs: health.everyMs,
  });
  const kafkaArgs = kafkaLagMonitorInputSchema.parse({
    scope,
    group: kafkaLag.group,
    ...(kafkaLag.topic ? { topic: kafkaLag.topic } : {}),
    threshold: kafkaLag.threshold,
    forMs: kafkaLag.forMs,
    repeatEveryMs,
    everyMs: kafkaLag.everyMs,
  });
  const gmailArgs = gmailWatchRenewalInputSchema.parse({
    scope,
    retryEveryMs: gmailRenewal.retryEveryMs,
    retryForMs: gmailRenewal.retryForMs,
    repeatEveryMs,
  });

  return [
    {
      runOnCreate: false,
      options: make(
        'health',
        'healthMonitorWorkflow',
        health.everyMs,
        healthArgs,
        10 * 60_000,
        `Monitor: fte-api health and channel metrics, database pool, Gmail watch every ${every(health.everyMs)} (${scope})`,
        [
          `Reads fte-api \`/health\` and \`/metrics/channels\`, the platform database's connections and the Gmail watch, and raises alerts with source \`monitor\`:`,
          `- database pool at ≥ ${pct(health.poolUtilisation)} of its connection limit (or refusing connections) for ${every(health.poolForMs)} → FTEDatabaseConnectionFailures`,
          `- health down or every channel at ≥ ${pct(health.channelErrorRate)} errors for ${every(health.channelDownForMs)}, the pool not exhausted → FTEAllChannelsDown`,
          `- one channel at ≥ ${pct(health.channelErrorRate)} errors for ${every(health.channelDownForMs)} → its channel alert`,
          `- p95 agent processing > ${health.p95LatencyMs} ms for ${every(health.latencyForMs)} → FTEAgentLatencyHigh`,
          `- escalation rate > ${pct(health.escalationRate)} for ${every(health.escalationForMs)} → FTEEscalationRateHigh`,
          `- the Gmail watch expired${health.gmailWatchForMs > 0 ? ` for ${every(health.gmailWatchForMs)}` : ''} → FTEGmailChannelDown`,
        ].join('\n'),
      ),
    },
    {
      runOnCreate: false,
      options: make(
        'kafkaLag',
        'kafkaLagMonitorWorkflow',
        kafkaLag.everyMs,
        kafkaArgs,
        10 * 60_000,
        `Monitor: Kafka lag of ${kafkaLag.group} every ${every(kafkaLag.everyMs)} (${scope})`,
        `Consumer lag of group \`${kafkaLag.group}\` above ${kafkaLag.threshold} for ${every(kafkaLag.forMs)} → FTEAgentLatencyHigh.`,
      ),
    },
    {
      runOnCreate: true,
      options: make(
        'gmailRenewal',
        'gmailWatchRenewalWorkflow',
        gmailRenewal.everyMs,
        gmailArgs,
        gmailRenewal.retryForMs + 3_600_000,
        `Gmail watch renewal every ${every(gmailRenewal.everyMs)} (${scope})`,
        `Re-runs the Gmail watch setup (watches expire after 7 days). A failed renewal raises FTEGmailChannelDown and is retried every ${every(gmailRenewal.retryEveryMs)} for ${every(gmailRenewal.retryForMs)}.`,
      ),
    },
  ];
}

/**
 * Creates the monitor schedules, or updates the ones that exist (spec, action and policies; a pause
 * a person set stays). Safe to run any number of times: `incidentctl schedules apply`, `make start`.
 */
export async function applySchedules(
  client: Client,
  config: MonitorConfig,
  options: ApplySchedulesOptions = {},
): Promise<AppliedSchedule[]> {
  const applied: AppliedSchedule[] = [];
  for (const { options: schedule, runOnCreate } of scheduleDefinitions(config, options)) {
    const { scheduleId } = schedule;
    const workflowType = String(schedule.action.workflowType);
    try {
      await client.schedule.create({
        ...schedule,
        state: options.paused
          ? { paused: true, note: 'created paused by applySchedules' }
          : { triggerImmediately: runOnCreate },
      });
      applied.push({ scheduleId, workflowType, outcome: 'created' });
    } catch (error) {
      if (!(error instanceof ScheduleAlreadyRunning)) throw error;
      await client.schedule.getHandle(scheduleId).update((previous) => ({
        ...previous,
        spec: schedule.spec,
        action: schedule.action,
        policies: schedule.policies ?? previous.policies,
      }));
      applied.push({ scheduleId, workflowType, outcome: 'updated' });
    }
  }
  return applied;
}
