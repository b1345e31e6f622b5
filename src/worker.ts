import { pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { Runtime, Worker, type NativeConnection, type WorkerOptions } from '@temporalio/worker';
import { connectWorker, loadTemporalSettings, type TemporalSettings } from './temporal.js';
import { createActivities, loadActivityDependencies, type ActivityDependencies } from './activities/index.js';
import {
  ConfigError,
  parseEnv,
  workerCacheEnvSchema,
  workerDeploymentEnvSchema,
  workerEndpointsEnvSchema,
} from './config.js';
import { InvalidFileError } from './activities/runbooks.js';
import { loadWorkflowBundle, workflowsPath } from './workflow-bundle.js';
import { temporalPollerCheck, workerHealthApp } from './worker-health.js';
import { createLogger, loadLogLevel, temporalLogger, type Logger } from './logging.js';
import {
  startTracing,
  tracesUrl,
  WORKER_SERVICE_NAME,
  workerTracingOptions,
  type Tracing,
} from './tracing.js';

export { workflowsPath };

type WorkerDeploymentOptions = NonNullable<WorkerOptions['workerDeploymentOptions']>;

/** Which Worker Deployment Version this worker is (docs/upgrades.md). */
export interface WorkerDeploymentSettings {
  deploymentName: string;
  /** Unset (no build id, or TEMPORAL_WORKER_VERSIONING=false): the worker is unversioned, as before versioning. */
  buildId?: string;
  /** WORKFLOW_BUNDLE: a prebuilt workflow bundle to run. */
  bundleFile?: string;
}

export function loadWorkerDeploymentSettings(env: NodeJS.ProcessEnv = process.env): WorkerDeploymentSettings {
  const cfg = parseEnv(workerDeploymentEnvSchema, env);
  const versioned = Boolean(cfg.TEMPORAL_BUILD_ID) && cfg.TEMPORAL_WORKER_VERSIONING !== 'false';
  return {
    deploymentName: cfg.TEMPORAL_DEPLOYMENT_NAME,
    ...(versioned ? { buildId: cfg.TEMPORAL_BUILD_ID } : {}),
    ...(cfg.WORKFLOW_BUNDLE ? { bundleFile: cfg.WORKFLOW_BUNDLE } : {}),
  };
}

/**
 * The worker's deployment options: versioned when there is a build id. A workflow type that declares no
 * behaviour (src/workflow-entry.ts declares each of the product's) is pinned to the build that started it.
 * There is no "build id without versioning": the server refuses the behaviours the workflows declare from
 * a worker that is not versioned.
 */
export function workerDeploymentOptions(
  settings: WorkerDeploymentSettings,
): WorkerDeploymentOptions | undefined {
  if (!settings.buildId) return undefined;
  return {
    version: { deploymentName: settings.deploymentName, buildId: settings.buildId },
    useWorkerVersioning: true,
    defaultVersioningBehavior: 'PINNED',
  };
}

export function describeDeployment(settings: WorkerDeploymentSettings): string {
  return settings.buildId
    ? `Worker Deployment Version ${settings.deploymentName}:${settings.buildId}`
    : 'unversioned worker (no TEMPORAL_BUILD_ID)';
}

export interface IncidentWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  dependencies: ActivityDependencies;
  /** Default: unversioned. */
  deployment?: WorkerDeploymentSettings;
  /** Default: bundled now from the sources. */
  workflowBundle?: { code: string };
  /** Default: off (the workflows' spans are dropped). */
  tracing?: Tracing;
  /** Default: defaultMaxCachedWorkflows() (WORKER_MAX_CACHED_WORKFLOWS). */
  maxCachedWorkflows?: number;
  /** Payload encryption (PAYLOAD_KEYS); default: none. */
  dataConverter?: TemporalSettings['dataConverter'];
}

/** What a cached workflow of this bundle holds, with a margin: about 2.1 MB measured (bench/open-reports.ts). */
const CACHED_WORKFLOW_MIB = 2.5;
/** Reports wake a few times a day and incidents are few: a larger cache buys replays nobody waits for. */
const MAX_DEFAULT_CACHED_WORKFLOWS = 150;

/**
 * The cache bound that fits the workflows' heap (the workflow thread gets the process's V8 limits). Each
 * workflow evaluates the bundle's modules, zod schemas included, so it holds about 2 MB; the SDK's default
 * counts 600 a GiB of heap limit: 145 in the heap of a 1 GiB container, where 150 ran the workflow thread
 * out of heap, and 2,395 on a large host, where 10,000 open reports took 5 GB (bench/open-reports.ts).
 */
