import { afterAll, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest';
import type { WorkflowHandle } from '@temporalio/client';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import type { IncidentState } from '../../src/domain/incident.js';
import { incidentActions, incidentStatusQuery } from '../../src/workflows/api.js';
import { postIncidentWorkflow } from '../../src/workflows/post-incident.js';
import { uniqueName } from '../helpers/services.js';
import { until } from '../helpers/workflows.js';
import {
  amAlert,
  amPayload,
  basic,
  listeningReceiver,
  post,
  sample,
  scrape,
  startHarness,
  type Harness,
} from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startHarness();
});
afterAll(async () => {
  await h?.close();
});
beforeEach(() => {
  if (h) h.platform.status = {};
});

const webhook = () => `${h.url}/webhooks/alertmanager`;
const incident = (runbook: string, scope: string) =>
  h.env.client.workflow.getHandle(incidentWorkflowId(runbook, scope));
const state = (handle: WorkflowHandle) => handle.query(incidentStatusQuery);
const waitFor = (handle: WorkflowHandle, predicate: (s: IncidentState) => boolean, what: string) =>
  until(() => state(handle), predicate, what, 300);

describe('POST /webhooks/alertmanager', () => {
  it('opens the incident of the matching runbook, which diagnoses with its probes', async () => {
    const ns = uniqueName('ns');
    h.platform.status = { postgres: 'down' };
    const res = await post(webhook(), amPayload([amAlert('FTEAllChannelsDown', 'fp-all', ns)]));

    expect(res.status).toBe(202);
    const workflowId = incidentWorkflowId('all-channels-down', ns);
    expect(res.body).toMatchObject({
      status: 'accepted',
      alerts: 1,
      incidents: [{ workflowId, runbookId: 'all-channels-down', scope: ns, alerts: 1 }],
    });
    const s = await waitFor(
      incident('all-channels-down', ns),
      (x) => x.status === 'AwaitingApproval',
      'diagnosis',
    );
    expect(s).toMatchObject({
      runbookId: 'all-channels-down',
      scope: ns,
      source: 'alertmanager',
      severity: 'P1',
    });
    expect(s.findings.postgres?.status).toBe('down');
    expect(s.awaitingApproval).toEqual(['restart-postgres']);
    expect(s.alerts['fp-all']).toMatchObject({
      alertname: 'FTEAllChannelsDown',
      status: 'firing',
      deliveries: 1,
    });
    // The probes ran against the alert's namespace, the incident's scope.
    expect(h.platform.probeCalls.some((p) => p.incidentId === workflowId && p.scope === ns)).toBe(true);
  });

  it('opens exactly one incident for 50 concurrent deliveries of the same group, and answers all of them', async () => {
    const ns = uniqueName('ns');
    const payload = amPayload([amAlert('FTEGmailChannelDown', 'fp-dup', ns)]);
    const answers = await Promise.all(Array.from({ length: 50 }, () => post(webhook(), payload)));

    expect(answers.map((a) => a.status)).toEqual(Array(50).fill(202));
    const workflowId = incidentWorkflowId('gmail-channel-down', ns);
    for (const a of answers) expect(a.body.incidents).toEqual([expect.objectContaining({ workflowId })]);
    const handle = incident('gmail-channel-down', ns);
    const s = await waitFor(handle, (x) => x.alerts['fp-dup']?.deliveries === 50, 'all 50 deliveries');
    expect(Object.keys(s.alerts)).toEqual(['fp-dup']);
    expect(s.timeline.filter((t) => t.type === 'opened')).toHaveLength(1);
    const runs: string[] = [];
    for await (const info of h.env.client.workflow.list({ query: `WorkflowId = '${workflowId}'` }))
      runs.push(info.runId);
    expect(runs).toEqual([(await handle.describe()).runId]);
  });

  it('sends an alert no runbook knows to a triage incident', async () => {
    const ns = uniqueName('ns');
    const res = await post(webhook(), amPayload([amAlert('DiskAlmostFull', 'fp-unknown', ns)]));

    expect(res.status).toBe(202);
    expect(res.body.incidents).toEqual([
      {
        workflowId: incidentWorkflowId('triage', ns),
        runbookId: 'triage',
        scope: ns,
        alerts: 1,
        delivered: true,
      },
    ]);
    const s = await waitFor(incident('triage', ns), (x) => x.status === 'Monitoring', 'triage');
    expect(s.alerts['fp-unknown']?.alertname).toBe('DiskAlmostFull');
    expect(s.tasks.map((t) => t.id)).toEqual(['investigate']);
  });

  it('splits one payload into the incidents of each runbook and scope', async () => {
    const [a, b] = [uniqueName('ns'), uniqueName('ns')];
    const res = await post(
      webhook(),
      amPayload([
        amAlert('FTEWhatsAppChannelDown', 'fp-wa-1', a),
        amAlert('FTEWhatsAppChannelDown', 'fp-wa-2', b),
        amAlert('SomethingElse', 'fp-other', a),
      ]),
    );

    expect(res.status).toBe(202);
    const ids = (res.body.incidents as { workflowId: string }[]).map((d) => d.workflowId).sort();
    expect(ids).toEqual(
      [
        incidentWorkflowId('whatsapp-channel-down', a),
        incidentWorkflowId('whatsapp-channel-down', b),
        incidentWorkflowId('triage', a),
      ].sort(),
    );
    for (const [rb, ns, fp] of [
      ['whatsapp-channel-down', a, 'fp-wa-1'],
      ['whatsapp-channel-down', b, 'fp-wa-2'],
      ['triage', a, 'fp-other'],
    ] as const) {
      await waitFor(incident(rb, ns), (x) => Object.keys(x.alerts).join() === fp, `${rb} in ${ns}`);
    }
  });

  it('delivers resolved alerts: the incident records them and, its alerts settled, resolves', async () => {
    const ns = uniqueName('ns');
    const firing = await post(webhook(), amPayload([amAlert('UnknownThing', 'fp-res', ns)]));
    expect(firing.status).toBe(202);
    const handle = incident('triage', ns);
    await waitFor(handle, (x) => x.status === 'Monitoring', 'monitoring');

    const resolved = await post(webhook(), amPayload([amAlert('UnknownThing', 'fp-res', ns, 'resolved')]));

    expect(resolved.status).toBe(202);
    expect(resolved.body.incidents).toEqual([expect.objectContaining({ workflowId: handle.workflowId })]);
    const outcome = await handle.result();
    expect(outcome.resolvedBy).toBe('system');
    const s = await state(handle);
    expect(s.alerts['fp-res']).toMatchObject({ status: 'resolved' });
    expect(s.timeline.map((t) => t.type)).toEqual(
      expect.arrayContaining(['alert-firing', 'alert-resolved', 'resolved']),
    );
  });

  it('drops a late resolved alert for an incident that is already closed instead of opening a new one', async () => {
    const ns = uniqueName('ns');
    const res = await post(webhook(), amPayload([amAlert('UnknownThing', 'fp-late', ns, 'resolved')]));
    expect(res.status).toBe(202);
    expect(res.body.incidents).toEqual([expect.objectContaining({ delivered: false })]);
    await expect(incident('triage', ns).describe()).rejects.toThrow(/not found/i);
  });

  it('accepts basic auth with any username and the token as password', async () => {
    const ns = uniqueName('ns');
    const res = await post(
      webhook(),
      amPayload([amAlert('FTEAgentLatencyHigh', 'fp-basic', ns)]),
      basic('alertmanager', 'receiver-test-token-0123456789'),
    );

    expect(res.status).toBe(202);
    await waitFor(incident('high-agent-latency', ns), (x) => Boolean(x.alerts['fp-basic']), 'incident');
  });

  it('counts alerts delivered to an incident that was already open as deduplicated', async () => {
    const ns = uniqueName('ns');
    const payload = amPayload([
      amAlert('FTEEscalationRateHigh', 'fp-d1', ns),
      amAlert('FTEEscalationRateHigh', 'fp-d2', ns),
    ]);
    const before = await scrape(h.url);
    expect((await post(webhook(), payload)).status).toBe(202);
    await waitFor(incident('high-escalation-rate', ns), (x) => Object.keys(x.alerts).length === 2, 'open');
    const afterFirst = await scrape(h.url);
    expect((await post(webhook(), payload)).status).toBe(202);
    const afterSecond = await scrape(h.url);

    const dedup = (t: string) => sample(t, 'incident_receiver_alerts_deduplicated_total') ?? NaN;
    const received = (t: string) =>
      sample(t, 'incident_receiver_alerts_received_total', { status: 'firing' }) ?? NaN;
    expect(dedup(afterFirst) - dedup(before)).toBe(0);
    expect(dedup(afterSecond) - dedup(afterFirst)).toBe(2);
    expect(received(afterSecond) - received(before)).toBe(4);
  });
});

