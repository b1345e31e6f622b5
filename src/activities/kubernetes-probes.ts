import type { V1Deployment, V1Pod, V1StatefulSet, V2HorizontalPodAutoscaler } from '@kubernetes/client-node';
import { z } from 'zod';
import type { ProbeActivity, ProbeInput } from '../domain/activity-contract.js';
import type { Finding, FindingStatus } from '../domain/findings.js';
import { makeFinding, parseActivityArgs } from './common.js';
import { kubernetesProbeArgs as schemas, type WorkloadKind } from './kubernetes-args.js';
import {
  isNotFound,
  isUnreachable,
  KubeFailure,
  toActivityError,
  type KubeClient,
} from './kubernetes-client.js';

// Probes answer "what does the cluster say": a workload that is down is a finding, not an error. They throw
// (classified) only for bad arguments, refused permissions and API server failures worth a retry; an API
// server that cannot be reached at all is an `unknown` finding that says so.

/** Container states that mean the pod is failing, not just starting. */
const FAILING_REASONS = new Set([
  'CrashLoopBackOff',
  'OOMKilled',
  'ImagePullBackOff',
  'ErrImagePull',
  'CreateContainerConfigError',
  'CreateContainerError',
  'RunContainerError',
  'InvalidImageName',
  'Error',
]);

/** Per-pod metrics (uid/<pod>, ready/<pod>) for at most this many pods, to keep a finding small. */
const MAX_POD_METRICS = 50;
const MAX_LOG_PODS = 5;

interface PodSummary {
  name: string;
  uid: string;
  phase: string;
  ready: boolean;
  restarts: number;
  reasons: string[];
}

