import { appendFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { PatchStrategy, setHeaderOptions, type V1Pod } from '@kubernetes/client-node';
import type { KubernetesActivities } from '../../src/activities/kubernetes.js';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import type { Finding } from '../../src/domain/findings.js';
import { criLine, FAILURE_LINES } from '../../src/sandbox/pod-logs.js';
import {
  failure,
  ownKubeTarget,
  startKubeTarget,
  until,
  WORKER_USER,
  type KubeTarget,
} from '../helpers/kube.js';

// The probes against the FTE platform on the real control plane, as the worker's ServiceAccount through the
// sandbox's API proxy. Tests that only read share one namespace; a test that breaks something (a pod fault,
// a log, a Secret, the proxy itself) gets a namespace of its own, so nothing of it leaks into another test.
// kwok plays the kubelet: pod faults and logs show a moment after they are set, so those tests poll.

let shared: KubeTarget;
let k8s: KubernetesActivities;

const probe = (args: Record<string, unknown>): ProbeInput => ({
  incidentId: 'inc-probes',
  scope: String(args.namespace ?? 'none'),
  probeId: 'probe-under-test',
  args,
});

/** Runs a probe until its finding satisfies `predicate` (kwok and the controllers act a moment later). */
const probeUntil = (
  run: () => Promise<Finding>,
  predicate: (finding: Finding) => boolean,
  what: string,
  timeoutMs?: number,
) => until(run, predicate, what, timeoutMs);

const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

beforeAll(async () => {
  shared = await startKubeTarget();
  k8s = shared.activities();
});
afterEach(() => shared.proxy.clearFaults());
afterAll(() => shared?.stop());

describe('k8sPods', () => {
  it('counts ready pods and exposes each pod uid for later steps', async () => {
    const { namespace, cluster } = shared;
    const finding = await k8s.k8sPods(probe({ namespace }));
    const pods = (await cluster.core.listNamespacedPod({ namespace })).items;
    expect(finding.status).toBe('ok');
    expect(finding.metrics).toMatchObject({ total: 7, ready: 7, notReady: 0, restarts: 0 });
    expect(pods).toHaveLength(7);
    for (const pod of pods) expect(finding.metrics[`uid/${pod.metadata?.name}`]).toBe(pod.metadata?.uid);
    expect(finding.metrics['uid/postgres-0']).toBe((await cluster.podsOf('postgres'))[0]?.uid);
    expect(finding.summary).toContain(`7/7 pods in ${namespace} ready`);
  });

  it('reports a crash-looping deployment as degraded, naming the pods and the reason', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    await cluster.failPods('fte-api', 'crashloop', FAILURE_LINES.apiCrash);
    const finding = await probeUntil(
      () => activities().k8sPods(probe({ namespace })),
      (f) => f.metrics.crashLoopBackOff === 3,
      'three fte-api pods in CrashLoopBackOff',
    );
    expect(finding.status).toBe('degraded');
    expect(finding.metrics).toMatchObject({ total: 7, ready: 4, notReady: 3, crashLoopBackOff: 3 });
    expect(finding.metrics.restarts).toBeGreaterThan(0);
    expect(finding.summary).toContain('CrashLoopBackOff');
    expect(finding.evidence).toHaveLength(3);
    for (const pod of await cluster.podsOf('fte-api'))
      expect(finding.evidence.join('\n')).toContain(pod.name);
  });

  it('reports an OOM-killed statefulset pod as down when it is the only pod the selector matches', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    await cluster.failPods({ pod: 'postgres-0' }, 'crashloop');
    // kwok's crash stage says the container exited with an Error; the kubelet of a container killed for
    // memory says OOMKilled (exit 137). Written as the kubelet writes it, before kwok's next crash (10 s on).
    await until(
      async () => {
        const pod = await cluster.core.readNamespacedPod({ name: 'postgres-0', namespace });
        if (pod.status?.containerStatuses?.[0]?.state?.waiting?.reason !== 'CrashLoopBackOff') return false;
        await cluster.core.replaceNamespacedPodStatus({
          name: 'postgres-0',
          namespace,
          body: oomKilled(pod),
        });
        return true;
      },
      (written) => written,
      'postgres-0 in CrashLoopBackOff, then OOM-killed',
    );
    const finding = await activities().k8sPods(probe({ namespace, selector: 'app=postgres' }));
    expect(finding.status).toBe('down');
    expect(finding.metrics).toMatchObject({ total: 1, ready: 0, oomKilled: 1 });
    expect(finding.summary).toContain('0/1 pods matching app=postgres');
    expect(finding.evidence).toEqual([
      expect.stringMatching(/^postgres-0: Running, not ready, CrashLoopBackOff\/OOMKilled, restarts \d+$/),
    ]);
  });

  it('reports pods that run but are not ready as degraded', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    const [first] = await cluster.podsOf('fte-message-processor');
    await cluster.failPods({ pod: first?.name ?? '' }, 'not-ready');
    const finding = await probeUntil(
      () => activities().k8sPods(probe({ namespace, selector: 'app in (fte-api,fte-message-processor)' })),
      (f) => f.metrics.notReady === 1,
      `${first?.name} not ready`,
    );
    expect(finding.status).toBe('degraded');
    expect(finding.metrics).toMatchObject({ total: 5, ready: 4, notReady: 1, restarts: 0 });
    expect(finding.evidence).toEqual([`${first?.name}: Running, not ready, restarts 0`]);
  });

  it('reports no matching pods as down', async () => {
    const finding = await k8s.k8sPods(probe({ namespace: shared.namespace, selector: 'app=nothing-here' }));
    expect(finding.status).toBe('down');
    expect(finding.summary).toContain('no pods matching app=nothing-here');
  });
});