describe('POST /incidents', () => {
  it('declares an incident by hand, with who declared it', async () => {
    const ns = uniqueName('ns');
    const res = await post(`${h.url}/incidents`, {
      runbook: 'database-connection-failures',
      scope: ns,
      severity: 'P2',
      title: 'Customers report timeouts',
      by: 'alice',
    });

    const workflowId = incidentWorkflowId('database-connection-failures', ns);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({
      status: 'accepted',
      workflowId,
      runbookId: 'database-connection-failures',
      scope: ns,
    });
    const s = await waitFor(
      incident('database-connection-failures', ns),
      (x) => x.findings.postgres !== undefined,
      'diagnosis',
    );
    expect(s).toMatchObject({ source: 'declared', title: 'Customers report timeouts', scope: ns });
    expect(s.timeline[0]).toMatchObject({ type: 'opened', by: 'alice' });
  });

  it('refuses an unknown runbook and a declaration without "by"', async () => {
    const unknown = await post(`${h.url}/incidents`, { runbook: 'no-such-runbook', by: 'alice' });
    const anonymous = await post(`${h.url}/incidents`, { runbook: 'triage' });

    expect(unknown.status).toBe(400);
    expect(String((unknown.body.problems as string[])[0])).toContain('unknown runbook "no-such-runbook"');
    expect(anonymous.status).toBe(400);
    expect(anonymous.body.problems).toEqual([expect.stringMatching(/^by: /)]);
  });
});

