import { describe, expect, it } from 'vitest';
import { temporal } from '@temporalio/proto';
import { useChaos } from './chaos.js';
import {
  ALERT,
  api,
  approve,
  breakPlatform,
  finish,
  kafka,
  postgres,
  runbook,
  waitAndApprove,
} from './incident.js';

// The worker is a process of its own and is killed with SIGKILL in each phase of an incident, then replaced.
// Whatever the phase, the incident completes, its action changed the platform exactly once (as the API server
// saw it: the writes the worker made, the pod's uid, the deployment's generation), every alert sent reached
// it, and its timeline and ledger hold each event once.
// This file: the phases before the action (opening, diagnosis, waiting for approval); the action, the
// verification and the report: worker-crash-action-to-report.test.ts.

const chaos = useChaos(runbook);

describe('the worker is killed (SIGKILL) and replaced', () => {
  it('while opening: the opening workflow task was handed to it', async () => {
    const c = chaos();
    const before = await breakPlatform(c, postgres);
    await c.crashWithWorkflowTaskInFlight(
      c.product.incidentId(runbook),
      async () => expect(await c.alert(ALERT, 'chaos-open-1', 'firing')).toBe(202),
      'opening',
    );
    // The worker died before it finished any workflow task: the incident had not opened.
    const history = await c.product.handle(runbook).fetchHistory();
    expect(history.events?.map((e) => e.eventType)).not.toContain(
      temporal.api.enums.v1.EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED,
    );
    // An alert that arrives while no worker runs.
    expect(await c.alert(ALERT, 'chaos-open-2', 'firing')).toBe(202);
    await c.startWorker();
    await waitAndApprove(c, postgres.step);
    await finish(c, postgres, before, {
      'chaos-open-1': { status: 'resolved', deliveries: 2 },
      'chaos-open-2': { status: 'resolved', deliveries: 2 },
    });
  }, 420_000);

  it('while diagnosing: a probe is talking to the Kubernetes API', async () => {
    const c = chaos();
    const before = await breakPlatform(c, api);
    const crashed = c.crashOnRequest(
      { verb: 'list', resource: 'pods', namespace: c.product.namespace },
      'diagnosis: a probe lists pods',
    );
    expect(await c.alert(ALERT, 'chaos-diagnosis', 'firing')).toBe(202);
    await crashed;
    // Alertmanager repeats the alert while no worker runs.
    expect(await c.alert(ALERT, 'chaos-diagnosis', 'firing')).toBe(202);
    await c.startWorker();
    const waiting = await waitAndApprove(c, api.step);
    expect(waiting.findings['api-health']?.status).toBe('down');
    expect(waiting.findings.pods?.status).not.toBe('unknown');
    await finish(c, api, before, { 'chaos-diagnosis': { status: 'resolved', deliveries: 3 } });
  }, 420_000);

  it('while waiting for approval: the approval and a new alert come while no worker runs', async () => {
    const c = chaos();
    const before = await breakPlatform(c, kafka);
    expect(await c.alert(ALERT, 'chaos-approval-1', 'firing')).toBe(202);
    await c.product.waitFor(
      runbook,
      (s) => s.awaitingApproval.includes(kafka.step),
      'the approval request',
      150,
    );
    await c.crash('waiting for approval');
    expect(await c.alert(ALERT, 'chaos-approval-2', 'firing')).toBe(202);
    const approved = approve(c, kafka.step);
    await c.startWorker();
    expect(await approved).toContain(kafka.step);
    await finish(c, kafka, before, {
      'chaos-approval-1': { status: 'resolved', deliveries: 2 },
      'chaos-approval-2': { status: 'resolved', deliveries: 2 },
    });
  }, 420_000);
});
