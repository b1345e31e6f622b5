import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { LogBook } from './logs.js';
import type {
  Deployment,
  HorizontalPodAutoscaler,
  KubeObject,
  OwnerReference,
  Pod,
  ReplicaSet,
  StatefulSet,
} from './objects.js';
import type { PodHealth } from './pod-health.js';
import type { ObjectStore } from './store.js';

// Just enough of the kube-controller-manager: deployments own replica sets, replica sets and stateful sets
// own pods, the HPA scales its target. Rollouts are instant: old pods go and new ones come in one step.

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

function suffix(bytes: Buffer, length: number): string {
  return [...bytes.subarray(0, length)].map((b) => NAME_ALPHABET[b % NAME_ALPHABET.length]).join('');
}

/** The pod-template-hash: stable for a template, new when the template changes (e.g. a restart annotation). */
export const templateHash = (template: unknown) =>
  suffix(createHash('sha256').update(JSON.stringify(template)).digest(), 10);

const revisionOf = (o: KubeObject) =>
  Number(o.metadata.annotations?.['deployment.kubernetes.io/revision'] ?? 0);

const ownerRef = (o: KubeObject): OwnerReference => ({
  apiVersion: o.apiVersion,
  kind: o.kind,
  name: o.metadata.name,
  uid: o.metadata.uid,
  controller: true,
  blockOwnerDeletion: true,
});

const isReady = (pod: KubeObject) =>
  ((pod.status as { conditions?: { type: string; status: string }[] } | undefined)?.conditions ?? []).some(
    (c) => c.type === 'Ready' && c.status === 'True',
  );

const OWNER_RESOURCES: Record<string, string> = {
  ReplicaSet: 'replicasets',
  StatefulSet: 'statefulsets',
  Deployment: 'deployments',
};

const sameJson = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

export interface ControllerOptions {
  /** How long a new pod stays in ContainerCreating before it runs; 0 runs it at once. */
  podStartDelayMs: number;
}

export class Controllers {
  #demand = new Map<string, number>();
  #reconciling = false;

  constructor(
    private readonly store: ObjectStore,
    private readonly health: PodHealth,
    private readonly logs: LogBook,
    private readonly options: ControllerOptions,
  ) {}

  /** Brings every object to its desired state; repeats until nothing changes. */
  reconcile(): void {
    if (this.#reconciling) return;
    this.#reconciling = true;
    try {
      for (let pass = 0; pass < 6; pass++) {
        const before = this.store.resourceVersion;
        for (const h of this.store.list('horizontalpodautoscalers')) this.#hpa(h as HorizontalPodAutoscaler);
        for (const d of this.store.list('deployments')) this.#deployment(d as Deployment);
        for (const rs of this.store.list('replicasets')) this.#replicaSet(rs as ReplicaSet);
        for (const s of this.store.list('statefulsets')) this.#statefulSet(s as StatefulSet);
        for (const p of this.store.list('pods')) this.#podStatus(p as Pod);
        for (const rs of this.store.list('replicasets')) this.#replicaSetStatus(rs as ReplicaSet);
        for (const d of this.store.list('deployments')) this.#deploymentStatus(d as Deployment);
        for (const s of this.store.list('statefulsets')) this.#statefulSetStatus(s as StatefulSet);
        if (before === this.store.resourceVersion) break;
      }
    } finally {
      this.#reconciling = false;
    }
  }

  /** The load behind an HPA, as the replica count its metrics ask for; undefined leaves the HPA idle. */
  setDemand(namespace: string, hpa: string, replicas: number | undefined): void {
    if (replicas === undefined) this.#demand.delete(`${namespace}/${hpa}`);
    else this.#demand.set(`${namespace}/${hpa}`, replicas);
    this.reconcile();
  }

  /** The deployment, stateful set or (for a bare pod) the pod name a pod belongs to. */
  workloadOf(pod: KubeObject): string {
    const owner = pod.metadata.ownerReferences?.find((o) => o.controller);
    if (!owner) return pod.metadata.name;
    if (owner.kind !== 'ReplicaSet') return owner.name;
    const rs = this.store.get('replicasets', pod.metadata.namespace ?? '', owner.name);
    return rs?.metadata.ownerReferences?.find((o) => o.controller)?.name ?? owner.name;
  }

  /** Forgets what belonged to a pod that is gone. */
  podDeleted(pod: KubeObject): void {
    this.health.forget(pod.metadata.uid);
    this.logs.forget(pod.metadata.uid);
  }

  #owned(resource: string, owner: KubeObject): KubeObject[] {
    return this.store
      .list(resource, owner.metadata.namespace)
      .filter((o) => o.metadata.ownerReferences?.some((r) => r.uid === owner.metadata.uid));
  }