/** The pod's status with its crashed container's last termination an OOM kill. */
function oomKilled(pod: V1Pod): V1Pod {
  const statuses = (pod.status?.containerStatuses ?? []).map((c) =>
    c.lastState?.terminated
      ? {
          ...c,
          lastState: { terminated: { ...c.lastState.terminated, reason: 'OOMKilled', exitCode: 137 } },
        }
      : c,
  );
  return { ...pod, status: { ...pod.status, containerStatuses: statuses } };
}

// metrics-server scrapes kwok every 10 s and needs two scrapes of a pod for its cpu rate: a new pod's usage
// shows 10-30 s after it starts, a changed usage within one scrape.
const METRICS_WAIT_MS = 90_000;

describe('k8sPodUsage', () => {
  it("reports each pod's cpu and memory from the resource metrics API, against its memory limit", async () => {
    const { namespace } = shared;
    const finding = await probeUntil(
      () => k8s.k8sPodUsage(probe({ namespace })),
      (f) => f.metrics.measured === 7,
      'usage of all 7 pods from metrics-server',
      METRICS_WAIT_MS,
    );
    expect(finding.status).toBe('ok');
    expect(finding.metrics).toMatchObject({ total: 7, measured: 7, nearMemoryLimit: 0 });
    // The sandbox's ClusterResourceUsage: postgres 200m and 640Mi of a 2Gi limit, fte-api 120m and 300Mi of 1Gi.
    expect(finding.metrics['memory/postgres-0']).toBe(640 * 2 ** 20);
    expect(finding.metrics['memoryOfLimit/postgres-0']).toBe(31);
    expect(finding.metrics['cpu/postgres-0']).toBeGreaterThanOrEqual(190);
    expect(finding.metrics['cpu/postgres-0']).toBeLessThanOrEqual(210);
    expect(finding.metrics['memory/kafka-0']).toBe(900 * 2 ** 20);
    expect(finding.evidence).toContainEqual(
      expect.stringMatching(/^postgres-0: cpu (19\d|20\d|210)m, memory 640Mi of 2048Mi limit \(31%\)$/),
    );
    expect(finding.summary).toContain(`7 pods in ${namespace} within their limits`);
    // Through the aggregator to metrics-server: the proxy saw the worker list PodMetrics.
    expect(
      shared.proxy.requests.some(
        (r) => r.group === 'metrics.k8s.io' && r.resource === 'pods' && r.verb === 'list' && r.status === 200,
      ),
    ).toBe(true);
  }, 120_000);

  it('reports a pod using over 90 % of its memory limit as degraded', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    await cluster.setPodUsage('postgres-0', { cpu: '450m', memory: '1900Mi' });
    const finding = await probeUntil(
      () => activities().k8sPodUsage(probe({ namespace, selector: 'app=postgres' })),
      (f) => f.metrics['memory/postgres-0'] === 1900 * 2 ** 20,
      'the raised usage of postgres-0 from metrics-server',
      METRICS_WAIT_MS,
    );
    expect(finding.status).toBe('degraded');
    expect(finding.metrics).toMatchObject({ total: 1, measured: 1, nearMemoryLimit: 1 });
    expect(finding.metrics['memoryOfLimit/postgres-0']).toBe(93);
    expect(finding.summary).toMatch(
      /^1 of 1 pods matching app=postgres in \S+ near the memory limit: postgres-0: cpu \d+m, memory 1900Mi of 2048Mi limit \(93%\)$/,
    );

    // Back to its normal usage: ok again.
    await cluster.resetPodUsage('postgres-0');
    const healed = await probeUntil(
      () => activities().k8sPodUsage(probe({ namespace, selector: 'app=postgres' })),
      (f) => f.metrics['memory/postgres-0'] === 640 * 2 ** 20,
      'the normal usage of postgres-0 again',
      METRICS_WAIT_MS,
    );
    expect(healed.status).toBe('ok');
  }, 240_000);

  it('says it cannot tell when the metrics API is unavailable', async () => {
    // What the aggregator answers while metrics-server is down (503) or not registered (404).
    shared.proxy.failRequests(
      { verb: 'list', resource: 'pods' },
      { code: 503, message: 'the server is currently unable to handle the request', times: 1 },
    );
    const finding = await k8s.k8sPodUsage(probe({ namespace: shared.namespace, selector: 'app=postgres' }));
    expect(finding.status).toBe('unknown');
    expect(finding.summary).toContain('the metrics API (metrics.k8s.io) is unavailable');
    expect(finding.evidence.join('\n')).toContain(
      'answered 503: the server is currently unable to handle the request',
    );
    const refused = shared.proxy.requests.filter((r) => r.status === 503);
    expect(refused).toEqual([expect.objectContaining({ group: 'metrics.k8s.io', resource: 'pods' })]);
  });
});

