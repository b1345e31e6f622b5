import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { selfSignedCertificate, type SelfSignedCertificate } from './certificate.js';
import { ClusterApi } from './cluster.js';
import { Controllers } from './controllers.js';
import { ApiServer, type RequestRecord } from './http-api.js';
import { writeKubeconfig } from './kubeconfig.js';
import { LogBook } from './logs.js';
import type { Deployment, HorizontalPodAutoscaler, KubeObject, Pod, Secret } from './objects.js';
import { PodHealth, type PodCondition, type PodFaultTarget } from './pod-health.js';
import { RequestFaults, type RequestMatch } from './request-faults.js';
import { resourceByKind } from './resources.js';
import { FTE_NAMESPACE, FTE_SECRET, randomSecretValues, seedFtePlatform, seedNamespace } from './seed.js';
import { ObjectStore } from './store.js';

export const kubeSimulatorOptionsSchema = z.object({
  /** The namespace the FTE platform runs in; tests pass their own to keep apart. */
  namespace: z
    .string()
    .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/)
    .max(63)
    .default(FTE_NAMESPACE),
  host: z.string().default('127.0.0.1'),
  /** 0 picks a free port; a restarted simulator keeps the port it had. */
  port: z.number().int().min(0).max(65535).default(0),
  /** Where to write the kubeconfig; by default a file in a fresh temporary folder, removed on stop. */
  kubeconfigPath: z.string().min(1).optional(),
  token: z.string().min(16).optional(),
  /**
   * Serve HTTPS with a fresh self-signed certificate (its PEM goes in the kubeconfig as the CA). kubectl sends
   * credentials only over TLS, so plain HTTP suits @kubernetes/client-node alone.
   */
  tls: z.boolean().default(true),
  /** Values for the fte-secrets keys; random by default. */
  secrets: z.record(z.string(), z.string()).optional(),
  podStartDelayMs: z.number().int().min(0).default(0),
  /** The user RBAC errors name. */
  user: z.string().default('system:serviceaccount:customer-success-fte:incident-response'),
});
export type KubeSimulatorOptions = z.input<typeof kubeSimulatorOptionsSchema>;

export interface PodView {
  name: string;
  namespace: string;
  uid: string;
  workload: string;
  phase: string;
  ready: boolean;
  restartCount: number;
  /** The waiting or terminated reason of the first container that has one, e.g. CrashLoopBackOff. */
  reason?: string;
  createdAt: string;
}

export interface WorkloadView {
  name: string;
  replicas: number;
  readyReplicas: number;
  updatedReplicas: number;
  generation: number;
  annotations: Record<string, string>;
  templateAnnotations: Record<string, string>;
  pods: string[];
}

export interface HpaView {
  name: string;
  minReplicas: number;
  maxReplicas: number;
  currentReplicas: number;
  desiredReplicas: number;
  annotations: Record<string, string>;
}

export interface NamespaceState {
  namespace: string;
  deployments: Record<string, WorkloadView>;
  statefulSets: Record<string, WorkloadView>;
  hpas: Record<string, HpaView>;
  /** Secret names and their key names; never the values. */
  secrets: Record<string, string[]>;
  pods: PodView[];
}

export interface PodFaultOptions {
  /** The fault holds only for the pods that exist now: a restart (new pods) heals it. Default true. */
  untilRestart?: boolean;
}

const MAX_RECORDS = 1000;

type ContainerStatus = {
  ready?: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string }; terminated?: { reason?: string } };
};

/**
 * A Kubernetes API server for tests, drills and the local demo, speaking the REST API at wire level so that
 * @kubernetes/client-node and kubectl talk to it as to any cluster. Seeded with the FTE platform; faults are
 * injected through this object; `state` shows what a person would check with kubectl.
 */
export class KubeSimulator {
  readonly namespace: string;
  readonly token: string;
  readonly #options: z.output<typeof kubeSimulatorOptionsSchema>;
  readonly #store = new ObjectStore();
  readonly #health = new PodHealth();
  readonly #logs = new LogBook();
  readonly #faults = new RequestFaults();
  readonly #controllers: Controllers;
  readonly #api: ClusterApi;
  readonly #http: ApiServer;
  readonly #secrets = new Map<string, Record<string, string>>();
  #requests: RequestRecord[] = [];
  #server: Server | undefined;
  #port: number;
  #kubeconfigPath: string | undefined;
  #tempDir: string | undefined;
  #certificate: SelfSignedCertificate | undefined;

