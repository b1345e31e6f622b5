import { mkdtemp, rm } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { incidentActions, incidentStatusQuery } from '../../src/workflows/api.js';
import { useProduct } from '../e2e/harness.js';
import { recordingServer } from '../helpers/canaries.js';
import { prebuiltWorkflowBundle, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';
import { writeWebhookContacts } from '../helpers/webhook-contacts.js';
import { until } from '../helpers/workflows.js';
import {
  amAlert,
  amPayload,
  bearer,
  listeningReceiver,
  post,
  terminateRunning,
} from '../receiver/harness.js';

// Scale-out: two worker processes and two receivers (each with its own connection to Temporal) on one task
// queue, and a storm of concurrent Alertmanager deliveries for six incidents of the real product. Whichever
// receiver and worker handle what: one incident per key, every delivery counted once, one action for the
// approved step (as the API server saw it), and no notification sent twice.

const RUNBOOKS: Record<string, string> = {
  FTEAllChannelsDown: 'all-channels-down',
  FTEDatabaseConnectionFailures: 'database-connection-failures',
  FTEGmailChannelDown: 'gmail-channel-down',
  FTEAgentLatencyHigh: 'high-agent-latency',
  FTEEscalationRateHigh: 'high-escalation-rate',
  FTEWhatsAppChannelDown: 'whatsapp-channel-down',
};
const ALERTNAMES = Object.keys(RUNBOOKS);
const DELIVERIES = 240;

let dir = '';
let pager: Awaited<ReturnType<typeof recordingServer>>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fte-scale-out-'));
  pager = await recordingServer(() => ({ status: 204 }));
  await writeWebhookContacts(dir, pager.url);
});

const product = useProduct('all-channels-down', () => ({
  worker: 'none',
  extraWorkerEnv: () => ({ CONTACTS_FILE: join(dir, 'contacts.yaml') }),
}));

const workers: WorkerProcess[] = [];
let second: { app: FastifyInstance; url: string; connection: Connection; client: Client } | undefined;

beforeAll(async () => {
  const p = product();
  const bundle = await prebuiltWorkflowBundle(dir);
  for (let i = 0; i < 2; i++) {
    workers.push(
      startWorkerProcess({
        env: { ...p.workerEnv, WORKFLOW_BUNDLE: bundle },
        logFile: join(dir, `worker-${i}.log`),
      }),
    );
  }
  for (const w of workers) await w.polling(p.env.connection, 'default');
  // The second receiver: another process's view of Temporal, with a connection of its own.
  const connection = await Connection.connect({ address: p.temporalAddress });
  const client = new Client({ connection, namespace: 'default' });
  const listening = await listeningReceiver(client, p.taskQueue, { token: p.receiverToken });
  second = { ...listening, connection, client };
}, 240_000);

afterAll(async () => {
  const p = product();
  await terminateRunning(p.env.client, p.taskQueue);
  await second?.app.close();
  await second?.connection.close();
  await Promise.all(workers.map((w) => w.kill('SIGTERM')));
  await pager?.close();
  await rm(dir, { recursive: true, force: true });
}, 120_000);