describe('k8sLogs', () => {
  it('reads the log tail of every pod of a deployment and finds no errors in a healthy one', async () => {
    const { namespace } = shared;
    const finding = await k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-api', tail: 10 }));
    expect(finding.status).toBe('ok');
    expect(finding.metrics).toMatchObject({ pods: 3, lines: 30, matched: 30, errors: 0 });
    expect(finding.evidence.length).toBeGreaterThan(0);
    expect(finding.evidence.length).toBeLessThanOrEqual(20);
  });

  it('flags error lines of a failing statefulset pod as degraded and shows them', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    await cluster.failPods('postgres', 'crashloop', FAILURE_LINES.postgresCrash);
    const finding = await probeUntil(
      () => activities().k8sLogs(probe({ namespace, kind: 'statefulset', name: 'postgres' })),
      (f) => f.status === 'degraded',
      'the crash lines in the log of postgres-0',
    );
    expect(finding.metrics.errors).toBeGreaterThan(0);
    expect(finding.evidence.some((l) => l.startsWith('postgres-0: FATAL'))).toBe(true);
    expect(finding.summary).toContain('error line');
  });

  it('keeps only the lines that match the filter, case-insensitively', async () => {
    const finding = await k8s.k8sLogs(
      probe({ namespace: shared.namespace, kind: 'deployment', name: 'fte-api', tail: 40, filter: 'GMAIL' }),
    );
    expect(finding.metrics.matched).toBeGreaterThan(0);
    expect(finding.metrics.matched).toBeLessThan(finding.metrics.lines as number);
    for (const line of finding.evidence) expect(line.toLowerCase()).toContain('gmail');
  });

  it('caps evidence at 20 lines of at most 300 characters', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    // What every fte-api container prints next (kwok reads the workload's log file at each request).
    const lines = Array.from({ length: 40 }, (_, i) => `ERROR request ${i} failed: ${'x'.repeat(500)}`);
    await appendFile(cluster.logs.workloadFile('fte-api'), lines.map((l) => criLine(l)).join(''));
    const finding = await activities().k8sLogs(
      probe({ namespace, kind: 'deployment', name: 'fte-api', tail: 50 }),
    );
    expect(finding.status).toBe('degraded');
    expect(finding.metrics).toMatchObject({ pods: 3, lines: 150, errors: 120 });
    expect(finding.evidence).toHaveLength(20);
    for (const line of finding.evidence) expect(line.length).toBeLessThanOrEqual(300);
  });

  it('reports a workload that does not exist as down', async () => {
    const { namespace } = shared;
    const finding = await k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-missing' }));
    expect(finding.status).toBe('down');
    expect(finding.summary).toBe(`deployment/fte-missing not found in ${namespace}`);
  });
});

