import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import { buildWorkflowBundle } from '../../src/workflow-bundle.js';
import { workflowTraceSinks } from '../../src/tracing.js';
import type { incidentWorkflow } from '../../src/workflows/incident.js';
import type { IncidentTrigger } from '../../src/domain/commands.js';
import type { Alert } from '../../src/domain/alerts.js';
import { incidentStatusQuery, TASK_QUEUE } from '../../src/workflows/api.js';
import { signalIncident } from '../../src/starters/deliver.js';
import { uniqueName } from './services.js';

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/**
 * The product's workflow bundle, built once per test file (webpack is the slow part of a worker) by the
 * function that builds the bundle production workers run (`npm run build:workflows`).
 */
export function productBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= buildWorkflowBundle(quietLogger);
  return bundle;
}

const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

export async function productWorker(
  env: TestWorkflowEnvironment,
  activities: Record<string, (...args: never[]) => Promise<unknown>>,
  taskQueue = uniqueName(TASK_QUEUE),
): Promise<{ worker: Worker; taskQueue: string }> {
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await productBundle(),
    activities,
    sinks: workflowTraceSinks(undefined),
  });
  return { worker, taskQueue };
}

export function alert(alertname: string, fingerprint: string, status: Alert['status'] = 'firing'): Alert {
  return {
    fingerprint,
    status,
    labels: { alertname, namespace: 'customer-success-fte' },
    annotations: { summary: `${alertname} (${fingerprint})` },
    startsAt: '2026-11-27T03:00:00Z',
  };
}

/** The message a person sees when an Update is refused (the server wraps it in WorkflowUpdateFailedError). */
export async function refusal(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => {
      throw new Error('expected the update to be refused');
    },
    (e: unknown) => e as Error & { cause?: Error },
  );
  return error.cause?.message ?? error.message;
}

/** Starts (or joins) the incident of a runbook through the product's own path (deliver.ts: signalWithStart). */
export async function raise(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  runbookId: string,
  alerts: Alert[],
  extra: Partial<IncidentTrigger> = {},
): Promise<WorkflowHandle<typeof incidentWorkflow>> {
  const scope = `ns-${taskQueue}`;
  return signalIncident(
    { client: env.client, taskQueue },
    { runbookId, scope, source: 'alertmanager', ...extra },
    alerts,
  );
}

export const status = (handle: WorkflowHandle) => handle.query(incidentStatusQuery);

/** Polls a query until the predicate holds (workflow tasks run asynchronously to the test). */
export async function until<T>(
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  tries = 100,
): Promise<T> {
  let last: T | undefined;
  for (let i = 0; i < tries; i++) {
    try {
      last = await read();
      if (predicate(last)) return last;
    } catch (error) {
      // The incident answers queries once it has loaded its runbook.
      const cause = (error as { cause?: unknown }).cause;
      if (!`${String(error)} ${String(cause)}`.includes('still opening')) throw error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; last value: ${JSON.stringify(last)?.slice(0, 2000)}`);
}
