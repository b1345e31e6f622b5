import { randomBytes } from 'node:crypto';
import { Kafka, logLevel, type KafkaConfig } from 'kafkajs';
import pg from 'pg';
import { z } from 'zod';

// Drives real data into a local PostgreSQL and Kafka the way the FTE platform would, so that probes,
// tests and drills see genuine escalation rates, consumer lag and connections (docs/platform-data.md).

export const PLATFORM_TOPIC = 'fte-messages';
export const PLATFORM_CONSUMER_GROUP = 'fte-message-processor';

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.Client, 'query'>;

// ---- agent_metrics --------------------------------------------------------------------------------------

/** The platform's agent_metrics table, as the escalationRate probe expects it. */
export const AGENT_METRICS_DDL = `
  CREATE TABLE IF NOT EXISTS agent_metrics (
    id bigserial PRIMARY KEY,
    recorded_at timestamptz NOT NULL DEFAULT now(),
    channel text NOT NULL,
    conversation_id text NOT NULL,
    escalated boolean NOT NULL DEFAULT false,
    escalation_reason text,
    latency_ms integer
  );
  CREATE INDEX IF NOT EXISTS agent_metrics_recorded_at ON agent_metrics (recorded_at)`;

export async function createAgentMetricsTable(db: Queryable): Promise<void> {
  await db.query(AGENT_METRICS_DDL);
}

export const agentMetricsSpecSchema = z.object({
  rows: z.number().int().min(0).max(100_000),
  /** Share of rows that are escalations, 0..1. */
  escalationRate: z.number().min(0).max(1),
  /** Reason → weight; escalations are split by weight (largest remainder), in this order. */
  reasons: z.record(z.string(), z.number().positive()).default({ 'customer requested human': 1 }),
  channels: z.array(z.string().min(1)).min(1).default(['email', 'whatsapp', 'web_form']),
  latencyMs: z
    .object({ min: z.number().int().min(0), max: z.number().int().min(0) })
    .default({ min: 800, max: 3000 }),
  /** Rows are spread evenly over this many seconds before `endsAt`. */
  spreadSeconds: z.number().min(0).default(60),
  /** When the newest row was recorded; defaults to now. */
  endsAt: z.date().optional(),
});
export type AgentMetricsSpec = z.input<typeof agentMetricsSpecSchema>;

/** Splits `total` by weights so the parts add up exactly (largest remainder). */
export function splitByWeight(total: number, weights: Record<string, number>): [string, number][] {
  const entries = Object.entries(weights);
  const sum = entries.reduce((s, [, w]) => s + w, 0);
  const exact = entries.map(([k, w]) => [k, (total * w) / sum] as const);
  const parts = exact.map(([k, v]) => [k, Math.floor(v)] as [string, number]);
  let left = total - parts.reduce((s, [, n]) => s + n, 0);
  const byRemainder = exact
    .map(([, v], i) => ({ i, r: v - Math.floor(v) }))
    .sort((a, b) => b.r - a.r || a.i - b.i);
  for (const { i } of byRemainder) {
    if (left-- <= 0) break;
    const part = parts[i];
    if (part) part[1] += 1;
  }
  return parts;
}

/** Inserts rows with exactly round(rows × escalationRate) escalations; returns the counts. */
export async function insertAgentMetrics(
  db: Queryable,
  spec: AgentMetricsSpec,
): Promise<{ inserted: number; escalated: number; byReason: Record<string, number> }> {
  const s = agentMetricsSpecSchema.parse(spec);
  const escalated = Math.round(s.rows * s.escalationRate);
  const split = splitByWeight(escalated, s.reasons);
  const reasons = split.flatMap(([reason, n]) => Array.from({ length: n }, () => reason));
  const end = (s.endsAt ?? new Date()).getTime();
  const values: unknown[][] = [];
  for (let i = 0; i < s.rows; i++) {
    // Escalations are interleaved with ordinary rows so any time slice sees about the same rate.
    const isEscalated =
      escalated > 0 && Math.floor(((i + 1) * escalated) / s.rows) > Math.floor((i * escalated) / s.rows);
    const reason = isEscalated ? (reasons.shift() ?? null) : null;
    const span = s.latencyMs.max - s.latencyMs.min;
    values.push([
      new Date(end - (s.rows > 1 ? ((s.rows - 1 - i) * s.spreadSeconds * 1000) / (s.rows - 1) : 0)),
      s.channels[i % s.channels.length],
      `conv-${end}-${i}`,
      isEscalated,
      reason,
      s.latencyMs.min + (span > 0 ? (i * 7919) % (span + 1) : 0),
    ]);
  }
  for (let start = 0; start < values.length; start += 1000) {
    const chunk = values.slice(start, start + 1000);
    const placeholders = chunk.map(
      (_, r) => `($${r * 6 + 1}, $${r * 6 + 2}, $${r * 6 + 3}, $${r * 6 + 4}, $${r * 6 + 5}, $${r * 6 + 6})`,
    );
    await db.query(
      `INSERT INTO agent_metrics (recorded_at, channel, conversation_id, escalated, escalation_reason, latency_ms)
       VALUES ${placeholders.join(', ')}`,
      chunk.flat(),
    );
  }
  return { inserted: s.rows, escalated, byReason: Object.fromEntries(split) };
}

