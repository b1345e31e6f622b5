import { z } from 'zod';
import { alertSchema, type Alert } from '../domain/alerts.js';
import type { Finding } from '../domain/findings.js';

// What the monitors decide, as pure functions: the monitor workflows feed them probe findings and the
// state the previous scheduled run returned, and deliver the alerts they give back. No I/O, no Temporal.

// ---------------------------------------------------------------------------------------------------
// The monitor workflows' arguments (the Temporal Schedules' action arguments)
// ---------------------------------------------------------------------------------------------------

const ms = z.number().int().min(0);
const positiveMs = z.number().int().positive();
const rate = z.number().min(0).max(1);
const scope = z.string().min(1).max(100);

export const healthMonitorInputSchema = z.strictObject({
  scope,
  /** A channel whose error rate is at least this is failing. */
  channelErrorRate: rate,
  channelDownForMs: ms,
  /** The seed's "agent processing > 10s": p95 latency of any channel above this. */
  p95LatencyMs: z.number().positive(),
  latencyForMs: ms,
  /** Escalated share of all conversations (weighted by requests) above this... */
  escalationRate: rate,
  /** ...for at least this long. */
  escalationForMs: ms,
  /**
   * The platform database's pool is exhausted when `postgresConnections` finds this share of its connection
   * limit in use (or the server refuses new connections for lack of slots)... Optional, like the two below:
   * schedules applied before these existed start runs without them.
   */
  poolUtilisation: z.number().gt(0).max(1).default(0.95),
  /** ...for at least this long. */
  poolForMs: ms.default(60_000),
  /** How long the Gmail watch must be expired before FTEGmailChannelDown fires. */
  gmailWatchForMs: ms.default(0),
  repeatEveryMs: positiveMs,
  /** How often the schedule runs the check. */
  everyMs: positiveMs,
});
export type HealthMonitorInput = z.input<typeof healthMonitorInputSchema>;

export const kafkaLagMonitorInputSchema = z.strictObject({
  scope,
  group: z.string().min(1).max(200),
  topic: z.string().min(1).max(200).optional(),
  threshold: z.number().int().min(0),
  forMs: ms,
  repeatEveryMs: positiveMs,
  everyMs: positiveMs,
});
export type KafkaLagMonitorInput = z.input<typeof kafkaLagMonitorInputSchema>;

export const gmailWatchRenewalInputSchema = z.strictObject({
  scope,
  /** After a failed renewal, try again this often... */
  retryEveryMs: positiveMs,
  /** ...for this long; the schedule's next run tries again after that. */
  retryForMs: ms,
  repeatEveryMs: positiveMs,
});
export type GmailWatchRenewalInput = z.input<typeof gmailWatchRenewalInputSchema>;

// ---------------------------------------------------------------------------------------------------
// The alert delivery activity's contract
// ---------------------------------------------------------------------------------------------------

export const deliverMonitorAlertsInputSchema = z.strictObject({
  alerts: z.array(alertSchema).min(1).max(500),
});
export type DeliverMonitorAlertsInput = z.input<typeof deliverMonitorAlertsInputSchema>;

export interface MonitorDeliveryReport {
  /** Incidents opened or joined (signalWithStart). */
  delivered: { workflowId: string; runbookId: string; alerts: number }[];
  /** Resolved alerts whose incident is no longer open: nothing to tell it, and nothing is opened for them. */
  skipped: { workflowId: string; alerts: number }[];
}

// ---------------------------------------------------------------------------------------------------
// State carried from one scheduled run to the next (the run's result, handed to the next run by Temporal)
// ---------------------------------------------------------------------------------------------------

const conditionStateSchema = z.object({
  /** First observation of the current streak in which the condition held. */
  since: z.string(),
  /** Last observation in which it held. */
  lastSeen: z.string(),
  /** Set once the firing alert went out; until then the condition is only pending. */
  firedAt: z.string().optional(),
  lastSentAt: z.string().optional(),
  /** The labels the alert fired with, to resolve it the same way. */
  labels: z.record(z.string(), z.string()).optional(),
});
export type ConditionState = z.infer<typeof conditionStateSchema>;

