import { writeFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:http';
import { dirname } from 'node:path';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { scenarios, startSandbox, type Scenario } from './platform.js';

// `make start`'s default target: the simulated platform, with its environment written for the worker and a
// small control endpoint to break it on purpose:  curl -X POST http://127.0.0.1:8090/scenarios/api-down

const envSchema = z.object({
  POSTGRES_ADMIN_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL'),
  KAFKA_BROKERS: z.string().min(1),
  SANDBOX_ENV_FILE: z.string().min(1),
  SANDBOX_KUBECONFIG: z.string().min(1),
  SANDBOX_CONTROL_PORT: z.coerce.number().int().min(1).max(65_535).default(8090),
  FTE_API_SIM_PORT: z.coerce.number().int().min(0).max(65_535).default(8000),
});

async function main(): Promise<void> {
  const env = parseEnv(envSchema);
  const sandbox = await startSandbox({
    postgresAdminUrl: env.POSTGRES_ADMIN_URL,
    kafkaBrokers: env.KAFKA_BROKERS.split(','),
    apiPort: env.FTE_API_SIM_PORT,
    kubeconfigPath: env.SANDBOX_KUBECONFIG,
  });
  await mkdir(dirname(env.SANDBOX_ENV_FILE), { recursive: true });
  const lines = Object.entries(sandbox.env).map(([k, v]) => `${k}=${v}`);
  await writeFile(env.SANDBOX_ENV_FILE, `${lines.join('\n')}\n`, { mode: 0o600 });

  const control = createServer((req, res) => {
    const name = /^\/scenarios\/([a-z-]+)$/.exec(req.url ?? '')?.[1];
    if (req.method !== 'POST' || !name || !(scenarios as readonly string[]).includes(name)) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end(`POST /scenarios/{${scenarios.join('|')}}\n`);
      return;
    }
    sandbox.apply(name as Scenario);
    res.writeHead(200, { 'content-type': 'text/plain' }).end(`scenario ${name} applied\n`);
  });
  await new Promise<void>((resolve) => control.listen(env.SANDBOX_CONTROL_PORT, '127.0.0.1', resolve));
  process.stdout.write(
    `sandbox: Kubernetes API ${sandbox.kube.url}, fte-api ${sandbox.api.url}, control http://127.0.0.1:${env.SANDBOX_CONTROL_PORT}\n`,
  );
  const stop = () => {
    control.close();
    void sandbox.stop().then(() => process.exit(0));
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  process.stderr.write(`sandbox: ${error instanceof ConfigError ? error.message : String(error)}\n`);
  process.exit(error instanceof ConfigError ? 2 : 1);
});
