import { ApplicationFailure } from '@temporalio/activity';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ACTION_KEYS_ANNOTATION,
  kubernetesActivities,
  loadKubeConfig,
  RESTARTED_AT_ANNOTATION,
  type KubernetesActivities,
} from '../../src/activities/kubernetes.js';
import type { ActionInput } from '../../src/domain/activity-contract.js';
import { KubeSimulator } from '../../src/sandbox/kube/index.js';

// The actions against the Kubernetes simulator with the real @kubernetes/client-node: what changed in the
// cluster, that a repeat with the same key changes nothing more, and how failures are classified.

const namespace = 'customer-success-fte';
let sim: KubeSimulator;
let k8s: KubernetesActivities;

const action = (args: Record<string, unknown>, idempotencyKey = 'inc-1/step-1/1'): ActionInput => ({
  incidentId: 'inc-1',
  scope: namespace,
  stepId: 'step-1',
  idempotencyKey,
  args,
});

async function failure(work: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

const podNames = (workload: string) =>
  sim
    .podsOf(workload)
    .map((p) => p.name)
    .sort();

beforeEach(async () => {
  sim = await new KubeSimulator().start();
  k8s = kubernetesActivities({ kubeConfig: loadKubeConfig(sim.kubeconfigPath), requestTimeoutMs: 10_000 });
});
afterEach(() => sim.stop());

describe('rolloutRestart', () => {
  const restartApi = { namespace, kind: 'deployment', name: 'fte-api' };

  it('replaces every pod of the deployment with new ones, as kubectl rollout restart does', async () => {
    const before = sim.podsOf('fte-api');
    const result = await k8s.rolloutRestart(action(restartApi));
    expect(result.changed).toBe(true);
    expect(result.summary).toContain('rollout restart of deployment/fte-api');
    const after = sim.podsOf('fte-api');
    expect(after).toHaveLength(3);
    expect(after.every((p) => p.ready)).toBe(true);
    const oldUids = new Set(before.map((p) => p.uid));
    const oldNames = new Set(before.map((p) => p.name));
    for (const pod of after) {
      expect(oldUids.has(pod.uid)).toBe(false);
      expect(oldNames.has(pod.name)).toBe(false);
    }
    expect(sim.state.deployments['fte-api']?.templateAnnotations[RESTARTED_AT_ANNOTATION]).toBeDefined();
    expect(sim.requests.find((r) => r.verb === 'patch')?.contentType).toBe('application/merge-patch+json');
  });

  it('restarts once for one idempotency key, however often it is repeated', async () => {
    await k8s.rolloutRestart(action(restartApi, 'inc-1/restart-api/1'));
    const restarted = podNames('fte-api');
    const stamp = sim.state.deployments['fte-api']?.templateAnnotations[RESTARTED_AT_ANNOTATION];
    const again = await k8s.rolloutRestart(action(restartApi, 'inc-1/restart-api/1'));
    const third = await k8s.rolloutRestart(action(restartApi, 'inc-1/restart-api/1'));
    expect(again).toEqual({
      changed: false,
      summary: expect.stringContaining('already restarted') as string,
    });
    expect(third.changed).toBe(false);
    expect(podNames('fte-api')).toEqual(restarted);
    expect(sim.state.deployments['fte-api']?.templateAnnotations[RESTARTED_AT_ANNOTATION]).toBe(stamp);
    expect(sim.state.deployments['fte-api']?.generation).toBe(2);

    const next = await k8s.rolloutRestart(action(restartApi, 'inc-1/restart-api/2'));
    expect(next.changed).toBe(true);
    expect(podNames('fte-api')).not.toEqual(restarted);
    expect(JSON.parse(sim.state.deployments['fte-api']?.annotations[ACTION_KEYS_ANNOTATION] ?? '[]')).toEqual(
      ['inc-1/restart-api/1', 'inc-1/restart-api/2'],
    );
  });

  it('writes against the version it read and tries again when someone else wrote first', async () => {
    sim.failRequests(
      { verb: 'patch', resource: 'deployments' },
      { code: 409, message: 'the object has been modified', times: 1 },
    );
    const result = await k8s.rolloutRestart(action(restartApi));
    expect(result.changed).toBe(true);
    expect(sim.state.deployments['fte-api']?.generation).toBe(2);
    expect(sim.requests.filter((r) => r.verb === 'patch')).toHaveLength(2);
  });

  it('gives up with a PreconditionFailedError when the object keeps changing under it', async () => {
    sim.failRequests(
      { verb: 'patch', resource: 'deployments' },
      { code: 409, message: 'the object has been modified' },
    );
    const error = await failure(k8s.rolloutRestart(action(restartApi)));
    expect(error.type).toBe('PreconditionFailedError');
    expect(error.nonRetryable).toBe(true);
    expect(sim.requests.filter((r) => r.verb === 'patch')).toHaveLength(3);
  });

  it('throws a NotFoundError for a deployment that does not exist', async () => {
    const error = await failure(k8s.rolloutRestart(action({ ...restartApi, name: 'fte-nope' })));
    expect(error.type).toBe('NotFoundError');
    expect(error.message).toContain('deployments.apps "fte-nope" not found');
  });

  it('throws a ForbiddenError when the service account may not patch deployments, changing nothing', async () => {
    const before = podNames('fte-api');
    sim.forbid('patch', 'deployments');
    const error = await failure(k8s.rolloutRestart(action(restartApi)));
    expect(error.type).toBe('ForbiddenError');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain('cannot patch resource "deployments" in API group "apps"');
    expect(podNames('fte-api')).toEqual(before);
  });
});

describe('restartStatefulSetPod', () => {
  it('deletes the pod the plan saw; the statefulset brings it back under the same name with a new uid', async () => {
    const heal = sim.statefulSetPodDown('postgres');
    const [before] = sim.podsOf('postgres');
    expect(before?.reason).toBe('CrashLoopBackOff');
    const result = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0', expectUid: before?.uid }),
    );
    expect(result.changed).toBe(true);
    expect(result.summary).toContain(`deleted pod postgres-0 (uid ${before?.uid})`);
    const [after] = sim.podsOf('postgres');
    expect(after?.name).toBe('postgres-0');
    expect(after?.uid).not.toBe(before?.uid);
    expect(after?.ready).toBe(true);
    heal();
  });

  it('does nothing when the pod was already replaced (the uid the plan saw is gone)', async () => {
    const stale = sim.podsOf('kafka')[0]?.uid;
    await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'kafka', pod: 'kafka-0' }, 'someone-else'),
    );
    const current = sim.podsOf('kafka')[0]?.uid;
    expect(current).not.toBe(stale);
    const result = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'kafka', pod: 'kafka-0', expectUid: stale }),
    );
    expect(result.changed).toBe(false);
    expect(result.summary).toBe(
      `pod kafka-0 was already replaced (expected uid ${stale}, found ${current}); not restarted again`,
    );
    expect(sim.podsOf('kafka')[0]?.uid).toBe(current);
  });

  it('restarts once per idempotency key even without an expected uid', async () => {
    const first = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0' }),
    );
    const uid = sim.podsOf('postgres')[0]?.uid;
    const second = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0' }),
    );
    expect(first.changed).toBe(true);
    expect(second.changed).toBe(false);
    expect(second.summary).toContain('already restarted for this step');
    expect(sim.podsOf('postgres')[0]?.uid).toBe(uid);
    expect(sim.requests.filter((r) => r.verb === 'delete')).toHaveLength(1);
  });

  it('deletes with a uid precondition, so a pod replaced between the read and the delete is left alone', async () => {
    const seen = sim.podsOf('postgres')[0]?.uid;
    // The pod is evicted and recreated just before the action's delete arrives.
    sim.beforeRequest({ verb: 'delete', resource: 'pods', name: 'postgres-0' }, () =>
      sim.deletePod('postgres-0'),
    );
    const result = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0', expectUid: seen }),
    );
    const replacement = sim.podsOf('postgres')[0]?.uid;
    expect(replacement).not.toBe(seen);
    expect(result.changed).toBe(false);
    expect(result.summary).toBe(
      `pod postgres-0 was replaced meanwhile (uid ${seen} is gone); not restarted again`,
    );
    expect(sim.requests.find((r) => r.verb === 'delete')?.status).toBe(409);
    expect(sim.podsOf('postgres')[0]?.uid).toBe(replacement);
  });

  it('refuses a pod that is not one of the statefulset', async () => {
    const error = await failure(
      k8s.restartStatefulSetPod(action({ namespace, statefulset: 'kafka', pod: 'postgres-0' })),
    );
    expect(error.type).toBe('BadRequestError');
    expect(error.message).toContain('pod: must be a pod of the statefulset');
    expect(sim.requests.filter((r) => r.verb === 'delete')).toHaveLength(0);
  });
});

