import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AuthorizationV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import type { KubernetesActivities } from '../../src/activities/kubernetes.js';
import type { ActionInput, ActionResult, ProbeInput } from '../../src/domain/activity-contract.js';
import type { Finding } from '../../src/domain/findings.js';
import { WORKER_SERVICE_ACCOUNT } from '../../src/sandbox/cluster.js';
import {
  failure,
  ownKubeTarget,
  startKubeTarget,
  until,
  WORKER_USER,
  type KubeTarget,
} from '../helpers/kube.js';
import { projectRoot } from '../helpers/paths.js';
import { allows, describeGrant, grants, shippedRole } from '../helpers/rbac.js';

// The Role the product ships (deploy/kubernetes/base/worker-rbac.yaml) against the real API server's RBAC:
// the worker's ServiceAccount, bound to it, runs every probe and action; every request they make is one the
// Role allows, and every permission the Role grants is one they use (least privilege, both ways). Without a
// permission, the API server's own 403 comes back as a ForbiddenError.

const run = promisify(execFile);
const processor = 'fte-message-processor';

const probeInput = (namespace: string, args: Record<string, unknown>): ProbeInput => ({
  incidentId: 'inc-rbac',
  scope: namespace,
  probeId: 'rbac',
  args: { namespace, ...args },
});
const actionInput = (namespace: string, args: Record<string, unknown>, step: string): ActionInput => ({
  incidentId: 'inc-rbac',
  scope: namespace,
  stepId: step,
  idempotencyKey: `inc-rbac/${step}/1`,
  args: { namespace, ...args },
});

describe('the shipped Role, bound to the worker ServiceAccount', () => {
  let t: KubeTarget;
  const findings: [string, Finding][] = [];
  const results: [string, ActionResult][] = [];

  // Every probe and action, in the order an incident would run them: look first, then act.
  beforeAll(async () => {
    t = await startKubeTarget();
    const k8s: KubernetesActivities = t.activities();
    const ns = t.namespace;
    const probes: [keyof KubernetesActivities, Record<string, unknown>][] = [
      ['k8sPods', {}],
      ['k8sPods', { selector: 'app=postgres' }],
      ['k8sLogs', { kind: 'deployment', name: 'fte-api', tail: 5 }],
      ['k8sLogs', { kind: 'statefulset', name: 'postgres', tail: 5, filter: 'checkpoint' }],
      ['k8sRolloutStatus', { kind: 'deployment', name: 'fte-api' }],
      ['k8sRolloutStatus', { kind: 'statefulset', name: 'kafka' }],
      ['k8sHpa', { name: processor }],
      ['k8sSecretKey', { secret: 'fte-secrets', key: 'TWILIO_AUTH_TOKEN' }],
    ];
    for (const [name, args] of probes) {
      const activity = k8s[name] as (input: ProbeInput) => Promise<Finding>;
      findings.push([`${name} ${JSON.stringify(args)}`, await activity(probeInput(ns, args))]);
    }
    // metrics-server reports a new pod's usage after two scrapes (10-30 s): until then the probe cannot tell.
    const usage = { selector: 'app=postgres' };
    findings.push([
      `k8sPodUsage ${JSON.stringify(usage)}`,
      await until(
        () => k8s.k8sPodUsage(probeInput(ns, usage)),
        (f) => f.status !== 'unknown',
        'the usage of postgres-0 from metrics-server',
        90_000,
      ),
    ]);
    const postgresUid = findings[0]?.[1].metrics['uid/postgres-0'];
    const actions: [keyof KubernetesActivities, Record<string, unknown>][] = [
      ['rolloutRestart', { kind: 'deployment', name: 'fte-api' }],
      ['restartStatefulSetPod', { statefulset: 'postgres', pod: 'postgres-0', expectUid: postgresUid }],
      ['scaleDeployment', { name: processor, replicas: 3 }],
      ['raiseHpaMax', { name: processor, maxReplicas: 8 }],
    ];
    for (const [name, args] of actions) {
      const activity = k8s[name] as (input: ActionInput) => Promise<ActionResult>;
      results.push([name, await activity(actionInput(ns, args, name))]);
    }
  }, 240_000);
  afterAll(() => t?.stop());

  it('lets the worker run every probe and action', () => {
    expect(findings).toHaveLength(9);
    for (const [what, finding] of findings) expect(finding.status, `${what}: ${finding.summary}`).toBe('ok');
    expect(results.map(([name, r]) => [name, r.changed])).toEqual([
      ['rolloutRestart', true],
      ['restartStatefulSetPod', true],
      ['scaleDeployment', true],
      ['raiseHpaMax', true],
    ]);
    // Not one request refused for want of a permission (a 409 of a write that raced a controller is retried).
    const refused = t.proxy.requests.filter((r) => r.status === 401 || r.status === 403);
    expect(refused).toEqual([]);
  });

  it('allows every request they made, and each of its permissions is one they needed', async () => {
    const { rules = [] } = await shippedRole();
    const requests = t.proxy.requests;
    expect(requests.length).toBeGreaterThan(20);
    for (const request of requests) {
      const what = `${request.method} ${request.path}`;
      expect(request.namespace, what).toBe(t.namespace);
      expect(
        rules.some((rule) => allows(rule, request)),
        `${what} (${request.verb} ${request.resource}/${request.subresource})`,
      ).toBe(true);
    }
    const unused = rules
      .flatMap(grants)
      .filter((grant) => !requests.some((r) => allows(grant, r)))
      .map(describeGrant);
    expect(unused, 'permissions of the Role no probe or action used').toEqual([]);
    // The Role in the namespace is the shipped one (FteCluster binds it unchanged).
    const rbac = t.cluster.admin.makeApiClient(RbacAuthorizationV1Api);
    const applied = await rbac.readNamespacedRole({ name: WORKER_SERVICE_ACCOUNT, namespace: t.namespace });
    expect(applied.rules).toEqual(rules);
  });
});

