import { readFile } from 'node:fs/promises';
import { z } from 'zod';

/** Turns a zod error over an env object into one line per bad variable, naming the variable. */
export function describeEnvError(error: z.ZodError): string {
  const lines = error.issues.map((issue) => {
    const name = issue.path.join('.') || '(environment)';
    return `  ${name}: ${issue.message}`;
  });
  return `Invalid configuration:\n${lines.join('\n')}`;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses env with the schema; throws a ConfigError that names each bad variable and never echoes values. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.output<S> {
  const result = schema.safeParse(env);
  if (!result.success) throw new ConfigError(describeEnvError(result.error));
  return result.data;
}

/** Reads a file a variable names; a ConfigError names the variable and the path, never the content. */
export async function readConfigFile(variable: string, path: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`Invalid configuration:\n  ${variable}: cannot read file ${path} (${code})`);
  }
}

// An empty value (e.g. `ENV TEMPORAL_BUILD_ID=${BUILD_ID}` with no build argument) means "not set".
export const unsetIfEmpty = (value: unknown) => (value === '' ? undefined : value);

const hostPort = z.string().regex(/^[A-Za-z0-9.\-[\]:]+:\d{1,5}$/, 'expected host:port, e.g. 127.0.0.1:7233');

const optionalPath = z.string().min(1).optional();

export const temporalEnvSchema = z
  .object({
    TEMPORAL_ADDRESS: hostPort.default('127.0.0.1:7233'),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    TEMPORAL_TASK_QUEUE: z.string().min(1).default('incident-response'),
    TEMPORAL_TLS_CERT: optionalPath,
    TEMPORAL_TLS_KEY: optionalPath,
    TEMPORAL_TLS_CA: optionalPath,
    TEMPORAL_TLS_SERVER_NAME: z.string().min(1).optional(),
    TEMPORAL_TLS: z.enum(['true', 'false']).optional(),
    TEMPORAL_API_KEY: z.string().min(1).optional(),
    TEMPORAL_API_KEY_FILE: optionalPath,
    TEMPORAL_UI_URL: z.url().default('http://127.0.0.1:8233'),
  })
  .superRefine((env, ctx) => {
    if (Boolean(env.TEMPORAL_TLS_CERT) !== Boolean(env.TEMPORAL_TLS_KEY)) {
      ctx.addIssue({
        code: 'custom',
        path: [env.TEMPORAL_TLS_CERT ? 'TEMPORAL_TLS_KEY' : 'TEMPORAL_TLS_CERT'],
        message: 'mTLS needs both TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY',
      });
    }
    if (env.TEMPORAL_API_KEY && env.TEMPORAL_API_KEY_FILE) {
      ctx.addIssue({
        code: 'custom',
        path: ['TEMPORAL_API_KEY_FILE'],
        message: 'set either TEMPORAL_API_KEY or TEMPORAL_API_KEY_FILE, not both',
      });
    }
  });

export type TemporalEnv = z.output<typeof temporalEnvSchema>;

/**
 * The worker's Worker Deployment settings (docs/upgrades.md). Versioning is on when a build id is given,
 * unless TEMPORAL_WORKER_VERSIONING=false (then the worker is unversioned and the build id unused).
 */
export const workerDeploymentEnvSchema = z
  .object({
    TEMPORAL_DEPLOYMENT_NAME: z
      .string()
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9_-]{0,199}$/,
        'expected letters, digits, "-" or "_" (no "." or ":"), at most 200 characters',
      )
      .default('fte-incident-response'),
    TEMPORAL_BUILD_ID: z.preprocess(
      unsetIfEmpty,
      z
        .string()
        .regex(
          /^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$/,
          'expected letters, digits, ".", "_", "+" or "-" (no ":"), at most 200 characters, e.g. a git commit',
        )
        .optional(),
    ),
    TEMPORAL_WORKER_VERSIONING: z.preprocess(unsetIfEmpty, z.enum(['true', 'false']).optional()),
    WORKFLOW_BUNDLE: z.preprocess(unsetIfEmpty, optionalPath),
  })
  .superRefine((env, ctx) => {
    if (env.TEMPORAL_WORKER_VERSIONING === 'true' && !env.TEMPORAL_BUILD_ID) {
      ctx.addIssue({
        code: 'custom',
        path: ['TEMPORAL_BUILD_ID'],
        message: 'worker versioning (TEMPORAL_WORKER_VERSIONING=true) needs a build id',
      });
    }
  });

export type WorkerDeploymentEnv = z.output<typeof workerDeploymentEnvSchema>;

/**
 * The worker's own endpoints: health and readiness (WORKER_HEALTH_PORT; off when unset, so several workers
 * can share a machine) and the Temporal SDK's metrics in Prometheus format (TEMPORAL_METRICS_ADDRESS,
 * host:port; off when unset). Both listen on loopback unless told otherwise: a container sets 0.0.0.0.
 */
export const workerEndpointsEnvSchema = z.object({
  WORKER_HEALTH_PORT: z.preprocess(unsetIfEmpty, z.coerce.number().int().min(0).max(65_535).optional()),
  WORKER_HEALTH_HOST: z.string().min(1).default('127.0.0.1'),
  TEMPORAL_METRICS_ADDRESS: z.preprocess(unsetIfEmpty, hostPort.optional()),
});

export type WorkerEndpointsEnv = z.output<typeof workerEndpointsEnvSchema>;

/**
 * WORKER_MAX_CACHED_WORKFLOWS: how many workflows the worker keeps in memory between their tasks (one evicted
 * is replayed from its history at its next task); unset, derived from the heap (defaultMaxCachedWorkflows).
 */
export const workerCacheEnvSchema = z.object({
  WORKER_MAX_CACHED_WORKFLOWS: z.preprocess(
    unsetIfEmpty,
    z.coerce.number().int().min(0).max(100_000).optional(),
  ),
});