describe('scaleDeployment', () => {
  it('scales through the scale subresource and the pod count follows', async () => {
    const result = await k8s.scaleDeployment(
      action({ namespace, name: 'fte-message-processor', replicas: 5 }),
    );
    expect(result).toEqual({
      changed: true,
      summary: `scaled deployment/fte-message-processor in ${namespace} from 2 to 5 replicas`,
    });
    expect(sim.podsOf('fte-message-processor')).toHaveLength(5);
    expect(sim.requests.some((r) => r.verb === 'patch' && r.subresource === 'scale')).toBe(true);
  });

  it('never scales down', async () => {
    await k8s.scaleDeployment(action({ namespace, name: 'fte-message-processor', replicas: 5 }, 'k-up'));
    const result = await k8s.scaleDeployment(
      action({ namespace, name: 'fte-message-processor', replicas: 3 }, 'k-down'),
    );
    expect(result.changed).toBe(false);
    expect(result.summary).toContain('already has 5 replicas (requested 3); never scaled down');
    expect(sim.state.deployments['fte-message-processor']?.replicas).toBe(5);
    expect(sim.podsOf('fte-message-processor')).toHaveLength(5);
  });

  it('does not scale again for the same key after something else scaled down', async () => {
    await k8s.scaleDeployment(action({ namespace, name: 'fte-message-processor', replicas: 4 }));
    sim.setHpaDemand('fte-message-processor', 2);
    expect(sim.podsOf('fte-message-processor')).toHaveLength(2);
    const again = await k8s.scaleDeployment(
      action({ namespace, name: 'fte-message-processor', replicas: 4 }),
    );
    expect(again.changed).toBe(false);
    expect(sim.podsOf('fte-message-processor')).toHaveLength(2);
  });

  it('classifies a 500 from the API server as a retryable ServerError', async () => {
    sim.failRequests({ resource: 'deployments', subresource: 'scale' });
    const error = await failure(
      k8s.scaleDeployment(action({ namespace, name: 'fte-message-processor', replicas: 5 })),
    );
    expect(error.type).toBe('ServerError');
    expect(error.nonRetryable).toBe(false);
    expect(sim.state.deployments['fte-message-processor']?.replicas).toBe(2);
  });

  it('classifies a 422 from the API server as a BadRequestError', async () => {
    sim.failRequests(
      { verb: 'patch', subresource: 'scale' },
      { code: 422, message: 'spec.replicas: Invalid value' },
    );
    const error = await failure(
      k8s.scaleDeployment(action({ namespace, name: 'fte-message-processor', replicas: 5 })),
    );
    expect(error.type).toBe('BadRequestError');
  });
});

