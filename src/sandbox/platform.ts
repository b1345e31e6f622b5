import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { ApiProxy } from './api-proxy.js';
import { FteCluster, WORKER_NAMESPACE, WORKER_SERVICE_ACCOUNT } from './cluster.js';
import { FteApiSim } from './fte-api.js';
import { claimKafkaSlot, type KafkaSlot } from './kafka-slot.js';
import { writeKubeconfig } from './kubeconfig.js';
import {
  createAgentMetricsTable,
  createPlatformTopic,
  ensureAppRole,
  insertAgentMetrics,
} from './platform-data.js';
import { PLATFORM_CONNECTION_LIMIT, ScenarioEngine } from './scenario-engine.js';
import type { ScenarioName } from './scenarios.js';
import { TcpProxy } from './tcp-proxy.js';

/**
 * The simulated FTE platform: its workloads on a real Kubernetes control plane (kwok plays the nodes), the
 * fte-api service, the vendors' status pages, and the platform's real data in the local PostgreSQL
 * (agent_metrics) and Kafka (fte-messages). The worker reaches PostgreSQL, Kafka and the Kubernetes API
 * through proxies the sandbox controls, so a scenario can make them really unreachable; the pieces are
 * linked the way the real platform is (fte-api answers its health check only while its pods are ready and
 * its database and broker answer).
 */
export interface SandboxOptions {
  /** Superuser URL of the local PostgreSQL; the sandbox creates the platform's and the ledger's databases. */
  postgresAdminUrl: string;
  /** The project broker; the worker gets a sandbox slot of it (scripts/kafka.sh) that can be cut. */
  kafkaBrokers: string[];
  /**
   * The control plane's admin kubeconfig (scripts/kube.sh kubeconfig), or a promise of it while the
   * control plane is still being built: until it resolves, the worker's Kubernetes calls answer 503.
   */
  adminKubeconfig: string | Promise<string>;
  namespace?: string;
  /** The platform's database and the ledger's; tests give each sandbox its own. */
  platformDatabase?: string;
  ledgerDatabase?: string;
  apiPort?: number;
  statusPort?: number;
  kubePort?: number;
  /**
   * Where the sandbox keeps the worker's kubeconfig (`kubeconfig`) and the pods' logs (`logs/`); a temporary
   * folder, removed on stop, by default.
   */
  dataDir?: string;
  /** Called when the Kubernetes part could not be attached (the promise above rejected, or apply failed). */
  onClusterError?: (error: unknown) => void;
}

type SandboxEnvKey =
  | 'KUBECONFIG'
  | 'FTE_NAMESPACE'
  | 'ACTION_NAMESPACES'
  | 'FTE_API_URL'
  | 'FTE_API_ADMIN_TOKEN'
  | 'PLATFORM_DATABASE_URL'
  | 'LEDGER_DATABASE_URL'
  | 'KAFKA_BROKERS'
  | 'OPENAI_STATUS_URL'
  | 'TWILIO_STATUS_URL';

export type StatusIndicator = 'none' | 'minor' | 'major' | 'critical';

export interface Sandbox {
  /** The platform's namespace on the control plane; throws until the control plane is attached. */
  readonly cluster: FteCluster;
  /** Resolves once the platform runs on the control plane. */
  readonly clusterReady: Promise<FteCluster>;
  api: FteApiSim;
  /** What the worker's Kubernetes client reaches: records requests, injects request faults. */
  kubeProxy: ApiProxy;
  scenarios: ScenarioEngine;
  /** The environment the worker needs to point at this platform (as it would at a real one). */
  env: Record<SandboxEnvKey, string>;
  setStatusPage(vendor: 'openai' | 'twilio', indicator: StatusIndicator): void;
  apply(scenario: ScenarioName): Promise<void>;
  stop(options?: { removeNamespace?: boolean }): Promise<void>;
}

const databaseName = /^[a-z_][a-z0-9_]{0,62}$/;

