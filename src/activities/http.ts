import { z } from 'zod';
import type { ProbeInput } from '../domain/activity-contract.js';
import type { Finding, FindingStatus } from '../domain/findings.js';
import { makeFinding, parseActivityArgs, redact } from './common.js';

// ---------------------------------------------------------------------------------------------------
// Wire formats of the fte-api endpoints the runbooks read (documented in docs/fte-api.md).
// ---------------------------------------------------------------------------------------------------

export const FTE_CHANNELS = ['email', 'whatsapp', 'web_form'] as const;
export const fteChannelSchema = z.enum(FTE_CHANNELS);
export type FteChannel = z.infer<typeof fteChannelSchema>;

const rate = z.number().min(0).max(1);

export const channelStatsSchema = z.object({
  requests: z.number().int().min(0),
  error_rate: rate,
  p95_latency_ms: z.number().min(0),
  escalation_rate: rate,
});
export type ChannelStats = z.infer<typeof channelStatsSchema>;

/** `GET /metrics/channels`: one block per channel over the last `window_seconds`. */
export const channelMetricsResponseSchema = z.object({
  window_seconds: z.number().int().positive(),
  generated_at: z.string(),
  channels: z.object({
    email: channelStatsSchema,
    whatsapp: channelStatsSchema,
    web_form: channelStatsSchema,
  }),
});
export type ChannelMetricsResponse = z.infer<typeof channelMetricsResponseSchema>;

/** `GET /health`: FastAPI answers 200 with status "healthy", or 503. Extra fields are allowed. */
export const healthResponseSchema = z.looseObject({ status: z.string() });

/** The part of the public Statuspage v2 `/api/v2/status.json` document the probe reads. */
export const statusPageResponseSchema = z.looseObject({
  status: z.looseObject({ indicator: z.string(), description: z.string().optional() }),
});

/** What Google Pub/Sub POSTs to a push subscription's endpoint. */
export const pubSubPushSchema = z.object({
  message: z.object({
    data: z.string(),
    messageId: z.string(),
    publishTime: z.string().optional(),
    attributes: z.record(z.string(), z.string()).optional(),
  }),
  subscription: z.string(),
});
export type PubSubPush = z.infer<typeof pubSubPushSchema>;

// ---------------------------------------------------------------------------------------------------
// A bounded fetch that turns every failure into a short, secret-free description.
// ---------------------------------------------------------------------------------------------------

export type HttpOutcome =
  | { ok: true; status: number; body: string; headers: Headers; latencyMs: number }
  | { ok: false; failure: 'timeout' | 'refused' | 'network'; message: string; latencyMs: number };

export interface HttpRequest {
  url: string;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  timeoutMs: number;
  /** Exact secret values to strip from any message (tokens, secret URLs). */
  secrets?: readonly string[];
  /** How the target is named in messages, instead of its URL (which may itself be secret). */
  label?: string;
}

/** The origin and path of a URL without credentials or query: safe to show in a finding. */
export function describeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}${u.pathname}`;
  } catch {
    return '(invalid URL)';
  }
}

function errorCode(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current && typeof current === 'object'; depth++) {
    const code = (current as { code?: unknown }).code;
    if (typeof code === 'string') return code;
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

// A pooled keep-alive connection the server already closed fails with one of these before any byte of
// the request was handled; one fresh attempt tells a restarted or stopped server (ECONNREFUSED) apart.
const STALE_CONNECTION = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE']);

/** One HTTP exchange; the body is read under the same deadline, so a slow body is a timeout too. */
export async function httpRequest(fetchImpl: typeof fetch, req: HttpRequest): Promise<HttpOutcome> {
  const started = performance.now();
  const label = req.label ?? describeUrl(req.url);
  const elapsed = () => Math.round(performance.now() - started);
  const signal = AbortSignal.timeout(req.timeoutMs);
  const attempt = async (): Promise<HttpOutcome> => {
    const res = await fetchImpl(req.url, {
      method: req.method ?? 'GET',
      headers: req.headers,
      body: req.body,
      signal,
    });
    const body = await res.text();
    return { ok: true, status: res.status, body, headers: res.headers, latencyMs: elapsed() };
  };
  try {
    try {
      return await attempt();
    } catch (error) {
      const code = errorCode(error);
      if (!code || !STALE_CONNECTION.has(code) || signal.aborted) throw error;
      return await attempt();
    }
  } catch (error) {
    const latencyMs = elapsed();
    const name = error instanceof Error ? error.name : '';
    if (name === 'TimeoutError' || name === 'AbortError' || signal.aborted) {
      return {
        ok: false,
        failure: 'timeout',
        message: `${label} did not answer within the ${req.timeoutMs} ms timeout`,
        latencyMs,
      };
    }
    const code = errorCode(error);
    if (code === 'ECONNREFUSED') {
      return {
        ok: false,
        failure: 'refused',
        message: `${label} refused the connection (ECONNREFUSED)`,
        latencyMs,
      };
    }
    const detail = code ?? (error instanceof Error ? error.message : String(error));
    return {
      ok: false,
      failure: 'network',
      message: redact(`${label} could not be reached (${detail})`, req.secrets),
      latencyMs,
    };
  }
}

/** Parses a JSON body with a schema; the error names what was wrong without echoing the body. */
export function parseJsonBody<S extends z.ZodType>(
  schema: S,
  body: string,
): { ok: true; value: z.output<S> } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { ok: false, error: 'the body is not valid JSON' };
  }
  const result = schema.safeParse(json);
  if (result.success) return { ok: true, value: result.data };
  const problems = result.error.issues
    .slice(0, 3)
    .map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`)
    .join('; ');
  return { ok: false, error: `unexpected JSON shape (${problems})` };
}

