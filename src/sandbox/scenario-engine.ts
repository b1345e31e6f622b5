import pg from 'pg';
import { Kafka, logLevel } from 'kafkajs';
import type { FteCluster } from './cluster.js';
import type { FteApiSim } from './fte-api.js';
import { FAILURE_LINES } from './pod-logs.js';
import {
  consumeAndCommit,
  createConsumerLag,
  holdConnections,
  insertAgentMetrics,
  livePids,
  PLATFORM_CONSUMER_GROUP,
  PLATFORM_TOPIC,
  type HeldConnections,
  type KafkaTarget,
} from './platform-data.js';
import { scenarioInfo, type ScenarioName } from './scenarios.js';
import type { TcpProxy } from './tcp-proxy.js';

// Applies the sandbox's fault scenarios and watches for the one remedy that repairs each: every second it
// looks at the platform as the real one would see it (a new postgres-0 pod, processor pods replaced, five
// processor replicas, a renewed Gmail watch, the held connections terminated) and heals what that remedy
// heals. Nothing but `healthy` (or `recover` for vendor incidents) resets a fault.

type Vendor = 'openai' | 'twilio';
type Indicator = 'none' | 'minor' | 'major' | 'critical';

export interface ScenarioEngineDeps {
  cluster: () => FteCluster | undefined;
  /** The proxies the worker reaches the platform's PostgreSQL and Kafka through. */
  postgres: TcpProxy;
  kafka: TcpProxy;
  /** The broker without the proxy, for the sandbox's own data work. */
  kafkaDirect: KafkaTarget;
  /** The platform database without the proxy. */
  platformDbUrl: string;
  /** The platform application's own (non-superuser) role: the sessions a full pool is made of. */
  platformAppUrl: string;
}

/** What an applied fault needs to remember to notice its repair. */
type Fault =
  | { kind: 'pod-replaced'; pod: string; uid: string }
  | { kind: 'pods-replaced'; workload: string; uids: string[] }
  | { kind: 'watch-renewed' }
  | { kind: 'scaled-out'; replicas: number }
  | { kind: 'connections-killed'; held: HeldConnections }
  | { kind: 'when-told' }
  | { kind: 'pods-healthy'; workload: string };

/** Connections the sandbox allows on the platform database; `db-connections-exhausted` takes 95 % of them. */
export const PLATFORM_CONNECTION_LIMIT = 40;
const EXHAUSTING_CONNECTIONS = 38;
const LAG = 3_000;
/** Why the spike's conversations escalate: one reason dominant, as a prompt regression would make it. */
const SPIKE_REASONS = { 'refund request misread as complaint': 7, 'customer requested human': 2, other: 1 };

export class ScenarioEngine {
  readonly #faults = new Map<ScenarioName, Fault>();
  #api: FteApiSim | undefined;
  #setStatus: ((vendor: Vendor, indicator: Indicator) => void) | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> = Promise.resolve();
  /** The last error a repair check met (shown by GET /scenarios), cleared by a clean check. */
  lastError: string | undefined;

  constructor(private readonly deps: ScenarioEngineDeps) {}

  connectApi(api: FteApiSim): void {
    this.#api = api;
  }

  connectStatusPages(set: (vendor: Vendor, indicator: Indicator) => void): void {
    this.#setStatus = set;
  }