describe('health and metrics', () => {
  it('reports liveness, and readiness when Temporal answers', async () => {
    expect((await fetch(`${h.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${h.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', namespace: 'default' });
  });

  it('exposes open incidents, steps waiting for approval, and time to acknowledge and resolve', async () => {
    // A receiver of its own so that only this test's incidents are on its task queue.
    const m = await startHarness();
    try {
      const ns = uniqueName('ns');
      m.platform.status = { postgres: 'down' };
      expect(
        (
          await post(
            `${m.url}/webhooks/alertmanager`,
            amPayload([amAlert('FTEAllChannelsDown', 'fp-m1', ns)]),
          )
        ).status,
      ).toBe(202);
      expect(
        (await post(`${m.url}/webhooks/alertmanager`, amPayload([amAlert('NoRunbookForThis', 'fp-m2', ns)])))
          .status,
      ).toBe(202);
      await vi.waitFor(
        async () => {
          const text = await scrape(m.url);
          expect(sample(text, 'incident_open', { severity: 'P1', status: 'AwaitingApproval' })).toBe(1);
          expect(sample(text, 'incident_open', { severity: 'P3', status: 'Monitoring' })).toBe(1);
          expect(sample(text, 'incident_open', { severity: 'P2', status: 'Investigating' })).toBe(0);
          expect(sample(text, 'incident_steps_awaiting_approval', { runbook: 'all-channels-down' })).toBe(1);
          expect(sample(text, 'incident_receiver_visibility_up')).toBe(1);
          // The harness's worker polls the queue.
          expect(sample(text, 'incident_task_queue_pollers', { type: 'workflow' })).toBeGreaterThanOrEqual(1);
          expect(sample(text, 'incident_task_queue_pollers', { type: 'activity' })).toBeGreaterThanOrEqual(1);
        },
        { timeout: 30_000, interval: 250 },
      );

      const triage = m.env.client.workflow.getHandle(incidentWorkflowId('triage', ns));
      await triage.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'bob' }] });
      expect(
        (
          await post(
            `${m.url}/webhooks/alertmanager`,
            amPayload([amAlert('NoRunbookForThis', 'fp-m2', ns, 'resolved')]),
          )
        ).status,
      ).toBe(202);
      const outcome = await triage.result();

      await vi.waitFor(
        async () => {
          const text = await scrape(m.url);
          expect(sample(text, 'incident_time_to_acknowledge_seconds_count', { severity: 'P3' })).toBe(1);
          expect(sample(text, 'incident_time_to_resolve_seconds_count', { severity: 'P3' })).toBe(1);
          expect(sample(text, 'incident_time_to_resolve_seconds_sum', { severity: 'P3' })).toBeCloseTo(
            outcome.timeToResolveMs / 1000,
            3,
          );
          expect(sample(text, 'incident_time_to_acknowledge_seconds_sum', { severity: 'P3' })).toBeCloseTo(
            (outcome.timeToAcknowledgeMs ?? NaN) / 1000,
            3,
          );
          expect(sample(text, 'incident_open', { severity: 'P3', status: 'Monitoring' })).toBe(0);
        },
        { timeout: 30_000, interval: 250 },
      );
      // Observed once, however often it is scraped.
      const again = await scrape(m.url);
      expect(sample(again, 'incident_time_to_resolve_seconds_count', { severity: 'P3' })).toBe(1);
    } finally {
      await m.close();
    }
  });

  it('says when no worker polls its task queue, and counts overdue reports', async () => {
    const m = await startHarness();
    try {
      // A report whose incident resolved 25 hours ago is overdue at once.
      await m.env.client.workflow.start(postIncidentWorkflow, {
        taskQueue: m.taskQueue,
        workflowId: uniqueName('post-incident-metrics'),
        args: [
          {
            incidentId: 'incident-all-channels-down--metrics',
            occurrence: 'metrics-occurrence',
            title: 'All channels down',
            severity: 'P1',
            runbookId: 'all-channels-down',
            team: 'platform',
            resolvedAt: new Date(Date.now() - 25 * 3_600_000).toISOString(),
            reportOwner: 'alice',
            runbookUpdateRequired: false,
          },
        ],
      });
      await vi.waitFor(
        async () => {
          const text = await scrape(m.url);
          expect(sample(text, 'incident_reports', { status: 'Overdue' })).toBe(1);
          expect(sample(text, 'incident_reports', { status: 'Pending' })).toBe(0);
        },
        { timeout: 30_000, interval: 250 },
      );
      // A receiver whose task queue no worker polls says so.
      const lonely = await listeningReceiver(m.env.client, uniqueName('no-worker'), { metricsCacheMs: 0 });
      try {
        const text = await scrape(lonely.url);
        expect(sample(text, 'incident_task_queue_pollers', { type: 'workflow' })).toBe(0);
        expect(sample(text, 'incident_task_queue_pollers', { type: 'activity' })).toBe(0);
      } finally {
        await lonely.app.close();
      }
    } finally {
      await m.close();
    }
  });
});