  #ownerExists(o: KubeObject): boolean {
    const owner = o.metadata.ownerReferences?.find((r) => r.controller);
    const resource = owner && OWNER_RESOURCES[owner.kind];
    if (!owner || !resource) return true;
    return this.store.get(resource, o.metadata.namespace ?? '', owner.name)?.metadata.uid === owner.uid;
  }

  #delete(resource: string, o: KubeObject): void {
    const gone = this.store.remove(resource, o.metadata.namespace ?? '', o.metadata.name);
    if (gone && resource === 'pods') this.podDeleted(gone);
  }

  #put(resource: string, before: KubeObject, after: KubeObject): void {
    if (!sameJson(before, after)) this.store.put(resource, after);
  }

  #createPod(
    name: string,
    owner: KubeObject,
    template: Deployment['spec']['template'],
    labels: Record<string, string>,
  ) {
    const now = new Date();
    const pod: Pod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        namespace: owner.metadata.namespace,
        uid: randomUUID(),
        resourceVersion: '',
        creationTimestamp: now.toISOString().replace(/\.\d+Z$/, 'Z'),
        labels,
        ...(template.metadata.annotations ? { annotations: template.metadata.annotations } : {}),
        ownerReferences: [ownerRef(owner)],
      },
      spec: {
        restartPolicy: 'Always',
        terminationGracePeriodSeconds: 30,
        dnsPolicy: 'ClusterFirst',
        serviceAccountName: 'default',
        schedulerName: 'default-scheduler',
        ...template.spec,
        nodeName: 'sandbox-node-1',
      },
    };
    const uid = pod.metadata.uid;
    const workload = this.workloadOf(pod);
    this.logs.start(uid, workload, now);
    const condition = this.health.conditionOf(pod, workload);
    if (condition) this.logs.append(uid, this.logs.failureLines(workload, condition));
    if (this.options.podStartDelayMs > 0) {
      this.health.markStarting(uid);
      // Unreferenced: a pending start never keeps the process alive, and it only touches the in-memory store.
      setTimeout(() => {
        this.health.markStarted(uid);
        this.reconcile();
      }, this.options.podStartDelayMs).unref();
    }
    pod.status = this.health.statusOf(pod, workload);
    this.store.put('pods', pod);
  }

  #deployment(d: Deployment): void {
    const hash = templateHash(d.spec.template);
    const name = `${d.metadata.name}-${hash}`;
    const owned = this.#owned('replicasets', d) as ReplicaSet[];
    const current = owned.find((rs) => rs.metadata.name === name);
    let revision = current ? revisionOf(current) : Math.max(0, ...owned.map(revisionOf)) + 1;
    if (!current) {
      const labels = { ...d.spec.template.metadata.labels, 'pod-template-hash': hash };
      const rs: ReplicaSet = {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name,
          namespace: d.metadata.namespace,
          uid: randomUUID(),
          resourceVersion: '',
          generation: 1,
          creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
          labels,
          annotations: {
            'deployment.kubernetes.io/desired-replicas': String(d.spec.replicas),
            'deployment.kubernetes.io/max-replicas': String(d.spec.replicas + Math.ceil(d.spec.replicas / 4)),
            'deployment.kubernetes.io/revision': String(revision),
          },
          ownerReferences: [ownerRef(d)],
        },
        spec: {
          replicas: d.spec.replicas,
          selector: { matchLabels: { ...d.spec.selector.matchLabels, 'pod-template-hash': hash } },
          template: { ...d.spec.template, metadata: { ...d.spec.template.metadata, labels } },
        },
      };
      this.store.put('replicasets', rs);
    } else if (current.spec.replicas !== d.spec.replicas) {
      const next = structuredClone(current);
      next.spec.replicas = d.spec.replicas;
      next.metadata.generation = (next.metadata.generation ?? 1) + 1;
      next.metadata.annotations = {
        ...next.metadata.annotations,
        'deployment.kubernetes.io/desired-replicas': String(d.spec.replicas),
      };
      this.store.put('replicasets', next);
    }
    for (const old of owned) {
      if (old.metadata.name !== name && old.spec.replicas !== 0) {
        const next = structuredClone(old);
        next.spec.replicas = 0;
        next.metadata.generation = (next.metadata.generation ?? 1) + 1;
        this.store.put('replicasets', next);
      }
    }
    revision = Math.max(revision, 1);
    if (d.metadata.annotations?.['deployment.kubernetes.io/revision'] !== String(revision)) {
      const next = structuredClone(d);
      next.metadata.annotations = {
        ...next.metadata.annotations,
        'deployment.kubernetes.io/revision': String(revision),
      };
      this.store.put('deployments', next);
    }
  }

  #replicaSet(rs: ReplicaSet): void {
    if (!this.#ownerExists(rs)) {
      for (const pod of this.#owned('pods', rs)) this.#delete('pods', pod);
      this.#delete('replicasets', rs);
      return;
    }
    const pods = this.#owned('pods', rs).sort((a, b) =>
      a.metadata.creationTimestamp.localeCompare(b.metadata.creationTimestamp),
    );
    for (let n = pods.length; n < rs.spec.replicas; n++) {
      this.#createPod(
        `${rs.metadata.name}-${suffix(randomBytes(5), 5)}`,
        rs,
        rs.spec.template,
        rs.spec.template.metadata.labels ?? {},
      );
    }
    for (const extra of pods.slice(rs.spec.replicas).reverse()) this.#delete('pods', extra);
  }

  #statefulSet(s: StatefulSet): void {
    const revision = `${s.metadata.name}-${templateHash(s.spec.template)}`;
    const owned = this.#owned('pods', s);
    for (let i = 0; i < s.spec.replicas; i++) {
      const name = `${s.metadata.name}-${i}`;
      const pod = owned.find((p) => p.metadata.name === name);
      if (pod && pod.metadata.labels?.['controller-revision-hash'] === revision) continue;
      if (pod) this.#delete('pods', pod);
      this.#createPod(name, s, s.spec.template, {
        ...s.spec.template.metadata.labels,
        'apps.kubernetes.io/pod-index': String(i),
        'controller-revision-hash': revision,
        'statefulset.kubernetes.io/pod-name': name,
      });
    }
    for (const pod of owned) {
      const ordinal = Number(pod.metadata.name.slice(s.metadata.name.length + 1));
      if (!(ordinal < s.spec.replicas)) this.#delete('pods', pod);
    }
  }

  #podStatus(pod: Pod): void {
    if (!this.#ownerExists(pod)) {
      this.#delete('pods', pod);
      return;
    }
    const status = this.health.statusOf(pod, this.workloadOf(pod));
    if (!sameJson(pod.status, status)) this.store.put('pods', { ...pod, status });
  }

  #replicaSetStatus(rs: ReplicaSet): void {
    const pods = this.#owned('pods', rs);
    const ready = pods.filter(isReady).length;
    const status = {
      replicas: pods.length,
      fullyLabeledReplicas: pods.length,
      readyReplicas: ready,
      availableReplicas: ready,
      observedGeneration: rs.metadata.generation ?? 1,
    };
    this.#put('replicasets', rs, { ...rs, status });
  }

  #deploymentStatus(d: Deployment): void {
    const hash = templateHash(d.spec.template);
    const sets = this.#owned('replicasets', d);
    const pods = sets.flatMap((rs) => this.#owned('pods', rs));
    const updated = pods.filter((p) => p.metadata.labels?.['pod-template-hash'] === hash).length;
    const ready = pods.filter(isReady).length;
    const desired = d.spec.replicas;
    const maxUnavailable = Math.floor(desired / 4);
    const available = ready >= desired - maxUnavailable;
    const complete = updated === desired && ready === desired && pods.length === desired;
    const since =
      (d.status as { conditions?: { type: string; lastTransitionTime?: string }[] } | undefined)
        ?.conditions?.[0]?.lastTransitionTime ?? d.metadata.creationTimestamp;
    const status = {
      observedGeneration: d.metadata.generation ?? 1,
      replicas: pods.length,
      updatedReplicas: updated,
      readyReplicas: ready,
      availableReplicas: ready,
      ...(pods.length - ready > 0 ? { unavailableReplicas: pods.length - ready } : {}),
      conditions: [
        {
          type: 'Available',
          status: available ? 'True' : 'False',
          reason: available ? 'MinimumReplicasAvailable' : 'MinimumReplicasUnavailable',
          message: available
            ? 'Deployment has minimum availability.'
            : 'Deployment does not have minimum availability.',
          lastUpdateTime: since,
          lastTransitionTime: since,
        },
        {
          type: 'Progressing',
          status: 'True',
          reason: complete ? 'NewReplicaSetAvailable' : 'ReplicaSetUpdated',
          message: complete
            ? `ReplicaSet "${d.metadata.name}-${hash}" has successfully progressed.`
            : `ReplicaSet "${d.metadata.name}-${hash}" is progressing.`,
          lastUpdateTime: since,
          lastTransitionTime: since,
        },
      ],
    };
    this.#put('deployments', d, { ...d, status });
  }

  #statefulSetStatus(s: StatefulSet): void {
    const revision = `${s.metadata.name}-${templateHash(s.spec.template)}`;
    const pods = this.#owned('pods', s);
    const ready = pods.filter(isReady).length;
    const updated = pods.filter((p) => p.metadata.labels?.['controller-revision-hash'] === revision).length;
    const status = {
      observedGeneration: s.metadata.generation ?? 1,
      replicas: pods.length,
      readyReplicas: ready,
      currentReplicas: updated,
      updatedReplicas: updated,
      availableReplicas: ready,
      currentRevision: revision,
      updateRevision: revision,
      collisionCount: 0,
    };
    this.#put('statefulsets', s, { ...s, status });
  }

  #hpa(h: HorizontalPodAutoscaler): void {
    const ref = h.spec.scaleTargetRef;
    const resource = ref.kind === 'StatefulSet' ? 'statefulsets' : 'deployments';
    const target = this.store.get(resource, h.metadata.namespace ?? '', ref.name) as Deployment | undefined;
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    if (!target) {
      const status = {
        currentReplicas: 0,
        desiredReplicas: 0,
        conditions: [
          {
            type: 'AbleToScale',
            status: 'False',
            reason: 'FailedGetScale',
            message: `the HPA controller was unable to get the target's current scale: ${resource}.apps "${ref.name}" not found`,
            lastTransitionTime: h.metadata.creationTimestamp,
          },
        ],
      };
      this.#put('horizontalpodautoscalers', h, { ...h, status });
      return;
    }
    const { minReplicas: min, maxReplicas: max } = h.spec;
    const demand = this.#demand.get(`${h.metadata.namespace}/${h.metadata.name}`);
    const current = target.spec.replicas;
    const wanted = demand ?? current;
    const desired = Math.min(max, Math.max(min, wanted));
    const previous = h.status as { lastScaleTime?: string } | undefined;
    let lastScaleTime = previous?.lastScaleTime;
    if (demand !== undefined && desired !== current) {
      const next = structuredClone(target);
      next.spec.replicas = desired;
      next.metadata.generation = (next.metadata.generation ?? 1) + 1;
      this.store.put(resource, next);
      lastScaleTime = now;
    }
    const targetUtilization = cpuTarget(h);
    const utilization = Math.round(
      (targetUtilization * wanted) / Math.max(1, demand === undefined ? current : desired),
    );
    const limited = wanted > max ? 'TooManyReplicas' : wanted < min ? 'TooFewReplicas' : undefined;
    const status = {
      ...(lastScaleTime ? { lastScaleTime } : {}),
      currentReplicas: current,
      desiredReplicas: desired,
      currentMetrics: [
        {
          type: 'Resource',
          resource: {
            name: 'cpu',
            current: { averageUtilization: utilization, averageValue: `${utilization * 5}m` },
          },
        },
      ],
      conditions: hpaConditions(h.metadata.creationTimestamp, limited),
    };
    this.#put('horizontalpodautoscalers', h, { ...h, status });
  }
}