function databaseUrl(adminUrl: string, database: string, address?: { host: string; port: number }): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  if (address) {
    url.hostname = address.host;
    url.port = String(address.port);
  }
  return url.toString();
}

async function ensureDatabase(adminUrl: string, database: string, connectionLimit = -1): Promise<void> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    // The name was checked against databaseName and the limit is a number: safe in the statement.
    if (!rowCount) await admin.query(`CREATE DATABASE ${database}`);
    await admin.query(`ALTER DATABASE ${database} CONNECTION LIMIT ${Math.trunc(connectionLimit)}`);
  } finally {
    await admin.end();
  }
}

async function seedPlatformData(platformUrl: string): Promise<void> {
  const db = new pg.Client({ connectionString: platformUrl });
  await db.connect();
  try {
    await createAgentMetricsTable(db);
    const { rows } = await db.query<{ n: string }>(
      "SELECT count(*) AS n FROM agent_metrics WHERE recorded_at > now() - interval '10 minutes'",
    );
    if (Number(rows[0]?.n ?? 0) === 0) {
      await insertAgentMetrics(db, { rows: 200, escalationRate: 0.1, spreadSeconds: 540 });
    }
  } finally {
    await db.end();
  }
}

async function startStatusPages(port: number, indicators: Record<string, StatusIndicator>): Promise<Server> {
  const server = createServer((req, res) => {
    const vendor = /^\/(openai|twilio)\/api\/v2\/status\.json$/.exec(req.url ?? '')?.[1];
    const indicator = vendor ? indicators[vendor] : undefined;
    if (!indicator) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        page: { name: vendor },
        status: { indicator, description: `${vendor}: ${indicator}` },
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return server;
}

export async function startSandbox(options: SandboxOptions): Promise<Sandbox> {
  const namespace = options.namespace ?? 'customer-success-fte';
  const platformDb = options.platformDatabase ?? 'fte_platform';
  const ledgerDb = options.ledgerDatabase ?? 'incident_ledger';
  for (const name of [platformDb, ledgerDb]) {
    if (!databaseName.test(name)) throw new Error(`not a database name: '${name}'`);
  }
  const adminDbUrl = new URL(options.postgresAdminUrl);
  await Promise.all([
    // The platform's pool has a bounded share of the server, as in production; db-connections-exhausted fills it.
    ensureDatabase(options.postgresAdminUrl, platformDb, PLATFORM_CONNECTION_LIMIT),
    ensureDatabase(options.postgresAdminUrl, ledgerDb),
  ]);
  const platformDirectUrl = databaseUrl(options.postgresAdminUrl, platformDb);
  const platformAppUrl = await ensureAppRole(options.postgresAdminUrl, platformDb);
  await Promise.all([
    seedPlatformData(platformDirectUrl),
    createPlatformTopic({ brokers: options.kafkaBrokers }),
  ]);

  const stops: Array<() => Promise<unknown>> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) await stop().catch(() => {});
  };
  try {
    const postgres = await TcpProxy.start({
      target: { host: adminDbUrl.hostname, port: Number(adminDbUrl.port || 5432) },
      listen: { host: '127.0.0.1', port: 0 },
    });
    stops.push(() => postgres.stop());
    const kafka: KafkaSlot = await claimKafkaSlot();
    stops.push(() => kafka.stop());

    const kubeProxy = await new ApiProxy({
      user: `system:serviceaccount:${WORKER_NAMESPACE}:${WORKER_SERVICE_ACCOUNT}`,
      port: options.kubePort ?? 0,
      detachedMessage:
        'the sandbox Kubernetes control plane is not running yet (a first `make start` builds it: .data/kube-build.log)',
    }).start();
    stops.push(() => kubeProxy.stop());
    let dataDir = options.dataDir;
    if (!dataDir) {
      const temp = await mkdtemp(join(tmpdir(), 'fte-sandbox-'));
      stops.push(() => rm(temp, { recursive: true, force: true }));
      dataDir = temp;
    }
    await mkdir(dataDir, { recursive: true });
    const kubeconfigPath = join(dataDir, 'kubeconfig');
    await writeKubeconfig(kubeconfigPath, {
      server: kubeProxy.url,
      caPem: kubeProxy.caPem,
      token: kubeProxy.token,
      namespace,
    });

    let attached: FteCluster | undefined;
    const clusterReady = (async () => {
      const cluster = await FteCluster.open({
        adminKubeconfig: await options.adminKubeconfig,
        namespace,
        logDir: join(dataDir, 'logs', namespace),
      });
      kubeProxy.attach({ ...cluster.server, token: await cluster.workerToken() });
      attached = cluster;
      return cluster;
    })();
    clusterReady.catch((error: unknown) => options.onClusterError?.(error));

    const scenarios = new ScenarioEngine({
      cluster: () => attached,
      postgres,
      kafka: kafka.proxy,
      kafkaDirect: { brokers: options.kafkaBrokers },
      platformDbUrl: platformDirectUrl,
      platformAppUrl,
    });
    // fte-api reports each channel's escalation rate from the platform's agent_metrics, as the real one does.
    const metricsDb = new pg.Pool({ connectionString: platformDirectUrl, max: 2 });
    metricsDb.on('error', () => {});
    stops.push(() => metricsDb.end());
    const api = await FteApiSim.start({
      port: options.apiPort ?? 0,
      adminToken: randomBytes(18).toString('base64url'),
      healthy: () => scenarios.apiHealthy(),
      escalationRate: async (channel) => {
        const { rows } = await metricsDb.query<{ rate: number | null }>(
          `SELECT avg(escalated::int)::float AS rate FROM agent_metrics
            WHERE channel = $1 AND recorded_at > now() - interval '10 minutes'`,
          [channel],
        );
        return rows[0]?.rate ?? 0;
      },
    });
    stops.push(() => api.stop());
    scenarios.connectApi(api);
    const indicators: Record<string, StatusIndicator> = { openai: 'none', twilio: 'none' };
    const statusPages = await startStatusPages(options.statusPort ?? 0, indicators);
    stops.push(() => new Promise<void>((resolve) => statusPages.close(() => resolve())));
    scenarios.connectStatusPages((vendor, indicator) => {
      indicators[vendor] = indicator;
    });
    scenarios.start();
    stops.push(() => scenarios.stop());
    const statusBase = `http://127.0.0.1:${(statusPages.address() as AddressInfo).port}`;

    const env: Sandbox['env'] = {
      KUBECONFIG: kubeconfigPath,
      FTE_NAMESPACE: namespace,
      // Incidents act in the sandbox's own namespace only.
      ACTION_NAMESPACES: namespace,
      FTE_API_URL: api.url,
      FTE_API_ADMIN_TOKEN: api.adminToken,
      PLATFORM_DATABASE_URL: databaseUrl(options.postgresAdminUrl, platformDb, {
        host: '127.0.0.1',
        port: postgres.port,
      }),
      LEDGER_DATABASE_URL: databaseUrl(options.postgresAdminUrl, ledgerDb),
      KAFKA_BROKERS: kafka.brokers.join(','),
      OPENAI_STATUS_URL: `${statusBase}/openai`,
      TWILIO_STATUS_URL: `${statusBase}/twilio`,
    };

    return {
      get cluster() {
        if (!attached) throw new Error('the sandbox platform is not on the control plane yet');
        return attached;
      },
      clusterReady,
      api,
      kubeProxy,
      scenarios,
      env,
      setStatusPage: (vendor, indicator) => {
        indicators[vendor] = indicator;
      },
      apply: (scenario) => scenarios.apply(scenario),
      stop: async ({ removeNamespace = false } = {}) => {
        await stopAll();
        if (removeNamespace) await (await clusterReady.catch(() => undefined))?.remove();
      },
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}
