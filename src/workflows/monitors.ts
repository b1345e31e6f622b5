import * as wf from '@temporalio/workflow';
import {
  NON_RETRYABLE_ACTION_ERRORS,
  type ActionActivity,
  type ProbeActivity,
} from '../domain/activity-contract.js';
import { parseArgs } from '../domain/commands.js';
import { boundFinding, unknownFinding, type Finding } from '../domain/findings.js';
import {
  evaluate,
  gmailRenewalObservation,
  gmailWatchRenewalInputSchema,
  healthMonitorInputSchema,
  healthObservations,
  kafkaLagMonitorInputSchema,
  kafkaLagObservation,
  readMonitorState,
  type AlertPolicy,
  type DeliverMonitorAlertsInput,
  type GmailWatchRenewalInput,
  type HealthMonitorInput,
  type KafkaLagMonitorInput,
  type MonitorDeliveryReport,
  type MonitorState,
  type Observation,
  type RenewalOutcome,
} from './monitor-rules.js';

// Monitors run as Temporal Schedules (overlap SKIP): each run is one short workflow. Its result is the
// monitor's state; Temporal hands the previous run's result to the next run (workflowInfo().lastResult),
// so "over 30 % for 10 minutes" survives worker restarts without a database or a long-running workflow.

const probes = wf.proxyActivities<Record<string, ProbeActivity>>({
  startToCloseTimeout: '45 seconds',
  retry: { maximumAttempts: 2, initialInterval: '2 seconds' },
  summary: 'monitor probe',
});

const { deliverMonitorAlerts } = wf.proxyActivities<{
  deliverMonitorAlerts(input: DeliverMonitorAlertsInput): Promise<MonitorDeliveryReport>;
}>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '2 seconds', maximumInterval: '20 seconds' },
  summary: 'deliver monitor alerts',
});

const { renewGmailWatch } = wf.proxyActivities<{ renewGmailWatch: ActionActivity }>({
  startToCloseTimeout: '30 seconds',
  retry: {
    maximumAttempts: 3,
    initialInterval: '5 seconds',
    nonRetryableErrorTypes: NON_RETRYABLE_ACTION_ERRORS,
  },
  summary: 'renew the Gmail watch',
});

function errorMessage(error: unknown): string {
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    return cause instanceof Error && cause.message ? cause.message : error.message;
  }
  return String(error);
}

/** A probe's finding; a probe that gives no answer is an `unknown` finding, which changes no condition. */
async function probe(
  name: string,
  probeId: string,
  scope: string,
  args: Record<string, unknown>,
): Promise<Finding> {
  const incidentId = wf.workflowInfo().workflowId;
  try {
    const finding = await (probes[name] as ProbeActivity)({ incidentId, scope, probeId, args });
    return boundFinding(finding);
  } catch (error) {
    return unknownFinding(
      probeId,
      `${name} gave no answer: ${errorMessage(error)}`,
      new Date().toISOString(),
    );
  }
}

/**
 * Evaluates the observations against the state, delivers what changed, and returns the new state. The
 * observation time is when the run began (before its probes), so probe latency does not shift durations.
 */
async function decide(
  previous: MonitorState,
  observations: Observation[],
  observedAt: number,
  policy: AlertPolicy,
): Promise<MonitorState> {
  const { state, alerts } = evaluate(previous, observations, observedAt, policy);
  if (alerts.length > 0) {
    const report = await deliverMonitorAlerts({ alerts });
    wf.log.info('monitor alerts delivered', {
      alerts: alerts.map((a) => `${a.labels.alertname} ${a.status}`).join(', '),
      incidents: report.delivered.map((d) => d.workflowId).join(', '),
    });
  }
  const pending = Object.entries(state.conditions).map(
    ([fp, c]) => `${fp}: ${c.firedAt ? `firing since ${c.firedAt}` : `pending since ${c.since}`}`,
  );
  wf.setCurrentDetails(pending.length ? pending.join('\n') : 'all conditions clear');
  return state;
}

/**
 * The health monitor's runs also probe the platform database's connections and the Gmail watch. Runs that
 * began before this (their histories schedule only the first two probes) replay without them.
 */
