import pg from 'pg';
import { startSandbox, type Sandbox, type SandboxOptions } from '../../src/sandbox/platform.js';
import { services, uniqueName } from './services.js';

/**
 * The simulated platform for one test file, on the suite's real control plane, PostgreSQL and Kafka: its own
 * namespace and databases, removed again by `stop`.
 */
export type TestSandbox = Sandbox & { namespace: string };

export async function startTestSandbox(options: Partial<SandboxOptions> = {}): Promise<TestSandbox> {
  const namespace = options.namespace ?? uniqueName('fte');
  const suffix = namespace.replace(/[^a-z0-9]/g, '_');
  const sandbox = await startSandbox({
    postgresAdminUrl: services().postgresUrl,
    kafkaBrokers: services().kafkaBrokers,
    adminKubeconfig: services().kubeconfig,
    namespace,
    platformDatabase: `platform_${suffix}`,
    ledgerDatabase: `ledger_${suffix}`,
    ...options,
  });
  await sandbox.clusterReady;
  const stop = sandbox.stop;
  return Object.assign(sandbox, {
    namespace,
    stop: async () => {
      await stop({ removeNamespace: true });
      await dropDatabases(`platform_${suffix}`, `ledger_${suffix}`);
    },
  });
}

async function dropDatabases(...names: string[]): Promise<void> {
  const admin = new pg.Client({ connectionString: services().postgresUrl });
  await admin.connect();
  try {
    // Names made above from uniqueName: lowercase letters, digits and "_" only.
    for (const name of names) await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}
