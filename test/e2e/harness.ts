import { execFile } from 'node:child_process';
import { afterAll, afterEach, beforeAll, expect } from 'vitest';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import pg from 'pg';
import type { WorkflowHandle } from '@temporalio/client';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import { loadActivityDependencies, type ActivityDependencies } from '../../src/activities/index.js';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import type { IncidentState } from '../../src/domain/incident.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { controlApp } from '../../src/sandbox/control.js';
import { createReceiver } from '../../src/starters/receiver.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { createIncidentWorker } from '../../src/worker.js';
import { contactsFile, projectRoot, runbooksDir } from '../helpers/paths.js';
import { recordKubeRequests } from '../helpers/rbac.js';
import { startTestSandbox, type TestSandbox } from '../helpers/sandbox.js';
import { devServerEnv, services, uniqueName } from '../helpers/services.js';
import { until } from '../helpers/workflows.js';

const run = promisify(execFile);

/**
 * The whole product on real parts, as `make start` runs it: the dev server, the worker with its real
 * activities, the Alertmanager receiver, the simulated platform on the real control plane, incidentctl and
 * the temporal CLI. One per test file; each has its own namespace, databases and task queue.
 */
export interface Product {
  env: TestWorkflowEnvironment;
  sandbox: TestSandbox;
  namespace: string;
  taskQueue: string;
  /** The Temporal frontend the product uses (the suite's dev server unless ProductOptions named another). */
  temporalAddress: string;
  /**
   * The environment a worker of this product runs with (its settings: Temporal, task queue, the sandbox's
   * platform and ledger), as the in-process worker gets it; for a worker started as a process of its own.
   */
  workerEnv: Record<string, string>;
  /** The receiver's Alertmanager webhook and its token. */
  receiverUrl: string;
  receiverToken: string;
  /** The sandbox's control port (GET/POST /scenarios), as `make start` serves it. */
  controlUrl: string;
  /** Sends what Alertmanager sends for one alert of a Prometheus rule, firing or resolved. */
  alert(alertname: string, status: 'firing' | 'resolved', labels?: Record<string, string>): Promise<number>;
  incidentId(runbook: string): string;
  handle(runbook: string): WorkflowHandle;
  status(runbook: string): Promise<IncidentState>;
  /** Polls the incident's status query until `predicate` holds, for up to `seconds`. */
  waitFor(
    runbook: string,
    predicate: (s: IncidentState) => boolean,
    what: string,
    seconds?: number,
  ): Promise<IncidentState>;
  incidentctl(args: string[]): Promise<string>;
  /** Waits until the report workflow shows up in the Temporal UI's `ReportStatus="Pending"` list. */
  pendingReport(postIncidentWorkflowId: string | undefined): Promise<void>;
  temporal(args: string[]): Promise<string>;
  /** The ledger's event types of an incident, in order. */
  ledgerEvents(incidentId: string): Promise<string[]>;
  /**
   * After a test: ends what it left open (a failed test's incident) and clears every fault, so the next
   * test of the file starts on a healthy platform.
   */
  reset(runbook: string): Promise<void>;
  stop(): Promise<void>;
}

export interface ProductOptions {
  /**
   * 'in-process' (the default): the product's worker runs inside the test process. 'none': no worker is
   * started; the test runs its own with `workerEnv` (test/helpers/worker-process.ts).
   */
  worker?: 'in-process' | 'none';
  /** A Temporal frontend of the test's own (host:port) instead of the suite's dev server. */
  temporalAddress?: string;
  /** The receiver's token (Alertmanager's bearer token or basic-auth password); default: a fresh random one. */
  receiverToken?: string;
  /** Where the receiver logs; default: it does not log. */
  receiverLogger?: FastifyBaseLogger;
  /**
   * Variables the worker's environment gets on top of the sandbox's (other database credentials, a contacts
   * file, the variables its Slack and webhook targets name), given the sandbox's environment.
   */
  extraWorkerEnv?: (sandboxEnv: TestSandbox['env']) => Record<string, string>;
}

