import { ApplicationFailure } from '@temporalio/activity';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  kubernetesActivities,
  loadKubeConfig,
  type KubernetesActivities,
} from '../../src/activities/kubernetes.js';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import { KubeSimulator } from '../../src/sandbox/kube/index.js';
import { uniqueName } from '../helpers/services.js';

// The probes against the Kubernetes simulator with the real @kubernetes/client-node, in a namespace of
// this file's own; a fresh simulator for each test, so that faults and logs of one test never leak into another.

const namespace = uniqueName('fte');
let sim: KubeSimulator;
let k8s: KubernetesActivities;

const probe = (args: Record<string, unknown>): ProbeInput => ({
  incidentId: 'inc-probes',
  scope: namespace,
  probeId: 'probe-under-test',
  args,
});

async function failure(work: Promise<unknown>): Promise<ApplicationFailure> {
  const error = await work.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ApplicationFailure);
  return error as ApplicationFailure;
}

beforeEach(async () => {
  sim = await new KubeSimulator({ namespace }).start();
  k8s = kubernetesActivities({ kubeConfig: loadKubeConfig(sim.kubeconfigPath), requestTimeoutMs: 10_000 });
});
afterEach(() => sim.stop());

describe('k8sPods', () => {
  it('counts ready pods and exposes each pod uid for later steps', async () => {
    const finding = await k8s.k8sPods(probe({ namespace }));
    const pods = sim.state.pods;
    expect(finding.status).toBe('ok');
    expect(finding.metrics).toMatchObject({ total: 7, ready: 7, notReady: 0, restarts: 0 });
    for (const pod of pods) expect(finding.metrics[`uid/${pod.name}`]).toBe(pod.uid);
    expect(finding.metrics['uid/postgres-0']).toBe(sim.podsOf('postgres')[0]?.uid);
    expect(finding.summary).toContain(`7/7 pods in ${namespace} ready`);
  });

  it('reports a crash-looping deployment as degraded, naming the pods and the reason', async () => {
    sim.failPods('fte-api', 'CrashLoopBackOff');
    const finding = await k8s.k8sPods(probe({ namespace }));
    expect(finding.status).toBe('degraded');
    expect(finding.metrics).toMatchObject({ total: 7, ready: 4, notReady: 3, crashLoopBackOff: 3 });
    expect(finding.metrics.restarts).toBeGreaterThan(0);
    expect(finding.summary).toContain('CrashLoopBackOff');
    expect(finding.evidence).toHaveLength(3);
    for (const pod of sim.podsOf('fte-api')) expect(finding.evidence.join('\n')).toContain(pod.name);
  });

  it('reports an OOM-killed statefulset pod as down when it is the only pod the selector matches', async () => {
    sim.failPods({ pod: 'postgres-0' }, 'OOMKilled');
    const finding = await k8s.k8sPods(probe({ namespace, selector: 'app=postgres' }));
    expect(finding.status).toBe('down');
    expect(finding.metrics).toMatchObject({ total: 1, ready: 0, oomKilled: 1 });
    expect(finding.summary).toContain('postgres-0 OOMKilled');
  });

  it('reports pods that run but are not ready as degraded', async () => {
    const [first] = sim.podsOf('fte-message-processor');
    sim.failPods({ pod: first?.name }, 'NotReady');
    const finding = await k8s.k8sPods(
      probe({ namespace, selector: 'app in (fte-api,fte-message-processor)' }),
    );
    expect(finding.status).toBe('degraded');
    expect(finding.metrics).toMatchObject({ total: 5, ready: 4, notReady: 1, restarts: 0 });
    expect(finding.evidence).toEqual([`${first?.name}: Running, not ready, restarts 0`]);
  });

  it('reports no matching pods as down', async () => {
    const finding = await k8s.k8sPods(probe({ namespace, selector: 'app=nothing-here' }));
    expect(finding.status).toBe('down');
    expect(finding.summary).toContain('no pods matching app=nothing-here');
  });
});