describe('a Role lacking a permission', () => {
  it("makes the action fail with a ForbiddenError carrying the API server's message", async () => {
    const t = await ownKubeTarget();
    const namespace = t.namespace;
    const rbac = t.cluster.admin.makeApiClient(RbacAuthorizationV1Api);
    const authz = t.cluster.admin.makeApiClient(AuthorizationV1Api);
    const mayPatchScale = () =>
      authz
        .createSubjectAccessReview({
          body: {
            spec: {
              user: WORKER_USER,
              resourceAttributes: {
                namespace,
                verb: 'patch',
                group: 'apps',
                resource: 'deployments',
                subresource: 'scale',
                name: processor,
              },
            },
          },
        })
        .then((review) => review.status?.allowed === true);
    expect(await mayPatchScale()).toBe(true);

    // A copy of the shipped Role that may read the scale of a deployment but not change it.
    const role = await rbac.readNamespacedRole({ name: WORKER_SERVICE_ACCOUNT, namespace });
    const rules = (role.rules ?? []).map((rule) =>
      rule.resources?.includes('deployments/scale')
        ? { ...rule, verbs: rule.verbs.filter((v) => v !== 'patch') }
        : rule,
    );
    await rbac.replaceNamespacedRole({ name: WORKER_SERVICE_ACCOUNT, namespace, body: { ...role, rules } });
    await until(mayPatchScale, (allowed) => !allowed, 'the API server to apply the narrower Role');

    const error = await failure(
      t.activities().scaleDeployment({
        incidentId: 'inc-rbac',
        scope: namespace,
        stepId: 'scale',
        idempotencyKey: 'inc-rbac/scale/1',
        args: { namespace, name: processor, replicas: 5 },
      }),
    );
    expect(error.type).toBe('ForbiddenError');
    expect(error.nonRetryable).toBe(true);
    expect(error.message).toContain(
      `deployments.apps "${processor}" is forbidden: User "${WORKER_USER}" cannot patch resource "deployments/scale" in API group "apps" in the namespace "${namespace}"`,
    );
    expect(t.proxy.requests.filter((r) => r.status === 403)).toEqual([
      expect.objectContaining({ verb: 'patch', resource: 'deployments', subresource: 'scale' }),
    ]);
    expect((await t.cluster.deployment(processor)).replicas).toBe(2);
  });
});

describe('kubectl with the worker kubeconfig', () => {
  const kubectlPath = `${projectRoot}.tools/kube/bin/kubectl`;
  let cacheDir: string;
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'kubectl-cache-'));
  });
  afterAll(() => rm(cacheDir, { recursive: true, force: true }));

  it('sees the platform the probes see, and only what the Role grants (scripts/kube.sh builds kubectl)', async () => {
    const t = await ownKubeTarget();
    const kubectl = (...args: string[]) =>
      run(
        kubectlPath,
        ['--kubeconfig', t.kubeconfigPath, '--cache-dir', cacheDir, '--request-timeout', '30s', ...args],
        { timeout: 60_000 },
      ).then(
        ({ stdout }) => ({ code: 0, stdout }),
        (e: { code?: number | string; stdout?: string; stderr?: string }) => {
          if (e.code === 'ENOENT')
            throw new Error(`no kubectl at ${kubectlPath}: run scripts/kube.sh install`);
          return { code: Number(e.code), stdout: `${e.stdout ?? ''}${e.stderr ?? ''}` };
        },
      );

    // The namespace comes from the kubeconfig's context, as for the worker.
    const pods = await kubectl('get', 'pods');
    expect(pods.code).toBe(0);
    const rows = pods.stdout.trim().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    expect(rows).toHaveLength(1 + 7);
    for (const pod of ['postgres-0', 'kafka-0'])
      expect(pods.stdout).toMatch(new RegExp(`^${pod}\\s+1/1\\s+Running\\s+0\\s`, 'm'));

    expect(await kubectl('auth', 'can-i', 'patch', 'deployments', '--subresource=scale')).toEqual({
      code: 0,
      stdout: 'yes\n',
    });
    const deleteDeployments = await kubectl('auth', 'can-i', 'delete', 'deployments');
    expect(deleteDeployments.code).toBe(1);
    expect(deleteDeployments.stdout).toMatch(/^no\b/);
    const nodes = await kubectl('get', 'nodes');
    expect(nodes.code).toBe(1);
    expect(nodes.stdout).toContain(`User "${WORKER_USER}" cannot list resource "nodes"`);
  });
});