describe('k8sRolloutStatus', () => {
  it('is ok when every replica is updated, ready and available', async () => {
    const finding = await k8s.k8sRolloutStatus(
      probe({ namespace: shared.namespace, kind: 'deployment', name: 'fte-api' }),
    );
    expect(finding.status).toBe('ok');
    expect(finding.metrics).toMatchObject({ desired: 3, updated: 3, ready: 3, available: 3 });
  });

  it('is degraded while some replicas are not ready and down when none is', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    const status = (kind: string, name: string) => () =>
      activities().k8sRolloutStatus(probe({ namespace, kind, name }));
    await cluster.failPods({ pod: 'kafka-0' }, 'crashloop');
    const down = await probeUntil(status('statefulset', 'kafka'), (f) => f.status === 'down', 'kafka down');
    expect(down.summary).toContain('no ready replicas');
    await cluster.healPods();
    await probeUntil(status('statefulset', 'kafka'), (f) => f.status === 'ok', 'kafka healed');

    const [first] = await cluster.podsOf('fte-api');
    await cluster.failPods({ pod: first?.name ?? '' }, 'not-ready');
    const degraded = await probeUntil(
      status('deployment', 'fte-api'),
      (f) => f.status === 'degraded',
      'fte-api with one pod not ready',
    );
    expect(degraded.metrics).toMatchObject({ desired: 3, ready: 2 });
  });
});

describe('k8sHpa', () => {
  // The HPA controller syncs every 15 s; holding the deployment at its maximum takes one sync, seeing the
  // result another.
  it('is ok with room to scale and degraded at its maximum', { timeout: 300_000 }, async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    const hpa = () => activities().k8sHpa(probe({ namespace, name: 'fte-message-processor' }));
    const roomy = await probeUntil(hpa, (f) => f.metrics.currentReplicas === 2, 'the HPA to see 2 replicas');
    expect(roomy.status).toBe('ok');
    expect(roomy.metrics).toMatchObject({ minReplicas: 2, maxReplicas: 5, currentReplicas: 2 });

    // The load asks for 8 replicas (kubectl scale); the HPA holds the deployment at its maximum of 5.
    await cluster.apps.patchNamespacedDeploymentScale(
      { name: 'fte-message-processor', namespace, body: { spec: { replicas: 8 } } },
      mergePatch,
    );
    const atMax = await probeUntil(
      hpa,
      (f) => f.metrics.currentReplicas === 5 && f.metrics.desiredReplicas === 5,
      'the HPA to hold the deployment at 5 replicas',
      120_000,
    );
    expect(atMax.status).toBe('degraded');
    expect(atMax.metrics).toMatchObject({ maxReplicas: 5, currentReplicas: 5, desiredReplicas: 5 });
    expect(atMax.summary).toContain('at its maximum');
    expect((await cluster.deployment('fte-message-processor')).replicas).toBe(5);
  });

  it('says it cannot tell when the HPA does not exist', async () => {
    const finding = await k8s.k8sHpa(probe({ namespace: shared.namespace, name: 'no-such-hpa' }));
    expect(finding.status).toBe('unknown');
    expect(finding.summary).toContain('not found');
  });
});

describe('k8sSecretKey', () => {
  it('is ok when the key is present and not empty, without showing the value', async () => {
    const { namespace, cluster } = shared;
    const finding = await k8s.k8sSecretKey(
      probe({ namespace, secret: 'fte-secrets', key: 'TWILIO_AUTH_TOKEN' }),
    );
    expect(finding.status).toBe('ok');
    expect(finding.summary).toBe('key TWILIO_AUTH_TOKEN of secret fte-secrets is set');
    const value = cluster.secrets.TWILIO_AUTH_TOKEN ?? '';
    expect(value).not.toBe('');
    expect(JSON.stringify(finding)).not.toContain(value);
  });

  it('is down when the key is missing or empty, or the secret does not exist', async () => {
    const { namespace, cluster, activities } = await ownKubeTarget();
    const check = (secret: string, key: string) =>
      activities().k8sSecretKey(probe({ namespace, secret, key }));
    const setKey = (value: string | null) =>
      cluster.core.patchNamespacedSecret(
        { name: 'fte-secrets', namespace, body: { data: { GMAIL_CLIENT_SECRET: value } } },
        mergePatch,
      );
    await setKey(null);
    const missing = await check('fte-secrets', 'GMAIL_CLIENT_SECRET');
    expect(missing.status).toBe('down');
    expect(missing.summary).toContain('missing');
    await setKey('');
    const empty = await check('fte-secrets', 'GMAIL_CLIENT_SECRET');
    expect(empty.status).toBe('down');
    expect(empty.summary).toContain('empty');
    await cluster.core.deleteNamespacedSecret({ name: 'fte-secrets', namespace });
    const absent = await check('fte-secrets', 'TWILIO_AUTH_TOKEN');
    expect(absent.status).toBe('down');
    expect(absent.summary).toBe(`secret fte-secrets not found in ${namespace}`);
  });

  it('may not look at a Secret the Role does not name: ForbiddenError, not "not found"', async () => {
    // The Role grants get on fte-secrets alone, so the API server does not even say whether another exists.
    const { namespace } = shared;
    const error = await failure(k8s.k8sSecretKey(probe({ namespace, secret: 'no-secrets', key: 'X' })));
    expect(error.type).toBe('ForbiddenError');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain(
      `secrets "no-secrets" is forbidden: User "${WORKER_USER}" cannot get resource "secrets" in API group "" in the namespace "${namespace}"`,
    );
  });
});

