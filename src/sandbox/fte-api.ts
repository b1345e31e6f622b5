import { randomBytes, timingSafeEqual } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import {
  FTE_CHANNELS,
  pubSubPushSchema,
  type ChannelMetricsResponse,
  type ChannelStats,
  type FteChannel,
  type PubSubPush,
} from '../activities/http.js';

/** The simulated endpoints; faults are set per endpoint. */
export type FteApiEndpoint = 'health' | 'metrics' | 'whatsapp-webhook' | 'gmail-webhook' | 'gmail-watch';

export interface EndpointFault {
  /** Answer with this HTTP status instead of the normal answer. */
  status?: number;
  /** Wait this long before answering (applies before any other fault). */
  delayMs?: number;
  /** Answer 200 with a truncated JSON body. */
  malformedJson?: boolean;
}

export interface FteApiSimOptions {
  host?: string;
  /** 0 (the default) picks a free port; after the first start the sim keeps its port across restarts. */
  port?: number;
  /** Bearer token of the /admin endpoints; random when not given (read it from `sim.adminToken`). */
  adminToken?: string;
  now?: () => number;
  /** Overrides the escalation rate reported per channel (e.g. computed from the Postgres data side). */
  escalationRate?: (channel: FteChannel) => number | Promise<number>;
  /** Overrides health: false answers 503 (e.g. when the simulated database is down). */
  healthy?: () => boolean | Promise<boolean>;
}

export interface GmailWatchState {
  historyId: number;
  /** Milliseconds since the epoch. */
  expiration: number;
}

const WATCH_LIFETIME_MS = 7 * 24 * 3_600_000;
const METRICS_WINDOW_SECONDS = 300;
const TWIML_EMPTY = '<?xml version="1.0" encoding="UTF-8"?><Response></Response>';

const DEFAULT_STATS: Record<FteChannel, ChannelStats> = {
  email: { requests: 120, error_rate: 0.01, p95_latency_ms: 2_400, escalation_rate: 0.1 },
  whatsapp: { requests: 340, error_rate: 0.005, p95_latency_ms: 1_800, escalation_rate: 0.08 },
  web_form: { requests: 75, error_rate: 0.0, p95_latency_ms: 2_100, escalation_rate: 0.12 },
};

const gmailNotificationSchema = z.object({
  emailAddress: z.string().min(1),
  historyId: z.union([z.string(), z.number()]),
});

interface Received {
  whatsapp: Record<string, string>[];
  gmail: PubSubPush[];
}

/**
 * A stand-in for the platform's FastAPI service, as far as the runbooks touch it. Tests and drills steer
 * it through this API (health, per-channel metrics, the Gmail watch, faults per endpoint, stop/start).
 */
export class FteApiSim {
  readonly adminToken: string;
  private readonly host: string;
  private port: number;
  private readonly now: () => number;
  private app: FastifyInstance | undefined;
  private aborter = new AbortController();
  private healthy = true;
  private readonly stats: Record<FteChannel, ChannelStats>;
  private watch: GmailWatchState;
  private readonly faults = new Map<FteApiEndpoint, EndpointFault>();
  private readonly renewals = new Map<string, GmailWatchState>();
  private renewCount = 0;
  private readonly received: Received = { whatsapp: [], gmail: [] };

  private constructor(private readonly options: FteApiSimOptions) {
    this.host = options.host ?? '127.0.0.1';
    this.port = options.port ?? 0;
    this.adminToken = options.adminToken ?? randomBytes(16).toString('hex');
    this.now = options.now ?? Date.now;
    this.stats = structuredClone(DEFAULT_STATS);
    this.watch = { historyId: 1000, expiration: this.now() + WATCH_LIFETIME_MS };
  }

  /** Creates the simulator and starts listening. */
  static async start(options: FteApiSimOptions = {}): Promise<FteApiSim> {
    const sim = new FteApiSim(options);
    await sim.start();
    return sim;
  }

  /** Base URL, e.g. http://127.0.0.1:41234 (valid while running and after a restart). */
  get url(): string {
    return `http://${this.host.includes(':') ? `[${this.host}]` : this.host}:${this.port}`;
  }

  get gmailWatchUrl(): string {
    return `${this.url}/admin/gmail/watch`;
  }

  get running(): boolean {
    return this.app !== undefined;
  }

  /** Listens again (on the same port once one was chosen); a no-op while running. */
  async start(): Promise<void> {
    if (this.app) return;
    this.aborter = new AbortController();
    const app = this.buildApp();
    await app.listen({ host: this.host, port: this.port });
    const address = app.server.address();
    if (address && typeof address === 'object') this.port = address.port;
    this.app = app;
  }

  /** Stops listening: clients now get "connection refused". Pending slow answers are dropped. */
  async stop(): Promise<void> {
    const app = this.app;
    if (!app) return;
    this.app = undefined;
    this.aborter.abort();
    await app.close();
  }

  // ------------------------------------------------------------------------------------------- state

  setHealthy(healthy: boolean): void {
    this.healthy = healthy;
  }

  /** Changes some numbers of one channel; the rest keep their values. */
  setChannel(channel: FteChannel, stats: Partial<ChannelStats>): void {
    this.stats[channel] = { ...this.stats[channel], ...stats };
  }

  /** Puts one channel's numbers back to the healthy defaults. */
  resetChannel(channel: FteChannel): void {
    this.stats[channel] = { ...DEFAULT_STATS[channel] };
  }

  channel(channel: FteChannel): ChannelStats {
    return { ...this.stats[channel] };
  }

  setFault(endpoint: FteApiEndpoint, fault: EndpointFault): void {
    this.faults.set(endpoint, { ...fault });
  }

