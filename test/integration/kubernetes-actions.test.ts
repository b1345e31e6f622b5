import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PatchStrategy, setHeaderOptions, type V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import {
  ACTION_KEYS_ANNOTATION,
  CONFLICT_ATTEMPTS,
  POD_RESTARTS_ANNOTATION,
  RESTARTED_AT_ANNOTATION,
  type KubernetesActivities,
} from '../../src/activities/kubernetes.js';
import type { ActionInput } from '../../src/domain/activity-contract.js';
import type { PodView } from '../../src/sandbox/cluster.js';
import { FAILURE_LINES } from '../../src/sandbox/pod-logs.js';
import { failure, rolledOut, startKubeTarget, until, type KubeTarget } from '../helpers/kube.js';

// The actions against the FTE platform on the real control plane, as the worker's ServiceAccount through the
// sandbox's API proxy, each test in a namespace of its own: what changed in the cluster (as kubectl shows
// it), that a repeat with the same key changes nothing more, and how failures are classified. Races are
// real: another writer changes the object just before the action's write reaches the API server.

const MERGE_PATCH = 'application/merge-patch+json';
const processor = 'fte-message-processor';

let t: KubeTarget;
let k8s: KubernetesActivities;
let namespace: string;

const action = (args: Record<string, unknown>, idempotencyKey = 'inc-1/step-1/1'): ActionInput => ({
  incidentId: 'inc-1',
  scope: namespace,
  stepId: 'step-1',
  idempotencyKey,
  args,
});

const names = (pods: PodView[]) => pods.map((p) => p.name).sort();
const requests = (verb: string) => t.proxy.requests.filter((r) => r.verb === verb);
const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

/** Someone else (kubectl annotate) writes the deployment, which gets a new resourceVersion. */
const annotateDeployment = (name: string, value: string) =>
  t.cluster.apps.patchNamespacedDeployment(
    { name, namespace, body: { metadata: { annotations: { 'example.com/touched-by': value } } } },
    mergePatch,
  );

/** `kubectl scale deployment/<name> --replicas=<n>`, as a person or an autoscaler would. */
const scaleTo = (name: string, replicas: number) =>
  t.cluster.apps.patchNamespacedDeploymentScale(
    { name, namespace, body: { spec: { replicas } } },
    mergePatch,
  );

const readyPods = (workload: string, count: number) =>
  until(
    () => t.cluster.podsOf(workload),
    (pods) => pods.length === count && pods.every((p) => p.ready),
    `${count} ready pods of ${workload}`,
  );

beforeEach(async () => {
  t = await startKubeTarget();
  namespace = t.namespace;
  k8s = t.activities();
});
afterEach(() => t.stop());