const worst = (statuses: FindingStatus[]): FindingStatus => {
  for (const s of ['down', 'degraded', 'unknown'] as const) if (statuses.includes(s)) return s;
  return 'ok';
};

const percent = (r: number) => `${(r * 100).toFixed(1)} %`;

// ---------------------------------------------------------------------------------------------------
// Probes
// ---------------------------------------------------------------------------------------------------

export interface HttpActivityDeps {
  /** Base URL of fte-api, e.g. http://fte-api.customer-success-fte:8000 */
  apiBaseUrl: string;
  /** Statuspage base URLs (e.g. https://status.openai.com) or full `/api/v2/status.json` URLs. */
  statusPages: { openai: string; twilio: string };
  /** Upper bound of each request; default 10 s. */
  timeoutMs?: number;
  fetch?: typeof fetch;
}

const DEFAULT_TIMEOUT_MS = 10_000;

// Probe arguments are strict: an unknown key (a typo) is an error, not an argument silently left out.
const healthArgs = z.strictObject({
  /** Answers slower than this are "degraded". */
  slowMs: z.number().int().positive().default(2_000),
});

const channelMetricsArgs = z.strictObject({
  channel: fteChannelSchema.optional(),
  errorRateDegraded: rate.default(0.05),
  errorRateDown: rate.default(0.5),
  /** The seed's "agent processing > 10s". */
  p95LatencyMs: z.number().positive().default(10_000),
  /** When set, a channel whose escalation rate is above it is degraded; otherwise the rate is only reported. */
  maxEscalationRate: rate.optional(),
});

const webhookArgs = z.strictObject({
  channel: z.enum(['whatsapp', 'gmail']),
  slowMs: z.number().int().positive().default(5_000),
});

const statusPageArgs = z.strictObject({ service: z.enum(['openai', 'twilio']) });

/** Argument schemas of the probes, by name: what they parse and what `runbook lint` checks. */
export const httpProbeArgs = {
  httpHealth: healthArgs,
  channelMetrics: channelMetricsArgs,
  webhookCheck: webhookArgs,
  statusPage: statusPageArgs,
} as const;

const STATUSPAGE_INDICATOR: Record<string, FindingStatus> = {
  none: 'ok',
  minor: 'degraded',
  maintenance: 'degraded',
  major: 'down',
  critical: 'down',
};

function joinUrl(base: string, path: string): string {
  return `${base.replace(/\/+$/, '')}${path}`;
}

function statusJsonUrl(page: string): string {
  return /\.json(\?.*)?$/.test(page) ? page : joinUrl(page, '/api/v2/status.json');
}