export const monitorStateSchema = z.object({ conditions: z.record(z.string(), conditionStateSchema) });
export type MonitorState = z.infer<typeof monitorStateSchema>;

/** The previous run's state; a first run (or a result of another shape) starts from nothing. */
export function readMonitorState(lastResult: unknown): MonitorState {
  const parsed = monitorStateSchema.safeParse(lastResult);
  return parsed.success ? parsed.data : { conditions: {} };
}

// ---------------------------------------------------------------------------------------------------
// Pending → firing → resolved, like an alerting rule with a `for` duration
// ---------------------------------------------------------------------------------------------------

export interface Observation {
  /** Stable per condition and scope, e.g. `monitor:escalation-rate:customer-success-fte`. */
  fingerprint: string;
  /** Whether the condition holds now; undefined when the probes could not tell (nothing changes then). */
  holds: boolean | undefined;
  /** How long it must hold before the alert fires. */
  forMs: number;
  /** Static per fingerprint: they route the alert to its runbook and scope. */
  labels: Record<string, string>;
  /** What was seen, in numbers; becomes the alert's summary. */
  summary: string;
}

export interface AlertPolicy {
  /** A firing alert is delivered again this often while it holds (an incident closed by hand reopens). */
  repeatEveryMs: number;
  /**
   * How often the check runs. Runs start a little late by varying amounts, so durations are compared with
   * half an interval of slack (the run that completes `for` still fires, not the one after), and a pending
   * streak with no observation for three intervals starts over.
   */
  everyMs: number;
}

export interface Evaluation {
  state: MonitorState;
  /** Alerts to deliver now: new and repeated firing ones, and resolved ones. */
  alerts: Alert[];
}

function makeAlert(
  fingerprint: string,
  status: Alert['status'],
  labels: Record<string, string>,
  summary: string,
  startsAt: string,
  endsAt?: string,
): Alert {
  return {
    fingerprint,
    status,
    labels,
    annotations: { summary: summary.slice(0, 1000) },
    startsAt,
    ...(endsAt ? { endsAt } : {}),
  };
}

/** One evaluation of every condition a monitor watches, at `nowMs`. */
export function evaluate(
  previous: MonitorState,
  observations: Observation[],
  nowMs: number,
  policy: AlertPolicy,
): Evaluation {
  const at = new Date(nowMs).toISOString();
  const conditions: Record<string, ConditionState> = {};
  const alerts: Alert[] = [];
  const slack = policy.everyMs / 2;
  const lasted = (since: string, duration: number) => nowMs - Date.parse(since) >= duration - slack;

  for (const o of observations) {
    const prev = previous.conditions[o.fingerprint];
    if (o.holds === undefined) {
      if (prev) conditions[o.fingerprint] = prev;
      continue;
    }
    if (!o.holds) {
      if (prev?.firedAt) {
        alerts.push(
          makeAlert(o.fingerprint, 'resolved', prev.labels ?? o.labels, o.summary, prev.firedAt, at),
        );
      }
      continue;
    }
    if (prev?.firedAt) {
      const repeat = !prev.lastSentAt || lasted(prev.lastSentAt, policy.repeatEveryMs);
      if (repeat) alerts.push(makeAlert(o.fingerprint, 'firing', o.labels, o.summary, prev.firedAt));
      conditions[o.fingerprint] = {
        ...prev,
        lastSeen: at,
        labels: o.labels,
        ...(repeat ? { lastSentAt: at } : {}),
      };
      continue;
    }
    // Up to three missed runs keep a pending streak going.
    const continues = prev !== undefined && nowMs - Date.parse(prev.lastSeen) < 3 * policy.everyMs + slack;
    const since = continues ? prev.since : at;
    if (lasted(since, o.forMs)) {
      alerts.push(makeAlert(o.fingerprint, 'firing', o.labels, o.summary, at));
      conditions[o.fingerprint] = { since, lastSeen: at, firedAt: at, lastSentAt: at, labels: o.labels };
    } else {
      conditions[o.fingerprint] = { since, lastSeen: at };
    }
  }

  // A condition this monitor no longer watches (e.g. its scope changed) is over.
  const watched = new Set(observations.map((o) => o.fingerprint));
  for (const [fingerprint, prev] of Object.entries(previous.conditions)) {
    if (watched.has(fingerprint) || !prev.firedAt || !prev.labels) continue;
    alerts.push(makeAlert(fingerprint, 'resolved', prev.labels, 'no longer monitored', prev.firedAt, at));
  }
  return { state: { conditions }, alerts };
}

