import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { WorkflowHandle } from '@temporalio/client';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { alert, productBundle, raise, status } from '../helpers/workflows.js';
import {
  deploymentWorker,
  failedTasks,
  setCurrentVersion,
  taskBuilds,
  temporalCli,
  versioningOf,
} from '../helpers/deployments.js';
import { incidentActions, postIncidentActions } from '../../src/workflows/api.js';
import {
  describeDeployment,
  loadWorkerDeploymentSettings,
  workerDeploymentOptions,
} from '../../src/worker.js';
import { buildWorkflowBundle } from '../../src/workflow-bundle.js';

// Worker Versioning on the real dev server (docs/upgrades.md): an incident opened on build A finishes on
// build A after build B, with an incompatible change to incidentWorkflow, became the current build.
const buildBPath = fileURLToPath(new URL('../fixtures/versioning/build-b-workflows.ts', import.meta.url));
const noop = () => {};
const quiet = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

let env: TestWorkflowEnvironment;
let bundleA: WorkflowBundleWithSourceMap;
let bundleB: WorkflowBundleWithSourceMap;
beforeAll(async () => {
  env = await devServerEnv();
  // Build A is the product's bundle; build B is bundled the same way from the fixture's entry.
  [bundleA, bundleB] = await Promise.all([
    productBundle(),
    bundleWorkflowCode({ workflowsPath: buildBPath, logger: quiet }),
  ]);
});
const taskQueues: string[] = [];
afterAll(async () => {
  // Incidents and reports a failed run left open, and the reports the incidents started.
  for (const queue of taskQueues) {
    const query = `TaskQueue="${queue}" AND ExecutionStatus="Running"`;
    for await (const wf of env.client.workflow.list({ query })) {
      await env.client.workflow
        .getHandle(wf.workflowId)
        .terminate('test cleanup')
        .catch(() => {});
    }
  }
  await env?.teardown();
});

/** The platform of all-channels-down with the database down: the incident waits to restart postgres. */
function platform(): FakePlatform {
  const p = new FakePlatform().heals('restartStatefulSetPod', { postgres: 'ok' });
  p.status = { postgres: 'down' };
  p.metrics = { pods: { 'uid/postgres-0': 'uid-1' } };
  return p;
}