export function defaultMaxCachedWorkflows(heapLimitBytes = getHeapStatistics().heap_size_limit): number {
  // The limit counts the young generation too (192 MiB of the 448 that --max-old-space-size=256 gives).
  const fits = Math.floor((heapLimitBytes / 2 ** 20 - 300) / CACHED_WORKFLOW_MIB);
  return Math.min(MAX_DEFAULT_CACHED_WORKFLOWS, Math.max(2, fits));
}

/** WORKER_MAX_CACHED_WORKFLOWS, else the default for this process's heap. */
export function loadWorkerCacheSize(env: NodeJS.ProcessEnv = process.env): number {
  return parseEnv(workerCacheEnvSchema, env).WORKER_MAX_CACHED_WORKFLOWS ?? defaultMaxCachedWorkflows();
}

export async function createIncidentWorker(options: IncidentWorkerOptions): Promise<Worker> {
  const deployment = options.deployment && workerDeploymentOptions(options.deployment);
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle ?? (await loadWorkflowBundle(undefined, false)).bundle,
    activities: createActivities(options.dependencies),
    maxCachedWorkflows: options.maxCachedWorkflows ?? defaultMaxCachedWorkflows(),
    ...workerTracingOptions(options.tracing),
    ...(deployment ? { workerDeploymentOptions: deployment } : {}),
    ...(options.dataConverter ? { dataConverter: options.dataConverter } : {}),
  });
}

async function main(logger: Logger): Promise<void> {
  const endpoints = parseEnv(workerEndpointsEnvSchema);
  const settings = await loadTemporalSettings();
  const deployment = loadWorkerDeploymentSettings();
  const maxCachedWorkflows = loadWorkerCacheSize();
  const traces = tracesUrl();
  // Before any connection: the SDK's runtime is created once, with its logger and telemetry.
  Runtime.install({
    logger: temporalLogger(logger, { traceIds: traces !== undefined }),
    ...(endpoints.TEMPORAL_METRICS_ADDRESS
      ? {
          telemetryOptions: {
            metrics: { prometheus: { bindAddress: endpoints.TEMPORAL_METRICS_ADDRESS } },
          },
        }
      : {}),
  });
  const tracing = traces
    ? startTracing({ serviceName: WORKER_SERVICE_NAME, url: traces, logger })
    : undefined;
  const workflows = await loadWorkflowBundle(deployment.bundleFile);
  const connection = await connectWorker(settings);
  const dependencies = await loadActivityDependencies();
  const worker = await createIncidentWorker({
    connection,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    dependencies,
    deployment,
    workflowBundle: workflows.bundle,
    maxCachedWorkflows,
    ...(tracing ? { tracing } : {}),
    ...(settings.dataConverter ? { dataConverter: settings.dataConverter } : {}),
  });
  logger.info(
    `worker: polling task queue ${settings.taskQueue} on ${settings.address} (${settings.namespace}) as ` +
      `${describeDeployment(deployment)}; workflows ${workflows.source} (code sha256 ${workflows.digest.slice(0, 12)}); ` +
      `caches up to ${maxCachedWorkflows} workflows`,
  );
  const health =
    endpoints.WORKER_HEALTH_PORT === undefined
      ? undefined
      : workerHealthApp({
          state: () => worker.getState(),
          check: temporalPollerCheck({
            connection,
            namespace: settings.namespace,
            taskQueue: settings.taskQueue,
            identity: worker.options.identity,
          }),
        });
  if (health) {
    await health.listen({ host: endpoints.WORKER_HEALTH_HOST, port: endpoints.WORKER_HEALTH_PORT });
    logger.info(
      `worker: /healthz and /readyz on ${endpoints.WORKER_HEALTH_HOST}:${endpoints.WORKER_HEALTH_PORT}`,
    );
  }
  if (endpoints.TEMPORAL_METRICS_ADDRESS) {
    logger.info(`worker: Temporal SDK metrics on http://${endpoints.TEMPORAL_METRICS_ADDRESS}/metrics`);
  }
  if (tracing) logger.info(`worker: traces to ${tracing.endpoint} (OTLP/HTTP)`);
  try {
    await worker.run();
  } finally {
    await health?.close();
    await dependencies.close();
    await connection.close();
    await tracing?.shutdown();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  // Until LOG_LEVEL is read (a bad one is reported too), at the default level.
  let logger = createLogger();
  const start = async () => {
    logger = createLogger({ level: loadLogLevel() });
    await main(logger);
  };
  start().catch((error: unknown) => {
    // Only the message: an error's other fields may hold a request with its credentials.
    logger.fatal(error instanceof Error ? error.message : String(error));
    // 2: the configuration is wrong (make start does not restart it); 1: anything else.
    process.exit(error instanceof ConfigError || error instanceof InvalidFileError ? 2 : 1);
  });
}