  clearFault(endpoint: FteApiEndpoint): void {
    this.faults.delete(endpoint);
  }

  clearFaults(): void {
    this.faults.clear();
  }

  /** Sets the Gmail watch, e.g. `{ expiration: Date.now() + 3 * 3600_000 }` for "expires in 3 h". */
  setGmailWatch(watch: Partial<GmailWatchState>): void {
    this.watch = { ...this.watch, ...watch };
  }

  get gmailWatch(): GmailWatchState {
    return { ...this.watch };
  }

  /** How many times the watch was really renewed (replayed idempotency keys do not count). */
  get gmailRenewals(): number {
    return this.renewCount;
  }

  /** Bodies the webhooks accepted, oldest first. */
  get webhookDeliveries(): Readonly<Received> {
    return { whatsapp: [...this.received.whatsapp], gmail: [...this.received.gmail] };
  }

  // ----------------------------------------------------------------------------------------- server

  private buildApp(): FastifyInstance {
    const app = Fastify({ logger: false, forceCloseConnections: true });
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'string' },
      (_req, body, done) => {
        done(null, Object.fromEntries(new URLSearchParams(String(body))));
      },
    );

    app.get(
      '/health',
      this.route('health', false, async (_req, reply) => {
        const healthy = this.healthy && (this.options.healthy ? await this.options.healthy() : true);
        const body = { status: healthy ? 'healthy' : 'unhealthy', service: 'fte-api', timestamp: this.iso() };
        return reply.code(healthy ? 200 : 503).send(body);
      }),
    );

    app.get(
      '/metrics/channels',
      this.route('metrics', false, async (_req, reply) => {
        return reply.send(await this.channelMetrics());
      }),
    );

    app.post(
      '/webhooks/whatsapp',
      this.route('whatsapp-webhook', false, async (req, reply) => {
        const form = z.record(z.string(), z.string()).safeParse(req.body);
        if (!form.success) return reply.code(400).send({ detail: 'expected a form-encoded body' });
        this.received.whatsapp.push(form.data);
        return reply.code(200).type('application/xml').send(TWIML_EMPTY);
      }),
    );

    app.post(
      '/webhooks/gmail',
      this.route('gmail-webhook', false, async (req, reply) => {
        const push = pubSubPushSchema.safeParse(req.body);
        if (!push.success) return reply.code(400).send({ detail: 'expected a Pub/Sub push message' });
        let notification: unknown;
        try {
          notification = JSON.parse(Buffer.from(push.data.message.data, 'base64').toString('utf8'));
        } catch {
          return reply.code(400).send({ detail: 'message.data is not base64-encoded JSON' });
        }
        if (!gmailNotificationSchema.safeParse(notification).success) {
          return reply.code(400).send({ detail: 'message.data lacks emailAddress/historyId' });
        }
        this.received.gmail.push(push.data);
        return reply.code(200).send({ status: 'received' });
      }),
    );

    app.get(
      '/admin/gmail/watch',
      this.route('gmail-watch', true, async (_req, reply) => {
        return reply.send(this.watchBody(this.watch));
      }),
    );

    app.post(
      '/admin/gmail/watch',
      this.route('gmail-watch', true, async (req, reply) => {
        const key = req.headers['idempotency-key'];
        const replay = typeof key === 'string' ? this.renewals.get(key) : undefined;
        if (replay) return reply.header('idempotent-replayed', 'true').send(this.watchBody(replay));
        this.watch = { historyId: this.watch.historyId + 1, expiration: this.now() + WATCH_LIFETIME_MS };
        this.renewCount++;
        if (typeof key === 'string') this.renewals.set(key, { ...this.watch });
        return reply.send(this.watchBody(this.watch));
      }),
    );

    return app;
  }

  /** Wraps a handler with the endpoint's faults and, for admin endpoints, the bearer token check. */
  private route(
    endpoint: FteApiEndpoint,
    admin: boolean,
    handler: (req: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>,
  ) {
    return async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const fault = this.faults.get(endpoint);
      if (fault?.delayMs) {
        try {
          await sleep(fault.delayMs, undefined, { signal: this.aborter.signal });
        } catch {
          return reply.hijack();
        }
      }
      if (admin && !this.authorized(req.headers.authorization)) {
        return reply.code(401).header('www-authenticate', 'Bearer').send({ detail: 'Not authenticated' });
      }
      if (fault?.status) {
        return reply.code(fault.status).send({ detail: `simulated failure (${fault.status})` });
      }
      if (fault?.malformedJson) {
        return reply
          .code(200)
          .type('application/json')
          .send('{"status": "healthy", "channels": {"email": {"requ');
      }
      return handler(req, reply);
    };
  }

  private authorized(header: string | undefined): boolean {
    const match = /^Bearer (.+)$/i.exec(header ?? '');
    if (!match?.[1]) return false;
    const given = Buffer.from(match[1]);
    const expected = Buffer.from(this.adminToken);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  private async channelMetrics(): Promise<ChannelMetricsResponse> {
    const channels = {} as ChannelMetricsResponse['channels'];
    for (const channel of FTE_CHANNELS) {
      const stats = { ...this.stats[channel] };
      if (this.options.escalationRate) {
        stats.escalation_rate = Math.min(1, Math.max(0, await this.options.escalationRate(channel)));
      }
      channels[channel] = stats;
    }
    return { window_seconds: METRICS_WINDOW_SECONDS, generated_at: this.iso(), channels };
  }

  /** Gmail's users.watch answer: int64 values as strings. */
  private watchBody(watch: GmailWatchState): { historyId: string; expiration: string } {
    return { historyId: String(watch.historyId), expiration: String(watch.expiration) };
  }

  private iso(): string {
    return new Date(this.now()).toISOString();
  }
}