// ---------------------------------------------------------------------------------------------------
// Health monitor: fte-api /health and /metrics/channels
// ---------------------------------------------------------------------------------------------------

export const MONITORED_CHANNELS = ['email', 'whatsapp', 'web_form'] as const;
export type MonitoredChannel = (typeof MONITORED_CHANNELS)[number];

/** web_form has no runbook of its own: its alert goes to triage. */
export const CHANNEL_ALERTNAMES: Record<MonitoredChannel, string> = {
  email: 'FTEGmailChannelDown',
  whatsapp: 'FTEWhatsAppChannelDown',
  web_form: 'FTEWebFormChannelDown',
};

export const MONITOR_ALERTNAMES = {
  allChannelsDown: 'FTEAllChannelsDown',
  agentLatency: 'FTEAgentLatencyHigh',
  escalationRate: 'FTEEscalationRateHigh',
  gmailChannelDown: 'FTEGmailChannelDown',
  databaseConnectionFailures: 'FTEDatabaseConnectionFailures',
} as const;

export const monitorFingerprints = {
  allChannelsDown: (scope: string) => `monitor:all-channels-down:${scope}`,
  channelDown: (channel: MonitoredChannel, scope: string) => `monitor:channel-down:${channel}:${scope}`,
  agentLatency: (scope: string) => `monitor:agent-latency:${scope}`,
  escalationRate: (scope: string) => `monitor:escalation-rate:${scope}`,
  databasePool: (scope: string) => `monitor:db-connections:${scope}`,
  gmailWatch: (scope: string) => `monitor:gmail-watch:${scope}`,
  kafkaLag: (group: string, scope: string) => `monitor:kafka-lag:${group}:${scope}`,
  gmailWatchRenewal: (scope: string) => `monitor:gmail-watch-renewal:${scope}`,
};

export interface ChannelReading {
  requests: number;
  errorRate: number;
  p95LatencyMs: number;
  escalationRate: number;
}

/** The per-channel numbers of a `channelMetrics` finding; undefined when the metrics were not read. */
export function channelReadings(finding: Finding): Record<MonitoredChannel, ChannelReading> | undefined {
  const num = (key: string) => {
    const v = finding.metrics[key];
    return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
  };
  const out: Partial<Record<MonitoredChannel, ChannelReading>> = {};
  for (const channel of MONITORED_CHANNELS) {
    const requests = num(`requests/${channel}`);
    const errorRate = num(`errorRate/${channel}`);
    const p95LatencyMs = num(`p95LatencyMs/${channel}`);
    const escalationRate = num(`escalationRate/${channel}`);
    if (requests === undefined || errorRate === undefined || p95LatencyMs === undefined) return undefined;
    if (escalationRate === undefined) return undefined;
    out[channel] = { requests, errorRate, p95LatencyMs, escalationRate };
  }
  return out as Record<MonitoredChannel, ChannelReading>;
}

const pct = (r: number) => `${(r * 100).toFixed(1)} %`;

function labelsOf(
  alertname: string,
  scope: string,
  monitor: string,
  extra: Record<string, string> = {},
): Record<string, string> {
  return { alertname, namespace: scope, source: 'monitor', monitor, ...extra };
}

/** SQLSTATE `too_many_connections`: the server, or the database's connection limit, has no slot left. */
export const TOO_MANY_CONNECTIONS = '53300';

/**
 * Whether a `postgresConnections` finding says the platform database's pool is exhausted: the share of the
 * connection limit in use is at or above `threshold` (the probe reports `down` then, as it is given the
 * threshold as its `downAt`), or the server refused the probe's connection for lack of a slot. A database
 * that cannot be reached at all is not an exhausted pool: that is fte-api's health check failing, which
 * `FTEAllChannelsDown` covers (the sandbox's `postgres-down`). Undefined when the probe gave no answer.
 */
