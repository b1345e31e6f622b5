import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerEnv, timeSkippingEnv, uniqueName } from '../helpers/services.js';
import { smokeRoundTrip, sleepOneDay } from '../fixtures/smoke-workflows.js';

const workflowsPath = fileURLToPath(new URL('../fixtures/smoke-workflows.ts', import.meta.url));
const activities = { echo: async (text: string) => text.toUpperCase() };

describe('Temporal dev server', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await devServerEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('runs a workflow and its activity, and finds it again by a custom search attribute', async () => {
    const taskQueue = uniqueName('smoke');
    const tag = uniqueName('smoke-runbook');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath,
      activities,
    });
    const result = await worker.runUntil(
      env.client.workflow.execute(smokeRoundTrip, { taskQueue, workflowId: tag, args: [tag] }),
    );
    expect(result).toBe(`HELLO ${tag.toUpperCase()}`);

    // Visibility is eventually consistent: poll briefly for the indexed attribute.
    let found: string[] = [];
    for (let i = 0; i < 50 && found.length === 0; i++) {
      found = [];
      for await (const wf of env.client.workflow.list({ query: `IncidentRunbook="${tag}"` })) {
        found.push(wf.workflowId);
      }
      if (found.length === 0) await new Promise((r) => setTimeout(r, 200));
    }
    expect(found).toEqual([tag]);
  });
});

describe('Temporal time-skipping server', () => {
  let env: TestWorkflowEnvironment;
  beforeAll(async () => {
    env = await timeSkippingEnv();
  });
  afterAll(async () => {
    await env?.teardown();
  });

  it('finishes a workflow that sleeps 24 hours', async () => {
    const taskQueue = uniqueName('sleep');
    const worker = await Worker.create({
      connection: env.nativeConnection,
      taskQueue,
      workflowsPath,
      activities,
    });
    const slept = await worker.runUntil(
      env.client.workflow.execute(sleepOneDay, { taskQueue, workflowId: uniqueName('sleep') }),
    );
    expect(slept).toBeGreaterThanOrEqual(24 * 60 * 60 * 1000);
  });
});
