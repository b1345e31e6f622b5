import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { DRILL_LABEL, DRILL_NOTIFY_LABEL } from '../domain/alerts.js';
import type { Severity } from '../domain/severity.js';
import type { AlertmanagerWebhook } from '../starters/alertmanager-payload.js';
import { CliError, ExitCode, refused, unreachable, usageError } from './errors.js';

// What `incidentctl drill --via alertmanager` sends: the webhook Alertmanager would send for the Prometheus
// rule that matches the scenario, marked as a drill, and the receiver's answer to it.

export const DEFAULT_RECEIVER_URL = 'http://127.0.0.1:8088/webhooks/alertmanager';
const root = fileURLToPath(new URL('../..', import.meta.url));
/** Where `make start` keeps the receiver token it generated. */
export const DEFAULT_TOKEN_FILE = `${root}.data/receiver-token`;

/** Alertmanager's "no end time" value, in endsAt of firing alerts. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface DrillAlert {
  scenario: string;
  alertname: string;
  scope: string;
  severity: Severity;
  /** The drill was started with --notify: its notifications reach people. */
  notify: boolean;
  /** What the scenario breaks, for the alert's summary. */
  breaks: string;
  /** When the rule started firing: when the fault was applied. */
  startsAt: Date;
}

/** Prometheus rules of this platform say `critical` for what pages at once (P1), `warning` otherwise. */
export const severityLabel = (severity: Severity): string => (severity === 'P1' ? 'critical' : 'warning');

export function drillLabels(a: DrillAlert): Record<string, string> {
  return {
    alertname: a.alertname,
    namespace: a.scope,
    severity: severityLabel(a.severity),
    [DRILL_LABEL]: 'true',
    ...(a.notify ? { [DRILL_NOTIFY_LABEL]: 'true' } : {}),
  };
}

/** Like Alertmanager's: a hash of the label set, 16 hex digits; the same labels give the same fingerprint. */
export function labelFingerprint(labels: Record<string, string>): string {
  const canonical = Object.keys(labels)
    .sort()
    .map((k) => `${k}\u00ff${labels[k]}`)
    .join('\u00fe');
  return createHash('sha256').update(canonical).digest('hex').slice(0, 16);
}

/** The webhook body (version 4) Alertmanager sends for the drill's alert, firing or resolved at `at`. */
export function drillWebhook(a: DrillAlert, status: 'firing' | 'resolved', at: Date): AlertmanagerWebhook {
  const labels = drillLabels(a);
  const annotations = {
    summary: `DRILL ${a.scenario}: ${a.breaks}`,
    description: `A rehearsal sent by incidentctl drill ${a.scenario}; the fault is real on the target, the alert is simulated.`,
  };
  const groupLabels = { alertname: a.alertname, namespace: a.scope };
  return {
    version: '4',
    groupKey: `{}:{alertname="${a.alertname}", namespace="${a.scope}"}`,
    truncatedAlerts: 0,
    status,
    receiver: 'incidentctl-drill',
    groupLabels,
    commonLabels: labels,
    commonAnnotations: annotations,
    externalURL: '',
    alerts: [
      {
        status,
        labels,
        annotations,
        startsAt: a.startsAt.toISOString(),
        endsAt: status === 'resolved' ? at.toISOString() : ZERO_TIME,
        generatorURL: '',
        fingerprint: labelFingerprint(labels),
      },
    ],
  };
}

/** The receiver's 202 answer (src/starters/receiver.ts). */
export const receiverAnswerSchema = z.object({
  status: z.literal('accepted'),
  alerts: z.number().int(),
  incidents: z.array(
    z.object({
      workflowId: z.string(),
      runbookId: z.string(),
      scope: z.string(),
      alerts: z.number().int(),
      delivered: z.boolean(),
    }),
  ),
});
export type ReceiverAnswer = z.infer<typeof receiverAnswerSchema>;

const receiverErrorSchema = z.object({ error: z.string(), problems: z.array(z.string()).optional() });

/** The receiver token as the receiver reads it: RECEIVER_TOKEN, RECEIVER_TOKEN_FILE, else make start's file. */
export async function receiverToken(env: NodeJS.ProcessEnv): Promise<string> {
  if (env.RECEIVER_TOKEN?.trim()) return env.RECEIVER_TOKEN.trim();
  const file = env.RECEIVER_TOKEN_FILE || DEFAULT_TOKEN_FILE;
  try {
    const token = (await readFile(file, 'utf8')).trim();
    if (token) return token;
  } catch {
    // Reported below.
  }
  throw usageError(
    `no receiver token: set RECEIVER_TOKEN or RECEIVER_TOKEN_FILE (${file} is missing or empty; make start writes it)`,
  );
}

export interface ReceiverClient {
  url: string;
  /** GET /readyz beside the webhook: the receiver runs and reaches Temporal. */
  ready(): Promise<void>;
  send(payload: AlertmanagerWebhook): Promise<ReceiverAnswer>;
}

export function receiverClient(url: string, token: string, fetchImpl: typeof fetch = fetch): ReceiverClient {
  if (!URL.canParse(url) || !/^https?:$/.test(new URL(url).protocol)) {
    throw usageError(`--receiver: "${url}" is not an http(s) URL`);
  }
  const noAnswer = (what: string, error: unknown) => {
    const reason =
      error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : '';
    return unreachable(
      `the Alertmanager receiver at ${url} did not answer ${what} (${reason || 'no answer'}): is it running? (--receiver URL)`,
      error,
    );
  };
  return {
    url,
    async ready() {
      const readyz = new URL('/readyz', url).toString();
      let response: Response;
      try {
        response = await fetchImpl(readyz, { signal: AbortSignal.timeout(10_000) });
      } catch (error) {
        throw noAnswer('GET /readyz', error);
      }
      if (response.status !== 200) {
        const body = await response.text();
        throw unreachable(`the receiver at ${url} is not ready (${response.status}): ${body.slice(0, 300)}`);
      }
    },
    async send(payload) {
      let response: Response;
      try {
        response = await fetchImpl(url, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(payload),
          signal: AbortSignal.timeout(30_000),
        });
      } catch (error) {
        throw noAnswer('the alert', error);
      }
      const text = await response.text();
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        body = text;
      }
      if (response.status === 202) {
        const parsed = receiverAnswerSchema.safeParse(body);
        if (parsed.success) return parsed.data;
        throw refused(
          `the receiver at ${url} accepted the alert but answered something unexpected: ${text.slice(0, 300)}`,
        );
      }
      const error = receiverErrorSchema.safeParse(body);
      const reason = error.success
        ? `${error.data.error}${error.data.problems ? `: ${error.data.problems.join('; ')}` : ''}`
        : text.slice(0, 300);
      if (response.status === 401) {
        throw usageError(
          `the receiver refused the token (${reason}): set RECEIVER_TOKEN or RECEIVER_TOKEN_FILE`,
        );
      }
      if (response.status === 503) throw unreachable(`the receiver could not deliver the alert: ${reason}`);
      throw new CliError(ExitCode.refused, `the receiver refused the alert (${response.status}): ${reason}`);
    },
  };
}