function summarizePod(pod: V1Pod): PodSummary {
  const statuses = pod.status?.containerStatuses ?? [];
  const reasons = new Set<string>();
  for (const c of statuses) {
    const reason = c.state?.waiting?.reason ?? c.state?.terminated?.reason;
    if (reason) reasons.add(reason);
    if (c.lastState?.terminated?.reason === 'OOMKilled') reasons.add('OOMKilled');
  }
  return {
    name: pod.metadata?.name ?? '(unnamed)',
    uid: pod.metadata?.uid ?? '',
    phase: pod.status?.phase ?? 'Unknown',
    ready: (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    restarts: statuses.reduce((n, c) => n + (c.restartCount ?? 0), 0),
    reasons: [...reasons],
  };
}

const describePod = (p: PodSummary) =>
  `${p.name}: ${p.phase}, ${p.ready ? 'ready' : 'not ready'}${p.reasons.length ? `, ${p.reasons.join('/')}` : ''}, restarts ${p.restarts}`;

const isLive = (pod: V1Pod) =>
  !pod.metadata?.deletionTimestamp && pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';

// Lines that mean something went wrong: log levels, Python tracebacks, Go panics, OOM kills.
const ERROR_LINE =
  /\b(ERROR|FATAL|CRITICAL|PANIC|Traceback|Exception|panic:|Killed|OOMKilled)\b|level=(error|fatal)|"level":\s*"(error|fatal)"/;

/** A pod using more than this share of its memory limit is close to being OOM-killed. */
const MEMORY_LIMIT_WARNING = 0.9;

const QUANTITY_SUFFIX: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** A Kubernetes quantity ("250m", "12345678n", "512Mi", "1.5Gi", "1e3") as a number; NaN if it is none. */
function parseQuantity(quantity: string | undefined): number {
  const match = /^([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/.exec(
    quantity?.trim() ?? '',
  );
  if (!match) return Number.NaN;
  return Number(match[1]) * (QUANTITY_SUFFIX[match[2] ?? ''] ?? Number.NaN);
}

/** metrics.k8s.io/v1beta1 PodMetrics, the fields the probe reads. */
const podMetricsListSchema = z.object({
  items: z
    .array(
      z.object({
        metadata: z.object({ name: z.string() }),
        timestamp: z.string().optional(),
        containers: z
          .array(z.object({ name: z.string(), usage: z.record(z.string(), z.string()).default({}) }))
          .default([]),
      }),
    )
    .default([]),
});

interface PodUsage {
  name: string;
  /** Millicores. */
  cpu: number;
  /** Bytes of working set. */
  memory: number;
  /** Bytes; undefined when a container of the pod has no memory limit. */
  memoryLimit?: number;
}

const mib = (bytes: number) => Math.round(bytes / 2 ** 20);

const describeUsage = (u: PodUsage) =>
  `${u.name}: cpu ${Math.round(u.cpu)}m, memory ${mib(u.memory)}Mi${
    u.memoryLimit
      ? ` of ${mib(u.memoryLimit)}Mi limit (${Math.round((100 * u.memory) / u.memoryLimit)}%)`
      : ''
  }`;

/** The sum of the containers' memory limits; undefined when one of them has none (no pod limit). */
function memoryLimitOf(pod: V1Pod): number | undefined {
  let total = 0;
  for (const c of pod.spec?.containers ?? []) {
    const limit = parseQuantity(c.resources?.limits?.memory);
    if (!Number.isFinite(limit) || limit <= 0) return undefined;
    total += limit;
  }
  return total > 0 ? total : undefined;
}

export interface KubernetesProbes {
  k8sPods: ProbeActivity;
  k8sPodUsage: ProbeActivity;
  k8sLogs: ProbeActivity;
  k8sRolloutStatus: ProbeActivity;
  k8sHpa: ProbeActivity;
  k8sSecretKey: ProbeActivity;
}

export function kubernetesProbes(client: KubeClient): KubernetesProbes {
  /** Turns an unreachable API server into an `unknown` finding and every other failure into a classified error. */
  async function observe(
    input: ProbeInput,
    run: () => Promise<Finding>,
    known: () => string[] = () => [],
  ): Promise<Finding> {
    try {
      return await run();
    } catch (error) {
      if (isUnreachable(error)) {
        return makeFinding(
          input.probeId,
          'unknown',
          `cannot tell: ${(error as KubeFailure).message}`,
          {},
          [],
          known(),
        );
      }
      throw toActivityError(error, known());
    }
  }

  async function readWorkload(
    kind: WorkloadKind,
    namespace: string,
    name: string,
  ): Promise<V1Deployment | V1StatefulSet> {
    const what = `read ${kind}/${name} in ${namespace}`;
    return kind === 'deployment'
      ? client.call(what, (o) => client.apps.readNamespacedDeployment({ name, namespace }, o))
      : client.call(what, (o) => client.apps.readNamespacedStatefulSet({ name, namespace }, o));
  }

  const k8sPods: ProbeActivity = async (input) => {
    const args = parseActivityArgs(schemas.k8sPods, input.args, 'k8sPods');
    const where = args.selector
      ? `pods matching ${args.selector} in ${args.namespace}`
      : `pods in ${args.namespace}`;
    return observe(input, async () => {
      const list = await client.call(`list ${where}`, (o) =>
        client.core.listNamespacedPod({ namespace: args.namespace, labelSelector: args.selector }, o),
      );
      const pods = list.items.filter(isLive).map(summarizePod);
      const ready = pods.filter((p) => p.ready).length;
      const failing = pods.filter((p) => p.reasons.some((r) => FAILING_REASONS.has(r)));
      const metrics: Finding['metrics'] = {
        total: pods.length,
        ready,
        notReady: pods.length - ready,
        restarts: pods.reduce((n, p) => n + p.restarts, 0),
        crashLoopBackOff: pods.filter((p) => p.reasons.includes('CrashLoopBackOff')).length,
        oomKilled: pods.filter((p) => p.reasons.includes('OOMKilled')).length,
      };
      for (const p of pods.slice(0, MAX_POD_METRICS)) {
        metrics[`uid/${p.name}`] = p.uid;
        metrics[`ready/${p.name}`] = p.ready;
      }
      const troubled = pods.filter((p) => !p.ready || failing.includes(p));
      const evidence = troubled.map(describePod);
      let status: FindingStatus = 'ok';
      let summary = `${ready}/${pods.length} ${where} ready`;
      if (pods.length === 0) {
        status = 'down';
        summary = `no ${where}`;
      } else if (ready === 0) {
        status = 'down';
        summary = `0/${pods.length} ${where} ready`;
      } else if (troubled.length > 0) {
        status = 'degraded';
      }
      if (troubled.length > 0) {
        summary += `: ${troubled
          .slice(0, 3)
          .map((p) => `${p.name} ${p.reasons[0] ?? 'not ready'}`)
          .join(', ')}${troubled.length > 3 ? `, and ${troubled.length - 3} more` : ''}`;
      }
      return makeFinding(input.probeId, status, summary, metrics, evidence);
    });
  };

  // The resource metrics API (metrics.k8s.io, served by metrics-server through the API server's aggregator):
  // what `kubectl top pods` shows, set against the pods' memory limits.
  const k8sPodUsage: ProbeActivity = async (input) => {
    const args = parseActivityArgs(schemas.k8sPodUsage, input.args, 'k8sPodUsage');
    const where = args.selector
      ? `pods matching ${args.selector} in ${args.namespace}`
      : `pods in ${args.namespace}`;
    return observe(input, async () => {
      let raw: unknown;
      try {
        raw = await client.call(`read the resource usage of ${where}`, (o) =>
          client.custom.listNamespacedCustomObject(
            {
              group: 'metrics.k8s.io',
              version: 'v1beta1',
              namespace: args.namespace,
              plural: 'pods',
              labelSelector: args.selector,
            },
            o,
          ),
        );
      } catch (error) {
        // No metrics-server registered (404) or none answering (503): the cluster cannot say.
        const code = (error as KubeFailure).code;
        if (!(error instanceof KubeFailure) || (code !== 404 && code !== 503)) throw error;
        return makeFinding(
          input.probeId,
          'unknown',
          `cannot tell the resource usage of ${where}: the metrics API (metrics.k8s.io) is unavailable`,
          {},
          [error.message],
        );
      }
      // The pods for their memory limits, and to tell a pod without metrics (new, or not scraped yet) apart.
      const list = await client.call(`list ${where}`, (o) =>
        client.core.listNamespacedPod({ namespace: args.namespace, labelSelector: args.selector }, o),
      );
      const pods = list.items.filter(isLive);
      if (pods.length === 0) return makeFinding(input.probeId, 'unknown', `no ${where} to measure`);
      const parsed = podMetricsListSchema.safeParse(raw);
      if (!parsed.success)
        return makeFinding(
          input.probeId,
          'unknown',
          `the metrics API answered something unexpected for ${where}`,
        );
      const byName = new Map(parsed.data.items.map((m) => [m.metadata.name, m]));
      const usages: PodUsage[] = [];
      const unmeasured: string[] = [];
      for (const pod of pods) {
        const name = pod.metadata?.name ?? '';
        const m = byName.get(name);
        if (!m) {
          unmeasured.push(name);
          continue;
        }
        const sum = (resource: string) =>
          m.containers.reduce((n, c) => n + (parseQuantity(c.usage[resource]) || 0), 0);
        const memoryLimit = memoryLimitOf(pod);
        usages.push({
          name,
          cpu: sum('cpu') * 1000,
          memory: sum('memory'),
          ...(memoryLimit ? { memoryLimit } : {}),
        });
      }
      if (usages.length === 0)
        return makeFinding(
          input.probeId,
          'unknown',
          `no resource usage reported yet for the ${pods.length} ${where}`,
          { total: pods.length, measured: 0 },
          unmeasured.map((n) => `${n}: no metrics yet`),
        );
      const metrics: Finding['metrics'] = {
        total: pods.length,
        measured: usages.length,
        cpuMillicores: Math.round(usages.reduce((n, u) => n + u.cpu, 0)),
        memoryBytes: usages.reduce((n, u) => n + u.memory, 0),
      };
      for (const u of usages.slice(0, MAX_POD_METRICS)) {
        metrics[`cpu/${u.name}`] = Math.round(u.cpu);
        metrics[`memory/${u.name}`] = u.memory;
        if (u.memoryLimit) metrics[`memoryOfLimit/${u.name}`] = Math.round((100 * u.memory) / u.memoryLimit);
      }
      const pressed = usages.filter((u) => u.memoryLimit && u.memory > MEMORY_LIMIT_WARNING * u.memoryLimit);
      metrics.nearMemoryLimit = pressed.length;
      const evidence = [
        ...pressed.map(describeUsage),
        ...usages.filter((u) => !pressed.includes(u)).map(describeUsage),
        ...unmeasured.map((n) => `${n}: no metrics yet`),
      ];
      if (pressed.length > 0) {
        return makeFinding(
          input.probeId,
          'degraded',
          `${pressed.length} of ${usages.length} ${where} near the memory limit: ${pressed
            .slice(0, 3)
            .map(describeUsage)
            .join('; ')}`,
          metrics,
          evidence,
        );
      }
      const top = [...usages].sort((a, b) => b.memory - a.memory)[0] as PodUsage;
      return makeFinding(
        input.probeId,
        'ok',
        `${usages.length} ${where} within their limits, cpu ${metrics.cpuMillicores}m, memory ${mib(
          metrics.memoryBytes as number,
        )}Mi in all; most memory: ${describeUsage(top)}`,
        metrics,
        evidence,
      );
    });
  };

  const k8sLogs: ProbeActivity = async (input) => {
    const args = parseActivityArgs(schemas.k8sLogs, input.args, 'k8sLogs');
    const workload = `${args.kind}/${args.name}`;
    return observe(input, async () => {
      let target: V1Deployment | V1StatefulSet;
      try {
        target = await readWorkload(args.kind, args.namespace, args.name);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        return makeFinding(input.probeId, 'down', `${workload} not found in ${args.namespace}`);
      }
      const selector = Object.entries(target.spec?.selector?.matchLabels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      if (!selector)
        return makeFinding(input.probeId, 'unknown', `${workload} has no label selector to find its pods`);
      const list = await client.call(`list pods of ${workload}`, (o) =>
        client.core.listNamespacedPod({ namespace: args.namespace, labelSelector: selector }, o),
      );
      const pods = list.items.filter(isLive).slice(0, MAX_LOG_PODS);
      if (pods.length === 0)
        return makeFinding(input.probeId, 'down', `${workload} has no pods in ${args.namespace}`);
      const lines: string[] = [];
      const unavailable: string[] = [];
      for (const pod of pods) {
        const name = pod.metadata?.name ?? '';
        const container = pod.spec?.containers[0]?.name;
        try {
          const text = await client.call(`read the log of pod ${name}`, (o) =>
            client.core.readNamespacedPodLog(
              { name, namespace: args.namespace, container, tailLines: args.tail },
              o,
            ),
          );
          for (const line of String(text).split('\n')) if (line.trim()) lines.push(`${name}: ${line}`);
        } catch (error) {
          // A pod that is starting or gone has no log to read; the other pods still tell the story.
          if (!(error as KubeFailure).code || ![400, 404].includes((error as KubeFailure).code ?? 0))
            throw error;
          unavailable.push(
            `${name}: no log (${(error as KubeFailure).message.replace(/^.*?answered \d+: /, '')})`,
          );
        }
      }
      const needle = args.filter?.toLowerCase();
      const matched = needle
        ? lines.filter((l) =>
            l
              .slice(l.indexOf(': ') + 2)
              .toLowerCase()
              .includes(needle),
          )
        : lines;
      const errors = matched.filter((l) => ERROR_LINE.test(l.slice(l.indexOf(': ') + 2)));
      const scope = `the last ${args.tail} log lines of ${pods.length === 1 ? 'its pod' : `each of its ${pods.length} pods`} (${workload})`;
      const what = needle ? `lines matching "${args.filter}"` : 'lines';
      const summary =
        errors.length > 0
          ? `${errors.length} error line${errors.length === 1 ? '' : 's'} in ${scope}; latest: ${errors[errors.length - 1]}`
          : `${matched.length} ${what}, no errors, in ${scope}`;
      return makeFinding(
        input.probeId,
        errors.length > 0 ? 'degraded' : 'ok',
        summary,
        { pods: pods.length, lines: lines.length, matched: matched.length, errors: errors.length },
        [...unavailable, ...(errors.length > 0 ? errors : matched)],
      );
    });
  };

  const k8sRolloutStatus: ProbeActivity = async (input) => {
    const args = parseActivityArgs(schemas.k8sRolloutStatus, input.args, 'k8sRolloutStatus');
    const workload = `${args.kind}/${args.name}`;
    return observe(input, async () => {
      let target: V1Deployment | V1StatefulSet;
      try {
        target = await readWorkload(args.kind, args.namespace, args.name);
      } catch (error) {
        if (!isNotFound(error)) throw error;
        return makeFinding(input.probeId, 'down', `${workload} not found in ${args.namespace}`);
      }
      const desired = target.spec?.replicas ?? 1;
      const s = target.status;
      const updated = s?.updatedReplicas ?? 0;
      const ready = s?.readyReplicas ?? 0;
      const available = s?.availableReplicas ?? ready;
      const generation = target.metadata?.generation ?? 0;
      const observed = s?.observedGeneration ?? 0;
      const metrics = { desired, updated, ready, available, generation, observedGeneration: observed };
      const counts = `${updated}/${desired} updated, ${ready}/${desired} ready, ${available}/${desired} available`;
      if (desired === 0)
        return makeFinding(input.probeId, 'down', `${workload} is scaled to 0 replicas`, metrics);
      if (ready === 0)
        return makeFinding(input.probeId, 'down', `${workload} has no ready replicas: ${counts}`, metrics);
      const done = observed >= generation && updated >= desired && ready >= desired && available >= desired;
      return done
        ? makeFinding(input.probeId, 'ok', `${workload} is rolled out: ${counts}`, metrics)
        : makeFinding(input.probeId, 'degraded', `${workload} rollout in progress: ${counts}`, metrics);
    });
  };

  const k8sHpa: ProbeActivity = async (input) => {
    const args = parseActivityArgs(schemas.k8sHpa, input.args, 'k8sHpa');
    const what = `HPA ${args.name}`;
    return observe(input, async () => {
      let hpa: V2HorizontalPodAutoscaler;
      try {
        hpa = await client.call(`read ${what} in ${args.namespace}`, (o) =>
          client.autoscaling.readNamespacedHorizontalPodAutoscaler(
            { name: args.name, namespace: args.namespace },
            o,
          ),
        );
      } catch (error) {
        if (!isNotFound(error)) throw error;
        return makeFinding(input.probeId, 'unknown', `${what} not found in ${args.namespace}`);
      }
      const min = hpa.spec?.minReplicas ?? 1;
      const max = hpa.spec?.maxReplicas ?? 0;
      const current = hpa.status?.currentReplicas ?? 0;
      const desired = hpa.status?.desiredReplicas ?? 0;
      const cpu = hpa.status?.currentMetrics?.find((m) => m.resource?.name === 'cpu')?.resource?.current
        ?.averageUtilization;
      const conditions = hpa.status?.conditions ?? [];
      const limited = conditions.find(
        (c) => c.type === 'ScalingLimited' && c.status === 'True' && c.reason === 'TooManyReplicas',
      );
      const unable = conditions.find((c) => c.type === 'AbleToScale' && c.status === 'False');
      const metrics: Finding['metrics'] = {
        minReplicas: min,
        maxReplicas: max,
        currentReplicas: current,
        desiredReplicas: desired,
      };
      if (cpu !== undefined) metrics.cpuUtilization = cpu;
      const counts = `${current} current, ${desired} desired, max ${max}`;
      const evidence = conditions.map(
        (c) => `${c.type}=${c.status}${c.reason ? ` (${c.reason})` : ''}: ${c.message ?? ''}`,
      );
      if (unable)
        return makeFinding(
          input.probeId,
          'degraded',
          `${what} cannot scale (${unable.reason ?? 'unknown reason'}): ${counts}`,
          metrics,
          evidence,
        );
      if (current >= max || desired >= max || limited) {
        return makeFinding(
          input.probeId,
          'degraded',
          `${what} is at its maximum: ${counts}`,
          metrics,
          evidence,
        );
      }
      return makeFinding(input.probeId, 'ok', `${what} has room to scale: ${counts}`, metrics, evidence);
    });
  };

  const k8sSecretKey: ProbeActivity = async (input) => {
    // Not "k8sSecretKey:" alone: redaction reads `<word with "secret">: <value>` as a secret assignment.
    const args = parseActivityArgs(schemas.k8sSecretKey, input.args, 'k8sSecretKey probe');
    const what = `key ${args.key} of secret ${args.secret}`;
    // The value is held only to redact it; it never goes into a summary, metric or evidence.
    const known: string[] = [];
    return observe(
      input,
      async () => {
        let data: Record<string, string> | undefined;
        try {
          const secret = await client.call(`read secret ${args.secret} in ${args.namespace}`, (o) =>
            client.core.readNamespacedSecret({ name: args.secret, namespace: args.namespace }, o),
          );
          data = secret.data;
        } catch (error) {
          if (!isNotFound(error)) throw error;
          return makeFinding(input.probeId, 'down', `secret ${args.secret} not found in ${args.namespace}`, {
            present: false,
          });
        }
        const encoded = data?.[args.key];
        if (encoded === undefined) {
          return makeFinding(input.probeId, 'down', `${what} is missing in ${args.namespace}`, {
            present: false,
          });
        }
        const value = Buffer.from(encoded, 'base64').toString('utf8');
        known.push(encoded, value);
        if (value.trim() === '')
          return makeFinding(
            input.probeId,
            'down',
            `${what} is empty`,
            { present: true, empty: true },
            [],
            known,
          );
        return makeFinding(input.probeId, 'ok', `${what} is set`, { present: true, empty: false }, [], known);
      },
      () => known,
    );
  };

  return { k8sPods, k8sPodUsage, k8sLogs, k8sRolloutStatus, k8sHpa, k8sSecretKey };
}
