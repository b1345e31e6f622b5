import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import type { IncidentState } from '../../src/domain/incident.js';
import { TcpProxy } from '../../src/sandbox/tcp-proxy.js';
import { incidentActions } from '../../src/workflows/api.js';
import type { IncidentOutcome } from '../../src/workflows/incident.js';
import { useProduct, type Product } from '../e2e/harness.js';
import { recordingServer } from '../helpers/canaries.js';
import { services } from '../helpers/services.js';
import { writeWebhookContacts } from '../helpers/webhook-contacts.js';
import { countTypes, duplicateEntries } from './chaos.js';

// Dependency faults that last a whole incident, on the whole product: the ledger database unreachable from
// the first alert on, the platform's PostgreSQL and Kafka down, the Kubernetes API answering 500 (or 403, or
// too slowly) to every request the worker makes, and every notification webhook failing. The incident never
// gets stuck: it diagnoses with `unknown` findings where a probe cannot answer, asks, fails its steps saying
// why, escalates, and takes a person's resolution; once the ledger is back it catches up, every event once
// and in order.

const RUNBOOK = 'all-channels-down';
const ALERT = 'FTEAllChannelsDown';

let dir = '';
let pager: Awaited<ReturnType<typeof recordingServer>>;
let ledgerProxy: TcpProxy;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fte-dependency-faults-'));
  // Every notification webhook fails, whatever it is sent.
  pager = await recordingServer(() => ({ status: 500, body: 'pager is down' }));
  const admin = new URL(services().postgresUrl);
  // The worker reaches its ledger through a proxy the test can cut.
  ledgerProxy = await TcpProxy.start({ target: { host: admin.hostname, port: Number(admin.port || 5432) } });
});

const product = useProduct(RUNBOOK, () => ({
  extraWorkerEnv: (env) => {
    const ledger = new URL(env.LEDGER_DATABASE_URL);
    ledger.hostname = ledgerProxy.host;
    ledger.port = String(ledgerProxy.port);
    return { LEDGER_DATABASE_URL: ledger.toString(), CONTACTS_FILE: join(dir, 'contacts.yaml') };
  },
}));

beforeAll(async () => {
  await writeWebhookContacts(dir, pager.url);
});
afterEach(async () => {
  await ledgerProxy.restore();
  product().sandbox.kubeProxy.clearFaults();
});
afterAll(async () => {
  await ledgerProxy?.stop();
  await pager?.close();
  await rm(dir, { recursive: true, force: true });
});

/** Approves each step the incident asks for until it escalates (every step fails while the faults last). */
async function approveUntilEscalated(p: Product): Promise<IncidentState> {
  for (let i = 0; i < 5; i++) {
    const s = await p.waitFor(
      RUNBOOK,
      (x) => x.status === 'Escalated' || x.awaitingApproval.length > 0,
      'an approval request or the escalation',
      300,
    );
    if (s.status === 'Escalated') return s;
    await p.handle(RUNBOOK).executeUpdate(incidentActions.approve.update, {
      args: [{ step: s.awaitingApproval[0] as string, by: 'carol' }],
    });
  }
  throw new Error('the incident kept asking for approvals and never escalated');
}

/** The ledger's events of the incident's occurrence, and its row, read directly (not through the proxy). */
async function ledgerOf(p: Product, occurrence: string) {
  const db = new pg.Client({ connectionString: p.sandbox.env.LEDGER_DATABASE_URL });
  await db.connect();
  try {
    const { rows } = await db.query<{ event_id: string; type: string; at: Date }>(
      'SELECT event_id, type, at FROM incident_events WHERE incident_id = $1 AND occurrence = $2',
      [p.incidentId(RUNBOOK), occurrence],
    );
    const row = await db.query<{
      status: string;
      resolved_by: string;
      event_count: number;
      escalations: number;
    }>(
      'SELECT status, resolved_by, event_count, escalations FROM incidents WHERE incident_id = $1 AND occurrence = $2',
      [p.incidentId(RUNBOOK), occurrence],
    );
    // This run's own events (the report workflow's carry its own run id), in the order the run made them.
    const events = rows
      .filter((r) => r.event_id.startsWith(`${occurrence}:`))
      .map((r) => ({
        seq: Number(r.event_id.slice(occurrence.length + 1)),
        type: r.type,
        at: r.at.getTime(),
      }))
      .sort((a, b) => a.seq - b.seq);
    return { events, row: row.rows[0] };
  } finally {
    await db.end();
  }
}

/** A person resolves it; the run ends, its ledger writes done; answers the outcome and the final status. */
async function resolveByHand(p: Product): Promise<{ outcome: IncidentOutcome; s: IncidentState }> {
  await p.handle(RUNBOOK).executeUpdate(incidentActions.resolve.update, {
    args: [{ by: 'alice', summary: 'repaired by hand while the automation could not reach the cluster' }],
  });
  const outcome = (await p.handle(RUNBOOK).result()) as IncidentOutcome;
  return { outcome, s: await p.status(RUNBOOK) };
}