describe('raiseHpaMax', () => {
  it('raises the maximum, and the HPA scales to the load it could not reach before', async () => {
    sim.setHpaDemand('fte-message-processor', 8);
    expect(sim.podsOf('fte-message-processor')).toHaveLength(5);
    const result = await k8s.raiseHpaMax(
      action({ namespace, name: 'fte-message-processor', maxReplicas: 10 }),
    );
    expect(result).toEqual({
      changed: true,
      summary: `raised HPA fte-message-processor in ${namespace} maxReplicas from 5 to 10`,
    });
    expect(sim.state.hpas['fte-message-processor']?.maxReplicas).toBe(10);
    expect(sim.podsOf('fte-message-processor')).toHaveLength(8);
  });

  it('never lowers the maximum and does nothing more for a repeated key', async () => {
    await k8s.raiseHpaMax(action({ namespace, name: 'fte-message-processor', maxReplicas: 10 }, 'k1'));
    const lower = await k8s.raiseHpaMax(
      action({ namespace, name: 'fte-message-processor', maxReplicas: 7 }, 'k2'),
    );
    expect(lower.changed).toBe(false);
    expect(lower.summary).toContain('already allows 10 replicas (requested 7); never lowered');
    const repeat = await k8s.raiseHpaMax(
      action({ namespace, name: 'fte-message-processor', maxReplicas: 10 }, 'k1'),
    );
    expect(repeat.changed).toBe(false);
    expect(sim.state.hpas['fte-message-processor']?.maxReplicas).toBe(10);
    expect(sim.requests.filter((r) => r.verb === 'patch')).toHaveLength(1);
  });
});

describe('every action', () => {
  it('throws an UnavailableError while the API server cannot be reached', async () => {
    await sim.stop();
    const error = await failure(
      k8s.raiseHpaMax(action({ namespace, name: 'fte-message-processor', maxReplicas: 10 })),
    );
    expect(error.type).toBe('UnavailableError');
    expect(error.nonRetryable).toBe(false);
    expect(error.message).toContain('the Kubernetes API is unreachable (ECONNREFUSED)');
  });

  it('throws a TimeoutError when the API server answers too slowly', async () => {
    sim.slowRequests(3_000, { verb: 'get', resource: 'deployments' });
    const impatient = kubernetesActivities({
      kubeConfig: loadKubeConfig(sim.kubeconfigPath),
      requestTimeoutMs: 500,
    });
    const error = await failure(
      impatient.rolloutRestart(action({ namespace, kind: 'deployment', name: 'fte-api' })),
    );
    expect(error.type).toBe('TimeoutError');
  });

  it('rejects malformed arguments with a BadRequestError before touching the cluster', async () => {
    const cases: [keyof KubernetesActivities, Record<string, unknown>, string][] = [
      ['rolloutRestart', { namespace, kind: 'statefulset', name: 'postgres' }, 'kind'],
      ['rolloutRestart', { namespace: '../etc', kind: 'deployment', name: 'fte-api' }, 'namespace'],
      ['restartStatefulSetPod', { namespace, statefulset: 'postgres' }, 'pod'],
      ['scaleDeployment', { namespace, name: 'fte-api', replicas: '5' }, 'replicas'],
      ['scaleDeployment', { namespace, name: 'fte-api', replicas: 0 }, 'replicas'],
      ['raiseHpaMax', { namespace, name: 'fte-message-processor', maxReplicas: 2.5 }, 'maxReplicas'],
    ];
    for (const [name, args, field] of cases) {
      const activity = k8s[name] as (input: ActionInput) => Promise<unknown>;
      const error = await failure(activity(action(args)));
      expect(error.type, `${name} ${JSON.stringify(args)}`).toBe('BadRequestError');
      expect(error.message).toContain(`${name}: invalid arguments: ${field}`);
    }
    expect(sim.requests).toHaveLength(0);
  });
});