describe('rolloutRestart', () => {
  const restartApi = () => ({ namespace, kind: 'deployment', name: 'fte-api' });

  it('replaces every pod of the deployment with new ones, as kubectl rollout restart does', async () => {
    const before = await t.cluster.podsOf('fte-api');
    const result = await k8s.rolloutRestart(action(restartApi()));
    expect(result.changed).toBe(true);
    expect(result.summary).toContain('rollout restart of deployment/fte-api');
    const rollout = await rolledOut(t.cluster, 'fte-api');
    expect(rollout.generation).toBe(2);
    expect(rollout.templateAnnotations[RESTARTED_AT_ANNOTATION]).toBeDefined();
    // A new ReplicaSet runs the three replicas; the old one is scaled to zero.
    expect(rollout.replicaSets.map((rs) => rs.replicas)).toEqual([3, 0]);
    const after = await t.cluster.podsOf('fte-api');
    expect(after).toHaveLength(3);
    expect(after.every((p) => p.ready)).toBe(true);
    const oldUids = new Set(before.map((p) => p.uid));
    const oldNames = new Set(before.map((p) => p.name));
    for (const pod of after) {
      expect(oldUids.has(pod.uid)).toBe(false);
      expect(oldNames.has(pod.name)).toBe(false);
    }
    expect(requests('patch').map((r) => [r.resource, r.contentType, r.status])).toEqual([
      ['deployments', MERGE_PATCH, 200],
    ]);
  });

  it('restarts once for one idempotency key, however often it is repeated', async () => {
    await k8s.rolloutRestart(action(restartApi(), 'inc-1/restart-api/1'));
    const first = await rolledOut(t.cluster, 'fte-api');
    const restarted = names(await t.cluster.podsOf('fte-api'));
    const stamp = first.templateAnnotations[RESTARTED_AT_ANNOTATION];
    t.proxy.clearRequests();
    const again = await k8s.rolloutRestart(action(restartApi(), 'inc-1/restart-api/1'));
    const third = await k8s.rolloutRestart(action(restartApi(), 'inc-1/restart-api/1'));
    expect(again).toEqual({
      changed: false,
      summary: expect.stringContaining('already restarted') as string,
    });
    expect(third.changed).toBe(false);
    expect(requests('patch')).toHaveLength(0);
    const still = await rolledOut(t.cluster, 'fte-api');
    expect(still.generation).toBe(2);
    expect(still.templateAnnotations[RESTARTED_AT_ANNOTATION]).toBe(stamp);
    expect(still.replicaSets).toHaveLength(2);
    expect(names(await t.cluster.podsOf('fte-api'))).toEqual(restarted);

    const next = await k8s.rolloutRestart(action(restartApi(), 'inc-1/restart-api/2'));
    expect(next.changed).toBe(true);
    const second = await rolledOut(t.cluster, 'fte-api');
    expect(second.generation).toBe(3);
    expect(second.replicaSets.map((rs) => rs.replicas)).toEqual([3, 0, 0]);
    expect(names(await t.cluster.podsOf('fte-api'))).not.toEqual(restarted);
    const { annotations } = await t.cluster.deployment('fte-api');
    expect(JSON.parse(annotations[ACTION_KEYS_ANNOTATION] ?? '[]')).toEqual([
      'inc-1/restart-api/1',
      'inc-1/restart-api/2',
    ]);
  });

  it('writes against the version it read and tries again when someone else wrote first', async () => {
    // Between the action's read and its patch, someone annotates the deployment: the API server refuses the
    // patch (its resourceVersion is stale) with a 409, and the action reads again and patches again.
    t.proxy.beforeRequest({ verb: 'patch', resource: 'deployments', name: 'fte-api' }, async () => {
      await annotateDeployment('fte-api', 'someone-else');
    });
    const result = await k8s.rolloutRestart(action(restartApi()));
    expect(result.changed).toBe(true);
    // The first patch meets the other writer's change. The deployment controller then records the new
    // generation in the status, which can cost the re-read patch another 409 or two.
    const statuses = requests('patch').map((r) => r.status);
    expect(statuses[0]).toBe(409);
    expect(statuses.at(-1)).toBe(200);
    expect(statuses.slice(0, -1).every((s) => s === 409)).toBe(true);
    const deployment = await t.cluster.deployment('fte-api');
    expect(deployment.annotations['example.com/touched-by']).toBe('someone-else');
    // A Deployment's generation counts annotation changes too: one for the other writer, one for the restart.
    const rollout = await rolledOut(t.cluster, 'fte-api');
    expect(rollout.generation).toBe(3);
    expect(rollout.templateAnnotations[RESTARTED_AT_ANNOTATION]).toBeDefined();
    expect(rollout.replicaSets.map((rs) => rs.replicas)).toEqual([3, 0]);
  });

  it('gives up with a PreconditionFailedError when the object keeps changing under it', async () => {
    const before = names(await t.cluster.podsOf('fte-api'));
    let writes = 0;
    t.proxy.beforeRequest(
      { verb: 'patch', resource: 'deployments', name: 'fte-api' },
      async () => {
        await annotateDeployment('fte-api', `someone-else-${++writes}`);
      },
      Number.POSITIVE_INFINITY,
    );
    const error = await failure(k8s.rolloutRestart(action(restartApi())));
    expect(error.type).toBe('PreconditionFailedError');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain('the object has been modified');
    expect(requests('patch').map((r) => r.status)).toEqual(Array(CONFLICT_ATTEMPTS).fill(409));
    // Only the other writer's writes, none of the action: the pod template is what it was, one ReplicaSet.
    const rollout = await rolledOut(t.cluster, 'fte-api');
    expect(rollout.generation).toBe(1 + CONFLICT_ATTEMPTS);
    expect(rollout.templateAnnotations[RESTARTED_AT_ANNOTATION]).toBeUndefined();
    expect(rollout.replicaSets.map((rs) => rs.replicas)).toEqual([3]);
    expect(names(await t.cluster.podsOf('fte-api'))).toEqual(before);
  });

  it('throws a NotFoundError for a deployment that does not exist', async () => {
    const error = await failure(k8s.rolloutRestart(action({ ...restartApi(), name: 'fte-nope' })));
    expect(error.type).toBe('NotFoundError');
    expect(error.message).toContain('deployments.apps "fte-nope" not found');
  });

  it('throws a ForbiddenError when the service account may not patch deployments, changing nothing', async () => {
    const before = names(await t.cluster.podsOf('fte-api'));
    t.proxy.forbid({ verb: 'patch', resource: 'deployments' });
    const error = await failure(k8s.rolloutRestart(action(restartApi())));
    expect(error.type).toBe('ForbiddenError');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain('cannot patch resource "deployments" in API group "apps"');
    expect((await t.cluster.deployment('fte-api')).generation).toBe(1);
    expect(names(await t.cluster.podsOf('fte-api'))).toEqual(before);
  });
});