async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string): Promise<T> {
  let last: unknown;
  for (let i = 0; i < 300; i++) {
    try {
      const value = await read();
      if (ok(value)) return value;
      last = value;
    } catch (error) {
      last = error; // handlers not registered yet, runbook still loading
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(
    `timed out waiting for ${what}; last: ${String(JSON.stringify(last) ?? last).slice(0, 1000)}`,
  );
}

async function openIncident(taskQueue: string, scope: string): Promise<WorkflowHandle> {
  const alerts = [alert('FTEAllChannelsDown', `fp-${scope}`)];
  const handle = await raise(env, taskQueue, 'all-channels-down', alerts, { scope });
  await eventually(
    () => status(handle),
    (s) => s.awaitingApproval.includes('restart-postgres'),
    `${handle.workflowId} waiting for approval`,
  );
  return handle;
}

describe('worker deployment settings', () => {
  it('turn versioning on with a build id, pin by default, and name bad variables', () => {
    expect(loadWorkerDeploymentSettings({})).toEqual({ deploymentName: 'fte-incident-response' });
    expect(workerDeploymentOptions(loadWorkerDeploymentSettings({}))).toBeUndefined();
    const versioned = loadWorkerDeploymentSettings({
      TEMPORAL_BUILD_ID: 'abc1234',
      TEMPORAL_DEPLOYMENT_NAME: 'fte',
      WORKFLOW_BUNDLE: 'dist/workflows.bundle.js',
    });
    expect(versioned).toEqual({
      deploymentName: 'fte',
      buildId: 'abc1234',
      bundleFile: 'dist/workflows.bundle.js',
    });
    expect(workerDeploymentOptions(versioned)).toEqual({
      version: { deploymentName: 'fte', buildId: 'abc1234' },
      useWorkerVersioning: true,
      defaultVersioningBehavior: 'PINNED',
    });
    expect(describeDeployment(versioned)).toBe('Worker Deployment Version fte:abc1234');
    // Versioning off: the build id is not used.
    const off = loadWorkerDeploymentSettings({
      TEMPORAL_BUILD_ID: 'v1.2.3',
      TEMPORAL_WORKER_VERSIONING: 'false',
    });
    expect(workerDeploymentOptions(off)).toBeUndefined();
    // An empty build id (a Docker build without the argument) is no build id.
    expect(loadWorkerDeploymentSettings({ TEMPORAL_BUILD_ID: '' })).toEqual({
      deploymentName: 'fte-incident-response',
    });
    expect(() => loadWorkerDeploymentSettings({ TEMPORAL_WORKER_VERSIONING: 'true' })).toThrow(
      /TEMPORAL_BUILD_ID: worker versioning .* needs a build id/,
    );
    expect(() =>
      loadWorkerDeploymentSettings({ TEMPORAL_DEPLOYMENT_NAME: 'a.b', TEMPORAL_BUILD_ID: 'x:y' }),
    ).toThrow(/TEMPORAL_DEPLOYMENT_NAME: .*\n\s+TEMPORAL_BUILD_ID: /);
  });

  it('build the bundle the replay tests check with the function production builds it with', async () => {
    expect((await buildWorkflowBundle(quiet)).code).toBe(bundleA.code);
  });
});

describe('Worker Versioning on the dev server', () => {
  it('finishes an incident opened on build A on build A while build B serves new incidents', async () => {
    const taskQueue = uniqueName('versioning');
    taskQueues.push(taskQueue);
    const deploymentName = uniqueName('fte-versioning');
    const onA = platform();
    const onB = platform();
    const workerA = await deploymentWorker(env, {
      taskQueue,
      deploymentName,
      buildId: 'build-a',
      workflowBundle: bundleA,
      activities: onA.activities(),
    });

    await workerA.runUntil(async () => {
      await setCurrentVersion(deploymentName, 'build-a');
      const old = await openIncident(taskQueue, uniqueName('old'));
      expect(await versioningOf(old)).toEqual({ behavior: 'PINNED', deploymentName, buildId: 'build-a' });

      // Build B, with the incompatible change, is deployed beside A and becomes current.
      const workerB = await deploymentWorker(env, {
        taskQueue,
        deploymentName,
        buildId: 'build-b',
        workflowBundle: bundleB,
        activities: onB.activities(),
      });
      await workerB.runUntil(async () => {
        await setCurrentVersion(deploymentName, 'build-b');
        expect(await temporalCli(['worker', 'deployment', 'describe', '--name', deploymentName])).toMatch(
          /CurrentVersionBuildID\s+build-b/,
        );

        // A new incident goes to build B.
        const fresh = await openIncident(taskQueue, uniqueName('new'));
        expect(await versioningOf(fresh)).toEqual({ behavior: 'PINNED', deploymentName, buildId: 'build-b' });

        // What docs/upgrades.md has operators run to see which incidents still need build A.
        const pinnedToA = await eventually(
          () =>
            temporalCli([
              'workflow',
              'list',
              '--query',
              `TemporalWorkerDeploymentVersion="${deploymentName}:build-a" AND ExecutionStatus="Running"`,
            ]),
          (out) => out.includes(old.workflowId),
          'the old incident listed as pinned to build A',
        );
        expect(pinnedToA).not.toContain(fresh.workflowId);

        // The old incident is driven to the end: its tasks and its activities stay on build A.
        await old.executeUpdate(incidentActions.approve.update, {
          args: [{ step: 'restart-postgres', by: 'carol' }],
        });
        await eventually(
          async () => onA.timesActed('restartStatefulSetPod'),
          (n) => n === 1,
          'the restart on build A',
        );
        await old.executeUpdate(incidentActions.resolve.update, {
          args: [{ by: 'alice', summary: 'restarted' }],
        });
        const oldOutcome = (await old.result()) as Record<string, unknown>;
        expect(oldOutcome).toMatchObject({ incidentId: old.workflowId, resolvedBy: 'alice' });
        expect(oldOutcome).not.toHaveProperty('build');
        expect(new Set(await taskBuilds(old))).toEqual(new Set(['build-a']));
        expect(await failedTasks(old)).toEqual([]);
        expect(onB.timesActed('restartStatefulSetPod')).toBe(0);

        // Its post-incident report follows the current build (auto-upgrade): started beside its parent on
        // build A, its next workflow task runs on build B.
        const report = env.client.workflow.getHandle(oldOutcome.postIncidentWorkflowId as string);
        await report.executeUpdate(postIncidentActions.submitReport.update, {
          args: [{ by: 'alice', rootCause: 'disk full' }],
        });
        const reportBuilds = await eventually(
          () => taskBuilds(report),
          (builds) => builds.at(-1) === 'build-b',
          'a workflow task of the report on build B',
        );
        expect(reportBuilds[0]).toBe('build-a');
        expect(await versioningOf(report)).toEqual({
          behavior: 'AUTO_UPGRADE',
          deploymentName,
          buildId: 'build-b',
        });
        expect(await failedTasks(report)).toEqual([]);
        await report.terminate('test: the report is not what this test is about');

        // The new incident finishes on build B, which says so.
        await fresh.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
        const freshOutcome = await fresh.result();
        expect(freshOutcome).toMatchObject({ build: 'B', resolvedBy: 'alice' });
        await env.client.workflow
          .getHandle(freshOutcome.postIncidentWorkflowId as string)
          .terminate('test: the report is not what this test is about');
        expect(new Set(await taskBuilds(fresh))).toEqual(new Set(['build-b']));
      });
    });
  }, 180_000);

  it('without versioning, build B breaks an incident opened on build A (the change really is incompatible)', async () => {
    const taskQueue = uniqueName('unversioned');
    taskQueues.push(taskQueue);
    const deploymentName = uniqueName('fte-unversioned');
    const options = { taskQueue, deploymentName, versioning: false };
    const workerA = await deploymentWorker(env, {
      ...options,
      buildId: 'build-a',
      workflowBundle: bundleA,
      activities: platform().activities(),
    });
    const old = await workerA.runUntil(() => openIncident(taskQueue, uniqueName('old')));

    // Build A is replaced by build B (a plain rolling deploy): B picks up the incident's next task.
    const workerB = await deploymentWorker(env, {
      ...options,
      buildId: 'build-b',
      workflowBundle: bundleB,
      activities: platform().activities(),
    });
    await workerB.runUntil(async () => {
      await old.signal(incidentActions.addNote.signal, { by: 'alice', text: 'still on it' });
      const failures = await eventually(
        () => failedTasks(old),
        (f) => f.length > 0,
        'the failed workflow task on build B',
      );
      expect(failures[0]).toMatch(/[Nn]ondeterminism/);
      await old.terminate('test: build B cannot run it');
    });
  }, 120_000);
});
