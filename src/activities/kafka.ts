import { performance } from 'node:perf_hooks';
import { ApplicationFailure } from '@temporalio/activity';
import { type Admin, Kafka, type KafkaConfig, logLevel, type SASLOptions } from 'kafkajs';
import { z } from 'zod';
import type { ProbeActivity } from '../domain/activity-contract.js';
import type { Finding, FindingStatus } from '../domain/findings.js';
import { type ErrorKind, makeFinding, parseActivityArgs, withTimeout } from './common.js';

// Probes of the platform's Kafka, on admin clients kept between calls (KafkaAdmins) with short timeouts and
// one retry: kafkajs retries for about half a minute by default, longer than a probe should hang.

export const kafkaConfigSchema = z.object({
  brokers: z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port')).min(1),
  clientId: z.string().min(1).default('fte-incident-response'),
  connectionTimeoutMs: z.number().int().positive().default(3000),
  requestTimeoutMs: z.number().int().positive().default(5000),
  // true: TLS verified against Node's trusted CAs; an object: PEM texts (ca replaces Node's CAs). Certificate
  // verification cannot be turned off.
  ssl: z
    .union([
      z.boolean(),
      z.strictObject({
        ca: z.string().min(1).optional(),
        cert: z.string().min(1).optional(),
        key: z.string().min(1).optional(),
      }),
    ])
    .default(false),
  sasl: z
    .object({
      mechanism: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']),
      username: z.string().min(1),
      password: z.string().min(1),
    })
    .optional(),
});
export type KafkaDependencies = z.input<typeof kafkaConfigSchema>;

/** kafkaConsumerLag is down when the total lag exceeds the threshold times this, unless args say otherwise. */
export const DEFAULT_LAG_DOWN_FACTOR = 10;

type Config = z.output<typeof kafkaConfigSchema>;