// ---- Kafka: the platform topic and a consumer group with real lag ---------------------------------------

export interface KafkaTarget {
  brokers: string[];
  clientId?: string;
}

function kafkaClient(target: KafkaTarget): Kafka {
  const config: KafkaConfig = {
    clientId: target.clientId ?? 'fte-sandbox',
    brokers: target.brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 3000,
    retry: { retries: 3 },
  };
  return new Kafka(config);
}

/** Creates the topic if it does not exist yet (the platform's is `fte-messages`). */
export async function createPlatformTopic(
  target: KafkaTarget,
  options: { topic?: string; partitions?: number } = {},
): Promise<string> {
  const topic = options.topic ?? PLATFORM_TOPIC;
  const admin = kafkaClient(target).admin();
  await admin.connect();
  try {
    const existing = await admin.listTopics();
    if (!existing.includes(topic)) {
      await admin.createTopics({
        topics: [{ topic, numPartitions: options.partitions ?? 3 }],
        waitForLeaders: true,
      });
    }
    return topic;
  } finally {
    await admin.disconnect();
  }
}

/** Produces `count` small JSON messages, round-robin over the topic's partitions. */
export async function produceMessages(target: KafkaTarget, topic: string, count: number): Promise<void> {
  const kafka = kafkaClient(target);
  const admin = kafka.admin();
  await admin.connect();
  let partitions: number[];
  try {
    partitions = (await admin.fetchTopicOffsets(topic)).map((p) => p.partition).sort((a, b) => a - b);
  } finally {
    await admin.disconnect();
  }
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    for (let start = 0; start < count; start += 500) {
      const messages = Array.from({ length: Math.min(500, count - start) }, (_, i) => {
        const n = start + i;
        return {
          partition: partitions[n % partitions.length],
          key: `customer-${n}`,
          value: JSON.stringify({ channel: 'web_form', customer: `customer-${n}`, text: `message ${n}` }),
        };
      });
      await producer.send({ topic, acks: -1, messages });
    }
  } finally {
    await producer.disconnect();
  }
}

/**
 * Consumes exactly `count` messages as member of `group` and commits the group's position on every
 * partition of the topic (the processed messages, or where the group stood before), so the lag left is
 * exactly what was not consumed.
 */
export async function consumeAndCommit(
  target: KafkaTarget,
  options: { topic: string; group: string; count: number; timeoutMs?: number },
): Promise<void> {
  const { topic, group, count } = options;
  const kafka = kafkaClient(target);
  const nextOffset = new Map<number, number>();
  if (count > 0) {
    const consumer = kafka.consumer({ groupId: group, allowAutoTopicCreation: false });
    await consumer.connect();
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true });
      let taken = 0;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`consumed ${taken} of ${count} messages from ${topic} before the timeout`)),
          options.timeoutMs ?? 30_000,
        );
        consumer
          .run({
            autoCommit: false,
            eachMessage: async ({ partition, message }) => {
              if (taken >= count) return;
              taken++;
              nextOffset.set(partition, Number(message.offset) + 1);
              if (taken === count) {
                clearTimeout(timer);
                resolve();
              }
            },
          })
          .catch(reject);
      });
    } finally {
      await consumer.disconnect();
    }
  }
  const admin = kafka.admin();
  await admin.connect();
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(topic),
      admin.fetchOffsets({ groupId: group, topics: [topic] }),
    ]);
    const before = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    const partitions = ends.map((e) => {
      const start = before.get(e.partition) ?? -1;
      const offset = nextOffset.get(e.partition) ?? (start >= 0 ? start : Number(e.low));
      return { partition: e.partition, offset: String(offset) };
    });
    await admin.setOffsets({ groupId: group, topic, partitions });
  } finally {
    await admin.disconnect();
  }
}

/**
 * Makes consumer group `group` lag `lag` messages behind on `topic`: produces lag + consumed messages and
 * consumes and commits `consumed` of them. On a fresh topic and group the lag is exactly `lag`.
 */