describe('two worker processes and two receivers on one task queue', () => {
  it('a storm of concurrent deliveries: one incident per key, each delivery counted once, one action, no duplicate notification', async () => {
    const p = product();
    if (!second) throw new Error('the second receiver did not start');
    const receivers = [p.receiverUrl, `${second.url}/webhooks/alertmanager`];
    await p.sandbox.apply('postgres-down');
    const { cluster } = p.sandbox;
    const uidBefore = (await cluster.podsOf('postgres')).find((pod) => pod.name === 'postgres-0')?.uid;

    // Each delivery carries one or two alerts of one rule; the same fingerprints again and again, as
    // Alertmanager's repeat and group intervals and its retries send them, to both receivers at once.
    const expected = new Map<string, Map<string, number>>();
    const deliveries = Array.from({ length: DELIVERIES }, (_, i) => {
      const alertname = ALERTNAMES[i % ALERTNAMES.length] as string;
      const fingerprints = [`${alertname}-a`];
      if (Math.floor(i / ALERTNAMES.length) % 2 === 0) fingerprints.push(`${alertname}-b`);
      const counts = expected.get(alertname) ?? new Map<string, number>();
      for (const f of fingerprints) counts.set(f, (counts.get(f) ?? 0) + 1);
      expected.set(alertname, counts);
      const alerts = fingerprints.map((f) => amAlert(alertname, f, p.namespace));
      return post(receivers[i % 2] as string, amPayload(alerts), bearer(p.receiverToken));
    });
    const answers = await Promise.all(deliveries);
    expect(answers.map((a) => a.status).filter((s) => s !== 202)).toEqual([]);

    // One run per incident key, whichever receiver started it.
    const ids = ALERTNAMES.map((a) => incidentWorkflowId(RUNBOOKS[a] as string, p.namespace));
    const runs = await until(
      async () => {
        const listed: string[] = [];
        for await (const info of p.env.client.workflow.list({ query: `TaskQueue = '${p.taskQueue}'` }))
          listed.push(info.workflowId);
        return listed;
      },
      (listed) => listed.length >= ids.length,
      'the incidents in the visibility store',
      600,
    );
    expect(runs.sort()).toEqual([...ids].sort());

    // Every delivery reached its incident once: the counts per fingerprint are exactly what was sent.
    for (const alertname of ALERTNAMES) {
      const runbook = RUNBOOKS[alertname] as string;
      const want = Object.fromEntries(expected.get(alertname) ?? []);
      const s = await until(
        () =>
          p.env.client.workflow
            .getHandle(incidentWorkflowId(runbook, p.namespace))
            .query(incidentStatusQuery),
        (x) =>
          Object.values(x.alerts).reduce((n, a) => n + a.deliveries, 0) >=
          Object.values(want).reduce((n, d) => n + d, 0),
        `the deliveries of ${alertname} counted`,
        600,
      );
      const got = Object.fromEntries(Object.values(s.alerts).map((a) => [a.fingerprint, a.deliveries]));
      expect(got, alertname).toEqual(want);
    }

    // Two people approve the restart at the same moment through different connections: one decision counts.
    await p.waitFor(
      'all-channels-down',
      (s) => s.awaitingApproval.includes('restart-postgres'),
      'approval',
      150,
    );
    const votes = await Promise.allSettled([
      p.handle('all-channels-down').executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      }),
      second.client.workflow
        .getHandle(p.incidentId('all-channels-down'))
        .executeUpdate(incidentActions.approve.update, { args: [{ step: 'restart-postgres', by: 'alice' }] }),
    ]);
    expect(votes.filter((v) => v.status === 'fulfilled')).toHaveLength(1);
    const refused = votes.find((v): v is PromiseRejectedResult => v.status === 'rejected');
    const why = (refused?.reason ?? {}) as { cause?: Error };
    expect(String(why.cause?.message)).toMatch(/not waiting for approval/);

    const after = await p.waitFor(
      'all-channels-down',
      (s) => s.steps.some((st) => st.id === 'restart-postgres' && st.status === 'recovered'),
      'the restart verified',
      240,
    );
    expect(after.steps.find((st) => st.id === 'restart-postgres')).toMatchObject({ runs: 1 });
    // The API server saw the restart once: one patch of the set, one deletion of the pod, one new pod.
    const postgresWrites = p.sandbox.kubeProxy.requests
      .filter((r) => ['create', 'update', 'patch', 'delete'].includes(r.verb) && r.status < 300)
      .filter((r) => r.name === 'postgres' || r.name === 'postgres-0')
      .map(({ verb, resource, name }) => `${verb} ${resource}/${name}`);
    expect(postgresWrites).toEqual(['patch statefulsets/postgres', 'delete pods/postgres-0']);
    const uidAfter = (await cluster.podsOf('postgres')).find((pod) => pod.name === 'postgres-0')?.uid;
    expect(uidAfter).not.toBe(uidBefore);

    // Each incident opened once in the ledger.
    for (const id of ids) {
      const opened = (await p.ledgerEvents(id)).filter((t) => t === 'opened');
      expect(opened, id).toHaveLength(1);
    }

    // No person was sent the same notification twice, and each incident's "opened" went out once a person.
    const sent = pager.received.map((r) => {
      const body = JSON.parse(r.body) as { kind: string; workflowId: string };
      return { to: r.url, key: String(r.headers['idempotency-key']), kind: body.kind, id: body.workflowId };
    });
    const twice = (keys: string[]) => keys.filter((k, i) => keys.indexOf(k) !== i);
    expect(twice(sent.map((m) => `${m.to} ${m.key}`))).toEqual([]);
    expect(twice(sent.filter((m) => m.kind === 'opened').map((m) => `${m.to} ${m.id}`))).toEqual([]);
    expect(new Set(sent.filter((m) => m.kind === 'opened').map((m) => m.id))).toEqual(new Set(ids));

    // Both worker processes did part of the work (the test really ran with two): the server records which
    // worker took each workflow and activity task.
    const identities = new Set<string>();
    for (const id of ids) {
      const history = await p.env.client.workflow.getHandle(id).fetchHistory();
      for (const e of history.events ?? []) {
        const identity =
          e.workflowTaskStartedEventAttributes?.identity ?? e.activityTaskStartedEventAttributes?.identity;
        if (identity) identities.add(identity);
      }
    }
    for (const w of workers) expect([...identities]).toContain(`${w.pid}@${hostname()}`);
  }, 600_000);
});
