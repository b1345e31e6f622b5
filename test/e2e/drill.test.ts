import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { loadActivityDependencies, type ActivityDependencies } from '../../src/activities/index.js';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import { drillReportSchema } from '../../src/cli/drill-report.js';
import { runIncidentctl } from '../../src/cli/incidentctl.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { controlApp } from '../../src/sandbox/control.js';
import { createReceiver } from '../../src/starters/receiver.js';
import { createIncidentWorker } from '../../src/worker.js';
import { contactsFile, runbooksDir } from '../helpers/paths.js';
import { startTestSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { devServerEnv, services, uniqueName } from '../helpers/services.js';

// `incidentctl drill api-down` on real parts: the sandbox on the real control plane behind its control API,
// the receiver, the dev server, the worker with its real activities, and incidentctl itself.
let env: TestWorkflowEnvironment;
let sandbox: TestSandbox;
let deps: ActivityDependencies;
let worker: Worker;
let running: Promise<void>;
let receiver: FastifyInstance;
let control: FastifyInstance;
let receiverUrl: string;
let controlUrl: string;
const token = uniqueName('receiver-token-0123456789');
const taskQueue = uniqueName('drill');

beforeAll(async () => {
  env = await devServerEnv();
  sandbox = await startTestSandbox();
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
  receiverUrl = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/webhooks/alertmanager`;
  control = controlApp(sandbox);
  await control.listen({ port: 0, host: '127.0.0.1' });
  controlUrl = `http://127.0.0.1:${(control.server.address() as AddressInfo).port}`;
}, 180_000);

afterAll(async () => {
  await control?.close();
  await receiver?.close();
  worker?.shutdown();
  await running;
  await deps?.close();
  await sandbox?.stop();
  await env?.teardown();
});

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('incidentctl drill', () => {
  it('rehearses api-down: detected, approved, repaired, resolved by itself, reported, marked', async () => {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runIncidentctl(
      [
        'drill',
        'api-down',
        '--scope',
        sandbox.namespace,
        '--sandbox',
        controlUrl,
        '--receiver',
        receiverUrl,
        '--approve-as',
        'alice',
        '--complete-tasks-as',
        'erin',
        '--timeout',
        '5m',
        '--json',
      ],
      {
        stdout,
        stderr,
        env: {
          PATH: process.env.PATH,
          TEMPORAL_ADDRESS: services().temporalAddress,
          TEMPORAL_NAMESPACE: 'default',
          RECEIVER_TOKEN: token,
        },
        client: env.client,
        defaultUser: 'drill-test',
      },
    );
    expect(code, `${stderr.text}\n${stdout.text}`).toBe(0);
    const report = drillReportSchema.parse(JSON.parse(stdout.text));
    const id = incidentWorkflowId('all-channels-down', sandbox.namespace);
    expect(report).toMatchObject({
      scenario: 'api-down',
      outcome: 'passed',
      incidentId: id,
      marked: true,
      runbook: { expected: 'all-channels-down', actual: 'all-channels-down' },
      severity: 'P1',
      resolvedBy: 'system',
    });
    expect(report.steps.find((s) => s.id === 'restart-api')).toMatchObject({
      status: 'recovered',
      runs: 1,
      approvedBy: 'alice',
      expected: true,
    });
    expect(report.findings.diagnosis.find((f) => f.probe === 'api-health')?.status).toBe('down');
    expect(report.times.detectMs).not.toBeNull();
    expect(report.times.resolveMs).toBeGreaterThan(0);
    expect(report.actions.map((a) => a.action)).toEqual(['applied', 'sent alert', 'approved', 'sent alert']);
    // Live progress went to stderr with --json: the timeline as it happened.
    expect(stderr.text).toMatch(/step-verified: recovered after/);
    expect(sandbox.scenarios.active).toEqual([]);

    const described = await env.client.workflow.getHandle(id).describe();
    expect(described.status.name).toBe('COMPLETED');
    expect(described.searchAttributes.IncidentDrill).toEqual([true]);
    const post = env.client.workflow.getHandle(report.postIncidentWorkflowId as string);
    expect((await post.describe()).searchAttributes.IncidentDrill).toEqual([true]);

    const ledger = new pg.Client({ connectionString: sandbox.env.LEDGER_DATABASE_URL });
    await ledger.connect();
    try {
      const { rows } = await ledger.query<{ drill: boolean; status: string }>(
        'SELECT drill, status FROM incidents WHERE incident_id = $1',
        [id],
      );
      expect(rows).toEqual([{ drill: true, status: 'resolved' }]);
    } finally {
      await ledger.end();
    }
    await post.terminate('test finished');
  }, 300_000);
});
