import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, type Worker } from '@temporalio/worker';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { loadActivityDependencies, type ActivityDependencies } from '../../src/activities/index.js';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/platform.js';
import { createReceiver } from '../../src/starters/receiver.js';
import { createIncidentWorker } from '../../src/worker.js';
import { loadWorkflowBundle } from '../../src/workflow-bundle.js';
import { projectRoot } from './paths.js';
import type { BenchServices } from './services.js';

// The product as `make start` runs it, in this process: the simulated platform on the real control plane,
// the Alertmanager receiver, and the worker (started and stopped by the benchmark, so a phase can be
// measured with or without it). Each instance has its own namespace, databases and task queue.

export const uniqueName = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

export interface BenchProduct {
  services: BenchServices;
  sandbox: Sandbox;
  namespace: string;
  taskQueue: string;
  client: Client;
  connection: Connection;
  receiverUrl: string;
  receiverToken: string;
  /** The worker's environment (Temporal, task queue, the sandbox's platform and ledger). */
  workerEnv: Record<string, string>;
  /** Starts the in-process worker (prebuilt bundle built once per process); resolves once it runs. */
  startWorker(): Promise<Worker>;
  stopWorker(): Promise<void>;
  /** Sends one Alertmanager webhook with these alerts (labels get namespace = the sandbox's by default). */
  post(
    alerts: { labels: Record<string, string>; status?: 'firing' | 'resolved'; fingerprint?: string }[],
  ): Promise<number>;
  stop(): Promise<void>;
}

let bundle: Promise<{ code: string }> | undefined;
export const workflowBundle = () => (bundle ??= loadWorkflowBundle(undefined, false).then((b) => b.bundle));

export async function startBenchProduct(services: BenchServices): Promise<BenchProduct> {
  const namespace = uniqueName('bench');
  const suffix = namespace.replace(/[^a-z0-9]/g, '_');
  const sandbox = await startSandbox({
    postgresAdminUrl: services.postgresUrl,
    kafkaBrokers: services.kafkaBrokers,
    adminKubeconfig: services.kubeconfig,
    namespace,
    platformDatabase: `platform_${suffix}`,
    ledgerDatabase: `ledger_${suffix}`,
  });
  await sandbox.clusterReady;
  const taskQueue = uniqueName('bench');
  const connection = await Connection.connect({ address: services.temporalAddress });
  const client = new Client({ connection, namespace: 'default' });
  const workerEnv: Record<string, string> = {
    ...sandbox.env,
    TEMPORAL_ADDRESS: services.temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: taskQueue,
  };
  const { runbooks } = await loadRunbookDir(`${projectRoot}runbooks`, `${projectRoot}config/contacts.yaml`);
  const token = uniqueName('bench-token-0123456789');
  const receiver: FastifyInstance = createReceiver({
    client,
    runbooks: runbooks.map((r) => r.runbook),
    token,
    taskQueue,
  });
  await receiver.listen({ port: 0, host: '127.0.0.1' });
  const receiverUrl = `http://127.0.0.1:${(receiver.server.address() as AddressInfo).port}/webhooks/alertmanager`;

  let worker:
    | { worker: Worker; running: Promise<void>; deps: ActivityDependencies; native: NativeConnection }
    | undefined;
  const stopWorker = async () => {
    if (!worker) return;
    const w = worker;
    worker = undefined;
    w.worker.shutdown();
    await w.running;
    await w.deps.close();
    await w.native.close();
  };

  return {
    services,
    sandbox,
    namespace,
    taskQueue,
    client,
    connection,
    receiverUrl,
    receiverToken: token,
    workerEnv,
    async startWorker() {
      if (worker) return worker.worker;
      const deps = await loadActivityDependencies(workerEnv);
      const native = await NativeConnection.connect({ address: services.temporalAddress });
      const w = await createIncidentWorker({
        connection: native,
        namespace: 'default',
        taskQueue,
        dependencies: deps,
        workflowBundle: await workflowBundle(),
      });
      worker = { worker: w, running: w.run(), deps, native };
      return w;
    },
    stopWorker,
    async post(alerts) {
      const response = await fetch(receiverUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          version: '4',
          groupKey: '{}:{}',
          truncatedAlerts: 0,
          status: alerts.every((a) => a.status === 'resolved') ? 'resolved' : 'firing',
          receiver: 'fte-incident-response',
          groupLabels: {},
          commonLabels: {},
          commonAnnotations: {},
          externalURL: 'http://alertmanager.example:9093',
          alerts: alerts.map((a) => ({
            status: a.status ?? 'firing',
            labels: { namespace, severity: 'critical', ...a.labels },
            annotations: { summary: 'benchmark' },
            startsAt: new Date(Date.now() - 60_000).toISOString(),
            endsAt: '0001-01-01T00:00:00Z',
            generatorURL: 'http://prometheus.example:9090/graph',
            fingerprint: a.fingerprint ?? randomBytes(8).toString('hex'),
          })),
        }),
      });
      await response.arrayBuffer();
      return response.status;
    },
    async stop() {
      await stopWorker();
      await receiver.close();
      await sandbox.stop({ removeNamespace: true });
      const admin = new pg.Client({ connectionString: services.postgresUrl });
      await admin.connect();
      try {
        for (const name of [`platform_${suffix}`, `ledger_${suffix}`])
          await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await admin.end();
      }
      await connection.close();
    },
  };
}