/** Probes that read the fte-api over HTTP and the public status pages of its upstream vendors. */
export function httpActivities(deps: HttpActivityDeps) {
  const fetchImpl = deps.fetch ?? fetch;
  const timeoutMs = deps.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const api = (path: string) => joinUrl(deps.apiBaseUrl, path);

  return {
    /** `GET /health` of fte-api: down on 5xx, refusal or timeout; degraded when slow. */
    async httpHealth(input: ProbeInput): Promise<Finding> {
      const args = parseActivityArgs(httpProbeArgs.httpHealth, input.args ?? {}, 'httpHealth');
      const url = api('/health');
      const res = await httpRequest(fetchImpl, { url, timeoutMs, label: `fte-api ${describeUrl(url)}` });
      if (!res.ok) {
        return makeFinding(input.probeId, 'down', `health check failed: ${res.message}`, {
          latencyMs: res.latencyMs,
        });
      }
      const metrics = { httpStatus: res.status, latencyMs: res.latencyMs };
      if (res.status >= 500) {
        return makeFinding(input.probeId, 'down', `fte-api /health answered ${res.status}`, metrics, [
          res.body.slice(0, 300),
        ]);
      }
      if (res.status !== 200) {
        return makeFinding(
          input.probeId,
          'unknown',
          `fte-api /health answered ${res.status}; expected 200 or 503 (check the API base URL)`,
          metrics,
        );
      }
      const body = parseJsonBody(healthResponseSchema, res.body);
      if (!body.ok) {
        return makeFinding(
          input.probeId,
          'degraded',
          `fte-api /health answered 200 but ${body.error}`,
          metrics,
        );
      }
      if (body.value.status !== 'healthy') {
        return makeFinding(
          input.probeId,
          'degraded',
          `fte-api reports status "${body.value.status}"`,
          metrics,
        );
      }
      if (res.latencyMs > args.slowMs) {
        return makeFinding(
          input.probeId,
          'degraded',
          `fte-api is healthy but slow: ${res.latencyMs} ms (threshold ${args.slowMs} ms)`,
          metrics,
        );
      }
      return makeFinding(input.probeId, 'ok', `fte-api is healthy (${res.latencyMs} ms)`, metrics);
    },

    /** `GET /metrics/channels`: error rate and p95 latency per channel against the thresholds. */
    async channelMetrics(input: ProbeInput): Promise<Finding> {
      const args = parseActivityArgs(httpProbeArgs.channelMetrics, input.args ?? {}, 'channelMetrics');
      const url = api('/metrics/channels');
      const res = await httpRequest(fetchImpl, { url, timeoutMs, label: `fte-api ${describeUrl(url)}` });
      if (!res.ok) {
        // A refused connection means the API itself is down, so no channel is being served.
        const status = res.failure === 'refused' ? 'down' : 'unknown';
        return makeFinding(input.probeId, status, `channel metrics unavailable: ${res.message}`);
      }
      if (res.status !== 200) {
        const status = res.status >= 500 ? 'down' : 'unknown';
        return makeFinding(input.probeId, status, `fte-api /metrics/channels answered ${res.status}`, {
          httpStatus: res.status,
        });
      }
      const body = parseJsonBody(channelMetricsResponseSchema, res.body);
      if (!body.ok) {
        return makeFinding(input.probeId, 'unknown', `fte-api /metrics/channels: ${body.error}`, {
          httpStatus: res.status,
        });
      }
      const channels = args.channel ? [args.channel] : [...FTE_CHANNELS];
      const metrics: Finding['metrics'] = { windowSeconds: body.value.window_seconds };
      const statuses: FindingStatus[] = [];
      const problems: string[] = [];
      const evidence: string[] = [];
      for (const channel of channels) {
        const c = body.value.channels[channel];
        metrics[`requests/${channel}`] = c.requests;
        metrics[`errorRate/${channel}`] = c.error_rate;
        metrics[`p95LatencyMs/${channel}`] = c.p95_latency_ms;
        metrics[`escalationRate/${channel}`] = c.escalation_rate;
        evidence.push(
          `${channel}: ${c.requests} requests, errors ${percent(c.error_rate)}, p95 ${c.p95_latency_ms} ms, escalations ${percent(c.escalation_rate)}`,
        );
        const issues: { status: FindingStatus; text: string }[] = [];
        if (c.error_rate >= args.errorRateDown) {
          issues.push({ status: 'down', text: `error rate ${percent(c.error_rate)}` });
        } else if (c.error_rate >= args.errorRateDegraded) {
          issues.push({ status: 'degraded', text: `error rate ${percent(c.error_rate)}` });
        }
        if (c.p95_latency_ms > args.p95LatencyMs) {
          issues.push({
            status: 'degraded',
            text: `p95 latency ${c.p95_latency_ms} ms > ${args.p95LatencyMs} ms`,
          });
        }
        if (args.maxEscalationRate !== undefined && c.escalation_rate > args.maxEscalationRate) {
          issues.push({ status: 'degraded', text: `escalation rate ${percent(c.escalation_rate)}` });
        }
        statuses.push(worst(issues.map((i) => i.status)));
        if (issues.length > 0) problems.push(`${channel}: ${issues.map((i) => i.text).join(', ')}`);
      }
      const status = worst(statuses);
      const scope = args.channel ? `channel ${args.channel}` : 'all channels';
      const summary = problems.length > 0 ? problems.join('; ') : `${scope} within thresholds`;
      return makeFinding(input.probeId, status, summary, metrics, evidence);
    },

    /** The seed's `curl -X POST .../webhooks/whatsapp -d test=1`, and a Pub/Sub-shaped push for Gmail. */
    async webhookCheck(input: ProbeInput): Promise<Finding> {
      const args = parseActivityArgs(httpProbeArgs.webhookCheck, input.args ?? {}, 'webhookCheck');
      const path = args.channel === 'whatsapp' ? '/webhooks/whatsapp' : '/webhooks/gmail';
      const url = api(path);
      const request: HttpRequest =
        args.channel === 'whatsapp'
          ? {
              url,
              method: 'POST',
              headers: { 'content-type': 'application/x-www-form-urlencoded' },
              body: new URLSearchParams({ test: '1' }).toString(),
              timeoutMs,
            }
          : {
              url,
              method: 'POST',
              headers: { 'content-type': 'application/json' },
              body: JSON.stringify(gmailTestPush(input.incidentId)),
              timeoutMs,
            };
      const res = await httpRequest(fetchImpl, { ...request, label: `webhook ${describeUrl(url)}` });
      if (!res.ok) {
        return makeFinding(input.probeId, 'down', `${args.channel} webhook check failed: ${res.message}`, {
          latencyMs: res.latencyMs,
        });
      }
      const metrics = { httpStatus: res.status, latencyMs: res.latencyMs };
      const tail = res.body ? [res.body.slice(0, 300)] : [];
      if (res.status === 403 || res.status === 401) {
        const hint =
          args.channel === 'whatsapp'
            ? ' (as when the Twilio signature check fails: verify TWILIO_AUTH_TOKEN)'
            : ' (the push was not accepted: check the Pub/Sub push authentication)';
        return makeFinding(
          input.probeId,
          'down',
          `${args.channel} webhook rejected the request with ${res.status}${hint}`,
          metrics,
          tail,
        );
      }
      if (res.status >= 500 || res.status === 404) {
        return makeFinding(
          input.probeId,
          'down',
          `${args.channel} webhook answered ${res.status}`,
          metrics,
          tail,
        );
      }
      if (res.status >= 300) {
        return makeFinding(
          input.probeId,
          'degraded',
          `${args.channel} webhook answered ${res.status} to a test request`,
          metrics,
          tail,
        );
      }
      if (res.latencyMs > args.slowMs) {
        return makeFinding(
          input.probeId,
          'degraded',
          `${args.channel} webhook answered ${res.status} but slowly: ${res.latencyMs} ms (threshold ${args.slowMs} ms)`,
          metrics,
        );
      }
      return makeFinding(input.probeId, 'ok', `${args.channel} webhook answered ${res.status}`, metrics);
    },

    /** The vendor's public Statuspage v2 indicator: none → ok, minor → degraded, major/critical → down. */
    async statusPage(input: ProbeInput): Promise<Finding> {
      const args = parseActivityArgs(httpProbeArgs.statusPage, input.args ?? {}, 'statusPage');
      const url = statusJsonUrl(deps.statusPages[args.service]);
      const res = await httpRequest(fetchImpl, { url, timeoutMs, label: `${args.service} status page` });
      if (!res.ok) {
        // Not reaching the vendor's status page says nothing about the vendor.
        return makeFinding(
          input.probeId,
          'unknown',
          `cannot read the ${args.service} status: ${res.message}`,
        );
      }
      if (res.status !== 200) {
        return makeFinding(input.probeId, 'unknown', `${args.service} status page answered ${res.status}`, {
          httpStatus: res.status,
        });
      }
      const body = parseJsonBody(statusPageResponseSchema, res.body);
      if (!body.ok) {
        return makeFinding(input.probeId, 'unknown', `${args.service} status page: ${body.error}`);
      }
      const { indicator, description } = body.value.status;
      const status = STATUSPAGE_INDICATOR[indicator] ?? 'unknown';
      const said = description ? `: ${description}` : '';
      return makeFinding(input.probeId, status, `${args.service} status is "${indicator}"${said}`, {
        indicator,
      });
    },
  };
}

/** A harmless push in Pub/Sub's shape: the platform acknowledges it without fetching mail. */
export function gmailTestPush(incidentId: string): PubSubPush {
  const data = { emailAddress: 'incident-probe@invalid', historyId: '0' };
  return {
    message: {
      data: Buffer.from(JSON.stringify(data)).toString('base64'),
      messageId: `probe-${incidentId}-${Date.now()}`,
      publishTime: new Date().toISOString(),
      attributes: { source: 'fte-incident-response', probe: 'true' },
    },
    subscription: 'projects/fte-incident-response/subscriptions/probe',
  };
}

/**
 * Results of actions this worker process already performed, by idempotency key, so a retried activity
 * returns the first result instead of acting again. Bounded: the oldest keys are forgotten first.
 */
export class RecentKeys<V> {
  private readonly entries = new Map<string, V>();
  constructor(private readonly limit = 1_000) {}
  get(key: string): V | undefined {
    return this.entries.get(key);
  }
  set(key: string, value: V): void {
    this.entries.set(key, value);
    if (this.entries.size > this.limit) {
      const oldest = this.entries.keys().next().value;
      if (oldest !== undefined) this.entries.delete(oldest);
    }
  }
}
