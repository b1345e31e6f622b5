import { execFile } from 'node:child_process';
import { appendFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ApiException,
  AppsV1Api,
  AuthenticationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  RbacAuthorizationV1Api,
  type V1Pod,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import { uniqueName } from '../helpers/services.js';

// The project's local Kubernetes (scripts/kube.sh): a real etcd, API server, controller manager and
// scheduler, with kwok playing two fake nodes and the pod lifecycle of scripts/kube/stages.yaml.

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));
const kubectlPath = `${root}.tools/kube/bin/kubectl`;
const FAULT = 'sandbox.fte.dev/fault';
const KWOK = { group: 'kwok.x-k8s.io', version: 'v1alpha1' };
// Generous: the suite runs two files at a time on two cores.
const TEST_TIMEOUT = 120_000;

async function kubeScript(args: string[]): Promise<string> {
  try {
    const { stdout } = await run('bash', [`${root}scripts/kube.sh`, ...args], {
      cwd: root,
      timeout: 600_000,
    });
    return stdout.trim();
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`scripts/kube.sh ${args.join(' ')} failed:\n${e.stderr || e.stdout || e.message}`);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Polls probe until it returns a value other than undefined. */
async function eventually<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`,
      );
    }
    await sleep(200);
  }
}

const isReady = (pod: V1Pod) =>
  pod.status?.phase === 'Running' &&
  (pod.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');

const readyCondition = (pod: V1Pod) => (pod.status?.conditions ?? []).find((c) => c.type === 'Ready')?.status;

/** Pods land on the kwok nodes (label type=kwok); kwok never pulls the image. */
function podTemplate(app: string): V1PodTemplateSpec {
  return {
    metadata: { labels: { app } },
    spec: {
      nodeSelector: { type: 'kwok' },
      containers: [{ name: 'app', image: 'registry.invalid/fte/smoke:1' }],
    },
  };
}

describe('project Kubernetes control plane (kwok nodes)', { timeout: TEST_TIMEOUT }, () => {
  let kubeconfig: string;
  let kc: KubeConfig;
  let core: CoreV1Api;
  let apps: AppsV1Api;
  let custom: CustomObjectsApi;
  let stopAfter = false;
  const namespaces: string[] = [];

  const kubectl = async (...args: string[]): Promise<string> => {
    try {
      const { stdout } = await run(kubectlPath, ['--kubeconfig', kubeconfig, ...args], { timeout: 60_000 });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`kubectl ${args.join(' ')} failed: ${e.stderr || e.message}`);
    }
  };

  /** A fresh namespace, deleted after the test, once its default ServiceAccount exists. */
  const newNamespace = async (): Promise<string> => {
    const name = uniqueName('smoke-kube');
    await core.createNamespace({ body: { metadata: { name } } });
    namespaces.push(name);
    await eventually(`the default ServiceAccount of ${name}`, () =>
      core.readNamespacedServiceAccount({ name: 'default', namespace: name }),
    );
    return name;
  };

  /** Waits until exactly `count` pods match (terminating ones included) and all are Running and Ready. */
  const readyPods = (namespace: string, labelSelector: string, count: number, timeoutMs = 30_000) =>
    eventually(
      `${count} ready pods ${labelSelector} in ${namespace}`,
      async () => {
        const { items } = await core.listNamespacedPod({ namespace, labelSelector });
        return items.length === count && items.every(isReady) ? items : undefined;
      },
      timeoutMs,
    );

  /** A Deployment of `replicas` pods labelled app=<name>. */
  const createDeployment = (namespace: string, name: string, replicas: number) =>
    apps.createNamespacedDeployment({
      namespace,
      body: {
        metadata: { name },
        spec: { replicas, selector: { matchLabels: { app: name } }, template: podTemplate(name) },
      },
    });

  const readPod = (namespace: string, name: string) => core.readNamespacedPod({ name, namespace });

  // The suite's global setup normally runs the plane already; started here, it is stopped after.
  beforeAll(async () => {
    const running = await kubeScript(['status']).then(
      () => true,
      () => false,
    );
    if (!running) {
      await kubeScript(['start']);
      stopAfter = !process.env.KEEP_TEST_SERVICES;
    }
    kubeconfig = await kubeScript(['kubeconfig']);
    kc = new KubeConfig();
    kc.loadFromFile(kubeconfig);
    core = kc.makeApiClient(CoreV1Api);
    apps = kc.makeApiClient(AppsV1Api);
    custom = kc.makeApiClient(CustomObjectsApi);
  }, 600_000);

  afterEach(async () => {
    for (const name of namespaces.splice(0)) {
      await core.deleteNamespace({ name }).catch(() => undefined);
    }
  });

  afterAll(async () => {
    if (stopAfter) await kubeScript(['stop']);
  }, 120_000);

  it('runs a Deployment of 2 replicas as Running and Ready pods on the kwok nodes', async () => {
    const namespace = await newNamespace();
    await createDeployment(namespace, 'web', 2);
    const pods = await readyPods(namespace, 'app=web', 2);
    for (const pod of pods) {
      expect(pod.spec?.nodeName).toMatch(/^kwok-node-[01]$/);
      expect(pod.status?.hostIP).toBe('127.0.0.1');
      expect(pod.status?.podIP).toMatch(/^10\.244\.[01]\.\d+$/);
      expect(pod.status?.containerStatuses?.[0]).toMatchObject({
        name: 'app',
        ready: true,
        restartCount: 0,
      });
      expect(pod.status?.containerStatuses?.[0]?.state?.running?.startedAt).toBeDefined();
    }
    await eventually('the Deployment to count 2 available replicas', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'web', namespace });
      return d.status?.readyReplicas === 2 && d.status.availableReplicas === 2 ? d : undefined;
    });
  });

  it('rolls a Deployment out again on `kubectl rollout restart`: new ReplicaSet, new pods, old ones gone', async () => {
    const namespace = await newNamespace();
    await createDeployment(namespace, 'web', 2);
    const before = await readyPods(namespace, 'app=web', 2);
    const oldUids = new Set(before.map((p) => p.metadata?.uid));
    const oldHash = before[0]?.metadata?.labels?.['pod-template-hash'];

    await kubectl('rollout', 'restart', 'deployment/web', '-n', namespace);
    await kubectl('rollout', 'status', 'deployment/web', '-n', namespace, '--timeout=60s');

    const after = await eventually('2 new ready pods and no old one', async () => {
      const { items } = await core.listNamespacedPod({ namespace, labelSelector: 'app=web' });
      return items.length === 2 && items.every((p) => isReady(p) && !oldUids.has(p.metadata?.uid))
        ? items
        : undefined;
    });
    const newHash = after[0]?.metadata?.labels?.['pod-template-hash'];
    expect(newHash).toBeDefined();
    expect(newHash).not.toBe(oldHash);
    const { items: replicaSets } = await apps.listNamespacedReplicaSet({
      namespace,
      labelSelector: 'app=web',
    });
    expect(replicaSets).toHaveLength(2);
    const byHash = new Map(replicaSets.map((rs) => [rs.metadata?.labels?.['pod-template-hash'], rs]));
    expect(byHash.get(newHash)?.status?.readyReplicas).toBe(2);
    expect(byHash.get(oldHash)?.spec?.replicas).toBe(0);
  });

  it('recreates a StatefulSet pod deleted with a uid precondition under a new uid, Ready again', async () => {
    const namespace = await newNamespace();
    await core.createNamespacedService({
      namespace,
      body: {
        metadata: { name: 'db' },
        spec: { clusterIP: 'None', selector: { app: 'db' }, ports: [{ port: 5432 }] },
      },
    });
    await apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name: 'db' },
        spec: {
          replicas: 2,
          serviceName: 'db',
          selector: { matchLabels: { app: 'db' } },
          template: podTemplate('db'),
        },
      },
    });
    await readyPods(namespace, 'app=db', 2);
    const oldUid = (await readPod(namespace, 'db-0')).metadata?.uid;
    expect(oldUid).toBeDefined();

    // A stale uid is refused: the precondition is checked by the API server.
    const conflict = await core
      .deleteNamespacedPod({
        name: 'db-0',
        namespace,
        body: { preconditions: { uid: '00000000-0000-0000-0000-000000000000' } },
      })
      .then(
        () => undefined,
        (error: unknown) => error,
      );
    expect(conflict).toBeInstanceOf(ApiException);
    expect((conflict as ApiException<unknown>).code).toBe(409);

    await core.deleteNamespacedPod({ name: 'db-0', namespace, body: { preconditions: { uid: oldUid } } });
    const recreated = await eventually('db-0 recreated and Ready', async () => {
      const pod = await readPod(namespace, 'db-0').catch(() => undefined);
      return pod && pod.metadata?.uid !== oldUid && isReady(pod) ? pod : undefined;
    });
    expect(recreated.metadata?.uid).not.toBe(oldUid);
    await readyPods(namespace, 'app=db', 2);
  });

  it('shows a pod annotated with the crashloop fault as CrashLoopBackOff until a rollout replaces it', async () => {
    const namespace = await newNamespace();
    await createDeployment(namespace, 'api', 1);
    const [healthy] = await readyPods(namespace, 'app=api', 1);
    const name = healthy?.metadata?.name ?? '';

    await kubectl('annotate', 'pod', name, '-n', namespace, `${FAULT}=crashloop`);
    const broken = await eventually('the pod in CrashLoopBackOff', async () => {
      const pod = await readPod(namespace, name);
      return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff'
        ? pod
        : undefined;
    });
    expect(broken.status?.phase).toBe('Running');
    expect(readyCondition(broken)).toBe('False');
    const container = broken.status?.containerStatuses?.[0];
    expect(container?.ready).toBe(false);
    expect(container?.restartCount).toBeGreaterThan(0);
    expect(container?.lastState?.terminated).toMatchObject({ exitCode: 1, reason: 'Error' });

    // It stays broken: nothing but replacing the pod repairs it.
    await sleep(2_000);
    const still = await readPod(namespace, name);
    expect(readyCondition(still)).toBe('False');
    expect(still.status?.containerStatuses?.[0]?.state?.waiting?.reason).toBe('CrashLoopBackOff');
    await eventually('the Deployment to count no available replica', async () => {
      const d = await apps.readNamespacedDeployment({ name: 'api', namespace });
      return (d.status?.availableReplicas ?? 0) === 0 ? d : undefined;
    });

    await kubectl('rollout', 'restart', 'deployment/api', '-n', namespace);
    const [replaced] = await readyPods(namespace, 'app=api', 1);
    expect(replaced?.metadata?.uid).not.toBe(healthy?.metadata?.uid);
    expect(replaced?.metadata?.annotations?.[FAULT]).toBeUndefined();
    expect(replaced?.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  });

  it('applies the not-ready and crashloop faults to a running pod and reverts them when the annotation goes', async () => {
    const namespace = await newNamespace();
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'solo', labels: { app: 'solo' } }, spec: podTemplate('solo').spec },
    });
    await readyPods(namespace, 'app=solo', 1);

    await kubectl('annotate', 'pod', 'solo', '-n', namespace, `${FAULT}=not-ready`);
    const notReady = await eventually('the pod not ready', async () => {
      const pod = await readPod(namespace, 'solo');
      return readyCondition(pod) === 'False' ? pod : undefined;
    });
    expect(notReady.status?.phase).toBe('Running');
    expect(notReady.status?.containerStatuses?.[0]).toMatchObject({ ready: false, restartCount: 0 });
    expect(notReady.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
    expect(notReady.status?.containerStatuses?.[0]?.state?.waiting).toBeUndefined();

    await kubectl('annotate', 'pod', 'solo', '-n', namespace, '--overwrite', `${FAULT}=crashloop`);
    const crashing = await eventually('the pod in CrashLoopBackOff', async () => {
      const pod = await readPod(namespace, 'solo');
      return pod.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff'
        ? pod
        : undefined;
    });
    const restarts = crashing.status?.containerStatuses?.[0]?.restartCount ?? 0;
    expect(restarts).toBeGreaterThan(0);

    await kubectl('annotate', 'pod', 'solo', '-n', namespace, `${FAULT}-`);
    const recovered = await eventually('the pod Ready again', async () => {
      const pod = await readPod(namespace, 'solo');
      return isReady(pod) ? pod : undefined;
    });
    expect(recovered.status?.containerStatuses?.[0]?.state?.running).toBeDefined();
    expect(recovered.status?.containerStatuses?.[0]?.restartCount).toBeGreaterThanOrEqual(restarts);
  });

  it('gives a ServiceAccount allowed only to get pods a real 403 on list, with a TokenRequest token', async () => {
    const namespace = await newNamespace();
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({
      namespace,
      body: {
        metadata: { name: 'pod-getter' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'reader-gets-pods' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-getter' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace }],
      },
    });
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'target', labels: { app: 'target' } }, spec: podTemplate('target').spec },
    });
    const request = await core.createNamespacedServiceAccountToken({
      name: 'reader',
      namespace,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = request.status?.token;
    expect(token).toBeTruthy();

    const cluster = kc.getCurrentCluster();
    const reader = new KubeConfig();
    reader.loadFromOptions({
      clusters: [{ name: 'fte-kube', server: cluster?.server, caData: cluster?.caData }],
      users: [{ name: 'reader', token }],
      contexts: [{ name: 'reader', cluster: 'fte-kube', user: 'reader' }],
      currentContext: 'reader',
    });
    const review = await reader.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${namespace}:reader`);

    const readerCore = reader.makeApiClient(CoreV1Api);
    const got = await eventually('get pods to be allowed', () =>
      readerCore.readNamespacedPod({ name: 'target', namespace }),
    );
    expect(got.metadata?.name).toBe('target');
    const denied = await readerCore.listNamespacedPod({ namespace }).then(
      () => undefined,
      (error: unknown) => error,
    );
    expect(denied).toBeInstanceOf(ApiException);
    const exception = denied as ApiException<unknown>;
    expect(exception.code).toBe(403);
    expect(JSON.stringify(exception.body)).toContain(`system:serviceaccount:${namespace}:reader`);
  });

  it('serves `kubectl logs` from files set through kwok ClusterLogs and Logs, and `kubectl exec` through Exec', async () => {
    const namespace = await newNamespace();
    await core.createNamespacedPod({
      namespace,
      body: { metadata: { name: 'logger', labels: { app: 'logger' } }, spec: podTemplate('logger').spec },
    });
    await readyPods(namespace, 'app=logger', 1);

    // kwok reads the files at request time, in the CRI log format: "<RFC 3339 time> <stream> F <line>".
    const dir = await mkdtemp(join(tmpdir(), `${namespace}-`));
    const cri = (...lines: string[]) =>
      lines.map((l) => `${new Date().toISOString()} stdout F ${l}\n`).join('');
    const clusterFile = join(dir, 'cluster.log');
    const podFile = join(dir, 'pod.log');
    await writeFile(clusterFile, cri('fte-api starting', 'listening on :8000'));
    await writeFile(podFile, cri('only this pod'));

    // ClusterLogs (cluster-scoped) selects pods by namespace and, optionally, name.
    const clusterLogs = `${namespace}-logs`;
    try {
      await custom.createClusterCustomObject({
        ...KWOK,
        plural: 'clusterlogs',
        body: {
          apiVersion: 'kwok.x-k8s.io/v1alpha1',
          kind: 'ClusterLogs',
          metadata: { name: clusterLogs },
          spec: {
            selector: { matchNamespaces: [namespace] },
            logs: [{ containers: ['app'], logsFile: clusterFile }],
          },
        },
      });
      const logs = () => kubectl('logs', '-n', namespace, 'logger', '-c', 'app');
      await eventually('the logs of the ClusterLogs file', async () =>
        (await logs()) === 'fte-api starting\nlistening on :8000\n' ? true : undefined,
      );
      await appendFile(clusterFile, cri('GET /health 200'));
      expect(await logs()).toBe('fte-api starting\nlistening on :8000\nGET /health 200\n');
      expect(await kubectl('logs', '-n', namespace, 'logger', '--tail=1')).toBe('GET /health 200\n');

      // A Logs object named after the pod, in its namespace, comes before any ClusterLogs.
      await custom.createNamespacedCustomObject({
        ...KWOK,
        namespace,
        plural: 'logs',
        body: {
          apiVersion: 'kwok.x-k8s.io/v1alpha1',
          kind: 'Logs',
          metadata: { name: 'logger', namespace },
          spec: { logs: [{ containers: ['app'], logsFile: podFile }] },
        },
      });
      await eventually('the logs of the pod Logs file', async () =>
        (await logs()) === 'only this pod\n' ? true : undefined,
      );

      // Exec runs the command on this machine, in the working directory and environment given.
      await custom.createNamespacedCustomObject({
        ...KWOK,
        namespace,
        plural: 'execs',
        body: {
          apiVersion: 'kwok.x-k8s.io/v1alpha1',
          kind: 'Exec',
          metadata: { name: 'logger', namespace },
          spec: {
            execs: [
              {
                containers: ['app'],
                local: { workDir: dir, envs: [{ name: 'GREETING', value: 'hello' }] },
              },
            ],
          },
        },
      });
      const exec = await eventually('kubectl exec to answer', async () => {
        const out = await kubectl(
          'exec',
          '-n',
          namespace,
          'logger',
          '-c',
          'app',
          '--',
          'printenv',
          'GREETING',
        );
        return out === 'hello\n' ? out : undefined;
      });
      expect(exec).toBe('hello\n');
    } finally {
      await custom
        .deleteClusterCustomObject({ ...KWOK, plural: 'clusterlogs', name: clusterLogs })
        .catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    }
  });
});