describe('restartStatefulSetPod', () => {
  const postgres0 = () =>
    t.cluster.podsOf('postgres').then((pods) => {
      expect(pods.map((p) => p.name)).toEqual(['postgres-0']);
      return pods[0] as PodView;
    });
  /** Waits for the StatefulSet controller to bring a pod back under its name with a new uid. */
  const replaced = (workload: string, oldUid: string) =>
    until(
      () => t.cluster.podsOf(workload),
      (pods) => pods.length === 1 && pods[0]?.uid !== oldUid && pods[0]?.ready === true,
      `${workload}-0 replaced by a new, ready pod`,
    ).then((pods) => pods[0] as PodView);

  it('deletes the pod the plan saw; the statefulset brings it back under the same name with a new uid', async () => {
    await t.cluster.failPods('postgres', 'crashloop', FAILURE_LINES.postgresCrash);
    const [before] = await until(
      () => t.cluster.podsOf('postgres'),
      (pods) => pods[0]?.reason === 'CrashLoopBackOff',
      'postgres-0 in CrashLoopBackOff',
    );
    const uid = before?.uid ?? '';
    const result = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0', expectUid: uid }),
    );
    expect(result.changed).toBe(true);
    expect(result.summary).toContain(`deleted pod postgres-0 (uid ${uid})`);
    const after = await replaced('postgres', uid);
    expect(after.name).toBe('postgres-0');
    expect(after.uid).not.toBe(uid);
    expect(after.restartCount).toBe(0);
    expect(after.reason).toBeUndefined();
    const { annotations } = await t.cluster.statefulSet('postgres');
    expect(JSON.parse(annotations[POD_RESTARTS_ANNOTATION] ?? '[]')).toEqual([
      { key: 'inc-1/step-1/1', pod: 'postgres-0', uid },
    ]);
  });

  it('does nothing when the pod was already replaced (the uid the plan saw is gone)', async () => {
    const [stale] = await t.cluster.podsOf('kafka');
    const staleUid = stale?.uid ?? '';
    await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'kafka', pod: 'kafka-0' }, 'someone-else'),
    );
    const current = await replaced('kafka', staleUid);
    t.proxy.clearRequests();
    const result = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'kafka', pod: 'kafka-0', expectUid: staleUid }),
    );
    expect(result.changed).toBe(false);
    expect(result.summary).toBe(
      `pod kafka-0 was already replaced (expected uid ${staleUid}, found ${current.uid}); not restarted again`,
    );
    expect(requests('delete')).toHaveLength(0);
    expect((await t.cluster.podsOf('kafka'))[0]?.uid).toBe(current.uid);
  });

  it('restarts once per idempotency key even without an expected uid', async () => {
    const original = await postgres0();
    const first = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0' }),
    );
    const replacement = await replaced('postgres', original.uid);
    const second = await k8s.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0' }),
    );
    expect(first.changed).toBe(true);
    expect(second.changed).toBe(false);
    expect(second.summary).toContain('already restarted for this step');
    expect((await postgres0()).uid).toBe(replacement.uid);
    expect(requests('delete')).toHaveLength(1);
  });

  it('deletes with a uid precondition, so a pod replaced between the read and the delete is left alone', async () => {
    const seen = await postgres0();
    // The pod is evicted (kubectl delete pod) and recreated by its StatefulSet just before the action's
    // delete reaches the API server, which then refuses it: the uid precondition no longer holds.
    t.proxy.beforeRequest({ verb: 'delete', resource: 'pods', name: 'postgres-0' }, async () => {
      await t.cluster.core.deleteNamespacedPod({ name: 'postgres-0', namespace });
      await replaced('postgres', seen.uid);
    });
    const patient = t.activities(120_000);
    const result = await patient.restartStatefulSetPod(
      action({ namespace, statefulset: 'postgres', pod: 'postgres-0', expectUid: seen.uid }),
    );
    const replacement = await postgres0();
    expect(replacement.uid).not.toBe(seen.uid);
    expect(result.changed).toBe(false);
    expect(result.summary).toBe(
      `pod postgres-0 was replaced meanwhile (uid ${seen.uid} is gone); not restarted again`,
    );
    expect(requests('delete').map((r) => r.status)).toEqual([409]);
    expect((await postgres0()).uid).toBe(replacement.uid);
  });

  it('refuses a pod that is not one of the statefulset', async () => {
    const error = await failure(
      k8s.restartStatefulSetPod(action({ namespace, statefulset: 'kafka', pod: 'postgres-0' })),
    );
    expect(error.type).toBe('BadRequestError');
    expect(error.message).toContain('pod: must be a pod of the statefulset');
    expect(requests('delete')).toHaveLength(0);
  });
});