  /** The scenarios in force, in the order they were applied. */
  get active(): ScenarioName[] {
    return [...this.#faults.keys()];
  }

  start(): void {
    this.#timer = setInterval(() => {
      this.#ticking = this.#ticking.then(() => this.#checkRepairs());
    }, 1_000);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#ticking;
    for (const fault of this.#faults.values()) {
      if (fault.kind === 'connections-killed') await fault.held.release().catch(() => {});
    }
    this.#faults.clear();
  }

  /** fte-api's health: a ready pod, and its database and broker answering with room for a connection. */
  async apiHealthy(): Promise<boolean> {
    if (this.deps.postgres.isCut || this.deps.kafka.isCut) return false;
    if (this.#faults.has('db-connections-exhausted')) return false;
    const cluster = this.deps.cluster();
    if (!cluster) return true;
    return (await cluster.podsOf('fte-api')).some((p) => p.ready);
  }

  #need<T>(value: T | undefined, what: string): T {
    if (value === undefined) throw new ScenarioUnavailableError(`${what} is not running yet`);
    return value;
  }

  /** Applies a scenario (serialised with the repair checks); `healthy` clears every fault. */
  async apply(name: ScenarioName): Promise<void> {
    const run = this.#ticking.then(() => this.#apply(name));
    this.#ticking = run.catch(() => {});
    return run;
  }

  /** Ends a vendor incident or review that only people and upstream recovery end. */
  async recover(name: ScenarioName): Promise<boolean> {
    const run = this.#ticking.then(async () => {
      if (this.#faults.get(name)?.kind !== 'when-told') return false;
      await this.#heal(name);
      return true;
    });
    this.#ticking = run.then(() => {}).catch(() => {});
    return run;
  }

  async #apply(name: ScenarioName): Promise<void> {
    if (name === 'healthy') {
      for (const active of [...this.#faults.keys()]) await this.#heal(active);
      await this.deps.cluster()?.healPods();
      return;
    }
    if (this.#faults.has(name)) return;
    const api = this.#need(this.#api, 'fte-api');
    const setStatus = this.#need(this.#setStatus, 'the status pages');
    const cluster = () => this.#need(this.deps.cluster(), 'the Kubernetes control plane');
    switch (name) {
      case 'api-down':
        await cluster().failPods('fte-api', 'crashloop', FAILURE_LINES.apiCrash);
        this.#faults.set(name, { kind: 'pods-healthy', workload: 'fte-api' });
        break;
      case 'postgres-down':
      case 'kafka-down': {
        const pod = name === 'postgres-down' ? 'postgres-0' : 'kafka-0';
        const [current] = (await cluster().podsOf(pod.replace(/-0$/, ''))).filter((p) => p.name === pod);
        if (!current) throw new Error(`pod ${pod} is not there to break`);
        await cluster().failPods(
          { pod },
          'crashloop',
          name === 'postgres-down' ? FAILURE_LINES.postgresCrash : FAILURE_LINES.kafkaCrash,
        );
        await (name === 'postgres-down' ? this.deps.postgres : this.deps.kafka).cut();
        this.#faults.set(name, { kind: 'pod-replaced', pod, uid: current.uid });
        break;
      }
      case 'whatsapp-down': {
        const stuck = await cluster().failPods(
          'fte-message-processor',
          'not-ready',
          FAILURE_LINES.processorStuck,
        );
        const uids = (await cluster().podsOf('fte-message-processor'))
          .filter((p) => stuck.includes(p.name))
          .map((p) => p.uid);
        api.setFault('whatsapp-webhook', { status: 502 });
        api.setChannel('whatsapp', { error_rate: 0.6 });
        this.#faults.set(name, { kind: 'pods-replaced', workload: 'fte-message-processor', uids });
        break;
      }
      case 'twilio-outage':
        setStatus('twilio', 'major');
        api.setFault('whatsapp-webhook', { status: 502 });
        api.setChannel('whatsapp', { error_rate: 0.6 });
        this.#faults.set(name, { kind: 'when-told' });
        break;
      case 'gmail-watch-expired':
        api.setGmailWatch({ expiration: Date.now() - 3_600_000 });
        api.setChannel('email', { requests: 0 });
        this.#faults.set(name, { kind: 'watch-renewed' });
        break;
      case 'agent-latency':
        await createConsumerLag(this.deps.kafkaDirect, { lag: LAG });
        for (const channel of ['email', 'whatsapp', 'web_form'] as const) {
          api.setChannel(channel, { p95_latency_ms: 14_000 });
        }
        this.#faults.set(name, { kind: 'scaled-out', replicas: 5 });
        break;
      case 'openai-degraded':
        setStatus('openai', 'minor');
        for (const channel of ['email', 'whatsapp', 'web_form'] as const) {
          api.setChannel(channel, { p95_latency_ms: 14_000 });
        }
        this.#faults.set(name, { kind: 'when-told' });
        break;
      case 'escalation-spike':
        await this.#withPlatformDb((db) =>
          insertAgentMetrics(db, {
            rows: 600,
            escalationRate: 0.45,
            spreadSeconds: 15 * 60,
            reasons: SPIKE_REASONS,
          }),
        );
        this.#faults.set(name, { kind: 'when-told' });
        this.#escalationsUpTo = Date.now();
        break;
      case 'db-connections-exhausted': {
        const held = await holdConnections({
          connectionString: this.deps.platformAppUrl,
          idle: EXHAUSTING_CONNECTIONS,
          applicationName: 'fte-api',
        });
        this.#faults.set(name, { kind: 'connections-killed', held });
        break;
      }
    }
  }

  /** Undoes what a scenario broke. */
  async #heal(name: ScenarioName): Promise<void> {
    const fault = this.#faults.get(name);
    this.#faults.delete(name);
    const api = this.#api;
    switch (name) {
      case 'postgres-down':
      case 'kafka-down':
        // The new pod logs cleanly before its database or broker answers again.
        if (fault?.kind === 'pod-replaced') await this.deps.cluster()?.forgetOwnLog(fault.pod);
        await (name === 'postgres-down' ? this.deps.postgres : this.deps.kafka).restore();
        break;
      case 'whatsapp-down':
      case 'twilio-outage':
        api?.clearFault('whatsapp-webhook');
        api?.resetChannel('whatsapp');
        if (name === 'twilio-outage') this.#setStatus?.('twilio', 'none');
        break;
      case 'gmail-watch-expired':
        api?.resetChannel('email');
        break;
      case 'agent-latency':
        await this.#drainLag();
        for (const channel of ['email', 'whatsapp', 'web_form'] as const) api?.resetChannel(channel);
        break;
      case 'openai-degraded':
        this.#setStatus?.('openai', 'none');
        for (const channel of ['email', 'whatsapp', 'web_form'] as const) api?.resetChannel(channel);
        break;
      case 'escalation-spike':
        // As a prompt fix would: new conversations escalate at the usual rate again.
        await this.#withPlatformDb((db) =>
          insertAgentMetrics(db, { rows: 1_200, escalationRate: 0.05, spreadSeconds: 120 }),
        );
        break;
      case 'db-connections-exhausted':
        if (fault?.kind === 'connections-killed') await fault.held.release();
        break;
      default:
        break;
    }
  }

  async #checkRepairs(): Promise<void> {
    try {
      for (const [name, fault] of [...this.#faults]) {
        if (await this.#repaired(fault)) await this.#heal(name);
      }
      await this.#sustainEscalations();
      this.lastError = undefined;
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
    }
  }

  async #repaired(fault: Fault): Promise<boolean> {
    const cluster = this.deps.cluster();
    switch (fault.kind) {
      case 'pod-replaced': {
        if (!cluster) return false;
        const pods = await cluster.podsOf(fault.pod.replace(/-\d+$/, ''));
        const pod = pods.find((p) => p.name === fault.pod);
        return pod !== undefined && pod.uid !== fault.uid && pod.ready;
      }
      case 'pods-replaced': {
        if (!cluster) return false;
        const pods = await cluster.podsOf(fault.workload);
        return pods.length > 0 && pods.every((p) => p.ready && !fault.uids.includes(p.uid));
      }
      case 'pods-healthy': {
        if (!cluster) return false;
        const pods = await cluster.podsOf(fault.workload);
        return pods.length > 0 && pods.every((p) => p.ready);
      }
      case 'scaled-out': {
        if (!cluster) return false;
        const processor = await cluster.deployment('fte-message-processor');
        return processor.readyReplicas >= fault.replicas;
      }
      case 'watch-renewed':
        return (this.#api?.gmailWatch.expiration ?? 0) > Date.now();
      case 'connections-killed': {
        const alive = await livePids(this.deps.platformDbUrl, fault.held.idlePids);
        return alive.length === 0;
      }
      case 'when-told':
        return false;
    }
  }

  #escalationsUpTo = 0;

  /** While the spike lasts, new conversations keep escalating at its rate (10 every 15 s, 45 % escalated). */
  async #sustainEscalations(): Promise<void> {
    if (!this.#faults.has('escalation-spike') || Date.now() - this.#escalationsUpTo < 15_000) return;
    this.#escalationsUpTo = Date.now();
    await this.#withPlatformDb((db) =>
      insertAgentMetrics(db, { rows: 10, escalationRate: 0.45, spreadSeconds: 15, reasons: SPIKE_REASONS }),
    );
  }

  /** The processor's consumers, now enough of them, work off the backlog. */
  async #drainLag(): Promise<void> {
    const kafka = new Kafka({
      clientId: 'fte-sandbox',
      brokers: this.deps.kafkaDirect.brokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    let lag = 0;
    try {
      const [ends, committed] = await Promise.all([
        admin.fetchTopicOffsets(PLATFORM_TOPIC),
        admin.fetchOffsets({ groupId: PLATFORM_CONSUMER_GROUP, topics: [PLATFORM_TOPIC] }),
      ]);
      const at = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
      for (const end of ends) {
        const position = at.get(end.partition) ?? -1;
        lag += Number(end.high) - (position >= 0 ? position : Number(end.low));
      }
    } finally {
      await admin.disconnect();
    }
    if (lag > 0) {
      await consumeAndCommit(this.deps.kafkaDirect, {
        topic: PLATFORM_TOPIC,
        group: PLATFORM_CONSUMER_GROUP,
        count: lag,
        timeoutMs: 60_000,
      });
    }
  }

  async #withPlatformDb<T>(work: (db: pg.Client) => Promise<T>): Promise<T> {
    const db = new pg.Client({ connectionString: this.deps.platformDbUrl });
    await db.connect();
    try {
      return await work(db);
    } finally {
      await db.end();
    }
  }

  /** For `GET /scenarios`: what each scenario does and which are in force. */
  describe(name: ScenarioName) {
    return { ...scenarioInfo(name), active: this.#faults.has(name) };
  }
}

/** A scenario needs a part of the sandbox that is not running yet (the control plane while it builds). */
export class ScenarioUnavailableError extends Error {
  override name = 'ScenarioUnavailableError';
}
