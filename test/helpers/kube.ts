import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig, V1ReplicaSet } from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/activity';
import { expect, onTestFinished } from 'vitest';
import {
  kubernetesActivities,
  loadKubeConfig,
  type KubernetesActivities,
} from '../../src/activities/kubernetes.js';
import { ApiProxy } from '../../src/sandbox/api-proxy.js';
import { FteCluster, WORKER_NAMESPACE, WORKER_SERVICE_ACCOUNT } from '../../src/sandbox/cluster.js';
import { writeKubeconfig } from '../../src/sandbox/kubeconfig.js';
import { services, uniqueName } from './services.js';

// The FTE platform in a namespace of its own on the suite's real control plane (scripts/kube.sh), reached the
// way the worker reaches it: through an ApiProxy that forwards with the worker ServiceAccount's token (so the
// API server authorises every call against the Role the product ships), records each request and injects
// request-level faults.

export const WORKER_USER = `system:serviceaccount:${WORKER_NAMESPACE}:${WORKER_SERVICE_ACCOUNT}`;

export interface KubeTarget {
  namespace: string;
  /** The platform as an administrator sees and changes it (kubectl with cluster-admin rights). */
  cluster: FteCluster;
  /** What the activities reach: records requests, injects faults; stop it to make the API unreachable. */
  proxy: ApiProxy;
  /** The worker's kubeconfig: the proxy's address, CA and client token, and the namespace. */
  kubeconfigPath: string;
  /** The activities' KubeConfig, loaded from that file as the worker loads $KUBECONFIG. */
  kubeConfig: KubeConfig;
  /** The worker ServiceAccount token the proxy forwards with (never the activities' own). */
  workerToken: string;
  activities(requestTimeoutMs?: number): KubernetesActivities;
  stop(): Promise<void>;
}

/** A fresh namespace with the FTE platform, every pod ready, and the worker's way into it. */
export async function startKubeTarget(options: { namespace?: string } = {}): Promise<KubeTarget> {
  const namespace = options.namespace ?? uniqueName('fte');
  const dir = await mkdtemp(join(tmpdir(), `${namespace}-`));
  let cluster: FteCluster | undefined;
  let proxy: ApiProxy | undefined;
  try {
    cluster = await FteCluster.open({
      adminKubeconfig: services().kubeconfig,
      namespace,
      logDir: join(dir, 'logs'),
    });
    const workerToken = await cluster.workerToken();
    proxy = await new ApiProxy({ user: WORKER_USER }).start();
    proxy.attach({ ...cluster.server, token: workerToken });
    const kubeconfigPath = join(dir, 'kubeconfig');
    await writeKubeconfig(kubeconfigPath, {
      server: proxy.url,
      caPem: proxy.caPem,
      token: proxy.token,
      namespace,
    });
    const kubeConfig = loadKubeConfig(kubeconfigPath);
    const [openCluster, openProxy] = [cluster, proxy];
    return {
      namespace,
      cluster,
      proxy,
      kubeconfigPath,
      kubeConfig,
      workerToken,
      activities: (requestTimeoutMs = 10_000) => kubernetesActivities({ kubeConfig, requestTimeoutMs }),
      stop: async () => {
        await openProxy.stop();
        await openCluster.remove();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await proxy?.stop();
    await cluster?.remove().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** A target for the running test alone, removed when the test ends (for tests that change the platform). */
export async function ownKubeTarget(): Promise<KubeTarget> {
  const target = await startKubeTarget();
  onTestFinished(() => target.stop());
  return target;
}

/**
 * Polls until `predicate` holds for what `read` returns: the control plane's controllers and kwok act
 * asynchronously to the test. Errors of `read` count as "not yet" until the deadline.
 */
export async function until<T>(
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  timeoutMs = 60_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: { value: T } | { error: unknown } | undefined;
  for (;;) {
    try {
      const value = await read();
      if (predicate(value)) return value;
      last = { value };
    } catch (error) {
      last = { error };
    }
    if (Date.now() > deadline) {
      const seen =
        last === undefined
          ? 'nothing'
          : 'error' in last
            ? String(last.error)
            : JSON.stringify(last.value)?.slice(0, 2000);
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; last: ${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

export interface RolloutView {
  generation: number;
  replicas: number;
  /** The pod template annotations of the Deployment (kubectl.kubernetes.io/restartedAt after a restart). */
  templateAnnotations: Record<string, string>;
  /** The ReplicaSets of the Deployment, newest first, with the replicas each still runs. */
  replicaSets: { name: string; revision: string; replicas: number }[];
}

/**
 * Waits until a Deployment's rollout is complete, as `kubectl rollout status` does: the controller saw the
 * latest generation, every replica runs the latest template, is ready and available, and no old pod is left.
 */
export async function rolledOut(cluster: FteCluster, name: string, timeoutMs = 90_000): Promise<RolloutView> {
  const namespace = cluster.namespace;
  const deployment = await until(
    () => cluster.apps.readNamespacedDeployment({ name, namespace }),
    (d) => {
      const want = d.spec?.replicas ?? 1;
      const s = d.status;
      return (
        (s?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0) &&
        s?.updatedReplicas === want &&
        s.readyReplicas === want &&
        s.availableReplicas === want &&
        s.replicas === want
      );
    },
    `the rollout of deployment/${name} in ${namespace}`,
    timeoutMs,
  );
  await until(
    () => cluster.podsOf(name),
    (pods) => pods.length === (deployment.spec?.replicas ?? 1) && pods.every((p) => p.ready),
    `the pods of deployment/${name} (old ones gone, new ones ready)`,
    timeoutMs,
  );
  const uid = deployment.metadata?.uid;
  const sets = await cluster.apps.listNamespacedReplicaSet({ namespace, labelSelector: `app=${name}` });
  const revision = (rs: V1ReplicaSet) =>
    rs.metadata?.annotations?.['deployment.kubernetes.io/revision'] ?? '';
  return {
    generation: deployment.metadata?.generation ?? 0,
    replicas: deployment.spec?.replicas ?? 0,
    templateAnnotations: deployment.spec?.template.metadata?.annotations ?? {},
    replicaSets: sets.items
      .filter((rs) => rs.metadata?.ownerReferences?.some((o) => o.uid === uid))
      .sort((a, b) => Number(revision(b)) - Number(revision(a)))
      .map((rs) => ({
        name: rs.metadata?.name ?? '',
        revision: revision(rs),
        replicas: rs.spec?.replicas ?? 0,
      })),
  };
}

/** The classified activity failure a call ended with (it must fail, and with an ApplicationFailure). */
export async function failure(work: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}
