import { z } from 'zod';
import { parseEnv } from '../config.js';
import { DEFAULT_SCOPE } from '../domain/alerts.js';
import { durationSchema, formatDuration } from '../domain/duration.js';

// Thresholds and intervals of the monitor schedules, from MONITOR_* variables (defaults in docs/monitors.md).

const duration = (fallback: string) => z.string().trim().default(fallback).pipe(durationSchema);
const numberVar = (fallback: number) =>
  z
    .string()
    .trim()
    .regex(/^\d+(\.\d+)?$/, 'expected a number')
    .default(String(fallback))
    .transform(Number);
const rateVar = (fallback: number) =>
  numberVar(fallback).pipe(z.number().max(1, 'expected a rate between 0 and 1'));
const intVar = (fallback: number) => numberVar(fallback).pipe(z.number().int('expected a whole number'));

const MIN_INTERVAL_MS = 10_000;
const GMAIL_WATCH_LIFETIME_MS = 7 * 86_400_000;

export const monitorEnvSchema = z
  .object({
    MONITOR_SCOPE: z.string().trim().min(1).max(100).default(DEFAULT_SCOPE),
    MONITOR_REPEAT_INTERVAL: duration('1h'),
    MONITOR_HEALTH_INTERVAL: duration('1m'),
    MONITOR_CHANNEL_ERROR_RATE: rateVar(0.5),
    MONITOR_CHANNEL_DOWN_FOR: duration('1m'),
    MONITOR_LATENCY_P95_MS: intVar(10_000),
    MONITOR_LATENCY_FOR: duration('0s'),
    MONITOR_ESCALATION_RATE: rateVar(0.3),
    MONITOR_ESCALATION_FOR: duration('10m'),
    MONITOR_DB_POOL_UTILISATION: rateVar(0.95),
    MONITOR_DB_POOL_FOR: duration('1m'),
    MONITOR_GMAIL_WATCH_FOR: duration('0s'),
    MONITOR_KAFKA_INTERVAL: duration('1m'),
    MONITOR_KAFKA_GROUP: z.string().trim().min(1).max(200).default('fte-message-processor'),
    MONITOR_KAFKA_TOPIC: z.string().trim().min(1).max(200).optional(),
    MONITOR_KAFKA_LAG_THRESHOLD: intVar(1000),
    MONITOR_KAFKA_LAG_FOR: duration('5m'),
    MONITOR_GMAIL_RENEW_EVERY: duration('6d'),
    MONITOR_GMAIL_RETRY_EVERY: duration('15m'),
    MONITOR_GMAIL_RETRY_FOR: duration('1d'),
  })
  .superRefine((env, ctx) => {
    const problem = (path: string, message: string) =>
      ctx.addIssue({ code: 'custom', path: [path], message });
    for (const name of [
      'MONITOR_HEALTH_INTERVAL',
      'MONITOR_KAFKA_INTERVAL',
      'MONITOR_REPEAT_INTERVAL',
    ] as const) {
      if (env[name] < MIN_INTERVAL_MS) problem(name, `must be at least ${formatDuration(MIN_INTERVAL_MS)}`);
    }
    if (env.MONITOR_DB_POOL_UTILISATION <= 0) {
      problem('MONITOR_DB_POOL_UTILISATION', 'must be above 0 (a share of the connection limit, up to 1)');
    }
    if (
      env.MONITOR_GMAIL_RENEW_EVERY >= GMAIL_WATCH_LIFETIME_MS ||
      env.MONITOR_GMAIL_RENEW_EVERY < 3_600_000
    ) {
      problem(
        'MONITOR_GMAIL_RENEW_EVERY',
        'must be at least 1h and less than 7d (Gmail watches expire after 7 days)',
      );
    }
    if (env.MONITOR_GMAIL_RETRY_EVERY < 1000) problem('MONITOR_GMAIL_RETRY_EVERY', 'must be at least 1s');
    if (env.MONITOR_GMAIL_RETRY_FOR >= env.MONITOR_GMAIL_RENEW_EVERY) {
      problem('MONITOR_GMAIL_RETRY_FOR', 'must be shorter than MONITOR_GMAIL_RENEW_EVERY');
    }
  });

export interface MonitorConfig {
  /** The alerts' namespace label: the incidents' scope. */
  scope: string;
  /** A firing alert is delivered again this often while its condition holds. */
  repeatEveryMs: number;
  health: {
    everyMs: number;
    channelErrorRate: number;
    channelDownForMs: number;
    p95LatencyMs: number;
    latencyForMs: number;
    escalationRate: number;
    escalationForMs: number;
    /** Share of the platform database's connection limit in use at which its pool is exhausted. */
    poolUtilisation: number;
    poolForMs: number;
    /** How long the Gmail watch must be expired before the alert fires. */
    gmailWatchForMs: number;
  };
  kafkaLag: { everyMs: number; group: string; topic?: string; threshold: number; forMs: number };
  gmailRenewal: { everyMs: number; retryEveryMs: number; retryForMs: number };
}

/** The monitors' configuration from MONITOR_* variables; a ConfigError names each bad variable. */
export function loadMonitorConfig(env: NodeJS.ProcessEnv = process.env): MonitorConfig {
  const e = parseEnv(monitorEnvSchema, env);
  return {
    scope: e.MONITOR_SCOPE,
    repeatEveryMs: e.MONITOR_REPEAT_INTERVAL,
    health: {
      everyMs: e.MONITOR_HEALTH_INTERVAL,
      channelErrorRate: e.MONITOR_CHANNEL_ERROR_RATE,
      channelDownForMs: e.MONITOR_CHANNEL_DOWN_FOR,
      p95LatencyMs: e.MONITOR_LATENCY_P95_MS,
      latencyForMs: e.MONITOR_LATENCY_FOR,
      escalationRate: e.MONITOR_ESCALATION_RATE,
      escalationForMs: e.MONITOR_ESCALATION_FOR,
      poolUtilisation: e.MONITOR_DB_POOL_UTILISATION,
      poolForMs: e.MONITOR_DB_POOL_FOR,
      gmailWatchForMs: e.MONITOR_GMAIL_WATCH_FOR,
    },
    kafkaLag: {
      everyMs: e.MONITOR_KAFKA_INTERVAL,
      group: e.MONITOR_KAFKA_GROUP,
      ...(e.MONITOR_KAFKA_TOPIC ? { topic: e.MONITOR_KAFKA_TOPIC } : {}),
      threshold: e.MONITOR_KAFKA_LAG_THRESHOLD,
      forMs: e.MONITOR_KAFKA_LAG_FOR,
    },
    gmailRenewal: {
      everyMs: e.MONITOR_GMAIL_RENEW_EVERY,
      retryEveryMs: e.MONITOR_GMAIL_RETRY_EVERY,
      retryForMs: e.MONITOR_GMAIL_RETRY_FOR,
    },
  };
}