export const HEALTH_MONITOR_POOL_AND_WATCH_PATCH = 'health-monitor-pool-and-gmail-watch';

/** What `postgresConnections` reports `degraded` at, unless the exhausted threshold is lower. */
const POOL_DEGRADED_AT = 0.8;

/**
 * Every minute: fte-api health and channel metrics, the platform database's connections and the Gmail
 * watch → all channels down, one channel down, latency, escalations, database connection failures, Gmail.
 */
export async function healthMonitorWorkflow(raw: HealthMonitorInput): Promise<MonitorState> {
  const observedAt = Date.now();
  const input = parseArgs(healthMonitorInputSchema, raw);
  const previous = readMonitorState(wf.workflowInfo().lastResult);
  const poolAndWatch = wf.patched(HEALTH_MONITOR_POOL_AND_WATCH_PATCH);
  const [health, metrics, pool, gmailWatch] = await Promise.all([
    probe('httpHealth', 'api-health', input.scope, {}),
    probe('channelMetrics', 'channel-metrics', input.scope, {
      errorRateDown: input.channelErrorRate,
      p95LatencyMs: input.p95LatencyMs,
    }),
    poolAndWatch
      ? probe('postgresConnections', 'db-connections', input.scope, {
          degradedAt: Math.min(POOL_DEGRADED_AT, input.poolUtilisation),
          downAt: input.poolUtilisation,
        })
      : undefined,
    poolAndWatch ? probe('gmailWatch', 'gmail-watch', input.scope, {}) : undefined,
  ]);
  const extra = { ...(pool ? { pool } : {}), ...(gmailWatch ? { gmailWatch } : {}) };
  return decide(previous, healthObservations(input, health, metrics, extra), observedAt, input);
}

/** Consumer lag of the message processor above the threshold for a while → high agent latency. */
export async function kafkaLagMonitorWorkflow(raw: KafkaLagMonitorInput): Promise<MonitorState> {
  const observedAt = Date.now();
  const input = parseArgs(kafkaLagMonitorInputSchema, raw);
  const previous = readMonitorState(wf.workflowInfo().lastResult);
  const lag = await probe('kafkaConsumerLag', 'kafka-lag', input.scope, {
    group: input.group,
    threshold: input.threshold,
    ...(input.topic ? { topic: input.topic } : {}),
  });
  return decide(previous, [kafkaLagObservation(input, lag)], observedAt, input);
}

/**
 * Renews the Gmail watch (watches expire after 7 days). A failed renewal raises FTEGmailChannelDown and is
 * tried again every `retryEveryMs` for up to `retryForMs`; the first success resolves the alert.
 */
export async function gmailWatchRenewalWorkflow(raw: GmailWatchRenewalInput): Promise<MonitorState> {
  const input = parseArgs(gmailWatchRenewalInputSchema, raw);
  let state = readMonitorState(wf.workflowInfo().lastResult);
  // The scheduled run's workflow id carries its scheduled time: one key per run, the same on a retry.
  const runKey = wf.workflowInfo().workflowId;
  const giveUpAt = Date.now() + input.retryForMs;
  for (let attempt = 0; ; attempt++) {
    const observedAt = Date.now();
    const outcome = await renew(input.scope, attempt === 0 ? runKey : `${runKey}/retry-${attempt}`);
    state = await decide(state, [gmailRenewalObservation(input.scope, outcome)], observedAt, {
      repeatEveryMs: input.repeatEveryMs,
      everyMs: input.retryEveryMs,
    });
    if (outcome.ok || Date.now() + input.retryEveryMs > giveUpAt) return state;
    await wf.sleep(input.retryEveryMs);
  }
}

async function renew(scope: string, idempotencyKey: string): Promise<RenewalOutcome> {
  try {
    const result = await renewGmailWatch({
      incidentId: wf.workflowInfo().workflowId,
      scope,
      stepId: 'renew-watch',
      idempotencyKey,
      args: {},
    });
    return { ok: true, summary: result.summary };
  } catch (error) {
    return { ok: false, error: errorMessage(error) };
  }
}