describe('when the API server misbehaves', () => {
  it('answers unknown, saying why, while the API server cannot be reached', async () => {
    const { namespace, proxy, activities } = await ownKubeTarget();
    const own = activities();
    await proxy.stop();
    try {
      const finding = await own.k8sPods(probe({ namespace }));
      expect(finding.status).toBe('unknown');
      expect(finding.summary).toMatch(/Kubernetes API is unreachable \(ECONNREFUSED\)/);
      const logs = await own.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-api' }));
      expect(logs.status).toBe('unknown');
    } finally {
      await proxy.start();
    }
    expect((await own.k8sPods(probe({ namespace }))).status).toBe('ok');
  });

  it('throws a non-retryable ForbiddenError when the service account may not read', async () => {
    shared.proxy.forbid({ verb: 'list', resource: 'pods' });
    const error = await failure(k8s.k8sPods(probe({ namespace: shared.namespace })));
    expect(error.type).toBe('ForbiddenError');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain('cannot list resource "pods"');
  });

  it('throws a retryable ServerError on a 500 answer', async () => {
    shared.proxy.failRequests(
      { verb: 'get', resource: 'horizontalpodautoscalers' },
      { message: 'etcdserver: leader changed' },
    );
    const error = await failure(
      k8s.k8sHpa(probe({ namespace: shared.namespace, name: 'fte-message-processor' })),
    );
    expect(error.type).toBe('ServerError');
    expect(error.nonRetryable).toBe(false);
    expect(error.message).toContain('answered 500: etcdserver: leader changed');
  });

  it('throws a TimeoutError when the API server answers too slowly', async () => {
    shared.proxy.slowRequests(3_000, { resource: 'pods' });
    const impatient = shared.activities(500);
    const error = await failure(impatient.k8sPods(probe({ namespace: shared.namespace })));
    expect(error.type).toBe('TimeoutError');
    expect(error.message).toContain('did not answer within 500 ms');
  });

  it('rejects malformed arguments with a BadRequestError naming the field', async () => {
    const namespace = shared.namespace;
    const cases: [keyof KubernetesActivities, Record<string, unknown>, string][] = [
      ['k8sPods', { namespace: 'Not_A_Namespace' }, 'namespace'],
      ['k8sPods', { namespace, selector: 'app=$(rm -rf /)' }, 'selector'],
      ['k8sLogs', { namespace, kind: 'daemonset', name: 'fte-api' }, 'kind'],
      ['k8sLogs', { namespace, kind: 'deployment', name: 'fte-api', tail: 0 }, 'tail'],
      ['k8sRolloutStatus', { namespace, kind: 'deployment' }, 'name'],
      ['k8sHpa', { name: 'fte-message-processor' }, 'namespace'],
      ['k8sSecretKey', { namespace, secret: 'fte-secrets', key: 'BAD KEY' }, 'key'],
    ];
    shared.proxy.clearRequests();
    for (const [name, args, field] of cases) {
      const activity = k8s[name] as (input: ProbeInput) => Promise<unknown>;
      const error = await failure(activity(probe(args)));
      expect(error.type, name).toBe('BadRequestError');
      expect(error.nonRetryable).toBe(true);
      expect(error.message).toMatch(new RegExp(`^${name}( probe)?: invalid arguments: ${field}`));
    }
    expect(shared.proxy.requests).toHaveLength(0);
  });
});