export function poolExhausted(pool: Finding, threshold: number): boolean | undefined {
  if (pool.status === 'unknown') return undefined;
  const used = pool.metrics.utilisationPct;
  if (typeof used === 'number' && Number.isFinite(used)) {
    return pool.status === 'down' || used / 100 >= threshold;
  }
  return pool.status === 'down' && pool.metrics.sqlState === TOO_MANY_CONNECTIONS;
}

/** Findings of the probes the health monitor added later; a run that did not make them leaves them out. */
export interface HealthExtraFindings {
  /** `postgresConnections` on the platform database. */
  pool?: Finding;
  /** `gmailWatch`. */
  gmailWatch?: Finding;
}

/**
 * The health monitor's conditions. Health down, or every channel failing, is "all channels down", unless
 * the platform database's pool is exhausted, which explains it: then only `FTEDatabaseConnectionFailures`
 * fires. Either way no single channel alerts on its own. Otherwise each failing channel alerts for itself.
 * Latency, escalation rate and the Gmail watch are judged on their own.
 */
export function healthObservations(
  raw: HealthMonitorInput,
  health: Finding,
  metrics: Finding,
  extra: HealthExtraFindings = {},
): Observation[] {
  const input = healthMonitorInputSchema.parse(raw);
  const { scope } = input;
  const readings = channelReadings(metrics);
  const failing = readings
    ? MONITORED_CHANNELS.filter((c) => readings[c].errorRate >= input.channelErrorRate)
    : [];
  const healthDown = health.status === 'down';
  /** fte-api fails as a whole: health down or every channel failing (one incident covers the channels). */
  const wholeApiDown = healthDown
    ? true
    : readings
      ? failing.length === MONITORED_CHANNELS.length
      : undefined;
  const exhausted = extra.pool ? poolExhausted(extra.pool, input.poolUtilisation) : undefined;
  // An exhausted pool is the cause the database runbook treats (500s on every endpoint): no second incident.
  const explained = exhausted === true;
  const allDown = explained && wholeApiDown !== undefined ? false : wholeApiDown;
  const describeChannels = readings
    ? MONITORED_CHANNELS.map((c) => `${c} errors ${pct(readings[c].errorRate)}`).join(', ')
    : `channel metrics unavailable (${metrics.summary})`;
  const apiSummary = healthDown
    ? `fte-api health check failing: ${health.summary}`
    : `${wholeApiDown ? 'every channel is failing' : 'not every channel is failing'}: ${describeChannels} (failing at ${pct(input.channelErrorRate)})`;

  const observations: Observation[] = [
    {
      fingerprint: monitorFingerprints.allChannelsDown(scope),
      holds: allDown,
      forMs: input.channelDownForMs,
      labels: labelsOf(MONITOR_ALERTNAMES.allChannelsDown, scope, 'health'),
      summary:
        explained && wholeApiDown
          ? `${apiSummary}; explained by the exhausted database pool (FTEDatabaseConnectionFailures)`
          : apiSummary,
    },
  ];

  for (const channel of MONITORED_CHANNELS) {
    const reading = readings?.[channel];
    observations.push({
      fingerprint: monitorFingerprints.channelDown(channel, scope),
      holds: wholeApiDown === true ? false : reading ? failing.includes(channel) : undefined,
      forMs: input.channelDownForMs,
      labels: labelsOf(CHANNEL_ALERTNAMES[channel], scope, 'health', { channel }),
      summary: reading
        ? `${channel} channel error rate ${pct(reading.errorRate)} over ${reading.requests} requests (failing at ${pct(input.channelErrorRate)})`
        : `${channel} channel: ${describeChannels}`,
    });
  }

  const slowest = readings
    ? MONITORED_CHANNELS.map((c) => ({ c, p95: readings[c].p95LatencyMs })).sort((a, b) => b.p95 - a.p95)[0]
    : undefined;
  observations.push({
    fingerprint: monitorFingerprints.agentLatency(scope),
    holds: slowest ? slowest.p95 > input.p95LatencyMs : undefined,
    forMs: input.latencyForMs,
    labels: labelsOf(MONITOR_ALERTNAMES.agentLatency, scope, 'health'),
    summary: slowest
      ? `slowest channel ${slowest.c}: p95 agent processing ${slowest.p95} ms (threshold ${input.p95LatencyMs} ms)`
      : describeChannels,
  });

  let overall: { rate: number; requests: number } | undefined;
  if (readings) {
    const requests = MONITORED_CHANNELS.reduce((s, c) => s + readings[c].requests, 0);
    const escalated = MONITORED_CHANNELS.reduce(
      (s, c) => s + readings[c].requests * readings[c].escalationRate,
      0,
    );
    overall = { rate: requests > 0 ? escalated / requests : 0, requests };
  }
  observations.push({
    fingerprint: monitorFingerprints.escalationRate(scope),
    holds: overall ? overall.rate > input.escalationRate : undefined,
    forMs: input.escalationForMs,
    labels: labelsOf(MONITOR_ALERTNAMES.escalationRate, scope, 'health'),
    summary: overall
      ? `escalation rate ${pct(overall.rate)} over ${overall.requests} requests (threshold ${pct(input.escalationRate)} for ${Math.round(input.escalationForMs / 60_000)} min)`
      : describeChannels,
  });

  if (extra.pool) {
    observations.push({
      fingerprint: monitorFingerprints.databasePool(scope),
      holds: exhausted,
      forMs: input.poolForMs,
      labels: labelsOf(MONITOR_ALERTNAMES.databaseConnectionFailures, scope, 'health'),
      summary: `${extra.pool.summary} (exhausted at ${pct(input.poolUtilisation)} of the connection limit)`,
    });
  }
  if (extra.gmailWatch) {
    const watch = extra.gmailWatch;
    observations.push({
      fingerprint: monitorFingerprints.gmailWatch(scope),
      // Expired is down; a watch close to expiring (degraded) is the renewal schedule's business.
      holds: watch.status === 'unknown' ? undefined : watch.status === 'down',
      forMs: input.gmailWatchForMs,
      labels: labelsOf(MONITOR_ALERTNAMES.gmailChannelDown, scope, 'health', { channel: 'email' }),
      summary: watch.summary,
    });
  }
  return observations;
}

