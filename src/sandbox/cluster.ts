import { randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import {
  ApiException,
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  PatchStrategy,
  setHeaderOptions,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { PodLogFiles, WORKLOADS, type Workload } from './pod-logs.js';

// The FTE platform on a real Kubernetes control plane (scripts/kube.sh: etcd, kube-apiserver, controller
// manager, scheduler, kwok for nodes and pods). The sandbox applies the platform's manifests into a namespace,
// lets the worker in as the ServiceAccount bound to the Role the product ships, and breaks pods through kwok
// stages selected by an annotation: a crash-looping pod stays broken until something replaces it.

const here = fileURLToPath(new URL('.', import.meta.url));
export const PLATFORM_MANIFEST = `${here}manifests/fte-platform.yaml`;
export const WORKER_RBAC_MANIFEST = `${here}../../deploy/kubernetes/base/worker-rbac.yaml`;

/** The annotation kwok's fault stages select on (scripts/kube/stages.yaml). */
export const FAULT_ANNOTATION = 'sandbox.fte.dev/fault';
export type PodFault = 'crashloop' | 'not-ready';

export const WORKER_NAMESPACE = 'fte-incident-response';
export const WORKER_SERVICE_ACCOUNT = 'incident-response-worker';

export interface PodView {
  name: string;
  uid: string;
  workload: string;
  phase: string;
  ready: boolean;
  restartCount: number;
  /** The waiting or terminated reason of the first container that has one, e.g. CrashLoopBackOff. */
  reason?: string;
}

export interface WorkloadView {
  name: string;
  replicas: number;
  readyReplicas: number;
  generation: number;
  annotations: Record<string, string>;
  templateAnnotations: Record<string, string>;
}

export interface HpaView {
  name: string;
  minReplicas: number;
  maxReplicas: number;
  annotations: Record<string, string>;
}

export type PodTarget = string | { pod: string };

export interface OpenClusterOptions {
  /** A kubeconfig with cluster-admin rights (scripts/kube.sh kubeconfig). */
  adminKubeconfig: string;
  namespace: string;
  /** Where the pods' log files are written (kwok serves them for `kubectl logs`). */
  logDir: string;
  secrets?: Record<string, string>;
}

const KWOK_API = 'kwok.x-k8s.io/v1alpha1';

/** What a container uses, as kwok reports it to metrics-server (quantities: cpu '120m', memory '300Mi'). */
export interface Usage {
  cpu: string;
  memory: string;
}

/**
 * Each workload's usage on a normal day, inside its requests and limits (fte-platform.yaml). The message
 * processor runs at its HPA's cpu target (70 % of its 250m request): kwok's usage is per pod, whatever the
 * replica count, so the HPA, now that it has metrics, holds any count between its minimum and maximum (the
 * 10 % tolerance) and scaling stays with the scenarios and the runbooks' remedies.
 */
export const NORMAL_USAGE: Readonly<Record<Workload, Usage>> = {
  'fte-api': { cpu: '120m', memory: '300Mi' },
  'fte-message-processor': { cpu: '175m', memory: '350Mi' },
  postgres: { cpu: '200m', memory: '640Mi' },
  kafka: { cpu: '150m', memory: '900Mi' },
};

const usageSpec = (usage: Usage) => ({ cpu: { value: usage.cpu }, memory: { value: usage.memory } });

/** Fresh random values for the platform's secrets; tests read them back to check they never leak. */
export function randomSecretValues(): Record<string, string> {
  const token = () => randomBytes(16).toString('hex');
  return {
    TWILIO_ACCOUNT_SID: `AC${token()}`,
    TWILIO_AUTH_TOKEN: token(),
    OPENAI_API_KEY: `sk-proj-${randomBytes(24).toString('base64url')}`,
    GMAIL_CLIENT_SECRET: `GOCSPX-${randomBytes(14).toString('base64url')}`,
  };
}

const isStatus = (e: unknown, code: number) => e instanceof ApiException && e.code === code;

async function ignoreExisting(work: Promise<unknown>): Promise<void> {
  try {
    await work;
  } catch (error) {
    if (!isStatus(error, 409)) throw error;
  }
}

async function manifestObjects(path: string): Promise<KubernetesObject[]> {
  return parseAllDocuments(await readFile(path, 'utf8'))
    .map((d) => d.toJS() as KubernetesObject | null)
    .filter((o): o is KubernetesObject => o !== null);
}

function podView(pod: V1Pod): PodView {
  const containers = pod.status?.containerStatuses ?? [];
  const reason = containers
    .map((c) => c.state?.waiting?.reason ?? c.state?.terminated?.reason)
    .find((r): r is string => r !== undefined);
  return {
    name: pod.metadata?.name ?? '',
    uid: pod.metadata?.uid ?? '',
    workload: pod.metadata?.labels?.app ?? '',
    phase: pod.status?.phase ?? 'Unknown',
    ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    restartCount: containers.reduce((n, c) => n + (c.restartCount ?? 0), 0),
    ...(reason ? { reason } : {}),
  };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The FTE platform in one namespace of a real cluster, as a person would inspect and break it. */
export class FteCluster {
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly autoscaling: AutoscalingV2Api;
  readonly #objects: KubernetesObjectApi;
  readonly logs: PodLogFiles;

  private constructor(
    readonly admin: KubeConfig,
    readonly namespace: string,
    logDir: string,
    readonly secrets: Record<string, string>,
  ) {
    this.logs = new PodLogFiles(logDir);
    this.core = admin.makeApiClient(CoreV1Api);
    this.apps = admin.makeApiClient(AppsV1Api);
    this.autoscaling = admin.makeApiClient(AutoscalingV2Api);
    this.#objects = KubernetesObjectApi.makeApiClient(admin);
  }

  /** The API server's URL and the CA that signed its certificate, from the admin kubeconfig. */
  get server(): { url: string; caPem: string } {
    const cluster = this.admin.getCurrentCluster();
    if (!cluster?.caData) throw new Error('the admin kubeconfig names no cluster with embedded CA data');
    return { url: cluster.server, caPem: Buffer.from(cluster.caData, 'base64').toString('utf8') };
  }

  /**
   * Applies the FTE platform into the namespace (kept if it is there already, as after a restart of
   * `make start`), grants the worker its Role and waits for the pods.
   */
  static async open(options: OpenClusterOptions): Promise<FteCluster> {
    const admin = new KubeConfig();
    admin.loadFromFile(options.adminKubeconfig);
    const cluster = new FteCluster(
      admin,
      options.namespace,
      options.logDir,
      options.secrets ?? randomSecretValues(),
    );
    await cluster.#applyPlatform();
    await cluster.#serveLogs();
    await cluster.#reportUsage();
    await cluster.#grantWorker();
    await cluster.waitUntilReady();
    return cluster;
  }

  async #applyPlatform(): Promise<void> {
    const namespace = this.namespace;
    const created = await this.core
      .createNamespace({
        body: { metadata: { name: namespace, labels: { 'sandbox.fte.dev/platform': 'true' } } },
      })
      .then(
        () => true,
        (error: unknown) => {
          if (isStatus(error, 409)) return false;
          throw error;
        },
      );
    if (!created) return;
    await this.core.createNamespacedSecret({
      namespace,
      body: { metadata: { name: 'fte-secrets' }, type: 'Opaque', stringData: this.secrets },
    });
    for (const object of await manifestObjects(PLATFORM_MANIFEST)) {
      await this.#objects.create({ ...object, metadata: { ...object.metadata, namespace } });
    }
  }

  get #clusterLogsName(): string {
    return `fte-sandbox-${this.namespace}`;
  }

  /** Every pod of the namespace logs its workload's healthy lines, unless a scenario gave it its own log. */
  async #serveLogs(): Promise<void> {
    await this.logs.writeHealthy();
    await this.#createOrReplace({
      apiVersion: KWOK_API,
      kind: 'ClusterLogs',
      metadata: { name: this.#clusterLogsName },
      spec: {
        selector: { matchNamespaces: [this.namespace] },
        logs: WORKLOADS.map((w) => ({ containers: [w], logsFile: this.logs.workloadFile(w), follow: false })),
      },
    } as KubernetesObject);
  }

  get #clusterResourceUsageName(): string {
    return `fte-sandbox-${this.namespace}`;
  }

  /**
   * Every pod of the namespace uses its workload's normal cpu and memory (kwok's ClusterResourceUsage, read by
   * metrics-server and served as metrics.k8s.io PodMetrics), unless a scenario set its own with `setPodUsage`.
   */
  async #reportUsage(): Promise<void> {
    await this.#createOrReplace({
      apiVersion: KWOK_API,
      kind: 'ClusterResourceUsage',
      metadata: { name: this.#clusterResourceUsageName },
      spec: {
        selector: { matchNamespaces: [this.namespace] },
        usages: WORKLOADS.map((w) => ({ containers: [w], usage: usageSpec(NORMAL_USAGE[w]) })),
      },
    } as KubernetesObject);
  }

  /**
   * One pod uses `usage` from now on (a kwok ResourceUsage named after the pod, which wins over the
   * namespace's ClusterResourceUsage); metrics-server shows it after its next scrape (10 s). A pod that
   * replaces it (same name, as a StatefulSet's) keeps the usage until `resetPodUsage`.
   */
  async setPodUsage(pod: string, usage: Usage): Promise<void> {
    await this.#createOrReplace({
      apiVersion: KWOK_API,
      kind: 'ResourceUsage',
      metadata: { name: pod, namespace: this.namespace },
      spec: { usages: [{ usage: usageSpec(usage) }] },
    } as KubernetesObject);
  }

  /** The pod uses its workload's normal usage again. */
  async resetPodUsage(pod: string): Promise<void> {
    await this.#objects
      .delete({
        apiVersion: KWOK_API,
        kind: 'ResourceUsage',
        metadata: { name: pod, namespace: this.namespace },
      })
      .catch((error: unknown) => {
        if (!isStatus(error, 404)) throw error;
      });
  }

  async #createOrReplace(object: KubernetesObject): Promise<void> {
    try {
      await this.#objects.create(object);
    } catch (error) {
      if (!isStatus(error, 409)) throw error;
      const current = await this.#objects.read({
        apiVersion: object.apiVersion ?? '',
        kind: object.kind ?? '',
        metadata: { name: object.metadata?.name ?? '', namespace: object.metadata?.namespace ?? '' },
      });
      await this.#objects.replace({
        ...object,
        metadata: { ...object.metadata, resourceVersion: current.metadata?.resourceVersion },
      });
    }
  }

  /** Creates the worker's ServiceAccount and binds the shipped Role to it in this namespace. */
  async #grantWorker(): Promise<void> {
    await ignoreExisting(this.core.createNamespace({ body: { metadata: { name: WORKER_NAMESPACE } } }));
    await ignoreExisting(
      this.core.createNamespacedServiceAccount({
        namespace: WORKER_NAMESPACE,
        body: { metadata: { name: WORKER_SERVICE_ACCOUNT } },
      }),
    );
    for (const object of await manifestObjects(WORKER_RBAC_MANIFEST)) {
      if (object.kind === 'Role' || object.kind === 'RoleBinding') {
        const body = { ...object, metadata: { ...object.metadata, namespace: this.namespace } };
        await this.#objects.create(body).catch(async (error: unknown) => {
          if (!isStatus(error, 409)) throw error;
          await this.#objects.replace(body);
        });
      }
    }
  }

  /** A fresh token of the worker's ServiceAccount (TokenRequest API), valid for a week. */
  async workerToken(): Promise<string> {
    const request = await this.core.createNamespacedServiceAccountToken({
      name: WORKER_SERVICE_ACCOUNT,
      namespace: WORKER_NAMESPACE,
      body: { spec: { audiences: [], expirationSeconds: 7 * 24 * 3600 } },
    });
    const token = request.status?.token;
    if (!token) throw new Error('the API server issued no token for the worker');
    return token;
  }

  /** Waits until every workload of the platform has all its replicas ready. */
  async waitUntilReady(timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const [deployments, statefulSets] = await Promise.all([
        this.apps.listNamespacedDeployment({ namespace: this.namespace }),
        this.apps.listNamespacedStatefulSet({ namespace: this.namespace }),
      ]);
      const waiting = [...deployments.items, ...statefulSets.items].filter(
        (w) => (w.status?.readyReplicas ?? 0) < (w.spec?.replicas ?? 1),
      );
      if (waiting.length === 0 && deployments.items.length > 0) return;
      if (Date.now() > deadline) {
        throw new Error(
          `the FTE platform in ${this.namespace} is not ready after ${timeoutMs} ms: ${waiting
            .map((w) => `${w.metadata?.name} ${w.status?.readyReplicas ?? 0}/${w.spec?.replicas ?? 1}`)
            .join(', ')}`,
        );
      }
      await sleep(250);
    }
  }

  /** The live pods of a workload (its `app` label); pods being deleted are left out. */
  async podsOf(workload: string): Promise<PodView[]> {
    const list = await this.core.listNamespacedPod({
      namespace: this.namespace,
      labelSelector: `app=${workload}`,
    });
    return list.items.filter((p) => !p.metadata?.deletionTimestamp).map(podView);
  }

  async deployment(name: string): Promise<WorkloadView> {
    const d = await this.apps.readNamespacedDeployment({ name, namespace: this.namespace });
    return {
      name,
      replicas: d.spec?.replicas ?? 0,
      readyReplicas: d.status?.readyReplicas ?? 0,
      generation: d.metadata?.generation ?? 0,
      annotations: d.metadata?.annotations ?? {},
      templateAnnotations: d.spec?.template.metadata?.annotations ?? {},
    };
  }

  async statefulSet(name: string): Promise<WorkloadView> {
    const s = await this.apps.readNamespacedStatefulSet({ name, namespace: this.namespace });
    return {
      name,
      replicas: s.spec?.replicas ?? 0,
      readyReplicas: s.status?.readyReplicas ?? 0,
      generation: s.metadata?.generation ?? 0,
      annotations: s.metadata?.annotations ?? {},
      templateAnnotations: s.spec?.template.metadata?.annotations ?? {},
    };
  }

  async hpa(name: string): Promise<HpaView> {
    const h = await this.autoscaling.readNamespacedHorizontalPodAutoscaler({
      name,
      namespace: this.namespace,
    });
    return {
      name,
      minReplicas: h.spec?.minReplicas ?? 1,
      maxReplicas: h.spec?.maxReplicas ?? 0,
      annotations: h.metadata?.annotations ?? {},
    };
  }

  async #pods(target: PodTarget): Promise<PodView[]> {
    if (typeof target === 'string') return this.podsOf(target);
    const pod = await this.core.readNamespacedPod({ name: target.pod, namespace: this.namespace });
    return [podView(pod)];
  }

  /**
   * Breaks the pods that exist now (of a workload, or one pod): kwok's fault stage then reports them as the
   * kubelet would. Pods created later, by a rollout restart or a StatefulSet recreating a deleted pod, are
   * healthy: only the remedy a runbook applies repairs the fault.
   */
  async failPods(target: PodTarget, fault: PodFault, logLines: readonly string[] = []): Promise<string[]> {
    const pods = await this.#pods(target);
    for (const pod of pods) {
      if (logLines.length > 0) await this.#giveOwnLog(pod.name, pod.workload as Workload, logLines);
      await this.#annotatePod(pod.name, fault);
    }
    return pods.map((p) => p.name);
  }

  /** The pod logs `lines` after its workload's healthy lines (a kwok Logs object for this pod alone). */
  async #giveOwnLog(pod: string, workload: Workload, lines: readonly string[]): Promise<void> {
    const file = await this.logs.breakPod(pod, workload, lines);
    await this.#createOrReplace({
      apiVersion: KWOK_API,
      kind: 'Logs',
      metadata: { name: pod, namespace: this.namespace },
      spec: { logs: [{ containers: [workload], logsFile: file, follow: false }] },
    } as KubernetesObject);
  }

  /** Removes every pod fault of the namespace (a reset, used by the `healthy` scenario only). */
  async healPods(): Promise<void> {
    const list = await this.core.listNamespacedPod({ namespace: this.namespace });
    for (const pod of list.items) {
      if (pod.metadata?.annotations?.[FAULT_ANNOTATION])
        await this.#annotatePod(pod.metadata.name ?? '', null);
    }
    const logs = await this.#objects.list(KWOK_API, 'Logs', this.namespace);
    for (const own of logs.items) await this.forgetOwnLog(own.metadata?.name ?? '');
  }

  /**
   * Back to the workload's healthy log for a pod name: a StatefulSet's replacement pod has the name of the
   * pod it replaces, and must not show that pod's failure.
   */
  async forgetOwnLog(pod: string): Promise<void> {
    await this.#objects
      .delete({ apiVersion: KWOK_API, kind: 'Logs', metadata: { name: pod, namespace: this.namespace } })
      .catch((error: unknown) => {
        if (!isStatus(error, 404)) throw error;
      });
  }

  async #annotatePod(name: string, fault: PodFault | null): Promise<void> {
    try {
      await this.core.patchNamespacedPod(
        {
          name,
          namespace: this.namespace,
          body: { metadata: { annotations: { [FAULT_ANNOTATION]: fault } } },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    } catch (error) {
      if (!isStatus(error, 404)) throw error;
    }
  }

  /** Deletes the namespace and everything in it (tests; `make start` keeps its platform). */
  async remove(): Promise<void> {
    await this.#objects
      .delete({ apiVersion: KWOK_API, kind: 'ClusterLogs', metadata: { name: this.#clusterLogsName } })
      .catch((error: unknown) => {
        if (!isStatus(error, 404)) throw error;
      });
    await this.#objects
      .delete({
        apiVersion: KWOK_API,
        kind: 'ClusterResourceUsage',
        metadata: { name: this.#clusterResourceUsageName },
      })
      .catch((error: unknown) => {
        if (!isStatus(error, 404)) throw error;
      });
    await this.core.deleteNamespace({ name: this.namespace }).catch((error: unknown) => {
      if (!isStatus(error, 404)) throw error;
    });
  }
}
