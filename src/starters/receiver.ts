import { pathToFileURL } from 'node:url';
import { Client, Connection } from '@temporalio/client';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import rateLimit from '@fastify/rate-limit';
import type { DestinationStream } from 'pino';
import { ConfigError } from '../config.js';
import { createLogger, type Logger, type LogLevel } from '../logging.js';
import { clientTracingInterceptors, RECEIVER_SERVICE_NAME, startTracing, tracesUrl } from '../tracing.js';
import { DEFAULT_SCOPE, type Alert } from '../domain/alerts.js';
import type { Runbook } from '../domain/runbook.js';
import { InvalidFileError, loadRunbookDir, parseYamlFile } from '../activities/runbooks.js';
import { parsePrivateKey } from '../action-signing.js';
import { contactsSchema } from '../domain/contacts.js';
import { clientConnectionOptions, loadTemporalSettings } from '../temporal.js';
import { TASK_QUEUE } from '../workflows/api.js';
import { deliverAlerts, signalIncident, type Delivery, type StartOptions } from './deliver.js';
import {
  alertmanagerWebhookSchema,
  declareIncidentSchema,
  describeIssues,
  toDomainAlert,
} from './alertmanager-payload.js';
import { KnownRuns } from './known-runs.js';
import { AUTH_CHALLENGES, tokenChecker } from './receiver-auth.js';
import { loadReceiverConfig, type ReceiverConfig } from './receiver-config.js';
import { createReceiverMetrics, type RejectionReason } from './receiver-metrics.js';
import { temporalUnavailableReason, withTemporalDeadline } from './receiver-temporal.js';
import { registerSlackInteractions, type SlackInteractionOptions } from './slack-interactions.js';

export type MatchableRunbook = Pick<Runbook, 'id' | 'title' | 'match'>;

export interface ReceiverOptions {
  client: Client;
  /** Runbooks alerts are matched against; exactly one must be the fallback (triage). */
  runbooks: MatchableRunbook[];
  /** Shared secret: a bearer token, or the password of basic auth with any username. */
  token: string;
  taskQueue?: string;
  /** Largest accepted request body in bytes (413 above it). Default 1 MiB. */
  bodyLimit?: number;
  /** Deadline for the Temporal calls of one request; past it the answer is 503. Default 10 s. */
  temporalTimeoutMs?: number;
  /** How long incident metrics read from Temporal are reused across scrapes. Default 15 s. */
  metricsCacheMs?: number;
  /** Namespaces incidents act in; alerts for any other open a triage incident. Absent: no check here. */
  actionNamespaces?: readonly string[];
  /** Requests a minute one source address may make (429 with Retry-After above it); absent or 0: no limit. */
  rateLimitPerMinute?: number;
  /** Slack's interactivity endpoint (POST /slack/interactions); absent: it answers 404. */
  slack?: Omit<SlackInteractionOptions, 'client' | 'temporalTimeoutMs' | 'onRejected'>;
  /** /metrics asks for the token too (it names incidents and runbooks). Default: open, for scrapers. */
  metricsRequireToken?: boolean;
  logger?: FastifyBaseLogger;
}

export const DEFAULT_BODY_LIMIT = 1024 * 1024;
/** The workflow takes at most 500 alerts per signal; payloads are delivered in chunks below that. */
const MAX_ALERTS_PER_DELIVERY = 500;
const MAX_CHUNK_BYTES = 256 * 1024;

/** The receiver's logger: the shared one (src/logging.ts), which never writes credentials. */
export function createReceiverLogger(level: LogLevel = 'info', destination?: DestinationStream): Logger {
  return createLogger({ level, ...(destination ? { destination } : {}) });
}

