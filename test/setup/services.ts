import type { TestProject } from 'vitest/node';
import { projectScript, projectServiceRunning } from '../helpers/project-scripts.js';
import { projectRoot } from '../helpers/paths.js';
import { clearKubeRequestRecordings } from '../helpers/rbac.js';

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
  TEMPORAL_DATA_DIR: `${projectRoot}.data/temporal-test`,
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  await clearKubeRequestRecordings();
  const env = { ...process.env, POSTGRES_PORT: ports.postgres, KAFKA_PORT: ports.kafka };
  const started: Array<() => Promise<unknown>> = [];
  // A start that fails is stopped and tried once more: on a fresh two-core machine four services come up at
  // once, and a slow one can miss its own start timeout. The first failure is printed, not hidden.
  const start = async (name: string, scriptEnv: NodeJS.ProcessEnv) => {
    try {
      await projectScript(name, ['start'], scriptEnv);
    } catch (first) {
      console.error(
        `test setup: ${(first as Error).message}\ntest setup: stopping ${name} and starting it again`,
      );
      await projectScript(name, ['stop'], scriptEnv).catch(() => undefined);
      await projectScript(name, ['start'], scriptEnv);
    }
  };
  const ensure = async (name: string, scriptEnv: NodeJS.ProcessEnv) => {
    if (!(await projectServiceRunning(name, scriptEnv))) {
      await start(name, scriptEnv);
      if (!process.env.KEEP_TEST_SERVICES) started.push(() => projectScript(name, ['stop'], scriptEnv));
    }
  };
  // Installs first (Maven, PyPI, the Go build of the control plane on a fresh machine: minutes), so that no
  // start's timeout counts another's download. Then Kafka's JVM, the slowest, comes up beside the others.
  const installs: Array<[string, NodeJS.ProcessEnv]> = [
    ['postgres.sh', env],
    ['kafka.sh', env],
    ['temporal.sh', temporalEnv],
    ['temporal-test-server.sh', env],
    ['kube.sh', env],
  ];
  await Promise.all(installs.map(([name, scriptEnv]) => projectScript(name, ['install'], scriptEnv)));
  await Promise.all([
    ensure('postgres.sh', env),
    ensure('kafka.sh', env),
    ensure('temporal.sh', temporalEnv),
    ensure('kube.sh', env),
  ]);
  const [postgresUrl, timeSkippingServer, temporalCli, kubeconfig] = await Promise.all([
    projectScript('postgres.sh', ['url'], env),
    projectScript('temporal-test-server.sh', ['path']),
    projectScript('temporal.sh', ['path'], temporalEnv),
    projectScript('kube.sh', ['kubeconfig'], env),
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
