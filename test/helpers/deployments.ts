import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import { decodeVersioningBehavior } from '@temporalio/common';
import { workerDeploymentOptions } from '../../src/worker.js';
import { workflowTraceSinks } from '../../src/tracing.js';
import { services } from './services.js';

const run = promisify(execFile);

/** The temporal CLI against the suite's dev server (what docs/upgrades.md tells operators to run). */
export async function temporalCli(args: string[]): Promise<string> {
  const { stdout } = await run(services().temporalCli, [
    ...args,
    '--address',
    services().temporalAddress,
    '--namespace',
    services().temporalNamespace,
  ]);
  return stdout;
}

/**
 * A worker of one build of a Worker Deployment, with the product's deployment options. It caches no
 * workflow, so every workflow task goes through the server's routing (no sticky queue to hide it).
 */
export async function deploymentWorker(
  env: TestWorkflowEnvironment,
  options: {
    taskQueue: string;
    deploymentName: string;
    buildId: string;
    /** false: the same worker unversioned (TEMPORAL_WORKER_VERSIONING=false): it serves any workflow. */
    versioning?: boolean;
    workflowBundle: WorkflowBundleWithSourceMap;
    activities: Record<string, (...args: never[]) => Promise<unknown>>;
  },
): Promise<Worker> {
  const deployment = workerDeploymentOptions({
    deploymentName: options.deploymentName,
    ...(options.versioning === false ? {} : { buildId: options.buildId }),
  });
  return Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue: options.taskQueue,
    workflowBundle: options.workflowBundle,
    activities: options.activities,
    sinks: workflowTraceSinks(undefined),
    maxCachedWorkflows: 0,
    ...(deployment ? { workerDeploymentOptions: deployment } : {}),
  });
}

/**
 * `temporal worker deployment set-current-version`, retried until the build's worker has polled (the
 * server refuses a version with no pollers).
 */
export async function setCurrentVersion(deploymentName: string, buildId: string): Promise<void> {
  let last: unknown;
  for (let i = 0; i < 100; i++) {
    try {
      await temporalCli([
        'worker',
        'deployment',
        'set-current-version',
        '--deployment-name',
        deploymentName,
        '--build-id',
        buildId,
        '--yes',
      ]);
      return;
    } catch (error) {
      last = (error as { stderr?: string }).stderr ?? error;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  throw new Error(`set-current-version ${deploymentName} ${buildId} kept failing: ${String(last)}`);
}

/** The workflow's versioning info as the server describes it. */
export async function versioningOf(
  handle: WorkflowHandle,
): Promise<{ behavior?: string; deploymentName?: string; buildId?: string }> {
  const info = (await handle.describe()).raw.workflowExecutionInfo?.versioningInfo;
  return {
    ...(info?.behavior ? { behavior: decodeVersioningBehavior(info.behavior) } : {}),
    ...(info?.deploymentVersion?.deploymentName
      ? { deploymentName: info.deploymentVersion.deploymentName }
      : {}),
    ...(info?.deploymentVersion?.buildId ? { buildId: info.deploymentVersion.buildId } : {}),
  };
}

/** For each completed workflow task of the run, the build id of the worker that completed it ('' unversioned). */
export async function taskBuilds(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .map((e) => e.workflowTaskCompletedEventAttributes)
    .filter((a) => a != null)
    .map((a) => a.deploymentVersion?.buildId ?? a.workerVersion?.buildId ?? '');
}

/** Messages of the run's failed workflow tasks (a non-determinism error shows here). */
export async function failedTasks(handle: WorkflowHandle): Promise<string[]> {
  const history = await handle.fetchHistory();
  return (history.events ?? [])
    .map((e) => e.workflowTaskFailedEventAttributes)
    .filter((a) => a != null)
    .map((a) => a.failure?.message ?? String(a.cause));
}