describe('k8sLogs', () => {
  it('reads the log tail of every pod of a deployment and finds no errors in a healthy one', async () => {
    const finding = await k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-api', tail: 10 }));
    expect(finding.status).toBe('ok');
    expect(finding.metrics).toMatchObject({ pods: 3, lines: 30, matched: 30, errors: 0 });
    expect(finding.evidence.length).toBeGreaterThan(0);
    expect(finding.evidence.length).toBeLessThanOrEqual(20);
  });

  it('flags error lines of a failing statefulset pod as degraded and shows them', async () => {
    sim.statefulSetPodDown('postgres');
    const finding = await k8s.k8sLogs(probe({ namespace, kind: 'statefulset', name: 'postgres' }));
    expect(finding.status).toBe('degraded');
    expect(finding.metrics.errors).toBeGreaterThan(0);
    expect(finding.evidence.some((l) => l.startsWith('postgres-0: FATAL'))).toBe(true);
    expect(finding.summary).toContain('error line');
  });

  it('keeps only the lines that match the filter, case-insensitively', async () => {
    const finding = await k8s.k8sLogs(
      probe({ namespace, kind: 'deployment', name: 'fte-api', tail: 40, filter: 'GMAIL' }),
    );
    expect(finding.metrics.matched).toBeGreaterThan(0);
    expect(finding.metrics.matched).toBeLessThan(finding.metrics.lines as number);
    for (const line of finding.evidence) expect(line.toLowerCase()).toContain('gmail');
  });

  it('caps evidence at 20 lines of at most 300 characters', async () => {
    sim.appendLogs(
      'fte-api',
      Array.from({ length: 40 }, (_, i) => `ERROR request ${i} failed: ${'x'.repeat(500)}`),
    );
    const finding = await k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-api', tail: 50 }));
    expect(finding.status).toBe('degraded');
    expect(finding.evidence).toHaveLength(20);
    for (const line of finding.evidence) expect(line.length).toBeLessThanOrEqual(300);
  });

  it('reports a workload that does not exist as down', async () => {
    const finding = await k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-missing' }));
    expect(finding.status).toBe('down');
    expect(finding.summary).toBe(`deployment/fte-missing not found in ${namespace}`);
  });
});

describe('k8sRolloutStatus', () => {
  it('is ok when every replica is updated, ready and available', async () => {
    const finding = await k8s.k8sRolloutStatus(probe({ namespace, kind: 'deployment', name: 'fte-api' }));
    expect(finding.status).toBe('ok');
    expect(finding.metrics).toMatchObject({ desired: 3, updated: 3, ready: 3, available: 3 });
  });

  it('is degraded while some replicas are not ready and down when none is', async () => {
    const heal = sim.failPods({ pod: 'kafka-0' }, 'CrashLoopBackOff');
    const down = await k8s.k8sRolloutStatus(probe({ namespace, kind: 'statefulset', name: 'kafka' }));
    expect(down.status).toBe('down');
    expect(down.summary).toContain('no ready replicas');
    heal();
    const [first] = sim.podsOf('fte-api');
    sim.failPods({ pod: first?.name }, 'NotReady');
    const degraded = await k8s.k8sRolloutStatus(probe({ namespace, kind: 'deployment', name: 'fte-api' }));
    expect(degraded.status).toBe('degraded');
    expect(degraded.metrics).toMatchObject({ desired: 3, ready: 2 });
  });
});

describe('k8sHpa', () => {
  it('is ok with room to scale and degraded at its maximum', async () => {
    const roomy = await k8s.k8sHpa(probe({ namespace, name: 'fte-message-processor' }));
    expect(roomy.status).toBe('ok');
    expect(roomy.metrics).toMatchObject({ minReplicas: 2, maxReplicas: 5, currentReplicas: 2 });

    sim.setHpaDemand('fte-message-processor', 8);
    const atMax = await k8s.k8sHpa(probe({ namespace, name: 'fte-message-processor' }));
    expect(atMax.status).toBe('degraded');
    expect(atMax.metrics).toMatchObject({ maxReplicas: 5, currentReplicas: 5, desiredReplicas: 5 });
    expect(atMax.summary).toContain('at its maximum');
  });

  it('says it cannot tell when the HPA does not exist', async () => {
    const finding = await k8s.k8sHpa(probe({ namespace, name: 'no-such-hpa' }));
    expect(finding.status).toBe('unknown');
    expect(finding.summary).toContain('not found');
  });
});

