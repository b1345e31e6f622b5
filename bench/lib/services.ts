import { rm } from 'node:fs/promises';
import { projectScript, projectServiceRunning } from '../../test/helpers/project-scripts.js';
import { projectRoot } from './paths.js';

// The services a benchmark runs against, started the way the test suite starts them (scripts/*.sh), plus a
// Temporal dev server of the benchmarks' own (port 17333, UI off, data in .data/temporal-bench), fresh for
// a full run: the suite's server holds every test's workflows, which would slow the list queries measured.

export interface BenchServices {
  temporalAddress: string;
  postgresUrl: string;
  kafkaBrokers: string[];
  /** Admin kubeconfig of the local control plane. */
  kubeconfig: string;
  /** The time-skipping test server's executable (scripts/temporal-test-server.sh path), for benchmarks of long waits. */
  timeSkippingServer?: string;
}

export const BENCH_TEMPORAL_PORT = Number(process.env.BENCH_TEMPORAL_PORT ?? 17333);

const temporalEnv = (port: number) => ({
  ...process.env,
  TEMPORAL_PORT: String(port),
  TEMPORAL_UI: 'off',
  TEMPORAL_DATA_DIR: `${projectRoot}.data/temporal-bench`,
});

/**
 * Starts (or reuses) PostgreSQL, Kafka and the control plane, and the benchmarks' dev server. `fresh` stops
 * that server and deletes its data first, so each full run starts from an empty history store.
 */
export async function startBenchServices(options: { fresh?: boolean } = {}): Promise<BenchServices> {
  const port = BENCH_TEMPORAL_PORT;
  const env = {
    ...process.env,
    POSTGRES_PORT: process.env.POSTGRES_PORT ?? '55432',
    KAFKA_PORT: process.env.KAFKA_PORT ?? '19092',
  };
  if (options.fresh) {
    await projectScript('temporal.sh', ['stop'], temporalEnv(port)).catch(() => '');
    await rm(`${projectRoot}.data/temporal-bench`, { recursive: true, force: true });
  }
  const ensure = async (name: string, scriptEnv: NodeJS.ProcessEnv) => {
    if (!(await projectServiceRunning(name, scriptEnv))) await projectScript(name, ['start'], scriptEnv);
  };
  await Promise.all([
    ensure('postgres.sh', env),
    ensure('kafka.sh', env),
    ensure('temporal.sh', temporalEnv(port)),
    ensure('kube.sh', env),
  ]);
  const [postgresUrl, kubeconfig, timeSkippingServer] = await Promise.all([
    projectScript('postgres.sh', ['url'], env),
    projectScript('kube.sh', ['kubeconfig'], env),
    projectScript('temporal-test-server.sh', ['path'], env),
  ]);
  return {
    temporalAddress: `127.0.0.1:${port}`,
    postgresUrl,
    kafkaBrokers: [`127.0.0.1:${env.KAFKA_PORT}`],
    kubeconfig,
    timeSkippingServer,
  };
}

/** Stops the benchmarks' dev server (the other services are shared with the tests and stay up). */
export async function stopBenchTemporal(): Promise<void> {
  await projectScript('temporal.sh', ['stop'], temporalEnv(BENCH_TEMPORAL_PORT));
}
