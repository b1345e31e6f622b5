import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { startSandbox } from './platform.js';
import { controlServer } from './control.js';

// `make start`'s default target: the simulated platform, with its environment written for the worker and a
// small control endpoint to break it on purpose:  curl -X POST http://127.0.0.1:8090/scenarios/api-down
// The Kubernetes part joins when scripts/kube.sh answers: at once when the control plane is built, after
// the first build (about 15 minutes, started by scripts/start.sh in the background) otherwise.

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

const envSchema = z.object({
  POSTGRES_ADMIN_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL'),
  KAFKA_BROKERS: z.string().min(1),
  SANDBOX_ENV_FILE: z.string().min(1),
  SANDBOX_DATA_DIR: z.string().min(1),
  SANDBOX_CONTROL_PORT: z.coerce.number().int().min(1).max(65_535).default(8090),
  SANDBOX_KUBE_PROXY_PORT: z.coerce.number().int().min(0).max(65_535).default(8091),
  FTE_API_SIM_PORT: z.coerce.number().int().min(0).max(65_535).default(8000),
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves with the admin kubeconfig once the local control plane answers (scripts/kube.sh status). */
async function controlPlane(): Promise<string> {
  for (let said = false; ; said = true) {
    const ready = await run('bash', [`${root}scripts/kube.sh`, 'status']).then(
      () => true,
      () => false,
    );
    if (ready) break;
    if (!said) {
      process.stdout.write(
        'sandbox: waiting for the Kubernetes control plane (a first start builds it: .data/kube-build.log); ' +
          'until then Kubernetes probes answer "unknown"\n',
      );
    }
    await sleep(5_000);
  }
  const { stdout } = await run('bash', [`${root}scripts/kube.sh`, 'kubeconfig']);
  return stdout.trim();
}

async function main(): Promise<void> {
  const env = parseEnv(envSchema);
  const sandbox = await startSandbox({
    postgresAdminUrl: env.POSTGRES_ADMIN_URL,
    kafkaBrokers: env.KAFKA_BROKERS.split(','),
    adminKubeconfig: controlPlane(),
    apiPort: env.FTE_API_SIM_PORT,
    kubePort: env.SANDBOX_KUBE_PROXY_PORT,
    dataDir: env.SANDBOX_DATA_DIR,
    onClusterError: (error) => {
      process.stderr.write(`sandbox: the platform could not be put on the control plane: ${String(error)}\n`);
    },
  });
  void sandbox.clusterReady.then((cluster) => {
    process.stdout.write(
      `sandbox: the FTE platform runs on the Kubernetes control plane (namespace ${cluster.namespace})\n`,
    );
  });
  await mkdir(dirname(env.SANDBOX_ENV_FILE), { recursive: true });
  const lines = Object.entries(sandbox.env).map(([k, v]) => `${k}=${v}`);
  await writeFile(env.SANDBOX_ENV_FILE, `${lines.join('\n')}\n`, { mode: 0o600 });

  const control = await controlServer(sandbox, env.SANDBOX_CONTROL_PORT);
  process.stdout.write(
    `sandbox: Kubernetes API (for the worker) ${sandbox.kubeProxy.url}, fte-api ${sandbox.api.url}, control http://127.0.0.1:${env.SANDBOX_CONTROL_PORT}\n`,
  );
  const stop = () => {
    void control.close();
    void sandbox.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`sandbox: ${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