describe('k8sSecretKey', () => {
  it('is ok when the key is present and not empty, without showing the value', async () => {
    const finding = await k8s.k8sSecretKey(
      probe({ namespace, secret: 'fte-secrets', key: 'TWILIO_AUTH_TOKEN' }),
    );
    expect(finding.status).toBe('ok');
    expect(finding.summary).toBe('key TWILIO_AUTH_TOKEN of secret fte-secrets is set');
    expect(JSON.stringify(finding)).not.toContain(sim.secretValue('TWILIO_AUTH_TOKEN'));
  });

  it('is down when the key is missing or empty, or the secret does not exist', async () => {
    const value = sim.secretValue('GMAIL_CLIENT_SECRET');
    sim.setSecretKey('GMAIL_CLIENT_SECRET', undefined);
    const missing = await k8s.k8sSecretKey(
      probe({ namespace, secret: 'fte-secrets', key: 'GMAIL_CLIENT_SECRET' }),
    );
    expect(missing.status).toBe('down');
    expect(missing.summary).toContain('missing');
    sim.setSecretKey('GMAIL_CLIENT_SECRET', '');
    const empty = await k8s.k8sSecretKey(
      probe({ namespace, secret: 'fte-secrets', key: 'GMAIL_CLIENT_SECRET' }),
    );
    expect(empty.status).toBe('down');
    expect(empty.summary).toContain('empty');
    sim.setSecretKey('GMAIL_CLIENT_SECRET', value);
    const absent = await k8s.k8sSecretKey(probe({ namespace, secret: 'no-secrets', key: 'X' }));
    expect(absent.status).toBe('down');
    expect(absent.summary).toBe(`secret no-secrets not found in ${namespace}`);
  });
});

describe('when the API server misbehaves', () => {
  it('answers unknown, saying why, while the API server cannot be reached', async () => {
    await sim.stop();
    try {
      const finding = await k8s.k8sPods(probe({ namespace }));
      expect(finding.status).toBe('unknown');
      expect(finding.summary).toMatch(/Kubernetes API is unreachable \(ECONNREFUSED\)/);
      const logs = await k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-api' }));
      expect(logs.status).toBe('unknown');
    } finally {
      await sim.start();
    }
    expect((await k8s.k8sPods(probe({ namespace }))).status).toBe('ok');
  });

  it('throws a non-retryable ForbiddenError when the service account may not read', async () => {
    sim.forbid('list', 'pods');
    const error = await failure(k8s.k8sPods(probe({ namespace })));
    expect(error.type).toBe('ForbiddenError');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain('cannot list resource "pods"');
  });

  it('throws a retryable ServerError on a 500 answer', async () => {
    sim.failRequests(
      { verb: 'get', resource: 'horizontalpodautoscalers' },
      { message: 'etcdserver: leader changed' },
    );
    const error = await failure(k8s.k8sHpa(probe({ namespace, name: 'fte-message-processor' })));
    expect(error.type).toBe('ServerError');
    expect(error.nonRetryable).toBe(false);
    expect(error.message).toContain('answered 500: etcdserver: leader changed');
  });

  it('throws a TimeoutError when the API server answers too slowly', async () => {
    sim.slowRequests(3_000, { resource: 'pods' });
    const impatient = kubernetesActivities({
      kubeConfig: loadKubeConfig(sim.kubeconfigPath),
      requestTimeoutMs: 500,
    });
    const error = await failure(impatient.k8sPods(probe({ namespace })));
    expect(error.type).toBe('TimeoutError');
    expect(error.message).toContain('did not answer within 500 ms');
  });

  it('rejects malformed arguments with a BadRequestError naming the field', async () => {
    const cases: [keyof KubernetesActivities, Record<string, unknown>, string][] = [
      ['k8sPods', { namespace: 'Not_A_Namespace' }, 'namespace'],
      ['k8sPods', { namespace, selector: 'app=$(rm -rf /)' }, 'selector'],
      ['k8sLogs', { namespace, kind: 'daemonset', name: 'fte-api' }, 'kind'],
      ['k8sLogs', { namespace, kind: 'deployment', name: 'fte-api', tail: 0 }, 'tail'],
      ['k8sRolloutStatus', { namespace, kind: 'deployment' }, 'name'],
      ['k8sHpa', { name: 'fte-message-processor' }, 'namespace'],
      ['k8sSecretKey', { namespace, secret: 'fte-secrets', key: 'BAD KEY' }, 'key'],
    ];
    for (const [name, args, field] of cases) {
      const activity = k8s[name] as (input: ProbeInput) => Promise<unknown>;
      const error = await failure(activity(probe(args)));
      expect(error.type, name).toBe('BadRequestError');
      expect(error.nonRetryable).toBe(true);
      expect(error.message).toMatch(new RegExp(`^${name}( probe)?: invalid arguments: ${field}`));
    }
  });
});
