import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { loadActivityDependencies, type ActivityDependencies } from '../../src/activities/index.js';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';

import { createReceiver } from '../../src/starters/receiver.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { createIncidentWorker } from '../../src/worker.js';
import { contactsFile, projectRoot, runbooksDir } from '../helpers/paths.js';
import { startTestSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { devServerEnv, services, uniqueName } from '../helpers/services.js';
import { until } from '../helpers/workflows.js';

const run = promisify(execFile);

// The whole product on real parts: the receiver, the dev server, the worker with its real activities, the
// simulated platform (its workloads on the real local control plane, fte-api, status pages, local PostgreSQL
// and Kafka) and incidentctl.
let env: TestWorkflowEnvironment;
let sandbox: TestSandbox;
let namespace: string;
let deps: ActivityDependencies;
let worker: Worker;
let running: Promise<void>;
let receiver: FastifyInstance;
let receiverUrl: string;
const token = uniqueName('receiver-token-0123456789');
const taskQueue = uniqueName('e2e');

beforeAll(async () => {
  env = await devServerEnv();
  sandbox = await startTestSandbox();
  namespace = sandbox.namespace;
  deps = await loadActivityDependencies({
    ...sandbox.env,
    TEMPORAL_ADDRESS: services().temporalAddress,
    TEMPORAL_TASK_QUEUE: taskQueue,
  });
  worker = await createIncidentWorker({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    dependencies: deps,
  });
  running = worker.run();
  const { runbooks } = await loadRunbookDir(runbooksDir, contactsFile);
  receiver = createReceiver({
    client: env.client,
    runbooks: runbooks.map((r) => r.runbook),
    token,
    taskQueue,
  });
  await receiver.listen({ port: 0, host: '127.0.0.1' });
  receiverUrl = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await receiver?.close();
  worker?.shutdown();
  await running;
  await deps?.close();
  await sandbox?.stop();
  await env?.teardown();
});

async function alertmanager(status: 'firing' | 'resolved'): Promise<Response> {
  const example = await readFile(`${projectRoot}docs/examples/alertmanager-all-channels-down.json`, 'utf8');
  const payload = JSON.parse(
    example.replaceAll('customer-success-fte', namespace).replaceAll('"firing"', `"${status}"`),
  );
  return fetch(`${receiverUrl}/webhooks/alertmanager`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify(payload),
  });
}

async function incidentctl(args: string[]): Promise<string> {
  const { stdout } = await run('node', [`${projectRoot}bin/incidentctl.js`, ...args], {
    env: { ...process.env, TEMPORAL_ADDRESS: services().temporalAddress, TEMPORAL_NAMESPACE: 'default' },
  });
  return stdout;
}

describe('an alert, end to end', () => {
  it('goes from Alertmanager to a verified remediation and a pending post-incident report', async () => {
    await sandbox.apply('api-down');
    const podsBefore = (await sandbox.cluster.podsOf('fte-api')).map((p) => p.uid);
    const apiBefore = await sandbox.cluster.deployment('fte-api');
    await until(
      () => sandbox.cluster.podsOf('fte-api'),
      (pods) => pods.every((p) => p.reason === 'CrashLoopBackOff'),
      'kwok to report the fte-api pods crash-looping',
    );

    const firing = await alertmanager('firing');
    expect(firing.status).toBe(202);
    const id = incidentWorkflowId('all-channels-down', namespace);
    const handle = env.client.workflow.getHandle(id);
    const waiting = await until(
      () => handle.query(incidentStatusQuery),
      (s) => s.awaitingApproval.includes('restart-api'),
      'diagnosis and the approval request',
      300,
    );
    expect(waiting.findings['api-health']?.status).toBe('down');
    expect(waiting.findings.pods?.summary).toContain('CrashLoopBackOff');
    expect(waiting.findings.postgres?.status).toBe('ok');
    expect(waiting.findings.kafka?.status).toBe('ok');

    expect(await incidentctl(['approve', id, 'restart-api', '--as', 'carol'])).toContain(
      'approved step restart-api',
    );
    const recovered = await until(
      () => handle.query(incidentStatusQuery),
      (s) => s.status === 'Monitoring',
      'verification (20 s of real time)',
      600,
    );
    expect(recovered.steps.find((s) => s.id === 'restart-api')).toMatchObject({
      status: 'recovered',
      runs: 1,
    });
    const podsAfter = await sandbox.cluster.podsOf('fte-api');
    expect(podsAfter.length).toBe(3);
    expect(podsAfter.every((p) => p.ready && !podsBefore.includes(p.uid))).toBe(true);
    expect((await sandbox.cluster.deployment('fte-api')).generation).toBe(apiBefore.generation + 1);

    expect((await alertmanager('resolved')).status).toBe(202);
    const outcome = (await handle.result()) as { postIncidentWorkflowId?: string; resolvedBy: string };
    expect(outcome.resolvedBy).toBe('system');
    const reports = await until(
      async () => {
        const ids: string[] = [];
        for await (const wf of env.client.workflow.list({
          query: `ReportStatus="Pending" AND WorkflowId="${outcome.postIncidentWorkflowId}"`,
        })) {
          ids.push(wf.workflowId);
        }
        return ids;
      },
      (ids) => ids.length === 1,
      'the pending report in visibility',
    );
    expect(reports).toEqual([outcome.postIncidentWorkflowId]);
    expect(await incidentctl(['list', '--reports'])).toContain(outcome.postIncidentWorkflowId);

    const ledger = new pg.Client({ connectionString: sandbox.env.LEDGER_DATABASE_URL });
    await ledger.connect();
    try {
      const { rows } = await ledger.query<{ type: string }>(
        'SELECT type FROM incident_events WHERE incident_id = $1 ORDER BY at',
        [id],
      );
      expect(rows.map((r) => r.type)).toEqual(
        expect.arrayContaining(['opened', 'step-approved', 'step-run', 'step-verified', 'resolved']),
      );
    } finally {
      await ledger.end();
    }
    await env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string).terminate('test finished');
  }, 180_000);
});
