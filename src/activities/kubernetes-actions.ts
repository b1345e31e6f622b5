import type { V1ObjectMeta } from '@kubernetes/client-node';
import { z } from 'zod';
import type { ActionActivity, ActionInput, ActionResult } from '../domain/activity-contract.js';
import { parseActivityArgs, redact } from './common.js';
import { kubernetesActionArgs as schemas } from './kubernetes-args.js';
import {
  isConflict,
  isNotFound,
  KubeFailure,
  MERGE_PATCH,
  toActivityError,
  type KubeClient,
} from './kubernetes-client.js';

// Actions change the cluster, each at most once per idempotency key: the key is recorded on the object the
// action changes (an annotation), in the same write when the API allows it, and a repeat finds it there.
// Writes carry the resourceVersion they were computed from, so two workers never both act on one reading.

/** Keys of the actions that changed an object (JSON array of the most recent keys). */
export const ACTION_KEYS_ANNOTATION = 'incident-response/action-keys';
/** Pod restarts of a stateful set: JSON array of {key, pod, uid}, written before the pod is deleted. */
export const POD_RESTARTS_ANNOTATION = 'incident-response/pod-restarts';
export const RESTARTED_AT_ANNOTATION = 'kubectl.kubernetes.io/restartedAt';

const KEPT_KEYS = 10;
/**
 * A real API server answers 409 whenever anyone wrote the object since we read it, the controllers' status
 * updates included: a deployment that is rolling out changes several times a second. Six reads and writes,
 * spaced a little more each time, outlast that churn; a real competing writer still ends the action.
 */
export const CONFLICT_ATTEMPTS = 6;
const CONFLICT_BACKOFF_MS = 100;

const keyList = z.array(z.string());
const podRestartList = z.array(z.object({ key: z.string(), pod: z.string(), uid: z.string() }));

function annotationList<T>(schema: z.ZodType<T[]>, meta: V1ObjectMeta | undefined, name: string): T[] {
  const raw = meta?.annotations?.[name];
  if (!raw) return [];
  try {
    const parsed = schema.safeParse(JSON.parse(raw));
    return parsed.success ? parsed.data : [];
  } catch {
    return [];
  }
}

const recordedKeys = (meta: V1ObjectMeta | undefined) =>
  annotationList(keyList, meta, ACTION_KEYS_ANNOTATION);
const withKey = (meta: V1ObjectMeta | undefined, key: string) =>
  JSON.stringify([...recordedKeys(meta), key].slice(-KEPT_KEYS));

/** Re-reads and retries when another writer changed the object between our read and our write. */
async function retryOnConflict<T>(attempt: () => Promise<T>): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isConflict(error) || i >= CONFLICT_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, CONFLICT_BACKOFF_MS * i));
    }
  }
}

export interface KubernetesActions {
  rolloutRestart: ActionActivity;
  restartStatefulSetPod: ActionActivity;
  scaleDeployment: ActionActivity;
  raiseHpaMax: ActionActivity;
}