describe('scaleDeployment', () => {
  it('scales through the scale subresource and the pod count follows', async () => {
    const result = await k8s.scaleDeployment(action({ namespace, name: processor, replicas: 5 }));
    expect(result).toEqual({
      changed: true,
      summary: `scaled deployment/${processor} in ${namespace} from 2 to 5 replicas`,
    });
    await readyPods(processor, 5);
    expect((await t.cluster.deployment(processor)).replicas).toBe(5);
    expect(requests('patch').find((r) => r.subresource === 'scale')).toMatchObject({
      group: 'apps',
      resource: 'deployments',
      name: processor,
      contentType: MERGE_PATCH,
      status: 200,
    });
  });

  it('never scales down', async () => {
    await k8s.scaleDeployment(action({ namespace, name: processor, replicas: 5 }, 'k-up'));
    const result = await k8s.scaleDeployment(action({ namespace, name: processor, replicas: 3 }, 'k-down'));
    expect(result.changed).toBe(false);
    expect(result.summary).toContain('already has 5 replicas (requested 3); never scaled down');
    expect((await t.cluster.deployment(processor)).replicas).toBe(5);
    await readyPods(processor, 5);
  });

  it('does not scale again for the same key after something else scaled down', async () => {
    await k8s.scaleDeployment(action({ namespace, name: processor, replicas: 4 }));
    await readyPods(processor, 4);
    await scaleTo(processor, 2);
    await readyPods(processor, 2);
    const again = await k8s.scaleDeployment(action({ namespace, name: processor, replicas: 4 }));
    expect(again.changed).toBe(false);
    expect((await t.cluster.deployment(processor)).replicas).toBe(2);
    expect(await t.cluster.podsOf(processor)).toHaveLength(2);
  });

  it('classifies a 500 from the API server as a retryable ServerError', async () => {
    t.proxy.failRequests({ resource: 'deployments', subresource: 'scale' });
    const error = await failure(k8s.scaleDeployment(action({ namespace, name: processor, replicas: 5 })));
    expect(error.type).toBe('ServerError');
    expect(error.nonRetryable).toBe(false);
    expect((await t.cluster.deployment(processor)).replicas).toBe(2);
  });

  it('classifies a 422 from the API server as a BadRequestError', async () => {
    t.proxy.failRequests(
      { verb: 'patch', subresource: 'scale' },
      { code: 422, message: 'spec.replicas: Invalid value' },
    );
    const error = await failure(k8s.scaleDeployment(action({ namespace, name: processor, replicas: 5 })));
    expect(error.type).toBe('BadRequestError');
    expect((await t.cluster.deployment(processor)).replicas).toBe(2);
  });
});

