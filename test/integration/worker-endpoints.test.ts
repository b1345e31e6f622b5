import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useProduct } from '../e2e/harness.js';
import { prebuiltWorkflowBundle, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';
import { until } from '../helpers/workflows.js';
import { freePort } from '../helpers/ports.js';

// The worker process as a supervisor sees it: /healthz and /readyz on WORKER_HEALTH_PORT (ready once Temporal
// lists it as a poller of its task queue) and the Temporal SDK's own metrics in Prometheus format on
// TEMPORAL_METRICS_ADDRESS; SIGTERM stops it cleanly.

const product = useProduct('all-channels-down', { worker: 'none' });

let dir = '';
let worker: WorkerProcess | undefined;
let health = '';
let metrics = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fte-worker-endpoints-'));
  const bundle = await prebuiltWorkflowBundle(dir);
  const [healthPort, metricsPort] = [await freePort(), await freePort()];
  health = `http://127.0.0.1:${healthPort}`;
  metrics = `http://127.0.0.1:${metricsPort}/metrics`;
  worker = startWorkerProcess({
    env: {
      ...product().workerEnv,
      WORKFLOW_BUNDLE: bundle,
      WORKER_HEALTH_PORT: String(healthPort),
      TEMPORAL_METRICS_ADDRESS: `127.0.0.1:${metricsPort}`,
    },
    logFile: join(dir, 'worker.log'),
  });
}, 240_000);
afterAll(async () => {
  await worker?.kill('SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

const get = async (url: string) => {
  try {
    const response = await fetch(url);
    return { status: response.status, text: await response.text() };
  } catch {
    return { status: 0, text: '' };
  }
};

describe('the worker process', () => {
  it('is alive, turns ready once it polls, exports SDK metrics, and stops cleanly on SIGTERM', async () => {
    const w = worker as WorkerProcess;
    const ready = await until(
      () => get(`${health}/readyz`),
      (r) => r.status === 200,
      'the worker ready',
      900,
    );
    expect(JSON.parse(ready.text)).toEqual({ status: 'ready' });
    // Ready means what it says: Temporal lists this process as a poller.
    await w.polling(product().env.connection, 'default', 5);
    const alive = await get(`${health}/healthz`);
    expect(alive.status).toBe(200);
    expect(JSON.parse(alive.text)).toEqual({ status: 'ok', state: 'RUNNING' });

    // The SDK's metrics for this task queue, in Prometheus text format.
    const taskQueue = product().taskQueue;
    const exported = await until(
      () => get(metrics),
      (r) => r.text.includes(`task_queue="${taskQueue}"`),
      'SDK metrics for the task queue',
      300,
    );
    expect(exported.text).toMatch(/^# TYPE temporal_\w+ /m);
    expect(exported.text).toMatch(
      new RegExp(`^temporal_\\w+\\{[^}]*task_queue="${taskQueue}"[^}]*\\} \\d`, 'm'),
    );

    await w.kill('SIGTERM');
    expect(await w.exited).toEqual({ code: 0, signal: null });
    expect((await get(`${health}/healthz`)).status).toBe(0);
  }, 300_000);
});