describe('dependencies fail for a whole incident', () => {
  it('ledger, platform PostgreSQL and Kafka down, the API server answering 500, webhooks failing: no stop, and the ledger catches up', async () => {
    const p = product();
    await ledgerProxy.cut();
    await p.sandbox.apply('postgres-down');
    await p.sandbox.apply('kafka-down');
    p.sandbox.kubeProxy.failRequests({}, { code: 500, message: 'etcdserver: request timed out' });

    expect(await p.alert(ALERT, 'firing')).toBe(202);
    const escalated = await approveUntilEscalated(p);

    // What it could not learn it calls unknown and says why; what is down, down.
    expect(escalated.findings.pods?.status).toBe('unknown');
    expect(escalated.findings.pods?.summary).toMatch(/500|etcdserver/);
    expect(escalated.findings.postgres?.status).toBe('down');
    expect(escalated.findings.kafka?.status).toBe('down');
    // Both restarts were approved, tried with their retries, and failed saying why; then it escalated.
    const failed = escalated.timeline.filter((e) => e.type === 'step-failed');
    expect(failed.map((e) => e.text).join('\n')).toMatch(/restart-postgres|postgres/);
    expect(failed).toHaveLength(2);
    // The restarts need the pod's uid, which only the pods probe could have read.
    for (const f of failed) expect(f.text).toMatch(/the pods probe could not answer \(.*(500|etcdserver)/);
    expect(
      escalated.steps
        .filter((st) => st.status === 'failed')
        .map((st) => st.id)
        .sort(),
    ).toEqual(['restart-kafka', 'restart-postgres']);
    // The failing pager is recorded, and the ledger's backlog is visible while it is down.
    const notifyFailed = escalated.timeline.filter((e) => e.type === 'notify-failed');
    expect(notifyFailed.length).toBeGreaterThan(0);
    for (const e of notifyFailed)
      expect(e.text).toMatch(
        /^notification \d+ \([a-z-]+ to [a-z-]+(, [a-z-]+)*\): \d+ of \d+ deliveries failed$/,
      );
    expect(pager.received.length).toBeGreaterThan(0);
    expect(escalated.ledgerBehind).toBeGreaterThan(0);
    const shown = await p.incidentctl(['show', p.incidentId(RUNBOOK)]);
    expect(shown).toMatch(/ledger behind: \d+ event\(s\) not written yet/);

    // The dependencies come back; a person repaired the platform by hand and resolves the incident.
    p.sandbox.kubeProxy.clearFaults();
    await ledgerProxy.restore();
    await p.sandbox.apply('healthy');
    const { outcome, s } = await resolveByHand(p);
    expect(s.status).toBe('Resolved');
    expect(s.resolvedBy).toBe('alice');
    expect(outcome.unwrittenLedgerEvents).toBeUndefined();
    expect(s.timeline.some((e) => e.type === 'ledger-failed')).toBe(false);
    expect(duplicateEntries(s.timeline)).toEqual([]);

    // The ledger caught up: every event of the run once, none missing, in the order they happened.
    const { raw } = await p.handle(RUNBOOK).describe();
    const { events, row } = await ledgerOf(p, raw.workflowExecutionInfo?.firstRunId ?? '');
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    for (let i = 1; i < events.length; i++)
      expect(events[i]?.at ?? 0).toBeGreaterThanOrEqual(events[i - 1]?.at ?? 0);
    const types = countTypes(events);
    expect(types).toMatchObject({ opened: 1, 'step-approved': 2, 'step-failed': 2, resolved: 1 });
    expect(types.escalated).toBeGreaterThanOrEqual(1);
    expect(events[0]?.type).toBe('opened');
    expect(events.at(-1)?.type).toBe('resolved');
    expect(row).toMatchObject({ status: 'resolved', resolved_by: 'alice' });
    expect(row?.escalations).toBe(types.escalated);
  }, 600_000);

  const faults = [
    {
      what: 'forbids every request',
      inject: (p: Product) => p.sandbox.kubeProxy.forbid({}),
      pods: /forbidden|Forbidden|403/,
      step: /the pods probe could not answer \(.*(forbidden|Forbidden|403)/,
    },
    {
      what: 'answers every request too slowly',
      inject: (p: Product) => p.sandbox.kubeProxy.slowRequests(12_000),
      pods: /did not answer within 10000 ms/,
      step: /the pods probe could not answer \(.*did not answer within 10000 ms/,
    },
    {
      what: 'answers every write with 500',
      inject: (p: Product) =>
        p.sandbox.kubeProxy.failRequests(
          { verb: ['create', 'update', 'patch', 'delete'] },
          { code: 500, message: 'etcdserver: leader changed' },
        ),
      // Reads work: the plan knows the pod's uid, and the action itself meets the fault.
      pods: undefined,
      step: /etcdserver: leader changed/,
    },
  ];
  for (const fault of faults) {
    it(`the API server ${fault.what}: the incident says why its step failed, escalates, and changes nothing`, async () => {
      const p = product();
      await p.sandbox.apply('postgres-down');
      fault.inject(p);

      expect(await p.alert(ALERT, 'firing')).toBe(202);
      const escalated = await approveUntilEscalated(p);
      if (fault.pods) {
        expect(escalated.findings.pods?.status).toBe('unknown');
        expect(escalated.findings.pods?.summary).toMatch(fault.pods);
      } else {
        expect(escalated.findings.pods?.status).not.toBe('unknown');
      }
      const step = escalated.steps.find((st) => st.id === 'restart-postgres');
      expect(step?.status).toBe('failed');
      expect(step?.error ?? '').toMatch(fault.step);
      expect(step?.runs).toBe(1);

      p.sandbox.kubeProxy.clearFaults();
      await p.sandbox.apply('healthy');
      const { s } = await resolveByHand(p);
      expect(s.status).toBe('Resolved');
      // Nothing changed on the cluster: every write was refused, failed or never sent.
      const writes = p.sandbox.kubeProxy.requests.filter((r) =>
        ['create', 'update', 'patch', 'delete'].includes(r.verb),
      );
      expect(writes.filter((r) => r.status >= 200 && r.status < 300)).toEqual([]);
      if (!fault.pods) {
        // The action's retry policy (3 attempts), each one write that failed.
        expect(writes.map((r) => `${r.verb} ${r.resource}/${r.name} ${r.status}`)).toEqual(
          Array(3).fill('patch statefulsets/postgres 500'),
        );
      }
    }, 600_000);
  }
});