export async function startProduct(options: ProductOptions = {}): Promise<Product> {
  const temporalAddress = options.temporalAddress ?? services().temporalAddress;
  const env = options.temporalAddress
    ? await TestWorkflowEnvironment.createFromExistingServer({
        address: temporalAddress,
        namespace: 'default',
      })
    : await devServerEnv();
  const sandbox = await startTestSandbox();
  const namespace = sandbox.namespace;
  const taskQueue = uniqueName('e2e');
  const workerEnv: Record<string, string> = {
    ...sandbox.env,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_TASK_QUEUE: taskQueue,
    ...options.extraWorkerEnv?.(sandbox.env),
  };
  let deps: ActivityDependencies | undefined;
  let worker: Worker | undefined;
  let running: Promise<void> | undefined;
  let receiver: FastifyInstance | undefined;
  let control: FastifyInstance | undefined;
  const token = options.receiverToken ?? uniqueName('receiver-token-0123456789');
  const stop = async () => {
    await control?.close();
    await receiver?.close();
    worker?.shutdown();
    await running;
    await deps?.close();
    // What the worker asked the Kubernetes API for, checked against the shipped Role after the suite.
    await recordKubeRequests(
      expect.getState().testPath ?? 'unknown',
      namespace,
      sandbox.kubeProxy.requestKinds,
    );
    await sandbox.stop();
    await env.teardown();
  };
  try {
    if (options.worker !== 'none') {
      deps = await loadActivityDependencies(workerEnv);
      worker = await createIncidentWorker({
        connection: env.nativeConnection,
        namespace: 'default',
        taskQueue,
        dependencies: deps,
      });
      running = worker.run();
    }
    const { runbooks } = await loadRunbookDir(runbooksDir, contactsFile);
    receiver = createReceiver({
      client: env.client,
      runbooks: runbooks.map((r) => r.runbook),
      token,
      taskQueue,
      ...(options.receiverLogger ? { logger: options.receiverLogger } : {}),
    });
    await receiver.listen({ port: 0, host: '127.0.0.1' });
    control = controlApp(sandbox);
    await control.listen({ port: 0, host: '127.0.0.1' });
  } catch (error) {
    await stop();
    throw error;
  }
  const address = (app: FastifyInstance) => `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  const receiverUrl = `${address(receiver)}/webhooks/alertmanager`;
  const cliEnv = {
    ...process.env,
    TEMPORAL_ADDRESS: temporalAddress,
    TEMPORAL_NAMESPACE: 'default',
  };

  const incidentId = (runbook: string) => incidentWorkflowId(runbook, namespace);
  const handle = (runbook: string) => env.client.workflow.getHandle(incidentId(runbook));
  const status = (runbook: string) => handle(runbook).query(incidentStatusQuery);

  return {
    env,
    sandbox,
    namespace,
    taskQueue,
    temporalAddress,
    workerEnv,
    receiverUrl,
    receiverToken: token,
    controlUrl: address(control),
    async alert(alertname, alertStatus, labels = {}) {
      const alertLabels = { alertname, namespace, severity: 'critical', ...labels };
      const response = await fetch(receiverUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          version: '4',
          groupKey: `{}:{alertname="${alertname}"}`,
          truncatedAlerts: 0,
          status: alertStatus,
          receiver: 'fte-incident-response',
          groupLabels: { alertname },
          commonLabels: alertLabels,
          commonAnnotations: {},
          externalURL: 'http://alertmanager.example:9093',
          alerts: [
            {
              status: alertStatus,
              labels: alertLabels,
              annotations: { summary: `${alertname} (end-to-end test)` },
              startsAt: new Date(Date.now() - 60_000).toISOString(),
              endsAt: alertStatus === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z',
              generatorURL: 'http://prometheus.example:9090/graph',
              fingerprint: `e2e-${alertname.toLowerCase()}`,
            },
          ],
        }),
      });
      return response.status;
    },
    incidentId,
    handle,
    status,
    waitFor: (runbook, predicate, what, seconds = 60) =>
      until(() => status(runbook), predicate, what, seconds * 10),
    async incidentctl(args) {
      const { stdout } = await run('node', [`${projectRoot}bin/incidentctl.js`, ...args], { env: cliEnv });
      return stdout;
    },
    async pendingReport(postIncidentWorkflowId) {
      const query = `ReportStatus="Pending" AND WorkflowId="${postIncidentWorkflowId}"`;
      await until(
        async () => {
          const ids: string[] = [];
          for await (const wf of env.client.workflow.list({ query })) ids.push(wf.workflowId);
          return ids;
        },
        (ids) => ids.length === 1,
        `${postIncidentWorkflowId} in the pending reports (visibility)`,
        200,
      );
    },
    async temporal(args) {
      const { stdout } = await run(
        services().temporalCli,
        [...args, '--address', temporalAddress, '--namespace', 'default'],
        { env: cliEnv },
      );
      return stdout;
    },
    async ledgerEvents(id) {
      const ledger = new pg.Client({ connectionString: sandbox.env.LEDGER_DATABASE_URL });
      await ledger.connect();
      try {
        const { rows } = await ledger.query<{ type: string }>(
          'SELECT type FROM incident_events WHERE incident_id = $1 ORDER BY at',
          [id],
        );
        return rows.map((r) => r.type);
      } finally {
        await ledger.end();
      }
    },
    async reset(runbook) {
      const description = await handle(runbook)
        .describe()
        .catch(() => undefined);
      if (description?.status.name === 'RUNNING') await handle(runbook).terminate('test cleanup');
      await sandbox.apply('healthy');
    },
    stop,
  };
}

/**
 * The product for the tests of one file, started before them and stopped after; after each test the
 * incident of `runbook` is ended and the platform made healthy again (see Product.reset).
 */
export function useProduct(
  runbook: string,
  options: ProductOptions | (() => ProductOptions) = {},
): () => Product {
  let product: Product | undefined;
  beforeAll(async () => {
    // A function: options known only once earlier hooks ran (a dev server of the test's own).
    product = await startProduct(typeof options === 'function' ? options() : options);
  }, 180_000);
  afterEach(() => product?.reset(runbook));
  afterAll(() => product?.stop());
  return () => {
    if (!product) throw new Error('the product did not start');
    return product;
  };
}
