// One pino logger for a process: JSON lines on stdout, credentials redacted whatever a log call is given.
// The receiver logs through it (and Fastify's request logs), the worker installs it as the Temporal
// runtime's logger, so the SDK's, the activities' (Context.current().log) and the workflows' (`log` from
// @temporalio/workflow) lines are JSON lines of the same shape.
import type { LogLevel as TemporalLogLevel, LogMetadata, Logger as TemporalLogger } from '@temporalio/common';
import { pino, type DestinationStream, type Logger } from 'pino';
import { z } from 'zod';
import { parseEnv } from './config.js';

export type { Logger } from 'pino';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export const logLevelSchema = z.enum(LOG_LEVELS);

/** The worker's log level (LOG_LEVEL; the receiver has RECEIVER_LOG_LEVEL). An empty value means unset. */
export const logEnvSchema = z.object({
  LOG_LEVEL: z.preprocess((v) => (v === '' ? undefined : v), logLevelSchema.default('info')),
});

export function loadLogLevel(env: NodeJS.ProcessEnv = process.env): LogLevel {
  return parseEnv(logEnvSchema, env).LOG_LEVEL;
}

const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'headers.cookie',
  'authorization',
  'token',
  'password',
  'apiKey',
  // An activity's task token completes or fails the activity from outside: the adapter drops it, this is
  // the second line of defence.
  'taskToken',
];

interface RequestLike {
  method: string;
  url: string;
  ip?: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Default: stdout, written synchronously so the last lines before an exit are never lost. */
  destination?: DestinationStream;
}

/** A pino logger that never writes credentials, whatever a log call is given. */
export function createLogger(options: LoggerOptions = {}): Logger {
  return pino(
    {
      level: options.level ?? 'info',
      redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
      serializers: {
        req: (req: RequestLike) => ({
          method: req.method,
          url: req.url,
          remoteAddress: req.ip,
          userAgent: req.headers['user-agent'],
        }),
        err: pino.stdSerializers.err,
        // The SDK passes failures as `error` ("Activity failed", "Workflow failed").
        error: pino.stdSerializers.err,
      },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

const TRACE_KEYS = ['trace_id', 'span_id', 'trace_flags'];

export interface TemporalLoggerOptions {
  /**
   * Whether log lines keep the trace ids the OpenTelemetry interceptors add. Off when tracing is off: the
   * workflow interceptors are in the bundle either way, and ids of spans nobody receives would mislead.
   */
  traceIds: boolean;
}

/** The fields a line carries: the SDK's metadata, with the run id named `runId` and no task token. */
function fields(meta: LogMetadata | undefined, options: TemporalLoggerOptions): Record<string, unknown> {
  if (!meta) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(meta)) {
    if (key === 'taskToken') continue;
    if (!options.traceIds && TRACE_KEYS.includes(key)) continue;
    out[key === 'workflowRunId' ? 'runId' : key] = value;
  }
  return out;
}

const LEVELS: Record<TemporalLogLevel, 'trace' | 'debug' | 'info' | 'warn' | 'error'> = {
  TRACE: 'trace',
  DEBUG: 'debug',
  INFO: 'info',
  WARN: 'warn',
  ERROR: 'error',
};

/** The pino logger as the Temporal runtime's logger (Runtime.install({ logger })). */
export function temporalLogger(logger: Logger, options: TemporalLoggerOptions): TemporalLogger {
  const log = (level: TemporalLogLevel, message: string, meta?: LogMetadata) => {
    logger[LEVELS[level] ?? 'info'](fields(meta, options), message);
  };
  return {
    log,
    trace: (message, meta) => log('TRACE', message, meta),
    debug: (message, meta) => log('DEBUG', message, meta),
    info: (message, meta) => log('INFO', message, meta),
    warn: (message, meta) => log('WARN', message, meta),
    error: (message, meta) => log('ERROR', message, meta),
  };
}
