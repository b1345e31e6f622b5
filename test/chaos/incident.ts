import { expect } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.js';
import type { PostIncidentState } from '../../src/domain/post-incident.js';
import type { IncidentOutcome } from '../../src/workflows/incident.js';
import { incidentActions, postIncidentActions, postIncidentStatusQuery } from '../../src/workflows/api.js';
import { countTypes, duplicateEntries, expectOnce, type Chaos } from './chaos.js';

// One incident of the chaos tests, from the fault to the submitted report, and the checks every one ends
// with: seed procedure 1 (all channels down), whose steps restart a pod (postgres-0, kafka-0: its uid changes)
// or roll out a deployment again (fte-api: its generation changes), each after a person approved it.

export const runbook = 'all-channels-down';
export const ALERT = 'FTEAllChannelsDown';

/** A step that restarts a pod of a stateful set, or one that rolls a deployment out again. */
export interface PodRestart {
  scenario: 'postgres-down' | 'kafka-down';
  step: string;
  pod: string;
  statefulset: string;
}
export interface RolloutRestart {
  scenario: 'api-down';
  step: string;
  deployment: string;
}
export type Remedy = PodRestart | RolloutRestart;

export const postgres: PodRestart = {
  scenario: 'postgres-down',
  step: 'restart-postgres',
  pod: 'postgres-0',
  statefulset: 'postgres',
};
export const kafka: PodRestart = {
  scenario: 'kafka-down',
  step: 'restart-kafka',
  pod: 'kafka-0',
  statefulset: 'kafka',
};
export const api: RolloutRestart = { scenario: 'api-down', step: 'restart-api', deployment: 'fte-api' };

/** What the platform looks like before the fault, to compare with after. */
export interface Before {
  uid?: string;
  generation: number;
  replicaSets: number;
  replicas: number;
}

export async function breakPlatform(c: Chaos, remedy: Remedy): Promise<Before> {
  const { cluster } = c.product.sandbox;
  let before: Before;
  if ('pod' in remedy) {
    const set = await cluster.statefulSet(remedy.statefulset);
    const pod = (await cluster.podsOf(remedy.statefulset)).find((p) => p.name === remedy.pod);
    before = { uid: pod?.uid, generation: set.generation, replicaSets: 0, replicas: set.replicas };
  } else {
    const deployment = await cluster.deployment(remedy.deployment);
    before = {
      generation: deployment.generation,
      replicaSets: await replicaSetsOf(c, remedy.deployment),
      replicas: deployment.replicas,
    };
  }
  await c.product.sandbox.apply(remedy.scenario);
  return before;
}

async function replicaSetsOf(c: Chaos, deployment: string): Promise<number> {
  const { cluster } = c.product.sandbox;
  const list = await cluster.apps.listNamespacedReplicaSet({
    namespace: cluster.namespace,
    labelSelector: `app=${deployment}`,
  });
  return list.items.length;
}

/** The action ran once: one accepted write per change it makes, and the platform changed once. */
export async function expectActedOnce(c: Chaos, remedy: Remedy, before: Before, key: string): Promise<void> {
  const { cluster } = c.product.sandbox;
  if ('pod' in remedy) {
    expect(c.writes()).toEqual([
      { verb: 'patch', resource: 'statefulsets', name: remedy.statefulset, subresource: '' },
      { verb: 'delete', resource: 'pods', name: remedy.pod, subresource: '' },
    ]);
    const set = await cluster.statefulSet(remedy.statefulset);
    const restarts = JSON.parse(set.annotations['incident-response/pod-restarts'] ?? '[]') as {
      key: string;
      uid: string;
    }[];
    expect(restarts.filter((r) => r.key === key)).toEqual([{ key, pod: remedy.pod, uid: before.uid }]);
    const pod = (await cluster.podsOf(remedy.statefulset)).find((p) => p.name === remedy.pod);
    expect(pod?.uid).toBeDefined();
    expect(pod?.uid).not.toBe(before.uid);
    expect(pod?.ready).toBe(true);
    // The annotation is metadata: the set's spec, and so its generation and replicas, did not change.
    expect(set.generation).toBe(before.generation);
    expect(set.replicas).toBe(before.replicas);
  } else {
    expect(c.writes()).toEqual([
      { verb: 'patch', resource: 'deployments', name: remedy.deployment, subresource: '' },
    ]);
    const deployment = await cluster.deployment(remedy.deployment);
    expect(deployment.generation).toBe(before.generation + 1);
    expect(deployment.replicas).toBe(before.replicas);
    expect(JSON.parse(deployment.annotations['incident-response/action-keys'] ?? '[]')).toContain(key);
    expect(await replicaSetsOf(c, remedy.deployment)).toBe(before.replicaSets + 1);
  }
}