export function kubernetesActions(client: KubeClient): KubernetesActions {
  async function act(run: () => Promise<ActionResult>): Promise<ActionResult> {
    try {
      const result = await run();
      return { changed: result.changed, summary: redact(result.summary) };
    } catch (error) {
      throw toActivityError(error);
    }
  }

  const rolloutRestart: ActionActivity = async (input: ActionInput) => {
    const args = parseActivityArgs(schemas.rolloutRestart, input.args, 'rolloutRestart');
    const { namespace, name } = args;
    const target = `deployment/${name}`;
    return act(() =>
      retryOnConflict(async () => {
        const deployment = await client.call(`read ${target} in ${namespace}`, (o) =>
          client.apps.readNamespacedDeployment({ name, namespace }, o),
        );
        if (recordedKeys(deployment.metadata).includes(input.idempotencyKey)) {
          return {
            changed: false,
            summary: `${target} was already restarted for this step; not restarted again`,
          };
        }
        const restartedAt = new Date().toISOString();
        // One merge patch: the restart annotation on the pod template (what kubectl rollout restart sets) and
        // the key on the deployment, guarded by the resourceVersion we read.
        await client.call(
          `restart ${target} in ${namespace}`,
          (o) =>
            client.apps.patchNamespacedDeployment(
              {
                name,
                namespace,
                fieldManager: 'incident-response',
                body: {
                  metadata: {
                    resourceVersion: deployment.metadata?.resourceVersion,
                    annotations: {
                      [ACTION_KEYS_ANNOTATION]: withKey(deployment.metadata, input.idempotencyKey),
                    },
                  },
                  spec: {
                    template: { metadata: { annotations: { [RESTARTED_AT_ANNOTATION]: restartedAt } } },
                  },
                },
              },
              o,
            ),
          MERGE_PATCH,
        );
        return {
          changed: true,
          summary: `rollout restart of ${target} in ${namespace} started (restartedAt ${restartedAt})`,
        };
      }),
    );
  };

  const restartStatefulSetPod: ActionActivity = async (input: ActionInput) => {
    const args = parseActivityArgs(schemas.restartStatefulSetPod, input.args, 'restartStatefulSetPod');
    const { namespace, statefulset, pod } = args;
    return act(async () => {
      const record = await retryOnConflict(async (): Promise<{ done: string } | { uid: string }> => {
        const set = await client.call(`read statefulset/${statefulset} in ${namespace}`, (o) =>
          client.apps.readNamespacedStatefulSet({ name: statefulset, namespace }, o),
        );
        const restarts = annotationList(podRestartList, set.metadata, POD_RESTARTS_ANNOTATION);
        const earlier = restarts.find((r) => r.key === input.idempotencyKey && r.pod === pod);
        let current;
        try {
          current = await client.call(`read pod ${pod} in ${namespace}`, (o) =>
            client.core.readNamespacedPod({ name: pod, namespace }, o),
          );
        } catch (error) {
          if (!isNotFound(error)) throw error;
          return {
            done: `pod ${pod} is not there now (the statefulset controller recreates it); nothing deleted`,
          };
        }
        const owner = current.metadata?.ownerReferences?.find((r) => r.controller);
        if (owner?.kind !== 'StatefulSet' || owner.name !== statefulset) {
          throw new KubeFailure('api', `pod ${pod} is not managed by statefulset/${statefulset}`, 400);
        }
        const uid = current.metadata?.uid ?? '';
        // The pod the plan saw, or the one an earlier attempt of this same step set out to delete.
        const expected = args.expectUid ?? earlier?.uid;
        if (expected && expected !== uid) {
          return {
            done: earlier
              ? `pod ${pod} was already restarted for this step (uid ${expected} replaced by ${uid}); not restarted again`
              : `pod ${pod} was already replaced (expected uid ${expected}, found ${uid}); not restarted again`,
          };
        }
        if (!earlier) {
          const entries = [...restarts, { key: input.idempotencyKey, pod, uid }].slice(-KEPT_KEYS);
          await client.call(
            `record the restart of pod ${pod} on statefulset/${statefulset}`,
            (o) =>
              client.apps.patchNamespacedStatefulSet(
                {
                  name: statefulset,
                  namespace,
                  fieldManager: 'incident-response',
                  body: {
                    metadata: {
                      resourceVersion: set.metadata?.resourceVersion,
                      annotations: { [POD_RESTARTS_ANNOTATION]: JSON.stringify(entries) },
                    },
                  },
                },
                o,
              ),
            MERGE_PATCH,
          );
        }
        return { uid };
      });
      if ('done' in record) return { changed: false, summary: record.done };
      try {
        await client.call(`delete pod ${pod} in ${namespace}`, (o) =>
          client.core.deleteNamespacedPod(
            { name: pod, namespace, body: { preconditions: { uid: record.uid } } },
            o,
          ),
        );
      } catch (error) {
        if (isConflict(error) || isNotFound(error)) {
          return {
            changed: false,
            summary: `pod ${pod} was replaced meanwhile (uid ${record.uid} is gone); not restarted again`,
          };
        }
        throw error;
      }
      return {
        changed: true,
        summary: `deleted pod ${pod} (uid ${record.uid}) in ${namespace}; statefulset/${statefulset} recreates it`,
      };
    });
  };

  const scaleDeployment: ActionActivity = async (input: ActionInput) => {
    const args = parseActivityArgs(schemas.scaleDeployment, input.args, 'scaleDeployment');
    const { namespace, name, replicas } = args;
    const target = `deployment/${name}`;
    return act(async () => {
      const deployment = await client.call(`read ${target} in ${namespace}`, (o) =>
        client.apps.readNamespacedDeployment({ name, namespace }, o),
      );
      if (recordedKeys(deployment.metadata).includes(input.idempotencyKey)) {
        return { changed: false, summary: `${target} was already scaled for this step; not scaled again` };
      }
      const before = await retryOnConflict(async () => {
        const scale = await client.call(`read the scale of ${target}`, (o) =>
          client.apps.readNamespacedDeploymentScale({ name, namespace }, o),
        );
        const current = scale.spec?.replicas ?? 0;
        if (current >= replicas) return { current, changed: false };
        await client.call(
          `scale ${target} to ${replicas}`,
          (o) =>
            client.apps.patchNamespacedDeploymentScale(
              {
                name,
                namespace,
                fieldManager: 'incident-response',
                body: { metadata: { resourceVersion: scale.metadata?.resourceVersion }, spec: { replicas } },
              },
              o,
            ),
          MERGE_PATCH,
        );
        return { current, changed: true };
      });
      if (!before.changed) {
        return {
          changed: false,
          summary: `${target} already has ${before.current} replicas (requested ${replicas}); never scaled down`,
        };
      }
      await retryOnConflict(async () => {
        const latest = await client.call(`read ${target} in ${namespace}`, (o) =>
          client.apps.readNamespacedDeployment({ name, namespace }, o),
        );
        await client.call(
          `record the scale of ${target}`,
          (o) =>
            client.apps.patchNamespacedDeployment(
              {
                name,
                namespace,
                fieldManager: 'incident-response',
                body: {
                  metadata: {
                    resourceVersion: latest.metadata?.resourceVersion,
                    annotations: { [ACTION_KEYS_ANNOTATION]: withKey(latest.metadata, input.idempotencyKey) },
                  },
                },
              },
              o,
            ),
          MERGE_PATCH,
        );
      });
      return {
        changed: true,
        summary: `scaled ${target} in ${namespace} from ${before.current} to ${replicas} replicas`,
      };
    });
  };

  const raiseHpaMax: ActionActivity = async (input: ActionInput) => {
    const args = parseActivityArgs(schemas.raiseHpaMax, input.args, 'raiseHpaMax');
    const { namespace, name, maxReplicas } = args;
    const target = `HPA ${name}`;
    return act(() =>
      retryOnConflict(async () => {
        const hpa = await client.call(`read ${target} in ${namespace}`, (o) =>
          client.autoscaling.readNamespacedHorizontalPodAutoscaler({ name, namespace }, o),
        );
        if (recordedKeys(hpa.metadata).includes(input.idempotencyKey)) {
          return {
            changed: false,
            summary: `${target} maximum was already raised for this step; not changed again`,
          };
        }
        const current = hpa.spec?.maxReplicas ?? 0;
        if (current >= maxReplicas) {
          return {
            changed: false,
            summary: `${target} already allows ${current} replicas (requested ${maxReplicas}); never lowered`,
          };
        }
        await client.call(
          `raise the maximum of ${target} to ${maxReplicas}`,
          (o) =>
            client.autoscaling.patchNamespacedHorizontalPodAutoscaler(
              {
                name,
                namespace,
                fieldManager: 'incident-response',
                body: {
                  metadata: {
                    resourceVersion: hpa.metadata?.resourceVersion,
                    annotations: { [ACTION_KEYS_ANNOTATION]: withKey(hpa.metadata, input.idempotencyKey) },
                  },
                  spec: { maxReplicas },
                },
              },
              o,
            ),
          MERGE_PATCH,
        );
        return {
          changed: true,
          summary: `raised ${target} in ${namespace} maxReplicas from ${current} to ${maxReplicas}`,
        };
      }),
    );
  };

  return { rolloutRestart, restartStatefulSetPod, scaleDeployment, raiseHpaMax };
}
