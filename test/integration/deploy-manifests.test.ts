import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { activityEnvSchema } from '../../src/activities/index.js';
import { temporalEnvSchema, workerDeploymentEnvSchema, workerEndpointsEnvSchema } from '../../src/config.js';
import { receiverEnvSchema } from '../../src/starters/receiver-config.js';
import { logEnvSchema } from '../../src/logging.js';
import { tracingEnvSchema } from '../../src/tracing.js';
import { projectRoot } from '../helpers/paths.js';
import { services } from '../helpers/services.js';

// deploy/kubernetes as a platform team uses it: kustomize (through kubectl) builds the base and the production
// overlay, the real API server accepts every object (server-side dry run, strict field validation), and the
// manifests agree with the code: each variable they set is one the process reads, secrets come from the Secret,
// probes ask the endpoints the processes serve, commands run files the build writes, the worker runs as the
// ServiceAccount the Role is bound to.

const run = promisify(execFile);
const kubectlPath = `${projectRoot}.tools/kube/bin/kubectl`;

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string }; configMapKeyRef?: unknown };
}
interface Container {
  name: string;
  command?: string[];
  env?: EnvVar[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name: string; containerPort: number }[];
  livenessProbe?: { httpGet?: { path: string; port: string } };
  readinessProbe?: { httpGet?: { path: string; port: string } };
}
interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  spec?: {
    template?: { spec: { serviceAccountName?: string; containers: Container[] } };
  };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

