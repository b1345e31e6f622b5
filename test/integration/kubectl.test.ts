import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { KubeSimulator } from '../../src/sandbox/kube/index.js';

// kubectl, the tool the runbook's humans use, against the simulator through the kubeconfig it writes.
// Skipped only when there is no kubectl binary at all (CI installs Debian's kubernetes-client).

const run = promisify(execFile);
const KUBECTL = process.env.KUBECTL ?? 'kubectl';

async function kubectlVersion(): Promise<string | undefined> {
  try {
    const { stdout } = await run(KUBECTL, ['version', '--client'], { timeout: 30_000 });
    return stdout.trim();
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

const version = await kubectlVersion();
const namespace = 'customer-success-fte';
let sim: KubeSimulator;
let cacheDir: string;

async function kubectl(...args: string[]): Promise<string> {
  const { stdout } = await run(
    KUBECTL,
    ['--kubeconfig', sim.kubeconfigPath, '--cache-dir', cacheDir, '--request-timeout', '20s', ...args],
    { timeout: 60_000 },
  );
  return stdout;
}

async function kubectlFails(...args: string[]): Promise<string> {
  const error = await kubectl(...args).then(
    () => undefined,
    (e: unknown) => e as { stderr?: string },
  );
  expect(error, `kubectl ${args.join(' ')} should fail`).toBeDefined();
  return error?.stderr ?? '';
}

it("kubectl is installed (.ci/run installs Debian's kubernetes-client when the machine has no kubectl)", () => {
  expect(version, `no "${KUBECTL}" on PATH`).toBeDefined();
});

describe(`kubectl (${version?.split('\n')[0] ?? 'missing'}) against the simulator`, () => {
  beforeAll(async () => {
    cacheDir = await mkdtemp(join(tmpdir(), 'kubectl-cache-'));
  });
  afterAll(() => rm(cacheDir, { recursive: true, force: true }));
  afterEach(() => sim.stop());

  const start = async () => {
    sim = await new KubeSimulator().start();
  };

  it('lists the pods of the platform, as the runbook first asks', async () => {
    await start();
    const out = await kubectl('get', 'pods', '-n', namespace);
    const rows = out.trim().split('\n');
    expect(rows[0]).toMatch(/^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE$/);
    expect(rows).toHaveLength(1 + sim.state.pods.length);
    for (const pod of sim.state.pods)
      expect(out).toMatch(new RegExp(`^${pod.name}\\s+1/1\\s+Running\\s+0\\s`, 'm'));
  });

  it('shows a crash-looping pod the way kubectl users know it', async () => {
    await start();
    sim.statefulSetPodDown('postgres');
    const out = await kubectl('get', 'pod', 'postgres-0', '-n', namespace);
    expect(out).toMatch(/^postgres-0\s+0\/1\s+CrashLoopBackOff\s+5\s/m);
  });

  it('restarts deployment/fte-api with rollout restart: every pod is replaced', async () => {
    await start();
    const before = sim.podsOf('fte-api');
    const out = await kubectl('rollout', 'restart', 'deployment/fte-api', '-n', namespace);
    expect(out.trim()).toBe('deployment.apps/fte-api restarted');
    const after = sim.podsOf('fte-api');
    expect(after).toHaveLength(3);
    expect(after.every((p) => p.ready)).toBe(true);
    expect(after.some((p) => before.some((b) => b.name === p.name || b.uid === p.uid))).toBe(false);
    expect(
      sim.state.deployments['fte-api']?.templateAnnotations['kubectl.kubernetes.io/restartedAt'],
    ).toBeDefined();
    expect(sim.requests.find((r) => r.verb === 'patch')?.contentType).toBe(
      'application/strategic-merge-patch+json',
    );
    const status = await kubectl('rollout', 'status', 'deployment/fte-api', '-n', namespace, '--timeout=30s');
    expect(status).toContain('deployment "fte-api" successfully rolled out');
  });

  it('reads the log tail of a deployment and of a statefulset', async () => {
    await start();
    const api = await kubectl('logs', 'deployment/fte-api', '-n', namespace, '--tail=5');
    expect(api.trim().split('\n')).toHaveLength(5);
    const pg = await kubectl('logs', 'statefulset/postgres', '-n', namespace, '--tail=50');
    expect(pg).toContain('database system is ready to accept connections');
  });

  it('scales the worker and deletes the postgres pod, which comes back with a new uid', async () => {
    await start();
    await kubectl('scale', 'deployment/fte-message-processor', '--replicas=4', '-n', namespace);
    expect(sim.podsOf('fte-message-processor')).toHaveLength(4);
    const uid = sim.podsOf('postgres')[0]?.uid;
    const out = await kubectl('delete', 'pod', 'postgres-0', '-n', namespace, '--timeout=30s');
    expect(out.trim()).toBe('pod "postgres-0" deleted');
    const [pod] = sim.podsOf('postgres');
    expect(pod?.name).toBe('postgres-0');
    expect(pod?.uid).not.toBe(uid);
  });

  it('is refused without the token and when RBAC forbids the verb', async () => {
    await start();
    const unauthorized = await kubectlFails('get', 'pods', '-n', namespace, '--token', 'not-the-token');
    expect(unauthorized).toMatch(/Unauthorized|must be logged in/);
    sim.forbid('list', 'pods');
    const forbidden = await kubectlFails('get', 'pods', '-n', namespace);
    expect(forbidden).toContain(
      'cannot list resource "pods" in API group "" in the namespace "customer-success-fte"',
    );
  });
});