describe('raiseHpaMax', () => {
  const readHpa = () =>
    t.cluster.autoscaling.readNamespacedHorizontalPodAutoscaler({ name: processor, namespace });
  const observed = (h: V2HorizontalPodAutoscaler) =>
    (h.status?.observedGeneration ?? 0) >= (h.metadata?.generation ?? 1);

  // Two syncs of the HPA controller (15 s apart) and some scheduling on a busy machine.
  it(
    'raises the maximum, and the HPA lets the deployment reach the load it held it back from',
    { timeout: 300_000 },
    async () => {
      // The load asks for 8 replicas (kubectl scale); with a maximum of 5, the HPA controller takes the
      // deployment back to 5 at its next sync (every 15 s). Without a metrics server it does nothing else.
      await scaleTo(processor, 8);
      const capped = await until(
        readHpa,
        (h) => h.status?.desiredReplicas === 5 && h.status.lastScaleTime !== undefined,
        'the HPA to hold the deployment at its maximum of 5',
        120_000,
      );
      await until(
        () => t.cluster.deployment(processor),
        (d) => d.replicas === 5,
        'the deployment back at 5 replicas',
      );

      const result = await k8s.raiseHpaMax(action({ namespace, name: processor, maxReplicas: 10 }));
      expect(result).toEqual({
        changed: true,
        summary: `raised HPA ${processor} in ${namespace} maxReplicas from 5 to 10`,
      });
      const hpa = await t.cluster.hpa(processor);
      expect(hpa.maxReplicas).toBe(10);
      expect(JSON.parse(hpa.annotations[ACTION_KEYS_ANNOTATION] ?? '[]')).toEqual(['inc-1/step-1/1']);

      // The controller has taken in the new maximum; the same load now keeps its 8 replicas: the HPA sees
      // them at its next sync and leaves them (it has not scaled since it capped the deployment).
      await until(readHpa, observed, 'the HPA controller to see the new maximum');
      await scaleTo(processor, 8);
      const seen = await until(
        readHpa,
        (h) => h.status?.currentReplicas === 8,
        'the HPA to see 8 replicas',
        120_000,
      );
      expect(seen.status?.lastScaleTime).toEqual(capped.status?.lastScaleTime);
      expect((await t.cluster.deployment(processor)).replicas).toBe(8);
      await readyPods(processor, 8);
    },
  );

  it('never lowers the maximum and does nothing more for a repeated key', async () => {
    await k8s.raiseHpaMax(action({ namespace, name: processor, maxReplicas: 10 }, 'k1'));
    const lower = await k8s.raiseHpaMax(action({ namespace, name: processor, maxReplicas: 7 }, 'k2'));
    expect(lower.changed).toBe(false);
    expect(lower.summary).toContain('already allows 10 replicas (requested 7); never lowered');
    const repeat = await k8s.raiseHpaMax(action({ namespace, name: processor, maxReplicas: 10 }, 'k1'));
    expect(repeat.changed).toBe(false);
    expect((await t.cluster.hpa(processor)).maxReplicas).toBe(10);
    expect(requests('patch')).toHaveLength(1);
  });
});

describe('every action', () => {
  it('throws an UnavailableError while the API server cannot be reached', async () => {
    await t.proxy.stop();
    const error = await failure(k8s.raiseHpaMax(action({ namespace, name: processor, maxReplicas: 10 })));
    expect(error.type).toBe('UnavailableError');
    expect(error.nonRetryable).toBe(false);
    expect(error.message).toContain('the Kubernetes API is unreachable (ECONNREFUSED)');
    expect((await t.cluster.hpa(processor)).maxReplicas).toBe(5);
  });

  it('throws a TimeoutError when the API server answers too slowly', async () => {
    t.proxy.slowRequests(3_000, { verb: 'get', resource: 'deployments' });
    const impatient = t.activities(500);
    const error = await failure(
      impatient.rolloutRestart(action({ namespace, kind: 'deployment', name: 'fte-api' })),
    );
    expect(error.type).toBe('TimeoutError');
    expect(requests('patch')).toHaveLength(0);
    expect((await t.cluster.deployment('fte-api')).generation).toBe(1);
  });

  it('rejects malformed arguments with a BadRequestError before touching the cluster', async () => {
    const cases: [keyof KubernetesActivities, Record<string, unknown>, string][] = [
      ['rolloutRestart', { namespace, kind: 'statefulset', name: 'postgres' }, 'kind'],
      ['rolloutRestart', { namespace: '../etc', kind: 'deployment', name: 'fte-api' }, 'namespace'],
      ['restartStatefulSetPod', { namespace, statefulset: 'postgres' }, 'pod'],
      ['scaleDeployment', { namespace, name: 'fte-api', replicas: '5' }, 'replicas'],
      ['scaleDeployment', { namespace, name: 'fte-api', replicas: 0 }, 'replicas'],
      ['raiseHpaMax', { namespace, name: processor, maxReplicas: 2.5 }, 'maxReplicas'],
    ];
    for (const [name, args, field] of cases) {
      const activity = k8s[name] as (input: ActionInput) => Promise<unknown>;
      const error = await failure(activity(action(args)));
      expect(error.type, `${name} ${JSON.stringify(args)}`).toBe('BadRequestError');
      expect(error.message).toContain(`${name}: invalid arguments: ${field}`);
    }
    expect(t.proxy.requests).toHaveLength(0);
  });
});
