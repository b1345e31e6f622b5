import { appendFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, expect } from 'vitest';
import pg from 'pg';
import proto from '@temporalio/proto';
import type { IncidentState } from '../../src/domain/incident.js';
import type { ProxiedRequest } from '../../src/sandbox/api-proxy.js';
import { matches, type RequestMatch } from '../../src/sandbox/request-faults.js';
import { useProduct, type Product, type ProductOptions } from '../e2e/harness.js';
import { prebuiltWorkflowBundle, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

// Crash tests with real processes: the product of test/e2e/harness.ts with its worker as a process of its own
// (test/helpers/worker-process.ts), which a test kills with SIGKILL at a chosen point of an incident and
// replaces with a new one, as a supervisor (make start, Kubernetes) would.

export interface Chaos {
  product: Product;
  /** The worker process running now. */
  readonly worker: WorkerProcess;
  /** Starts a new worker process (the last one must be gone) and waits until it polls. */
  startWorker(): Promise<WorkerProcess>;
  /** SIGKILLs the running worker; `phase` goes to its log, to read a failure by. */
  crash(phase: string): Promise<void>;
  /**
   * Crashes the worker with a Kubernetes API request in flight: the API proxy freezes it (SIGSTOP) just before
   * the first request matching `match` goes on to the API server, the server carries the request out and
   * answers, and the worker is SIGKILLed before it could read the answer. Resolves with the request's record.
   */
  crashOnRequest(match: RequestMatch, phase: string): Promise<ProxiedRequest>;
  /**
   * Freezes the worker (SIGSTOP), runs `send` (which gives the incident work), waits until the server has
   * handed the incident's next workflow task to the frozen worker, then SIGKILLs it: the kill lands with that
   * task in flight.
   */
  crashWithWorkflowTaskInFlight(workflowId: string, send: () => Promise<void>, phase: string): Promise<void>;
  /** Sends one alert as Alertmanager does, with its own fingerprint; answers the receiver's status. */
  alert(alertname: string, fingerprint: string, status: 'firing' | 'resolved'): Promise<number>;
  /**
   * Sends it again while the receiver answers 503 (Temporal unavailable), once a second as Alertmanager
   * retries, for at most `seconds`; answers every status it got.
   */
  alertUntilAccepted(
    alertname: string,
    fingerprint: string,
    status: 'firing' | 'resolved',
    seconds: number,
  ): Promise<number[]>;
  /** The writes (create, update, patch, delete) the worker made that the API server accepted, since the test began. */
  writes(): Array<Pick<ProxiedRequest, 'verb' | 'resource' | 'name' | 'subresource'>>;
  /** The ledger's events of one occurrence of an incident, and its row's event count. */
  ledger(
    incidentId: string,
    occurrence: string,
  ): Promise<{ events: { type: string; eventId: string }[]; eventCount: number }>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export function useChaos(
  runbook: string,
  options: () => Omit<ProductOptions, 'worker'> = () => ({}),
): () => Chaos {
  const product = useProduct(runbook, () => ({ ...options(), worker: 'none' }));
  let dir: string | undefined;
  let bundle: string | undefined;
  let worker: WorkerProcess | undefined;
  let logFile = '';

  const start = async (): Promise<WorkerProcess> => {
    const p = product();
    if (!dir || !bundle) throw new Error('the chaos harness did not start');
    const next = startWorkerProcess({
      env: { ...p.workerEnv, WORKFLOW_BUNDLE: bundle },
      logFile,
    });
    worker = next;
    await next.polling(p.env.connection, 'default');
    return next;
  };
  const alive = () => worker?.running === true;
  const kill = async (w: WorkerProcess, phase: string) => {
    await appendFile(logFile, `\n=== chaos: SIGKILL pid ${w.pid} (${phase}) ===\n`);
    await w.kill('SIGKILL');
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'fte-chaos-'));
    logFile = join(dir, 'workers.log');
    bundle = await prebuiltWorkflowBundle(dir);
    await start();
  }, 240_000);

  beforeEach(() => {
    product().sandbox.kubeProxy.clearRequests();
    product().sandbox.kubeProxy.clearFaults();
  });

  afterEach(async (context) => {
    product().sandbox.kubeProxy.clearFaults();
    if (context.task.result?.state === 'fail' && worker) {
      console.error(`the worker processes' output (${logFile}), last lines:\n${await worker.output(150)}`);
    }
    if (!alive()) await start();
  }, 120_000);

  afterAll(async () => {
    if (worker) await worker.kill('SIGTERM').catch(() => undefined);
    if (dir) await rm(dir, { recursive: true, force: true });
  }, 60_000);

  const chaos: Chaos = {
    get product() {
      return product();
    },
    get worker() {
      if (!worker) throw new Error('no worker process');
      return worker;
    },
    async startWorker() {
      if (alive()) throw new Error('a worker process is still running');
      return start();
    },
    async crash(phase) {
      await kill(chaos.worker, phase);
    },
    async crashOnRequest(match, phase) {
      const proxy = product().sandbox.kubeProxy;
      const target = chaos.worker;
      let seen: ProxiedRequest | undefined;
      let done!: () => void;
      const frozen = new Promise<void>((resolve) => {
        done = resolve;
      });
      proxy.beforeRequest(match, () => {
        // The record of the request held here: the last one matching, made just before this hook ran.
        seen = proxy.requests.filter((r) => matches(match, r)).at(-1);
        target.freeze();
        done();
      });
      await frozen;
      const request = seen;
      if (!request) throw new Error('the request that triggered the crash was not recorded');
      // The request goes on to the API server; its answer reaches the frozen worker's socket, never the worker.
      const deadline = Date.now() + 30_000;
      while (request.status === 0 && Date.now() < deadline) await sleep(20);
      await kill(target, phase);
      if (request.status === 0)
        throw new Error(`the API server did not answer ${request.verb} ${request.path}`);
      return request;
    },
    async crashWithWorkflowTaskInFlight(workflowId, send, phase) {
      const target = chaos.worker;
      target.freeze();
      try {
        await send();
        const handle = product().env.client.workflow.getHandle(workflowId);
        const { PENDING_WORKFLOW_TASK_STATE_STARTED } = proto.temporal.api.enums.v1.PendingWorkflowTaskState;
        const deadline = Date.now() + 20_000;
        for (;;) {
          const { raw } = await handle.describe();
          if (raw.pendingWorkflowTask?.state === PENDING_WORKFLOW_TASK_STATE_STARTED) break;
          if (Date.now() > deadline)
            throw new Error(`no workflow task of ${workflowId} went to the frozen worker`);
          await sleep(50);
        }
      } finally {
        await kill(target, phase);
      }
    },
    async alert(alertname, fingerprint, status) {
      const p = product();
      const labels = { alertname, namespace: p.namespace, severity: 'critical', instance: fingerprint };
      const response = await fetch(p.receiverUrl, {
        method: 'POST',
        headers: { authorization: `Bearer ${p.receiverToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          version: '4',
          groupKey: `{}:{alertname="${alertname}"}`,
          truncatedAlerts: 0,
          status,
          receiver: 'fte-incident-response',
          groupLabels: { alertname },
          commonLabels: labels,
          commonAnnotations: {},
          externalURL: 'http://alertmanager.example:9093',
          alerts: [
            {
              status,
              labels,
              annotations: { summary: `${alertname} (${fingerprint}, chaos test)` },
              startsAt: new Date(Date.now() - 60_000).toISOString(),
              endsAt: status === 'resolved' ? new Date().toISOString() : '0001-01-01T00:00:00Z',
              generatorURL: 'http://prometheus.example:9090/graph',
              fingerprint,
            },
          ],
        }),
      });
      await response.body?.cancel();
      return response.status;
    },
    async alertUntilAccepted(alertname, fingerprint, status, seconds) {
      const answers: number[] = [];
      const deadline = Date.now() + seconds * 1000;
      for (;;) {
        const answer = await chaos.alert(alertname, fingerprint, status);
        answers.push(answer);
        if (answer !== 503 || Date.now() > deadline) return answers;
        await sleep(1_000);
      }
    },
    writes() {
      return product()
        .sandbox.kubeProxy.requests.filter(
          (r) =>
            ['create', 'update', 'patch', 'delete', 'deletecollection'].includes(r.verb) && r.status < 300,
        )
        .map(({ verb, resource, name, subresource }) => ({ verb, resource, name, subresource }));
    },
    ledger(incidentId, occurrence) {
      return ledgerRows(product().sandbox.env.LEDGER_DATABASE_URL, incidentId, occurrence);
    },
  };
  return () => chaos;
}

/** The ledger's events of one occurrence of an incident (in the order they happened), and its row's event count. */
export async function ledgerRows(
  url: string,
  incidentId: string,
  occurrence: string,
): Promise<{ events: { type: string; eventId: string }[]; eventCount: number }> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query<{ type: string; event_id: string }>(
      `SELECT type, event_id FROM incident_events WHERE incident_id = $1 AND occurrence = $2
        ORDER BY at, event_id`,
      [incidentId, occurrence],
    );
    const row = await db.query<{ event_count: number }>(
      'SELECT event_count FROM incidents WHERE incident_id = $1 AND occurrence = $2',
      [incidentId, occurrence],
    );
    return {
      events: rows.map((r) => ({ type: r.type, eventId: r.event_id })),
      eventCount: row.rows[0]?.event_count ?? 0,
    };
  } finally {
    await db.end();
  }
}

/** Timeline entries that appear more than once (same time, type, text and person). */
export function duplicateEntries(timeline: IncidentState['timeline']): string[] {
  const seen = new Map<string, number>();
  for (const entry of timeline) {
    const key = JSON.stringify([entry.at, entry.type, entry.text, entry.by]);
    seen.set(key, (seen.get(key) ?? 0) + 1);
  }
  return [...seen.entries()].filter(([, n]) => n > 1).map(([key]) => key);
}

/** How many timeline entries there are of each type. */
export function countTypes(entries: { type: string }[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const e of entries) counts[e.type] = (counts[e.type] ?? 0) + 1;
  return counts;
}

/** The checks every crash test ends with, on the finished incident. */
export function expectOnce(counts: Record<string, number>, types: string[], what: string): void {
  for (const type of types) expect(counts[type] ?? 0, `${what}: "${type}" entries`).toBe(1);
}