export async function waitAndApprove(c: Chaos, step: string): Promise<IncidentState> {
  const waiting = await c.product.waitFor(
    runbook,
    (s) => s.awaitingApproval.includes(step),
    `the approval request for ${step}`,
    150,
  );
  await approve(c, step);
  return waiting;
}

export function approve(c: Chaos, step: string): Promise<string> {
  return c.product.handle(runbook).executeUpdate(incidentActions.approve.update, {
    args: [{ step, by: 'carol' }],
  });
}

/**
 * From a verified step to the end: the alerts resolve, the incident completes, its report is written and the
 * report workflow completes. Then every check of a crash test.
 */
export async function finish(
  c: Chaos,
  remedy: Remedy,
  before: Before,
  alerts: Record<string, { status: 'firing' | 'resolved'; deliveries: number }>,
  options: { resolveAlerts?: boolean; crashBeforeReport?: boolean } = {},
): Promise<IncidentState> {
  const p = c.product;
  if (options.resolveAlerts ?? true) {
    await p.waitFor(runbook, (s) => s.status === 'Monitoring', `${remedy.step} to run and verify`, 240);
    for (const [fingerprint, alert] of Object.entries(alerts)) {
      if (alert.status === 'firing') continue;
      // Re-delivered while the receiver answers 503, as Alertmanager does.
      expect((await c.alertUntilAccepted(ALERT, fingerprint, 'resolved', 60)).at(-1)).toBe(202);
    }
  }
  await p.waitFor(runbook, (s) => s.status === 'Resolved', 'the resolution', 240);
  const outcome = (await p.handle(runbook).result()) as IncidentOutcome;
  expect(outcome.unwrittenLedgerEvents).toBeUndefined();
  const postId = outcome.postIncidentWorkflowId;
  expect(postId).toBeDefined();
  const report = p.env.client.workflow.getHandle(postId as string);
  const submit = () =>
    report.executeUpdate(postIncidentActions.submitReport.update, {
      args: [{ by: 'carol', rootCause: `chaos test: ${remedy.scenario}`, noFollowUps: true }],
    });
  if (options.crashBeforeReport) {
    // The incident is over; its report waits (24 hours) for a person, who sends it while no worker runs.
    await p.pendingReport(postId);
    await c.crash('post-incident: the report workflow waits for the report');
    const submitted = submit();
    await c.startWorker();
    await submitted;
  } else {
    await submit();
  }
  const reported = (await report.result()) as PostIncidentState;
  expect(reported.reportStatus).toBe('Submitted');

  const s = await p.status(runbook);
  expect(s.status).toBe('Resolved');
  expect(s.resolvedBy).toBe('system');
  const st = s.steps.find((x) => x.id === remedy.step);
  expect(st).toMatchObject({ status: 'recovered', runs: 1, approvedBy: 'carol' });
  expect(s.steps.filter((x) => x.runs > 0).map((x) => x.id)).toEqual([remedy.step]);
  const { raw } = await p.handle(runbook).describe();
  const occurrence = raw.workflowExecutionInfo?.firstRunId ?? '';
  // The key the step's action ran with (docs/architecture.md: `<incident>/<first run id>/<step>/<run>`).
  await expectActedOnce(c, remedy, before, `${p.incidentId(runbook)}/${occurrence}/${remedy.step}/1`);

  // No alert lost, none counted twice.
  expect(
    Object.fromEntries(
      Object.values(s.alerts).map((a) => [a.fingerprint, { status: a.status, deliveries: a.deliveries }]),
    ),
  ).toEqual(alerts);

  expect(duplicateEntries(s.timeline)).toEqual([]);
  const timeline = countTypes(s.timeline);
  expectOnce(
    timeline,
    [
      'opened',
      'approval-requested',
      'step-approved',
      'step-run',
      'step-verified',
      'resolved',
      'post-incident-started',
    ],
    'timeline',
  );
  expect(timeline['step-failed'] ?? 0).toBe(0);
  expect(timeline['ledger-failed'] ?? 0).toBe(0);

  // The ledger took every event once: once in its list, once in the incident's row.
  const ledger = await c.ledger(p.incidentId(runbook), occurrence);
  expect(new Set(ledger.events.map((e) => e.eventId)).size).toBe(ledger.events.length);
  expect(ledger.eventCount).toBe(ledger.events.length);
  expectOnce(
    countTypes(ledger.events),
    ['opened', 'step-approved', 'step-run', 'step-verified', 'resolved', 'report-submitted'],
    'ledger',
  );
  const reportTimeline = (await report.query(postIncidentStatusQuery)).timeline;
  expect(duplicateEntries(reportTimeline)).toEqual([]);
  return s;
}