  constructor(options: KubeSimulatorOptions = {}) {
    this.#options = kubeSimulatorOptionsSchema.parse(options);
    this.namespace = this.#options.namespace;
    this.token = this.#options.token ?? randomBytes(24).toString('base64url');
    this.#port = this.#options.port;
    this.#controllers = new Controllers(this.#store, this.#health, this.#logs, {
      podStartDelayMs: this.#options.podStartDelayMs,
    });
    this.#api = new ClusterApi(this.#store, this.#controllers, this.#logs);
    this.#http = new ApiServer({
      api: this.#api,
      store: this.#store,
      faults: this.#faults,
      token: this.token,
      user: this.#options.user,
      serverAddress: () => `${this.#options.host}:${this.#port}`,
      record: (r) => {
        this.#requests.push(r);
        if (this.#requests.length > MAX_RECORDS)
          this.#requests.splice(0, this.#requests.length - MAX_RECORDS);
      },
    });
    for (const ns of ['default', 'kube-system']) seedNamespace(this.#api, ns);
    this.addFteNamespace(this.namespace, this.#options.secrets);
  }

  /** Seeds another namespace with its own copy of the FTE platform. */
  addFteNamespace(namespace: string, secrets: Record<string, string> = randomSecretValues()): void {
    if (!this.#store.get('namespaces', '', namespace)) seedNamespace(this.#api, namespace);
    this.#secrets.set(namespace, { ...secrets });
    seedFtePlatform(this.#api, namespace, secrets);
  }

  get url(): string {
    if (!this.#server) throw new Error('the Kubernetes simulator is not started');
    return `${this.#options.tls ? 'https' : 'http'}://${this.#options.host}:${this.#port}`;
  }

  /** The PEM of the server certificate (its own CA), when serving TLS. */
  get caCertificate(): string | undefined {
    return this.#certificate?.cert;
  }

  get kubeconfigPath(): string {
    if (!this.#kubeconfigPath) throw new Error('the Kubernetes simulator is not started');
    return this.#kubeconfigPath;
  }

  get running(): boolean {
    return this.#server !== undefined;
  }

  /** Listens (on the same port as before after a stop) and writes the kubeconfig. */
  async start(): Promise<this> {
    if (this.#server) return this;
    const handler = (req: IncomingMessage, res: ServerResponse) => this.#http.handle(req, res);
    if (this.#options.tls && !this.#certificate) {
      this.#certificate = selfSignedCertificate('fte-sandbox-apiserver', [this.#options.host, 'localhost']);
    }
    const server: Server = this.#certificate
      ? createHttpsServer({ cert: this.#certificate.cert, key: this.#certificate.key }, handler)
      : createHttpServer(handler);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.#port, this.#options.host, () => {
        server.off('error', reject);
        resolve();
      });
    });
    this.#port = (server.address() as AddressInfo).port;
    this.#server = server;
    if (!this.#kubeconfigPath) {
      if (this.#options.kubeconfigPath) this.#kubeconfigPath = this.#options.kubeconfigPath;
      else {
        this.#tempDir = await mkdtemp(join(tmpdir(), 'kube-sim-'));
        this.#kubeconfigPath = join(this.#tempDir, 'kubeconfig');
      }
    }
    await writeKubeconfig(this.#kubeconfigPath, {
      server: this.url,
      token: this.token,
      namespace: this.namespace,
      caPem: this.#certificate?.cert,
    });
    return this;
  }

  /**
   * Stops listening, drops open connections and removes a temporary kubeconfig. The objects stay: start()
   * brings the same cluster back on the same port (an API server outage, as clients see it).
   */
  async stop(): Promise<void> {
    const server = this.#server;
    if (!server) return;
    this.#server = undefined;
    this.#http.closeWatches();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    server.closeAllConnections();
    await closed;
    if (this.#tempDir) await rm(this.#tempDir, { recursive: true, force: true });
    this.#tempDir = undefined;
    this.#kubeconfigPath = undefined;
  }

  // ---- what a person would check -------------------------------------------------------------------------

  get state(): NamespaceState {
    return this.stateOf(this.namespace);
  }

  stateOf(namespace: string): NamespaceState {
    const pods = this.#store.list('pods', namespace).map((p) => this.#podView(p as Pod));
    const workloads = (resource: string) =>
      Object.fromEntries(
        this.#store.list(resource, namespace).map((o) => {
          const w = o as Deployment;
          const status = (w.status ?? {}) as { readyReplicas?: number; updatedReplicas?: number };
          const view: WorkloadView = {
            name: w.metadata.name,
            replicas: w.spec.replicas,
            readyReplicas: status.readyReplicas ?? 0,
            updatedReplicas: status.updatedReplicas ?? 0,
            generation: w.metadata.generation ?? 1,
            annotations: w.metadata.annotations ?? {},
            templateAnnotations: w.spec.template.metadata.annotations ?? {},
            pods: pods.filter((p) => p.workload === w.metadata.name).map((p) => p.name),
          };
          return [w.metadata.name, view];
        }),
      );
    const hpas = Object.fromEntries(
      this.#store.list('horizontalpodautoscalers', namespace).map((o) => {
        const h = o as HorizontalPodAutoscaler;
        const status = (h.status ?? {}) as { currentReplicas?: number; desiredReplicas?: number };
        const view: HpaView = {
          name: h.metadata.name,
          minReplicas: h.spec.minReplicas,
          maxReplicas: h.spec.maxReplicas,
          currentReplicas: status.currentReplicas ?? 0,
          desiredReplicas: status.desiredReplicas ?? 0,
          annotations: h.metadata.annotations ?? {},
        };
        return [h.metadata.name, view];
      }),
    );
    const secrets = Object.fromEntries(
      this.#store
        .list('secrets', namespace)
        .map((o) => [o.metadata.name, Object.keys((o as Secret).data ?? {})]),
    );
    return {
      namespace,
      deployments: workloads('deployments'),
      statefulSets: workloads('statefulsets'),
      hpas,
      secrets,
      pods,
    };
  }

  /** The pods of a deployment or stateful set in the simulator's namespace. */
  podsOf(workload: string, namespace = this.namespace): PodView[] {
    return this.stateOf(namespace).pods.filter((p) => p.workload === workload);
  }

  /** The requests served so far (method, path, verb, status; never credentials). */
  get requests(): readonly RequestRecord[] {
    return this.#requests;
  }

  clearRequests(): void {
    this.#requests = [];
  }

  /** The plain value of a secret key as seeded or set, for tests that check it never leaks. */
  secretValue(key: string, namespace = this.namespace): string {
    const value = this.#secrets.get(namespace)?.[key];
    if (value === undefined) throw new Error(`no seeded value for ${key} in ${namespace}`);
    return value;
  }

  /** Sets, or with undefined removes, a key of a secret (as `kubectl edit secret` would). */
  setSecretKey(
    key: string,
    value: string | undefined,
    secret = FTE_SECRET,
    namespace = this.namespace,
  ): void {
    const def = resourceByKind('Secret');
    const current = this.#api.get(def, namespace, secret) as Secret;
    const data = { ...current.data };
    if (value === undefined) delete data[key];
    else data[key] = Buffer.from(value).toString('base64');
    this.#api.update(def, namespace, secret, { ...current, data }, false);
    const known = this.#secrets.get(namespace) ?? {};
    if (value === undefined) delete known[key];
    else known[key] = value;
    this.#secrets.set(namespace, known);
  }

  // ---- faults -------------------------------------------------------------------------------------------

  /**
   * Makes the pods of a workload (a name) or one pod ({pod}) look like the kubelet reports a failure.
   * Returns a function that heals them.
   */
  failPods(
    target: string | PodFaultTarget,
    condition: PodCondition,
    options: PodFaultOptions = {},
  ): () => void {
    const t: PodFaultTarget =
      typeof target === 'string'
        ? { namespace: this.namespace, workload: target }
        : { namespace: this.namespace, ...target };
    const affected = this.#store
      .list('pods', t.namespace)
      .filter((p) => (t.pod ? p.metadata.name === t.pod : this.#controllers.workloadOf(p) === t.workload));
    const uids = options.untilRestart === false ? undefined : new Set(affected.map((p) => p.metadata.uid));
    const id = this.#health.add(t, condition, uids);
    for (const pod of affected) {
      this.#logs.append(
        pod.metadata.uid,
        this.#logs.failureLines(this.#controllers.workloadOf(pod), condition),
      );
    }
    this.#controllers.reconcile();
    return () => {
      this.#health.remove(id);
      this.#controllers.reconcile();
    };
  }

  /** The pod of a stateful set crash-loops until it is deleted (and so replaced). */
  statefulSetPodDown(statefulSet: string, ordinal = 0): () => void {
    return this.failPods({ pod: `${statefulSet}-${ordinal}` }, 'CrashLoopBackOff', { untilRestart: true });
  }

  healPods(): void {
    this.#health.clear();
    this.#controllers.reconcile();
  }

  /** Answers 403 Forbidden (a Kubernetes Status) to a verb on a resource, e.g. forbid('patch', 'deployments'). */
  forbid(
    verb: string | string[],
    resource: string,
    match: Omit<RequestMatch, 'verb' | 'resource'> = {},
  ): () => void {
    const id = this.#faults.add({ ...match, verb, resource }, { kind: 'forbidden' });
    return () => this.#faults.remove(id);
  }

  /** Answers matching requests with a server error (500 by default), `times` times or until removed. */
  failRequests(
    match: RequestMatch = {},
    error: { code?: number; message?: string; times?: number } = {},
  ): () => void {
    const id = this.#faults.add(
      match,
      { kind: 'error', code: error.code, message: error.message },
      error.times,
    );
    return () => this.#faults.remove(id);
  }

  /** Delays the answers to matching requests. */
  slowRequests(ms: number, match: RequestMatch = {}): () => void {
    const id = this.#faults.add(match, { kind: 'delay', ms });
    return () => this.#faults.remove(id);
  }

  /** Runs `run` just before matching requests are handled (once by default), e.g. to race a client. */
  beforeRequest(match: RequestMatch, run: () => void, times = 1): () => void {
    const id = this.#faults.add(match, { kind: 'hook', run }, times);
    return () => this.#faults.remove(id);
  }

  /** Deletes a pod as an eviction or `kubectl delete pod` would; its controller replaces it. */
  deletePod(name: string, namespace = this.namespace): void {
    this.#api.delete(resourceByKind('Pod'), namespace, name, undefined, false);
  }

  /** Removes every request fault and heals every pod. */
  clearFaults(): void {
    this.#faults.clear();
    this.healPods();
  }

  /** Adds lines to the current log of a workload's pods (a name) or of one pod ({pod}). */
  appendLogs(target: string | PodFaultTarget, lines: string[]): void {
    const t: PodFaultTarget = typeof target === 'string' ? { workload: target } : target;
    for (const pod of this.#store.list('pods', t.namespace ?? this.namespace)) {
      if (t.pod ? pod.metadata.name === t.pod : this.#controllers.workloadOf(pod) === t.workload) {
        this.#logs.append(pod.metadata.uid, lines);
      }
    }
  }

  /** The replica count the HPA's metrics ask for (load); undefined leaves the HPA idle. */
  setHpaDemand(hpa: string, replicas: number | undefined, namespace = this.namespace): void {
    this.#controllers.setDemand(namespace, hpa, replicas);
  }

  #podView(pod: Pod): PodView {
    const status = (pod.status ?? {}) as { phase?: string; containerStatuses?: ContainerStatus[] };
    const containers = status.containerStatuses ?? [];
    const reason = containers
      .map((c) => c.state?.waiting?.reason ?? c.state?.terminated?.reason)
      .find((r): r is string => r !== undefined);
    return {
      name: pod.metadata.name,
      namespace: pod.metadata.namespace ?? '',
      uid: pod.metadata.uid,
      workload: this.#controllers.workloadOf(pod as KubeObject),
      phase: status.phase ?? 'Unknown',
      ready: containers.length > 0 && containers.every((c) => c.ready),
      restartCount: containers.reduce((n, c) => n + (c.restartCount ?? 0), 0),
      ...(reason ? { reason } : {}),
      createdAt: pod.metadata.creationTimestamp,
    };
  }
}