let cacheDir = '';
const kubectl = (args: string[], input?: string) =>
  new Promise<string>((resolve, reject) => {
    const child = execFile(
      kubectlPath,
      ['--kubeconfig', services().kubeconfig, '--cache-dir', cacheDir, '--request-timeout', '60s', ...args],
      { timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`kubectl ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
    if (input !== undefined) child.stdin?.end(input);
  });

const build = async (dir: string) => {
  const { stdout } = await run(kubectlPath, ['kustomize', `${projectRoot}${dir}`], { timeout: 60_000 });
  return stdout;
};
const objectsOf = (yaml: string) =>
  parseAllDocuments(yaml)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((o): o is K8sObject => o !== null);

const keys = (schema: { shape: Record<string, unknown> }) => Object.keys(schema.shape);
const readBy: Record<string, string[]> = {
  worker: [
    ...keys(activityEnvSchema),
    ...keys(temporalEnvSchema),
    ...keys(workerDeploymentEnvSchema),
    ...keys(workerEndpointsEnvSchema),
    ...keys(logEnvSchema),
    ...keys(tracingEnvSchema),
  ],
  receiver: [...keys(receiverEnvSchema), ...keys(temporalEnvSchema), ...keys(tracingEnvSchema)],
};
const secretLike = /TOKEN|PASSWORD|SECRET|API_KEY|DATABASE_URL/;

let base: K8sObject[] = [];
beforeAll(async () => {
  cacheDir = await mkdtemp(join(tmpdir(), 'kubectl-cache-'));
  base = objectsOf(await build('deploy/kubernetes'));
}, 120_000);
afterAll(() => rm(cacheDir, { recursive: true, force: true }));

describe('deploy/kubernetes', () => {
  it('builds with kustomize, and the API server accepts every object of the base and the overlay', async () => {
    expect(base.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ConfigMap/incident-response-config',
        'Deployment/incident-response-receiver',
        'Deployment/incident-response-worker',
        'Namespace/fte-incident-response',
        'NetworkPolicy/incident-response-receiver',
        'NetworkPolicy/incident-response-worker',
        'PodDisruptionBudget/incident-response-receiver',
        'PodDisruptionBudget/incident-response-worker',
        'Role/incident-response-worker',
        'RoleBinding/incident-response-worker',
        'Service/incident-response-receiver',
        'ServiceAccount/incident-response-receiver',
        'ServiceAccount/incident-response-worker',
      ].sort(),
    );
    // A dry run needs the namespaces to exist; they are created empty if they are not there yet.
    for (const namespace of ['fte-incident-response', 'customer-success-fte']) {
      await kubectl(['create', 'namespace', namespace]).catch((error: Error) => {
        if (!/AlreadyExists/.test(error.message)) throw error;
      });
    }
    for (const dir of ['deploy/kubernetes', 'deploy/kubernetes/overlays/production']) {
      const out = await kubectl(
        ['apply', '--dry-run=server', '--validate=strict', '-f', '-'],
        await build(dir),
      );
      expect(out.trim().split('\n')).toHaveLength(13);
      expect(out).toMatch(
        /deployment.apps\/incident-response-worker (created|configured|unchanged) \(server dry run\)/,
      );
    }
    const prod = objectsOf(await build('deploy/kubernetes/overlays/production'));
    const worker = prod.find(
      (o) => o.kind === 'Deployment' && o.metadata.name === 'incident-response-worker',
    );
    expect(worker?.spec).toMatchObject({ replicas: 3 });
  }, 240_000);

  it('agrees with the code: variables, secrets, probes, commands and the ServiceAccount', () => {
    const config = base.find((o) => o.kind === 'ConfigMap');
    const shared = Object.keys(config?.data ?? {});
    const everyone = [...readBy.worker!, ...readBy.receiver!];
    for (const key of shared) expect(everyone, `ConfigMap key ${key}`).toContain(key);

    const deployments = base.filter((o) => o.kind === 'Deployment');
    for (const d of deployments) {
      const role = d.metadata.name.replace('incident-response-', '');
      const pod = d.spec?.template?.spec;
      const container = pod?.containers[0];
      expect(container, d.metadata.name).toBeDefined();
      if (!pod || !container) continue;
      for (const v of container.env ?? []) {
        expect(readBy[role], `${d.metadata.name}: ${v.name}`).toContain(v.name);
        if (secretLike.test(v.name) && !v.name.endsWith('_FILE')) {
          expect(v.value, `${v.name} must come from a Secret`).toBeUndefined();
          expect(v.valueFrom?.secretKeyRef?.name).toBe('incident-response-secrets');
        }
      }
      for (const source of container.envFrom ?? [])
        expect(source.configMapRef?.name).toBe(config?.metadata.name);
      // The command runs a file the build writes from a source that exists.
      const entry = container.command?.[1] ?? '';
      expect(entry).toMatch(/^dist\/.+\.js$/);
      expect(
        existsSync(`${projectRoot}${entry.replace(/^dist\//, 'src/').replace(/\.js$/, '.ts')}`),
        entry,
      ).toBe(true);
      // Probes ask the endpoints the process serves, on the port it is told to listen on.
      const env = Object.fromEntries((container.env ?? []).map((v) => [v.name, v.value]));
      const portVariable = role === 'worker' ? 'WORKER_HEALTH_PORT' : 'RECEIVER_PORT';
      for (const [probe, path] of [
        [container.livenessProbe, '/healthz'],
        [container.readinessProbe, '/readyz'],
      ] as const) {
        expect(probe?.httpGet?.path).toBe(path);
        const port = container.ports?.find((p) => p.name === probe?.httpGet?.port)?.containerPort;
        expect(String(port)).toBe(env[portVariable]);
      }
    }

    const worker = deployments.find((d) => d.metadata.name === 'incident-response-worker');
    const binding = base.find((o) => o.kind === 'RoleBinding');
    expect(binding?.metadata.namespace).toBe('customer-success-fte');
    expect(binding?.subjects).toEqual([
      {
        kind: 'ServiceAccount',
        name: worker?.spec?.template?.spec.serviceAccountName,
        namespace: worker?.metadata.namespace,
      },
    ]);
    // The receiver never talks to the Kubernetes API: no Role is bound to it.
    const receiver = deployments.find((d) => d.metadata.name === 'incident-response-receiver');
    expect(JSON.stringify(binding)).not.toContain(receiver?.spec?.template?.spec.serviceAccountName);
  });
});