/** Alerts in chunks small enough for one signal each (count and size). */
function chunksOf(alerts: Alert[]): Alert[][] {
  const chunks: Alert[][] = [];
  let current: Alert[] = [];
  let bytes = 0;
  for (const alert of alerts) {
    const size = JSON.stringify(alert).length;
    if (current.length > 0 && (current.length >= MAX_ALERTS_PER_DELIVERY || bytes + size > MAX_CHUNK_BYTES)) {
      chunks.push(current);
      current = [];
      bytes = 0;
    }
    current.push(alert);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

function mergeDeliveries(all: Delivery[]): Delivery[] {
  const merged = new Map<string, Delivery>();
  for (const d of all) {
    const known = merged.get(d.workflowId);
    if (known) known.alerts += d.alerts;
    else merged.set(d.workflowId, { ...d });
  }
  return [...merged.values()];
}

/**
 * The Alertmanager receiver: authenticates, validates, routes alerts to runbooks and delivers them to
 * their incidents (signalWithStart through deliverAlerts), and reports what it did in /metrics.
 */
export function createReceiver(options: ReceiverOptions): FastifyInstance {
  const { client, runbooks, token } = options;
  const taskQueue = options.taskQueue ?? TASK_QUEUE;
  const timeoutMs = options.temporalTimeoutMs ?? 10_000;
  if (!runbooks.some((rb) => rb.match.fallback)) {
    throw new Error('no fallback runbook (match.fallback: true): unmatched alerts would have nowhere to go');
  }
  const checkAuth = tokenChecker(token);
  const start: StartOptions = {
    client,
    taskQueue,
    ...(options.actionNamespaces ? { actionNamespaces: options.actionNamespaces } : {}),
  };
  const knownRuns = new KnownRuns();

  const app = Fastify({
    bodyLimit: options.bodyLimit ?? DEFAULT_BODY_LIMIT,
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
  });
  const metrics = createReceiverMetrics({
    client,
    taskQueue,
    cacheMs: options.metricsCacheMs ?? 15_000,
    timeoutMs: Math.min(timeoutMs, 5_000),
    onError: (error) => app.log.warn({ err: error }, 'could not read incident metrics from Temporal'),
  });

  function reject(reply: FastifyReply, reason: RejectionReason, code: number, body: Record<string, unknown>) {
    metrics.rejected.inc({ reason });
    return reply.code(code).send(body);
  }

  async function authenticate(request: FastifyRequest, reply: FastifyReply) {
    const result = checkAuth(request.headers.authorization);
    if (result === 'ok') return;
    request.log.info({ auth: result }, 'request refused: authentication');
    reply.header('WWW-Authenticate', AUTH_CHALLENGES);
    return reject(reply, 'auth', 401, {
      error: result === 'missing' ? 'authentication required' : 'invalid credentials',
    });
  }

  /** 503 when Temporal cannot be reached (the sender retries), 500 for anything else. */
  function temporalFailure(request: FastifyRequest, reply: FastifyReply, error: unknown) {
    const unavailable = temporalUnavailableReason(error);
    if (unavailable) {
      request.log.warn({ grpc: unavailable }, 'Temporal is unavailable; answered 503 so the sender retries');
      reply.header('Retry-After', '30');
      return reject(reply, 'unavailable', 503, {
        error: `Temporal is unavailable (${unavailable}); retry later`,
      });
    }
    request.log.error({ err: error }, 'delivery failed');
    return reject(reply, 'error', 500, { error: 'internal error while delivering to Temporal' });
  }

  // Per source address; the health probes are exempt (the kubelet asks often, from one address).
  if (options.rateLimitPerMinute) {
    void app.register(rateLimit, {
      max: options.rateLimitPerMinute,
      timeWindow: 60_000,
      keyGenerator: (request) => request.ip,
      allowList: (request) => request.url === '/healthz' || request.url === '/readyz',
      errorResponseBuilder: (_request, context) => ({
        statusCode: 429,
        message: `more than ${context.max} requests a minute from this address; retry in ${context.after}`,
      }),
    });
  }

  app.setErrorHandler((error: Error & { statusCode?: number; code?: string }, request, reply) => {
    const status = error.statusCode ?? 500;
    if (status === 429) {
      request.log.warn({ ip: request.ip }, 'request refused: rate limit');
      return reject(reply, 'rate-limited', 429, { error: error.message });
    }
    if (status === 413) {
      return reject(reply, 'oversize', 413, {
        error: `request body is larger than ${app.initialConfig.bodyLimit} bytes`,
      });
    }
    if (status >= 400 && status < 500) {
      return reject(reply, 'malformed', status, { error: 'malformed request', problems: [error.message] });
    }
    request.log.error({ err: error }, 'unexpected error');
    return reject(reply, 'error', 500, { error: 'internal error' });
  });

  // Routes in a plugin registered after the rate limit, so that its hook sees them.
  void app.register(async (app) => {
    app.get('/healthz', async () => ({ status: 'ok' }));

    if (options.slack) {
      registerSlackInteractions(app, {
        ...options.slack,
        client,
        temporalTimeoutMs: timeoutMs,
        onRejected: (reason) => metrics.rejected.inc({ reason }),
      });
    }

    app.get('/readyz', async (request, reply) => {
      try {
        await withTemporalDeadline(client, Math.min(timeoutMs, 2_000), () =>
          client.workflowService.describeNamespace({ namespace: client.options.namespace }),
        );
        return { status: 'ready', namespace: client.options.namespace };
      } catch (error) {
        const reason = temporalUnavailableReason(error) ?? 'error';
        request.log.warn({ grpc: reason }, 'not ready: Temporal is not reachable');
        return reply
          .code(503)
          .send({ status: 'unavailable', reason: `Temporal is not reachable (${reason})` });
      }
    });

    app.get(
      '/metrics',
      { onRequest: options.metricsRequireToken ? authenticate : [] },
      async (_request, reply) => {
        const text = await metrics.render();
        return reply.type(metrics.registry.contentType).send(text);
      },
    );

    app.post('/webhooks/alertmanager', { onRequest: authenticate }, async (request, reply) => {
      const parsed = alertmanagerWebhookSchema.safeParse(request.body);
      if (!parsed.success) {
        const problems = describeIssues(parsed.error);
        request.log.info({ problems }, 'Alertmanager payload refused');
        return reject(reply, 'malformed', 400, { error: 'invalid Alertmanager webhook payload', problems });
      }
      const payload = parsed.data;
      const alerts = payload.alerts.map(toDomainAlert);
      for (const alert of alerts) metrics.alertsReceived.inc({ status: alert.status });
      if (payload.truncatedAlerts > 0) {
        request.log.warn(
          { groupKey: payload.groupKey, truncated: payload.truncatedAlerts },
          'Alertmanager truncated this group (max_alerts); the truncated alerts never reach the incident',
        );
      }
      let deliveries: Delivery[];
      try {
        deliveries = await withTemporalDeadline(client, timeoutMs, async () => {
          const done: Delivery[] = [];
          for (const chunk of chunksOf(alerts))
            done.push(...(await deliverAlerts(start, runbooks, chunk, 'alertmanager')));
          return done;
        });
      } catch (error) {
        return temporalFailure(request, reply, error);
      }
      // Deduplicated: delivered to a run that was open before this request (judged at its first chunk;
      // resolved alerts only ever reach a run that is open).
      const wasOpen = new Map<string, boolean>();
      let deduplicated = 0;
      for (const d of deliveries) {
        let open = wasOpen.get(d.workflowId);
        if (open === undefined) {
          open = d.runId ? knownRuns.delivered(d.workflowId, d.runId) : d.delivered;
          wasOpen.set(d.workflowId, open);
        }
        if (open) deduplicated += d.alerts;
      }
      deliveries = mergeDeliveries(deliveries);
      metrics.alertsDeduplicated.inc(deduplicated);
      request.log.info(
        {
          groupKey: payload.groupKey,
          alerts: alerts.length,
          deduplicated,
          incidents: deliveries.map((d) => d.workflowId),
        },
        'alerts delivered',
      );
      return reply.code(202).send({
        status: 'accepted',
        alerts: alerts.length,
        truncatedAlerts: payload.truncatedAlerts,
        incidents: deliveries.map(({ workflowId, runbookId, scope, alerts: n, delivered }) => ({
          workflowId,
          runbookId,
          scope,
          alerts: n,
          delivered,
        })),
      });
    });

    app.post('/incidents', { onRequest: authenticate }, async (request, reply) => {
      const parsed = declareIncidentSchema.safeParse(request.body);
      if (!parsed.success) {
        return reject(reply, 'malformed', 400, {
          error: 'invalid incident declaration',
          problems: describeIssues(parsed.error),
        });
      }
      const d = parsed.data;
      const runbook = runbooks.find((rb) => rb.id === d.runbook);
      if (!runbook) {
        const known = runbooks.map((rb) => rb.id).join(', ');
        return reject(reply, 'malformed', 400, {
          error: 'invalid incident declaration',
          problems: [`runbook: unknown runbook "${d.runbook}" (runbooks: ${known})`],
        });
      }
      const scope = d.scope ?? DEFAULT_SCOPE;
      let workflowId: string;
      try {
        const handle = await withTemporalDeadline(client, timeoutMs, () =>
          signalIncident(
            start,
            {
              runbookId: runbook.id,
              scope,
              source: 'declared',
              declaredBy: d.by,
              ...(d.title ? { title: d.title } : {}),
              ...(d.severity ? { severity: d.severity } : {}),
            },
            [],
            d.title ?? runbook.title,
          ),
        );
        workflowId = handle.workflowId;
      } catch (error) {
        return temporalFailure(request, reply, error);
      }
      request.log.info({ workflowId, by: d.by }, 'incident declared');
      return reply.code(202).send({ status: 'accepted', workflowId, runbookId: runbook.id, scope });
    });
  });

  return app;
}

/** Starts the receiver from the environment; SIGINT/SIGTERM close the server, then the Temporal connection. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const config: ReceiverConfig = await loadReceiverConfig(env);
  const settings = await loadTemporalSettings(env);
  const { runbooks } = await loadRunbookDir(config.runbooksDir, config.contactsFile);
  const traces = tracesUrl(env);
  const logger = createReceiverLogger(config.logLevel);
  const tracing = traces
    ? startTracing({ serviceName: RECEIVER_SERVICE_NAME, url: traces, logger })
    : undefined;
  // Lazy: the receiver starts while Temporal is down and answers 503 (readyz too) until it is back.
  const connection = Connection.lazy(clientConnectionOptions(settings));
  const client = new Client({
    connection,
    namespace: settings.namespace,
    interceptors: clientTracingInterceptors(tracing),
    ...(settings.dataConverter ? { dataConverter: settings.dataConverter } : {}),
  });
  const app = createReceiver({
    client,
    runbooks: runbooks.map((r) => r.runbook),
    token: config.token,
    taskQueue: settings.taskQueue,
    bodyLimit: config.bodyLimit,
    temporalTimeoutMs: config.temporalTimeoutMs,
    metricsCacheMs: config.metricsCacheMs,
    rateLimitPerMinute: config.rateLimitPerMinute,
    actionNamespaces: config.actionNamespaces,
    ...(config.slack
      ? {
          slack: {
            signingSecret: config.slack.signingSecret,
            signerKey: parsePrivateKey(config.slack.signerKeyPem, config.slack.signerKeyFile),
            responseUrlPrefix: config.slack.responseUrlPrefix,
            contacts: async () => (await parseYamlFile(config.contactsFile, contactsSchema)).value,
          },
        }
      : {}),
    metricsRequireToken: config.metricsRequireToken,
    logger,
  });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down');
    void app
      .close()
      .then(() => connection.close())
      .then(() => tracing?.shutdown())
      .then(
        () => process.exit(0),
        (error: unknown) => {
          logger.error({ err: error }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  await app.listen({ host: config.host, port: config.port });
  logger.info(
    {
      runbooks: runbooks.length,
      taskQueue: settings.taskQueue,
      temporal: settings.address,
      namespace: settings.namespace,
      ...(tracing ? { traces: tracing.endpoint } : {}),
    },
    'receiver ready',
  );
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    const known = error instanceof ConfigError || error instanceof InvalidFileError;
    process.stderr.write(
      `${known || !(error instanceof Error) ? String((error as Error).message ?? error) : error.stack}\n`,
    );
    process.exit(known ? 2 : 1);
  });
}
