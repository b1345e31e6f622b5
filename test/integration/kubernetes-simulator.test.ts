import { X509Certificate } from 'node:crypto';
import { request } from 'node:https';
import { createSecureContext } from 'node:tls';
import { AppsV1Api, AutoscalingV2Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { selfSignedCertificate } from '../../src/sandbox/kube/certificate.js';
import { KubeSimulator } from '../../src/sandbox/kube/index.js';
import { uniqueName } from '../helpers/services.js';

// The simulator at wire level: what a Kubernetes client sends and gets back, checked with raw HTTPS requests
// and with @kubernetes/client-node.

interface Answer {
  status: number;
  contentType: string;
  text: string;
  json: Record<string, unknown>;
}

let sim: KubeSimulator;
const ns = 'customer-success-fte';

function call(
  method: string,
  path: string,
  options: { body?: unknown; contentType?: string; token?: string | null; accept?: string } = {},
): Promise<Answer> {
  const url = new URL(path, sim.url);
  const body = options.body === undefined ? undefined : JSON.stringify(options.body);
  const headers: Record<string, string> = {};
  if (options.token !== null) headers.Authorization = `Bearer ${options.token ?? sim.token}`;
  if (body) {
    headers['Content-Type'] = options.contentType ?? 'application/json';
    // Node sends a DELETE body without a length unless told; an API server would read it as garbage.
    headers['Content-Length'] = String(Buffer.byteLength(body));
  }
  if (options.accept) headers.Accept = options.accept;
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers, ca: sim.caCertificate }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (text += chunk));
      res.on('end', () => {
        const contentType = res.headers['content-type'] ?? '';
        const json = contentType.startsWith('application/json')
          ? (JSON.parse(text) as Record<string, unknown>)
          : {};
        resolve({ status: res.statusCode ?? 0, contentType, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

function clients() {
  const kc = new KubeConfig();
  kc.loadFromFile(sim.kubeconfigPath);
  return {
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    hpa: kc.makeApiClient(AutoscalingV2Api),
  };
}

const deploymentPath = (name: string) => `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;

beforeEach(async () => {
  sim = await new KubeSimulator().start();
});
afterEach(() => sim.stop());

describe('access', () => {
  it('answers 401 with a Status without the bearer token, and serves /version to anyone', async () => {
    for (const token of [null, 'wrong-token-wrong-token']) {
      const answer = await call('GET', `/api/v1/namespaces/${ns}/pods`, { token });
      expect(answer.status).toBe(401);
      expect(answer.json).toMatchObject({
        kind: 'Status',
        apiVersion: 'v1',
        status: 'Failure',
        reason: 'Unauthorized',
        code: 401,
      });
    }
    const version = await call('GET', '/version', { token: null });
    expect(version.json).toMatchObject({
      major: '1',
      gitVersion: expect.stringMatching(/^v1\.\d+\.\d+/) as string,
    });
  });

  it('writes a kubeconfig with the server, the token and the CA, that client-node uses as is', async () => {
    const kc = new KubeConfig();
    kc.loadFromFile(sim.kubeconfigPath);
    expect(kc.getCurrentCluster()?.server).toBe(sim.url);
    expect(sim.url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(kc.getCurrentUser()?.token).toBe(sim.token);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe(ns);
    const pods = await kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: ns });
    expect(pods.items).toHaveLength(7);
  });
});

describe('the TLS certificate', () => {
  it('is valid DER that TLS accepts, every time (1000 fresh ones), for 127.0.0.1 and localhost', () => {
    for (let i = 0; i < 1000; i++) {
      const { cert, key } = selfSignedCertificate('fte-sandbox-apiserver', ['127.0.0.1', 'localhost']);
      expect(() => createSecureContext({ cert, key })).not.toThrow();
      const x509 = new X509Certificate(cert);
      expect(x509.verify(x509.publicKey)).toBe(true);
      expect(x509.checkIP('127.0.0.1')).toBe('127.0.0.1');
      expect(x509.checkHost('localhost')).toBe('localhost');
    }
  });
});

describe('discovery', () => {
  it('announces the core group, apps/v1 and autoscaling/v2 with their resources and subresources', async () => {
    expect((await call('GET', '/api')).json).toMatchObject({ kind: 'APIVersions', versions: ['v1'] });
    const groups = (await call('GET', '/apis')).json as {
      groups: { name: string; preferredVersion: { version: string } }[];
    };
    expect(groups.groups.map((g) => [g.name, g.preferredVersion.version])).toEqual([
      ['apps', 'v1'],
      ['autoscaling', 'v2'],
    ]);
    const names = async (path: string) =>
      ((await call('GET', path)).json.resources as { name: string }[]).map((r) => r.name);
    expect(await names('/api/v1')).toEqual(
      expect.arrayContaining(['pods', 'pods/log', 'secrets', 'namespaces']),
    );
    expect(await names('/apis/apps/v1')).toEqual(
      expect.arrayContaining([
        'deployments',
        'deployments/scale',
        'statefulsets',
        'statefulsets/scale',
        'replicasets',
      ]),
    );
    expect(await names('/apis/autoscaling/v2')).toEqual(expect.arrayContaining(['horizontalpodautoscalers']));
    const unknown = await call('GET', '/apis/batch/v1');
    expect(unknown.status).toBe(404);
    expect(unknown.json).toMatchObject({ kind: 'Status', reason: 'NotFound' });
  });
});

describe('the seeded platform', () => {
  it('runs fte-api, fte-message-processor, postgres and kafka with ready pods, an HPA and fte-secrets', async () => {
    const { core, apps, hpa } = clients();
    const deployments = await apps.listNamespacedDeployment({ namespace: ns });
    expect(
      deployments.items.map((d) => [d.metadata?.name, d.spec?.replicas, d.status?.readyReplicas]),
    ).toEqual([
      ['fte-api', 3, 3],
      ['fte-message-processor', 2, 2],
    ]);
    const sets = await apps.listNamespacedStatefulSet({ namespace: ns });
    expect(sets.items.map((s) => s.metadata?.name)).toEqual(['kafka', 'postgres']);
    const postgres = await core.readNamespacedPod({ name: 'postgres-0', namespace: ns });
    expect(postgres.metadata?.uid).toMatch(/^[0-9a-f-]{36}$/);
    expect(postgres.status?.phase).toBe('Running');
    expect(postgres.status?.containerStatuses?.[0]).toMatchObject({ ready: true, restartCount: 0 });
    const autoscaler = await hpa.readNamespacedHorizontalPodAutoscaler({
      name: 'fte-message-processor',
      namespace: ns,
    });
    expect(autoscaler.spec).toMatchObject({
      minReplicas: 2,
      maxReplicas: 5,
      scaleTargetRef: { kind: 'Deployment' },
    });
    const secret = await core.readNamespacedSecret({ name: 'fte-secrets', namespace: ns });
    expect(Buffer.from(secret.data?.TWILIO_AUTH_TOKEN ?? '', 'base64').toString()).toBe(
      sim.secretValue('TWILIO_AUTH_TOKEN'),
    );
  });

  it('seeds the namespace it is given and nothing in others', async () => {
    const namespace = uniqueName('drill');
    const own = await new KubeSimulator({ namespace }).start();
    try {
      expect(own.state.pods).toHaveLength(7);
      expect(own.stateOf(ns).pods).toHaveLength(0);
    } finally {
      await own.stop();
    }
  });
});

describe('patches', () => {
  it('merges a strategic merge patch into the containers by name', async () => {
    const patch = {
      spec: {
        template: {
          spec: { containers: [{ name: 'fte-api', env: [{ name: 'LOG_LEVEL', value: 'debug' }] }] },
        },
      },
    };
    const answer = await call('PATCH', deploymentPath('fte-api'), {
      body: patch,
      contentType: 'application/strategic-merge-patch+json',
    });
    expect(answer.status).toBe(200);
    const container = (
      answer.json as { spec: { template: { spec: { containers: Record<string, unknown>[] } } } }
    ).spec.template.spec.containers[0];
    expect(container).toMatchObject({
      name: 'fte-api',
      image: expect.stringContaining('fte-api') as string,
      env: [{ name: 'LOG_LEVEL', value: 'debug' }],
    });
  });

  it('replaces lists with a merge patch, and rejects the result when it is invalid (422 with causes)', async () => {
    const patch = { spec: { template: { spec: { containers: [{ name: 'fte-api' }] } } } };
    const answer = await call('PATCH', deploymentPath('fte-api'), {
      body: patch,
      contentType: 'application/merge-patch+json',
    });
    expect(answer.status).toBe(422);
    expect(answer.json).toMatchObject({
      kind: 'Status',
      reason: 'Invalid',
      details: { kind: 'Deployment', group: 'apps' },
    });
    expect(answer.json.message).toContain('spec.template.spec.containers.0.image');
  });

  it('applies a JSON patch and the controller follows the new replica count', async () => {
    const ops = [
      { op: 'test', path: '/spec/replicas', value: 3 },
      { op: 'replace', path: '/spec/replicas', value: 1 },
    ];
    const answer = await call('PATCH', deploymentPath('fte-api'), {
      body: ops,
      contentType: 'application/json-patch+json',
    });
    expect(answer.status).toBe(200);
    expect(sim.podsOf('fte-api')).toHaveLength(1);
    const failed = await call('PATCH', deploymentPath('fte-api'), {
      body: ops,
      contentType: 'application/json-patch+json',
    });
    expect(failed.status).toBe(422);
  });

  it('answers 415 to patch types it does not speak, and 409 to a write from a stale resourceVersion', async () => {
    const apply = await call('PATCH', deploymentPath('fte-api'), {
      body: {},
      contentType: 'application/apply-patch+yaml',
    });
    expect(apply.status).toBe(415);
    const stale = { metadata: { resourceVersion: '1' }, spec: { replicas: 5 } };
    const conflict = await call('PATCH', deploymentPath('fte-api'), {
      body: stale,
      contentType: 'application/merge-patch+json',
    });
    expect(conflict.status).toBe(409);
    expect(conflict.json).toMatchObject({ reason: 'Conflict', code: 409 });
    expect(String(conflict.json.message)).toContain('the object has been modified');
    expect(sim.state.deployments['fte-api']?.replicas).toBe(3);
  });
});

describe('the scale subresource', () => {
  it('reads, replaces and patches the replica count of a deployment', async () => {
    const scale = await call('GET', `${deploymentPath('fte-message-processor')}/scale`);
    expect(scale.json).toMatchObject({
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      spec: { replicas: 2 },
      status: { replicas: 2, selector: 'app=fte-message-processor' },
    });
    const put = await call('PUT', `${deploymentPath('fte-message-processor')}/scale`, {
      body: { ...scale.json, spec: { replicas: 4 } },
    });
    expect(put.json).toMatchObject({ spec: { replicas: 4 } });
    expect(sim.podsOf('fte-message-processor')).toHaveLength(4);
    await call('PATCH', `${deploymentPath('fte-message-processor')}/scale`, {
      body: { spec: { replicas: 3 } },
      contentType: 'application/merge-patch+json',
    });
    expect(sim.podsOf('fte-message-processor')).toHaveLength(3);
    const invalid = await call('PATCH', `${deploymentPath('fte-message-processor')}/scale`, {
      body: { spec: { replicas: -1 } },
      contentType: 'application/merge-patch+json',
    });
    expect(invalid.status).toBe(422);
  });
});

describe('controllers', () => {
  it('replaces the pods of a deployment when its pod template changes (rollout restart)', async () => {
    const before = sim.podsOf('fte-api');
    const patch = {
      spec: {
        template: {
          metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': new Date().toISOString() } },
        },
      },
    };
    await call('PATCH', deploymentPath('fte-api'), {
      body: patch,
      contentType: 'application/strategic-merge-patch+json',
    });
    const after = sim.podsOf('fte-api');
    expect(after).toHaveLength(3);
    expect(after.filter((p) => before.some((b) => b.name === p.name || b.uid === p.uid))).toEqual([]);
    const { apps } = clients();
    const sets = await apps.listNamespacedReplicaSet({ namespace: ns, labelSelector: 'app=fte-api' });
    expect(sets.items.map((rs) => rs.spec?.replicas).sort()).toEqual([0, 3]);
  });

  it('brings a deleted statefulset pod back under the same name with a new uid', async () => {
    const [before] = sim.podsOf('postgres');
    const { core } = clients();
    const deleted = await core.deleteNamespacedPod({ name: 'postgres-0', namespace: ns });
    expect(deleted.metadata?.uid).toBe(before?.uid);
    const [after] = sim.podsOf('postgres');
    expect(after?.name).toBe('postgres-0');
    expect(after?.uid).not.toBe(before?.uid);
  });

  it('honours a delete precondition on the uid', async () => {
    const answer = await call('DELETE', `/api/v1/namespaces/${ns}/pods/kafka-0`, {
      body: { preconditions: { uid: 'not-this-pod' } },
    });
    expect(answer.status).toBe(409);
    expect(answer.json).toMatchObject({ kind: 'Status', reason: 'Conflict' });
    expect(String(answer.json.message)).toContain('Precondition failed: UID in precondition: not-this-pod');
    expect(sim.podsOf('kafka')).toHaveLength(1);
  });

  it('scales a deployment to the HPA demand, within its bounds', async () => {
    sim.setHpaDemand('fte-message-processor', 9);
    expect(sim.podsOf('fte-message-processor')).toHaveLength(5);
    expect(sim.state.hpas['fte-message-processor']).toMatchObject({ currentReplicas: 5, desiredReplicas: 5 });
  });
});

describe('pod faults', () => {
  it('shows CrashLoopBackOff, OOMKilled and not-ready pods the way the kubelet reports them', async () => {
    const [api1, api2] = sim.podsOf('fte-api');
    sim.failPods({ pod: api1?.name }, 'CrashLoopBackOff');
    sim.failPods({ pod: api2?.name }, 'NotReady');
    sim.failPods('fte-message-processor', 'OOMKilled');
    const { core } = clients();
    const crashing = await core.readNamespacedPod({ name: api1?.name ?? '', namespace: ns });
    expect(crashing.status?.containerStatuses?.[0]).toMatchObject({
      ready: false,
      state: { waiting: { reason: 'CrashLoopBackOff' } },
      lastState: { terminated: { reason: 'Error', exitCode: 1 } },
    });
    expect(crashing.status?.containerStatuses?.[0]?.restartCount).toBeGreaterThan(0);
    expect(crashing.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('False');
    const notReady = await core.readNamespacedPod({ name: api2?.name ?? '', namespace: ns });
    expect(notReady.status?.containerStatuses?.[0]).toMatchObject({ ready: false, state: { running: {} } });
    for (const pod of sim.podsOf('fte-message-processor')) expect(pod.reason).toBe('OOMKilled');
  });

  it('heals on restart by default, and holds for new pods when asked to', async () => {
    sim.failPods('fte-api', 'CrashLoopBackOff');
    sim.failPods('fte-message-processor', 'CrashLoopBackOff', { untilRestart: false });
    for (const name of ['fte-api', 'fte-message-processor']) {
      const patch = { spec: { template: { metadata: { annotations: { restart: '1' } } } } };
      await call('PATCH', deploymentPath(name), { body: patch, contentType: 'application/merge-patch+json' });
    }
    expect(sim.podsOf('fte-api').every((p) => p.ready)).toBe(true);
    expect(sim.podsOf('fte-message-processor').every((p) => p.reason === 'CrashLoopBackOff')).toBe(true);
  });
});

describe('pod logs', () => {
  it('serves the tail of a pod log as text, with timestamps on request', async () => {
    const path = `/api/v1/namespaces/${ns}/pods/postgres-0/log`;
    const tail = await call('GET', `${path}?tailLines=3`);
    expect(tail.contentType).toContain('text/plain');
    expect(tail.text.trimEnd().split('\n')).toHaveLength(3);
    const stamped = await call('GET', `${path}?tailLines=1&timestamps=true`);
    expect(stamped.text).toMatch(/^\d{4}-\d\d-\d\dT\S+Z LOG: /);
    sim.appendLogs({ pod: 'postgres-0' }, ['FATAL:  terminating connection due to administrator command']);
    expect((await call('GET', `${path}?tailLines=1`)).text).toContain('FATAL:  terminating connection');
    const wrong = await call('GET', `${path}?container=nginx`);
    expect(wrong.status).toBe(400);
    expect(wrong.json.message).toBe('container nginx is not valid for pod postgres-0');
  });
});

describe('request faults', () => {
  it('answers 403 with an RBAC Status for a forbidden verb, and only for it', async () => {
    const allow = sim.forbid('get', 'secrets');
    const answer = await call('GET', `/api/v1/namespaces/${ns}/secrets/fte-secrets`);
    expect(answer.status).toBe(403);
    expect(answer.json).toMatchObject({
      kind: 'Status',
      reason: 'Forbidden',
      code: 403,
      details: { name: 'fte-secrets', kind: 'secrets' },
    });
    expect(answer.json.message).toBe(
      `secrets "fte-secrets" is forbidden: User "system:serviceaccount:customer-success-fte:incident-response" cannot get resource "secrets" in API group "" in the namespace "${ns}"`,
    );
    expect((await call('GET', `/api/v1/namespaces/${ns}/secrets`)).status).toBe(200);
    allow();
    expect((await call('GET', `/api/v1/namespaces/${ns}/secrets/fte-secrets`)).status).toBe(200);
  });

  it('answers server errors the given number of times, then recovers', async () => {
    sim.failRequests({ resource: 'pods' }, { code: 503, times: 2 });
    expect((await call('GET', `/api/v1/namespaces/${ns}/pods`)).json).toMatchObject({
      reason: 'ServiceUnavailable',
      code: 503,
    });
    expect((await call('GET', `/api/v1/namespaces/${ns}/pods`)).status).toBe(503);
    expect((await call('GET', `/api/v1/namespaces/${ns}/pods`)).status).toBe(200);
  });

  it('keeps its objects and its port across a stop and a start', async () => {
    const url = sim.url;
    const uid = sim.podsOf('postgres')[0]?.uid;
    await sim.stop();
    await sim.start();
    expect(sim.url).toBe(url);
    const { core } = clients();
    expect((await core.readNamespacedPod({ name: 'postgres-0', namespace: ns })).metadata?.uid).toBe(uid);
  });
});

describe('kubectl support', () => {
  it('answers a Table when asked for server-side printing', async () => {
    const answer = await call('GET', `/api/v1/namespaces/${ns}/pods?labelSelector=app%3Dpostgres`, {
      accept: 'application/json;as=Table;v=v1;g=meta.k8s.io,application/json',
    });
    expect(answer.json).toMatchObject({ kind: 'Table', apiVersion: 'meta.k8s.io/v1' });
    const columns = (answer.json.columnDefinitions as { name: string }[]).map((c) => c.name);
    expect(columns.slice(0, 5)).toEqual(['Name', 'Ready', 'Status', 'Restarts', 'Age']);
    expect((answer.json.rows as { cells: unknown[] }[])[0]?.cells.slice(0, 4)).toEqual([
      'postgres-0',
      '1/1',
      'Running',
      '0',
    ]);
  });

  it('streams watch events from a resource version', async () => {
    const list = await call('GET', `/apis/apps/v1/namespaces/${ns}/deployments`);
    const rv = String((list.json.metadata as { resourceVersion: string }).resourceVersion);
    const event = new Promise<Record<string, unknown>>((resolve, reject) => {
      const url = new URL(
        `/apis/apps/v1/namespaces/${ns}/deployments?watch=true&resourceVersion=${rv}&fieldSelector=metadata.name%3Dfte-api`,
        sim.url,
      );
      const req = request(
        url,
        { headers: { Authorization: `Bearer ${sim.token}` }, ca: sim.caCertificate },
        (res) => {
          res.setEncoding('utf8');
          res.once('data', (chunk: string) => {
            resolve(JSON.parse(chunk.split('\n')[0] ?? '{}') as Record<string, unknown>);
            req.destroy();
          });
        },
      );
      req.on('error', reject);
      req.end();
    });
    await call('PATCH', `${deploymentPath('fte-api')}/scale`, {
      body: { spec: { replicas: 4 } },
      contentType: 'application/merge-patch+json',
    });
    const first = await event;
    expect(first.type).toBe('MODIFIED');
    expect(first.object).toMatchObject({
      kind: 'Deployment',
      metadata: { name: 'fte-api' },
      spec: { replicas: 4 },
    });
  });
});