function clientConfig(cfg: Config, brokers: string[] = cfg.brokers): KafkaConfig {
  return {
    clientId: cfg.clientId,
    brokers,
    connectionTimeout: cfg.connectionTimeoutMs,
    requestTimeout: cfg.requestTimeoutMs,
    retry: { retries: 1, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.NOTHING,
    ssl: cfg.ssl,
    // The schema admits only the mechanisms kafkajs knows, each with username and password.
    ...(cfg.sasl ? { sasl: cfg.sasl as SASLOptions } : {}),
  };
}

/**
 * Admin clients kept connected between probe calls, one per broker list (the bootstrap brokers, a
 * controller): a probe then costs a request, not a connection, TLS handshake and SASL exchange. A client
 * that fails in any way is dropped, so the next call connects afresh.
 */
export class KafkaAdmins {
  readonly #admins = new Map<string, { admin: Admin; connected: Promise<void> }>();

  constructor(private readonly cfg: Config) {}

  /** Runs `work` on the kept client of `brokers`, bounded as a whole (connecting included). */
  async run<T>(what: string, work: (admin: Admin) => Promise<T>, brokers = this.cfg.brokers): Promise<T> {
    const key = brokers.join(',');
    const kept = this.#admins.get(key);
    try {
      return await this.#attempt(key, what, work, brokers);
    } catch (error) {
      // A kept connection may have been closed meanwhile (the broker closes idle ones): a failure is only
      // reported once a fresh connection failed too.
      if (!kept) throw error;
      return this.#attempt(key, what, work, brokers);
    }
  }

  async #attempt<T>(key: string, what: string, work: (admin: Admin) => Promise<T>, brokers: string[]) {
    let entry = this.#admins.get(key);
    if (!entry) {
      const admin = new Kafka(clientConfig(this.cfg, brokers)).admin();
      entry = { admin, connected: admin.connect() };
      entry.connected.catch(() => {});
      this.#admins.set(key, entry);
    }
    const { admin, connected } = entry;
    const bound = this.cfg.connectionTimeoutMs * 2 + this.cfg.requestTimeoutMs * 4 + 2000;
    try {
      return await withTimeout(
        bound,
        what,
        connected.then(() => work(admin)),
      );
    } catch (error) {
      if (this.#admins.get(key) === entry) this.#admins.delete(key);
      void disconnect(admin);
      throw error;
    }
  }

  /** Disconnects every kept client (the worker is stopping). */
  async close(): Promise<void> {
    const admins = [...this.#admins.values()];
    this.#admins.clear();
    await Promise.all(admins.map((e) => disconnect(e.admin)));
  }
}

const disconnect = (admin: Admin) =>
  Promise.race([admin.disconnect().catch(() => {}), new Promise((r) => setTimeout(r, 1000).unref())]);

// Node's codes for a broker certificate that does not verify: no trusted issuer, or not valid now or here.
const UNTRUSTED_CERTIFICATE = new Set([
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'CERT_UNTRUSTED',
]);
const INVALID_CERTIFICATE = new Set([
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** What went wrong, when the worker's own Kafka settings (credentials, TLS) are the likely cause. */
export type KafkaSetupProblem = 'authentication' | 'tls';

/** The cause of a misconfigured connection, said plainly; undefined for any other error. */
function setupProblem(
  chain: { name?: unknown; code?: unknown; type?: unknown; message: string }[],
  clientCertificate: boolean,
): { problem: KafkaSetupProblem; kind: ErrorKind; message: string } | undefined {
  const sasl = chain.find((e) => e.name === 'KafkaJSSASLAuthenticationError');
  if (sasl) return { problem: 'authentication', kind: 'ForbiddenError', message: sasl.message };
  if (chain.some((e) => e.type === 'ILLEGAL_SASL_STATE')) {
    return {
      problem: 'authentication',
      kind: 'ForbiddenError',
      message: 'SASL authentication failed: the listener does not use SASL (ILLEGAL_SASL_STATE)',
    };
  }
  const certificate = chain.find(
    (e) =>
      typeof e.code === 'string' && (UNTRUSTED_CERTIFICATE.has(e.code) || INVALID_CERTIFICATE.has(e.code)),
  );
  if (certificate) {
    const why = certificate.message.replace(/^Connection error: /, '');
    return {
      problem: 'tls',
      kind: 'PreconditionFailedError',
      message: UNTRUSTED_CERTIFICATE.has(String(certificate.code))
        ? `TLS: the broker's certificate is not trusted (${why}); KAFKA_SSL_CA_FILE names the CA to trust`
        : `TLS: the broker's certificate is not valid (${why})`,
    };
  }
  // The broker ends the handshake with an alert; OpenSSL's text for it is long and internal.
  const alert = chain.find((e) => typeof e.code === 'string' && /^ERR_SSL_.*ALERT/.test(e.code));
  if (alert) {
    // TLS 1.3 brokers say certificate_required; over TLS 1.2 a client that sent none gets bad_certificate.
    const needed =
      /CERTIFICATE_REQUIRED/.test(String(alert.code)) ||
      (!clientCertificate && /BAD_CERTIFICATE/.test(String(alert.code)));
    return {
      problem: 'tls',
      kind: 'PreconditionFailedError',
      message: needed
        ? 'TLS: the broker requires a client certificate (KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE)'
        : `TLS: the broker refused the handshake (${String(alert.code)})`,
    };
  }
  return undefined;
}

/**
 * kafkajs wraps the cause (e.g. ECONNREFUSED) in retry errors; the innermost message says the most. Rejected
 * credentials and TLS failures are said plainly and marked with `problem`.
 */
export function describeKafkaError(
  error: unknown,
  /** Whether a client certificate was offered (KAFKA_SSL_CERT_FILE): what the broker's refusal means. */
  clientCertificate = false,
): {
  kind: ErrorKind;
  message: string;
  problem?: KafkaSetupProblem;
} {
  if (error instanceof ApplicationFailure && error.type)
    return { kind: error.type as ErrorKind, message: error.message };
  const chain: { name?: unknown; code?: unknown; type?: unknown; message: string }[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 5; depth++) {
    const e = current as { name?: unknown; code?: unknown; type?: unknown; message?: unknown };
    if (typeof e.message === 'string' && e.message) {
      chain.push({ name: e.name, code: e.code, type: e.type, message: e.message });
    }
    const next = current as { cause?: unknown; originalError?: unknown };
    current = next.originalError ?? next.cause;
  }
  const setup = setupProblem(chain, clientCertificate);
  if (setup) return setup;
  const messages = [...new Set(chain.map((e) => e.message))];
  const message = messages.join(': ') || String(error);
  const kind: ErrorKind = /timed? ?out|timeout/i.test(message)
    ? 'TimeoutError'
    : /connect|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|broker|closed/i.test(message)
      ? 'UnavailableError'
      : /authori[sz]|authenticat|SASL/i.test(message)
        ? 'ForbiddenError'
        : 'ServerError';
  return { kind, message };
}

// Strict: an unknown key (a typo) is an error, not an argument silently left out.
const clusterArgs = z.strictObject({ expectedBrokers: z.number().int().positive().optional() });
const lagArgs = z.strictObject({
  group: z.string().min(1),
  threshold: z.number().int().min(0),
  topic: z.string().min(1).optional(),
  downFactor: z.number().gt(1).default(DEFAULT_LAG_DOWN_FACTOR),
});

/** Argument schemas of the probes, by name: what they parse and what `runbook lint` checks. */
export const kafkaProbeArgs = { kafkaCluster: clusterArgs, kafkaConsumerLag: lagArgs } as const;

export interface PartitionLag {
  topic: string;
  partition: number;
  committed: number;
  logEnd: number;
  lag: number;
}

/** Lag of one partition as Kafka's own tool reports it; null where the group has no committed offset. */
export function partitionLag(committed: number, logEnd: number): number | null {
  return committed < 0 ? null : Math.max(0, logEnd - committed);
}

/** Creates the kept admin clients of a worker; close them when it stops. */
export const kafkaAdmins = (deps: KafkaDependencies) => new KafkaAdmins(kafkaConfigSchema.parse(deps));

export function kafkaActivities(deps: KafkaDependencies, admins = kafkaAdmins(deps)) {
  const cfg = kafkaConfigSchema.parse(deps);
  const withAdmin = <T>(what: string, work: (admin: Admin) => Promise<T>, brokers?: string[]) =>
    admins.run(what, work, brokers);
  const known = [
    ...(cfg.sasl ? [cfg.sasl.password] : []),
    ...(typeof cfg.ssl === 'object' && cfg.ssl.key ? [cfg.ssl.key] : []),
  ];
  const where = cfg.brokers.join(',');
  const withCertificate = typeof cfg.ssl === 'object' && Boolean(cfg.ssl.cert);
  const describe = (error: unknown) => describeKafkaError(error, withCertificate);
  const finding = (
    probe: string,
    status: FindingStatus,
    summary: string,
    metrics: Finding['metrics'] = {},
    evidence: string[] = [],
  ) => makeFinding(probe, status, summary, metrics, evidence, known);

  const kafkaCluster: ProbeActivity = async (input) => {
    const args = parseActivityArgs(kafkaProbeArgs.kafkaCluster, input.args, 'kafkaCluster');
    const started = performance.now();
    let cluster: Awaited<ReturnType<Admin['describeCluster']>>;
    try {
      cluster = await withAdmin(`Kafka at ${where}`, (admin) => admin.describeCluster());
    } catch (error) {
      const p = describe(error);
      // Rejected credentials or an untrusted certificate say nothing about Kafka's health, and restarting
      // Kafka would not help: unknown, not down.
      if (p.problem) {
        return finding(input.probeId, 'unknown', `cannot check Kafka at ${where}: ${p.message}`, {
          error: p.kind,
          problem: p.problem,
        });
      }
      const after = ((performance.now() - started) / 1000).toFixed(1);
      return finding(
        input.probeId,
        'down',
        `cannot reach Kafka at ${where} (gave up after ${after} s): ${p.message}`,
        {
          error: p.kind,
        },
      );
    }
    const latencyMs = Math.round(performance.now() - started);
    const controller = cluster.brokers.find((b) => b.nodeId === cluster.controller);
    const problems: string[] = [];
    if (!controller) problems.push(`no controller among the ${cluster.brokers.length} brokers`);
    else {
      const address = `${controller.host}:${controller.port}`;
      try {
        await withAdmin(`Kafka controller at ${address}`, (admin) => admin.describeCluster(), [address]);
      } catch (error) {
        problems.push(
          `controller ${controller.nodeId} at ${address} is unreachable: ${describe(error).message}`,
        );
      }
    }
    if (args.expectedBrokers !== undefined && cluster.brokers.length < args.expectedBrokers) {
      problems.push(`${cluster.brokers.length} of ${args.expectedBrokers} expected brokers are up`);
    }
    const metrics = {
      brokers: cluster.brokers.length,
      controllerId: cluster.controller ?? -1,
      controllerReachable: Boolean(controller) && !problems.some((p) => p.startsWith('controller')),
      clusterId: cluster.clusterId,
      latencyMs,
    };
    const evidence = cluster.brokers.map((b) => `broker ${b.nodeId} at ${b.host}:${b.port}`);
    if (problems.length > 0) {
      return finding(
        input.probeId,
        'degraded',
        `Kafka at ${where}: ${problems.join('; ')}`,
        metrics,
        evidence,
      );
    }
    return finding(
      input.probeId,
      'ok',
      `Kafka cluster ${cluster.clusterId}: ${cluster.brokers.length} brokers, controller ${cluster.controller} reachable (${latencyMs} ms)`,
      metrics,
      evidence,
    );
  };

  const kafkaConsumerLag: ProbeActivity = async (input) => {
    const args = parseActivityArgs(kafkaProbeArgs.kafkaConsumerLag, input.args, 'kafkaConsumerLag');
    try {
      return await withAdmin(`Kafka at ${where}`, async (admin) => {
        const [described, offsets] = await Promise.all([
          admin.describeGroups([args.group]),
          admin.fetchOffsets({ groupId: args.group, ...(args.topic ? { topics: [args.topic] } : {}) }),
        ]);
        const group = described.groups.find((g) => g.groupId === args.group);
        const state = group?.state ?? 'Unknown';
        const members = group?.members.length ?? 0;
        const partitions: PartitionLag[] = [];
        let uncommitted = 0;
        const missingTopics: string[] = [];
        for (const { topic, partitions: committed } of offsets) {
          let ends: Awaited<ReturnType<Admin['fetchTopicOffsets']>>;
          try {
            ends = await admin.fetchTopicOffsets(topic);
          } catch (error) {
            missingTopics.push(`${topic} (${describe(error).message})`);
            continue;
          }
          const endOf = new Map(ends.map((e) => [e.partition, Number(e.high)]));
          for (const p of committed) {
            const logEnd = endOf.get(p.partition) ?? 0;
            const lag = partitionLag(Number(p.offset), logEnd);
            if (lag === null) uncommitted++;
            else partitions.push({ topic, partition: p.partition, committed: Number(p.offset), logEnd, lag });
          }
        }
        return lagFinding(
          input.probeId,
          args,
          { state, members, partitions, uncommitted, missingTopics },
          finding,
        );
      });
    } catch (error) {
      const p = describe(error);
      return finding(
        input.probeId,
        'unknown',
        `cannot read the lag of consumer group ${args.group} from Kafka at ${where}: ${p.message}`,
        { error: p.kind, ...(p.problem ? { problem: p.problem } : {}) },
      );
    }
  };

  return { kafkaCluster, kafkaConsumerLag };
}

function lagFinding(
  probe: string,
  args: z.output<typeof lagArgs>,
  seen: {
    state: string;
    members: number;
    partitions: PartitionLag[];
    uncommitted: number;
    missingTopics: string[];
  },
  finding: (p: string, s: FindingStatus, summary: string, m?: Finding['metrics'], e?: string[]) => Finding,
): Finding {
  const { state, members, partitions, uncommitted, missingTopics } = seen;
  const groupText = `consumer group ${args.group}${args.topic ? ` on ${args.topic}` : ''}`;
  if (partitions.length === 0) {
    const why =
      state === 'Dead' || state === 'Unknown'
        ? `${groupText} does not exist (no members and no committed offsets)`
        : `${groupText} (${state}, ${members} members) has no committed offsets yet`;
    return finding(
      probe,
      'unknown',
      why,
      { members, state },
      missingTopics.map((t) => `topic ${t} unreadable`),
    );
  }
  const totalLag = partitions.reduce((sum, p) => sum + p.lag, 0);
  const maxLag = Math.max(...partitions.map((p) => p.lag));
  const downAt = args.threshold * args.downFactor;
  const status: FindingStatus = totalLag > downAt ? 'down' : totalLag > args.threshold ? 'degraded' : 'ok';
  const notes = [
    `${state}, ${members} ${members === 1 ? 'member' : 'members'}`,
    ...(uncommitted ? [`${uncommitted} partitions without a committed offset not counted`] : []),
    ...(missingTopics.length ? [`unreadable topics: ${missingTopics.join(', ')}`] : []),
  ];
  const evidence = [...partitions]
    .sort((a, b) => b.lag - a.lag || a.topic.localeCompare(b.topic) || a.partition - b.partition)
    .map((p) => `${p.topic}[${p.partition}] committed ${p.committed} log-end ${p.logEnd} lag ${p.lag}`);
  return finding(
    probe,
    status,
    `${groupText}: total lag ${totalLag} over ${partitions.length} partitions (threshold ${args.threshold}, down above ${downAt}; ${notes.join('; ')})`,
    {
      totalLag,
      maxPartitionLag: maxLag,
      partitions: partitions.length,
      threshold: args.threshold,
      members,
      state,
    },
    evidence,
  );
}
