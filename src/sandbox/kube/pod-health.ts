import { createHash } from 'node:crypto';
import type { Pod } from './objects.js';

/** What a test or a drill can make a pod look like. */
export type PodCondition = 'CrashLoopBackOff' | 'OOMKilled' | 'NotReady' | 'ImagePullBackOff';

/** A fault on the pods of a workload (all of its pods) or on one pod by name. */
export interface PodFaultTarget {
  namespace?: string;
  workload?: string;
  pod?: string;
}

interface PodFault {
  id: number;
  target: PodFaultTarget;
  condition: PodCondition;
  /** Set when the fault heals on restart: it holds only for the pods that existed when it was injected. */
  uids?: ReadonlySet<string>;
}

const RESTARTS: Record<PodCondition, number> = {
  CrashLoopBackOff: 5,
  OOMKilled: 3,
  NotReady: 0,
  ImagePullBackOff: 0,
};

/** Keeps the injected pod faults and turns them into the pod status the kubelet would report. */
export class PodHealth {
  #faults: PodFault[] = [];
  #nextId = 1;
  #restarts = new Map<string, number>();
  #starting = new Set<string>();

  add(target: PodFaultTarget, condition: PodCondition, uids?: ReadonlySet<string>): number {
    const id = this.#nextId++;
    this.#faults.push({ id, target, condition, uids });
    return id;
  }

  remove(id: number): void {
    this.#faults = this.#faults.filter((f) => f.id !== id);
  }

  /** Heals the pods of a target, or every pod when no target is given. */
  clear(target?: PodFaultTarget): void {
    this.#faults = target
      ? this.#faults.filter(
          (f) =>
            f.target.namespace !== target.namespace ||
            f.target.workload !== target.workload ||
            f.target.pod !== target.pod,
        )
      : [];
  }

  markStarting(uid: string): void {
    this.#starting.add(uid);
  }

  markStarted(uid: string): void {
    this.#starting.delete(uid);
  }

  forget(uid: string): void {
    this.#starting.delete(uid);
    this.#restarts.delete(uid);
  }

  conditionOf(pod: Pod, workload: string | undefined): PodCondition | undefined {
    const uid = pod.metadata.uid;
    const matching = this.#faults.filter(
      (f) =>
        (f.target.namespace === undefined || f.target.namespace === pod.metadata.namespace) &&
        (f.target.pod ? f.target.pod === pod.metadata.name : f.target.workload === workload) &&
        (!f.uids || f.uids.has(uid)),
    );
    return matching[matching.length - 1]?.condition;
  }

  statusOf(pod: Pod, workload: string | undefined): Record<string, unknown> {
    const condition = this.conditionOf(pod, workload);
    const uid = pod.metadata.uid;
    const restarts = Math.max(this.#restarts.get(uid) ?? 0, condition ? RESTARTS[condition] : 0);
    this.#restarts.set(uid, restarts);
    return podStatus(pod, this.#starting.has(uid) ? 'ContainerCreating' : condition, restarts);
  }
}

const ipOf = (uid: string) => {
  const bytes = createHash('sha256').update(uid).digest();
  return `10.244.${bytes[0] ?? 0}.${((bytes[1] ?? 0) % 250) + 2}`;
};

function containerStatus(
  pod: Pod,
  container: { name: string; image: string },
  condition: PodCondition | 'ContainerCreating' | undefined,
  restartCount: number,
): Record<string, unknown> {
  const since = pod.metadata.creationTimestamp;
  const base = {
    name: container.name,
    image: container.image,
    imageID: `${container.image}@sha256:${createHash('sha256').update(container.image).digest('hex')}`,
    restartCount,
  };
  const created = {
    ...base,
    containerID: `containerd://${createHash('sha256').update(`${pod.metadata.uid}/${container.name}`).digest('hex')}`,
  };
  const failedRun = (reason: string, exitCode: number) => ({
    terminated: { exitCode, reason, startedAt: since, finishedAt: since },
  });
  switch (condition) {
    case 'ContainerCreating':
      return {
        ...base,
        ready: false,
        started: false,
        state: { waiting: { reason: 'ContainerCreating' } },
        lastState: {},
      };
    case 'ImagePullBackOff':
      return {
        ...base,
        ready: false,
        started: false,
        state: {
          waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${container.image}"` },
        },
        lastState: {},
      };
    case 'CrashLoopBackOff':
      return {
        ...created,
        ready: false,
        started: false,
        state: {
          waiting: {
            reason: 'CrashLoopBackOff',
            message: `back-off 5m0s restarting failed container=${container.name} pod=${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`,
          },
        },
        lastState: failedRun('Error', 1),
      };
    case 'OOMKilled':
      return {
        ...created,
        ready: false,
        started: false,
        state: failedRun('OOMKilled', 137),
        lastState: failedRun('OOMKilled', 137),
      };
    case 'NotReady':
      return {
        ...created,
        ready: false,
        started: true,
        state: { running: { startedAt: since } },
        lastState: {},
      };
    default:
      return {
        ...created,
        ready: true,
        started: true,
        state: { running: { startedAt: since } },
        lastState: {},
      };
  }
}

function podStatus(pod: Pod, condition: PodCondition | 'ContainerCreating' | undefined, restarts: number) {
  const since = pod.metadata.creationTimestamp;
  const containerStatuses = pod.spec.containers.map((c) => containerStatus(pod, c, condition, restarts));
  const ready = condition === undefined;
  const pending = condition === 'ContainerCreating' || condition === 'ImagePullBackOff';
  const cond = (type: string, ok: boolean, reason?: string) => ({
    type,
    status: ok ? 'True' : 'False',
    lastProbeTime: null,
    lastTransitionTime: since,
    ...(reason && !ok ? { reason } : {}),
  });
  const ip = ipOf(pod.metadata.uid);
  return {
    phase: pending ? 'Pending' : 'Running',
    conditions: [
      cond('PodReadyToStartContainers', !pending),
      cond('Initialized', true),
      cond('Ready', ready, 'ContainersNotReady'),
      cond('ContainersReady', ready, 'ContainersNotReady'),
      cond('PodScheduled', true),
    ],
    hostIP: '10.0.0.10',
    hostIPs: [{ ip: '10.0.0.10' }],
    ...(pending ? {} : { podIP: ip, podIPs: [{ ip }] }),
    startTime: since,
    containerStatuses,
    qosClass: 'Burstable',
  };
}
