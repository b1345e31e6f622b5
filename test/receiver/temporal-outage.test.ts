import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { projectRoot } from '../helpers/paths.js';
import { uniqueName } from '../helpers/services.js';
import { productWorker, until } from '../helpers/workflows.js';
import { amAlert, amPayload, listeningReceiver, post, sample, scrape, type Answer } from './harness.js';
import { freePortTriple } from '../helpers/ports.js';

const run = promisify(execFile);

// A throwaway Temporal dev server of its own: this file stops and restarts it, never the shared one.
const dataDir = `.data/temporal-receiver-test/${uniqueName('run')}`;
let port: number;
const temporal = async (command: 'start' | 'stop') => {
  await run('bash', [`${projectRoot}scripts/temporal.sh`, command], {
    cwd: projectRoot,
    env: { ...process.env, TEMPORAL_PORT: String(port), TEMPORAL_UI: 'off', TEMPORAL_DATA_DIR: dataDir },
    timeout: 120_000,
  });
};

let env: TestWorkflowEnvironment;
let worker: Worker;
let working: Promise<void>;
let app: FastifyInstance;
let url: string;

beforeAll(async () => {
  port = await freePortTriple();
  await temporal('start');
  env = await TestWorkflowEnvironment.createFromExistingServer({ address: `127.0.0.1:${port}` });
  const platform = new FakePlatform();
  ({ worker } = await productWorker(env, platform.activities(), uniqueName('receiver-outage')));
  working = worker.run();
  ({ app, url } = await listeningReceiver(env.client, worker.options.taskQueue, {
    temporalTimeoutMs: 3_000,
  }));
}, 180_000);

afterAll(async () => {
  await app?.close();
  if (worker && worker.getState() === 'RUNNING') worker.shutdown();
  await working?.catch(() => undefined);
  await env?.teardown();
  if (port) await temporal('stop');
  await rm(`${projectRoot}${dataDir}`, { recursive: true, force: true });
}, 120_000);

const webhook = () => `${url}/webhooks/alertmanager`;
const opened = (scope: string) =>
  until(
    () =>
      env.client.workflow
        .getHandle(incidentWorkflowId('all-channels-down', scope))
        .query(incidentStatusQuery),
    (s) => s.findings.pods !== undefined,
    `incident in ${scope}`,
    600,
  );

describe('Temporal outage', () => {
  it('answers 503 while Temporal is down, and the re-delivery opens the incident once it is back', async () => {
    const before = (await post(webhook(), amPayload([amAlert('FTEAllChannelsDown', 'fp-up', 'ns-before')])))
      .status;
    expect(before).toBe(202);
    await opened('ns-before');

    await temporal('stop');
    const payload = amPayload([amAlert('FTEAllChannelsDown', 'fp-outage', 'ns-outage')]);
    const down = await post(webhook(), payload);
    const declared = await post(`${url}/incidents`, { runbook: 'triage', scope: 'ns-outage', by: 'alice' });
    const notReady = await fetch(`${url}/readyz`);

    expect(down.status).toBe(503);
    expect(down.body.error).toMatch(
      /^Temporal is unavailable \((UNAVAILABLE|DEADLINE_EXCEEDED)\); retry later$/,
    );
    expect(down.headers.get('retry-after')).toBe('30');
    expect(declared.status).toBe(503);
    expect(notReady.status).toBe(503);
    const metrics = await scrape(url);
    expect(sample(metrics, 'incident_receiver_requests_rejected_total', { reason: 'unavailable' })).toBe(2);
    expect(sample(metrics, 'incident_receiver_requests_rejected_total', { reason: 'error' })).toBe(0);
    expect(sample(metrics, 'incident_receiver_visibility_up')).toBe(0);

    await temporal('start');
    // Like Alertmanager: re-deliver while the answer is 503 (the client reconnects with a backoff).
    let again: Answer = down;
    for (let attempt = 0; attempt < 20 && again.status === 503; attempt++)
      again = await post(webhook(), payload);

    expect(again.status).toBe(202);
    const s = await opened('ns-outage');
    expect(s.alerts['fp-outage']).toMatchObject({ status: 'firing', deliveries: 1 });
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  }, 240_000);
});