// ---------------------------------------------------------------------------------------------------
// Kafka lag monitor and Gmail watch renewal
// ---------------------------------------------------------------------------------------------------

/** Lag of the consumer group above the threshold, from a `kafkaConsumerLag` finding. */
export function kafkaLagObservation(raw: KafkaLagMonitorInput, lag: Finding): Observation {
  const input = kafkaLagMonitorInputSchema.parse(raw);
  const total = lag.metrics.totalLag;
  const holds =
    lag.status === 'unknown'
      ? undefined
      : typeof total === 'number'
        ? total > input.threshold
        : lag.status === 'degraded' || lag.status === 'down';
  return {
    fingerprint: monitorFingerprints.kafkaLag(input.group, input.scope),
    holds,
    forMs: input.forMs,
    labels: labelsOf(MONITOR_ALERTNAMES.agentLatency, input.scope, 'kafka-lag', { group: input.group }),
    summary:
      typeof total === 'number'
        ? `consumer group ${input.group} lags ${total} messages (threshold ${input.threshold} for ${Math.round(input.forMs / 60_000)} min)`
        : lag.summary,
  };
}

export type RenewalOutcome = { ok: true; summary: string } | { ok: false; error: string };

/** A failed renewal is the Gmail channel going down within a day: the watch expires a day later. */
export function gmailRenewalObservation(scope: string, outcome: RenewalOutcome): Observation {
  return {
    fingerprint: monitorFingerprints.gmailWatchRenewal(scope),
    holds: !outcome.ok,
    forMs: 0,
    labels: labelsOf(MONITOR_ALERTNAMES.gmailChannelDown, scope, 'gmail-watch-renewal'),
    summary: outcome.ok ? outcome.summary : `Gmail watch renewal failed: ${outcome.error}`,
  };
}
