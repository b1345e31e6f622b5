import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import pg from 'pg';
import { FteApiSim } from './fte-api.js';
import { KubeSimulator } from './kube/index.js';
import { createAgentMetricsTable, createPlatformTopic, insertAgentMetrics } from './platform-data.js';

/**
 * The simulated FTE platform: a Kubernetes API (the simulator), the fte-api service, the vendors' status
 * pages, and the platform's real data in the local PostgreSQL (agent_metrics) and Kafka (fte-messages).
 * The pieces are linked the way the real platform is: fte-api answers its health check only while its pods
 * are ready, so a rollout restart that replaces crash-looping pods brings it back.
 */
export interface SandboxOptions {
  /** Superuser URL of the local PostgreSQL; the sandbox creates the platform's and the ledger's databases. */
  postgresAdminUrl: string;
  kafkaBrokers: string[];
  namespace?: string;
  kubePort?: number;
  apiPort?: number;
  statusPort?: number;
  kubeconfigPath?: string;
}

export type StatusIndicator = 'none' | 'minor' | 'major' | 'critical';

/** Named faults for demos, drills and end-to-end tests. */
export const scenarios = ['api-down', 'postgres-pod-down', 'whatsapp-down', 'healthy'] as const;
export type Scenario = (typeof scenarios)[number];

export interface Sandbox {
  kube: KubeSimulator;
  api: FteApiSim;
  /** The environment the worker needs to point at this platform (as it would at a real one). */
  env: Record<string, string>;
  setStatusPage(vendor: 'openai' | 'twilio', indicator: StatusIndicator): void;
  apply(scenario: Scenario): void;
  stop(): Promise<void>;
}

const PLATFORM_DB = 'fte_platform';
const LEDGER_DB = 'incident_ledger';

function databaseUrl(adminUrl: string, database: string): string {
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  return url.toString();
}

async function ensureDatabase(adminUrl: string, database: string): Promise<string> {
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    const { rowCount } = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    // The name is one of our constants, never input: safe to put in the statement.
    if (!rowCount) await admin.query(`CREATE DATABASE ${database}`);
  } finally {
    await admin.end();
  }
  return databaseUrl(adminUrl, database);
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
  const [platformUrl, ledgerUrl] = await Promise.all([
    ensureDatabase(options.postgresAdminUrl, PLATFORM_DB),
    ensureDatabase(options.postgresAdminUrl, LEDGER_DB),
  ]);
  await Promise.all([seedPlatformData(platformUrl), createPlatformTopic({ brokers: options.kafkaBrokers })]);

  const kube = await new KubeSimulator({
    namespace,
    port: options.kubePort ?? 0,
    ...(options.kubeconfigPath ? { kubeconfigPath: options.kubeconfigPath } : {}),
  }).start();
  const apiReady = () => kube.podsOf('fte-api').every((p) => p.ready);
  const api = await FteApiSim.start({
    port: options.apiPort ?? 0,
    adminToken: randomBytes(18).toString('base64url'),
    healthy: apiReady,
  });
  const indicators: Record<string, StatusIndicator> = { openai: 'none', twilio: 'none' };
  const statusPages = await startStatusPages(options.statusPort ?? 0, indicators);
  const statusBase = `http://127.0.0.1:${(statusPages.address() as AddressInfo).port}`;

  const env = {
    KUBECONFIG: kube.kubeconfigPath,
    FTE_NAMESPACE: namespace,
    FTE_API_URL: api.url,
    FTE_API_ADMIN_TOKEN: api.adminToken,
    PLATFORM_DATABASE_URL: platformUrl,
    LEDGER_DATABASE_URL: ledgerUrl,
    KAFKA_BROKERS: options.kafkaBrokers.join(','),
    OPENAI_STATUS_URL: `${statusBase}/openai`,
    TWILIO_STATUS_URL: `${statusBase}/twilio`,
  };

  return {
    kube,
    api,
    env,
    setStatusPage: (vendor, indicator) => {
      indicators[vendor] = indicator;
    },
    apply: (scenario) => {
      switch (scenario) {
        case 'healthy':
          kube.clearFaults();
          kube.healPods();
          api.clearFaults();
          break;
        case 'api-down':
          // Crash-looping until a rollout restart replaces the pods; health answers 503 meanwhile.
          kube.failPods('fte-api', 'CrashLoopBackOff', { untilRestart: true });
          break;
        case 'postgres-pod-down':
          kube.statefulSetPodDown('postgres');
          break;
        case 'whatsapp-down':
          api.setFault('whatsapp-webhook', { status: 502 });
          api.setChannel('whatsapp', { error_rate: 0.6 });
          break;
      }
    },
    stop: async () => {
      await Promise.all([
        kube.stop(),
        api.stop(),
        new Promise<void>((resolve) => statusPages.close(() => resolve())),
      ]);
    },
  };
}