function cpuTarget(h: HorizontalPodAutoscaler): number {
  const metrics = (
    h.spec as { metrics?: { resource?: { name?: string; target?: { averageUtilization?: number } } }[] }
  ).metrics;
  return metrics?.find((m) => m.resource?.name === 'cpu')?.resource?.target?.averageUtilization ?? 70;
}

/** The conditions the HPA controller reports: able to scale, metrics found, and whether a bound holds it. */
function hpaConditions(since: string, limited: 'TooManyReplicas' | 'TooFewReplicas' | undefined) {
  const condition = (type: string, ok: boolean, reason: string, message: string) => ({
    type,
    status: ok ? 'True' : 'False',
    reason,
    message,
    lastTransitionTime: since,
  });
  return [
    condition('AbleToScale', true, 'ReadyForNewScale', 'recommended size matches current size'),
    condition(
      'ScalingActive',
      true,
      'ValidMetricFound',
      'the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)',
    ),
    limited
      ? condition(
          'ScalingLimited',
          true,
          limited,
          `the desired replica count is ${limited === 'TooManyReplicas' ? 'more' : 'less'} than the ${limited === 'TooManyReplicas' ? 'maximum' : 'minimum'} replica count`,
        )
      : condition(
          'ScalingLimited',
          false,
          'DesiredWithinRange',
          'the desired count is within the acceptable range',
        ),
  ];
}