export async function createConsumerLag(
  target: KafkaTarget,
  options: { lag: number; consumed?: number; topic?: string; group?: string; partitions?: number },
): Promise<{ topic: string; group: string; produced: number; consumed: number }> {
  const topic = await createPlatformTopic(target, {
    topic: options.topic ?? PLATFORM_TOPIC,
    ...(options.partitions ? { partitions: options.partitions } : {}),
  });
  const group = options.group ?? PLATFORM_CONSUMER_GROUP;
  const consumed = options.consumed ?? 1;
  await produceMessages(target, topic, options.lag + consumed);
  await consumeAndCommit(target, { topic, group, count: consumed });
  return { topic, group, produced: options.lag + consumed, consumed };
}

/**
 * The platform application's own login role (not a superuser), whose sessions db-connections-exhausted holds
 * open: killIdleConnections never ends a superuser's. A fresh password on every start; returns its URL.
 */
export async function ensureAppRole(adminUrl: string, database: string): Promise<string> {
  const role = `${database.slice(0, 58)}_app`;
  const password = randomBytes(18).toString('hex');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    // The role name is a checked database name plus "_app"; the password is hex: both safe in the statement.
    const { rowCount } = await admin.query('SELECT 1 FROM pg_roles WHERE rolname = $1', [role]);
    if (!rowCount) await admin.query(`CREATE ROLE ${role} LOGIN`);
    await admin.query(`ALTER ROLE ${role} LOGIN NOSUPERUSER PASSWORD ${admin.escapeLiteral(password)}`);
    await admin.query(`GRANT CONNECT ON DATABASE ${database} TO ${role}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${database}`;
  url.username = role;
  url.password = password;
  return url.toString();
}

// ---- PostgreSQL connections -----------------------------------------------------------------------------

export interface HeldConnections {
  idlePids: number[];
  activePids: number[];
  /** Ends every held connection (active ones are terminated first, their sleep would block a clean end). */
  release(): Promise<void>;
}

/**
 * Opens `idle` connections that sit idle and `active` ones each running `SELECT pg_sleep(activeSeconds)`,
 * as a platform whose pool is filling up would. Returns once the active ones are seen running.
 */
export async function holdConnections(options: {
  connectionString: string;
  idle?: number;
  active?: number;
  activeSeconds?: number;
  applicationName?: string;
}): Promise<HeldConnections> {
  const applicationName = options.applicationName ?? 'fte-api';
  const open = async () => {
    const client = new pg.Client({
      connectionString: options.connectionString,
      application_name: applicationName,
    });
    client.on('error', () => {});
    await client.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return { client, pid: rows[0]?.pid ?? -1 };
  };
  const idle = await Promise.all(Array.from({ length: options.idle ?? 0 }, open));
  const active = await Promise.all(Array.from({ length: options.active ?? 0 }, open));
  for (const { client } of active) {
    client.query('SELECT pg_sleep($1)', [options.activeSeconds ?? 60]).catch(() => {});
  }
  const activePids = active.map((a) => a.pid);
  if (activePids.length > 0) {
    await waitForSessions(
      options.connectionString,
      activePids,
      "state = 'active' AND query LIKE '%pg_sleep%'",
    );
  }
  return {
    idlePids: idle.map((c) => c.pid),
    activePids,
    release: async () => {
      await terminate(options.connectionString, activePids);
      await Promise.all([...idle, ...active].map(({ client }) => client.end().catch(() => {})));
    },
  };
}

/** Waits until every pid has been idle for more than `seconds` (state_change is set by the server). */
export async function waitUntilIdleFor(
  connectionString: string,
  pids: number[],
  seconds: number,
): Promise<void> {
  await waitForSessions(
    connectionString,
    pids,
    "state = 'idle' AND state_change < now() - make_interval(secs => $2)",
    [seconds],
  );
}

/** pids among `pids` that still have a session. */
export async function livePids(connectionString: string, pids: number[]): Promise<number[]> {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const { rows } = await client.query<{ pid: number }>(
      'SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [pids],
    );
    return rows.map((r) => r.pid).sort((a, b) => a - b);
  } finally {
    await client.end();
  }
}

async function waitForSessions(
  connectionString: string,
  pids: number[],
  condition: string,
  params: unknown[] = [],
  timeoutMs = 30_000,
) {
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ n: number }>(
        `SELECT count(*)::int AS n FROM pg_stat_activity WHERE pid = ANY($1::int[]) AND ${condition}`,
        [pids, ...params],
      );
      if ((rows[0]?.n ?? 0) === pids.length) return;
      if (Date.now() > deadline) throw new Error(`sessions ${pids.join(', ')} did not reach: ${condition}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  } finally {
    await client.end();
  }
}

async function terminate(connectionString: string, pids: number[]): Promise<void> {
  if (pids.length === 0) return;
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    await client.query(
      'SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE pid = ANY($1::int[])',
      [pids],
    );
  } finally {
    await client.end();
  }
}
