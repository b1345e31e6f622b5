import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { clearKubeRequestRecordings } from '../helpers/rbac.js';

const run = promisify(execFile);
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Addresses of the real services the suite runs against; read in tests with inject('services'). */
export interface TestServices {
  temporalAddress: string;
  temporalNamespace: string;
  temporalCli: string;
  timeSkippingServer: string;
  postgresUrl: string;
  kafkaBrokers: string[];
  /** Admin kubeconfig of the real local control plane (scripts/kube.sh). */
  kubeconfig: string;
}

declare module 'vitest' {
  export interface ProvidedContext {
    services: TestServices;
  }
}

// The suite's own instances, apart from the ones `make start` runs for a person (7233, 8233).
const ports = {
  temporal: process.env.TEST_TEMPORAL_PORT ?? '17233',
  postgres: process.env.POSTGRES_PORT ?? '55432',
  kafka: process.env.KAFKA_PORT ?? '19092',
};
const temporalEnv = {
  ...process.env,
  TEMPORAL_PORT: ports.temporal,
  TEMPORAL_UI: 'off',
  TEMPORAL_DATA_DIR: `${root}.data/temporal-test`,
};

async function script(name: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<string> {
  try {
    const { stdout } = await run('bash', [`${root}scripts/${name}`, ...args], {
      env,
      cwd: root,
      timeout: 1_800_000,
    });
    return stdout.trim();
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`scripts/${name} ${args.join(' ')} failed:\n${e.stderr || e.stdout || e.message}`);
  }
}

async function isRunning(name: string, env?: NodeJS.ProcessEnv): Promise<boolean> {
  return script(name, ['status'], env).then(
    () => true,
    () => false,
  );
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await clearKubeRequestRecordings();
  const env = { ...process.env, POSTGRES_PORT: ports.postgres, KAFKA_PORT: ports.kafka };
  const started: Array<() => Promise<unknown>> = [];
  const ensure = async (name: string, scriptEnv: NodeJS.ProcessEnv) => {
    if (!(await isRunning(name, scriptEnv))) {
      await script(name, ['start'], scriptEnv);
      if (!process.env.KEEP_TEST_SERVICES) started.push(() => script(name, ['stop'], scriptEnv));
    }
  };
  // Kafka's JVM is the slowest to come up; start it beside the others. The control plane builds itself on
  // a fresh machine first (about 15 minutes; scripts/kube-build.sh).
  await Promise.all([
    ensure('postgres.sh', env),
    ensure('kafka.sh', env),
    ensure('temporal.sh', temporalEnv),
    ensure('kube.sh', env),
  ]);
  const [postgresUrl, timeSkippingServer, temporalCli, kubeconfig] = await Promise.all([
    script('postgres.sh', ['url'], env),
    script('temporal-test-server.sh', ['path']),
    script('temporal.sh', ['path'], temporalEnv),
    script('kube.sh', ['kubeconfig'], env),
  ]);
  project.provide('services', {
    temporalAddress: `127.0.0.1:${ports.temporal}`,
    temporalNamespace: 'default',
    temporalCli,
    timeSkippingServer,
    postgresUrl,
    kafkaBrokers: [`127.0.0.1:${ports.kafka}`],
    kubeconfig,
  });
  return async () => {
    await Promise.all(started.map((stop) => stop()));
  };
}
