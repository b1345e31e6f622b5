import { z } from 'zod';
import type { ActionInput, ActionResult, ProbeInput } from '../domain/activity-contract.js';
import type { Finding } from '../domain/findings.js';
import { activityError, makeFinding, parseActivityArgs, type ErrorKind } from './common.js';
import { describeUrl, httpRequest, parseJsonBody, RecentKeys, type HttpOutcome } from './http.js';

/**
 * The platform's Gmail watch, as its admin endpoint reports it: Gmail's `users.watch` answer, where
 * `expiration` is milliseconds since the epoch (Gmail sends int64 values as strings).
 */
export const gmailWatchSchema = z.object({
  historyId: z.union([z.string().regex(/^\d+$/), z.number().int().min(0)]).transform(String),
  expiration: z
    .union([z.string().regex(/^\d+$/), z.number().int().min(0)])
    .transform(Number)
    .pipe(z.number().int().min(0)),
});
export type GmailWatch = z.output<typeof gmailWatchSchema>;

export interface GmailActivityDeps {
  /** The platform's watch endpoint: GET reads the current watch, POST renews it. */
  watchUrl: string;
  /** Bearer token of the admin endpoint. */
  token?: string;
  timeoutMs?: number;
  fetch?: typeof fetch;
  /** Clock, for tests of the expiry arithmetic. */
  now?: () => number;
}

const HOUR_MS = 3_600_000;

// Strict: an unknown key (a typo) is an error, not an argument silently left out.
const watchProbeArgs = z.strictObject({
  /** Less time than this left is "degraded": renew before it lapses. */
  warnHours: z.number().positive().default(24),
});

const renewArgs = z.strictObject({});

/** Argument schemas of the probe and the action, by name: what they parse and what `runbook lint` checks. */
export const gmailProbeArgs = { gmailWatch: watchProbeArgs } as const;
export const gmailActionArgs = { renewGmailWatch: renewArgs } as const;

const roundHours = (ms: number) => Math.round((ms / HOUR_MS) * 10) / 10;

function failureKind(res: HttpOutcome): ErrorKind {
  if (!res.ok) return res.failure === 'timeout' ? 'TimeoutError' : 'UnavailableError';
  if (res.status === 400 || res.status === 422) return 'BadRequestError';
  if (res.status === 401 || res.status === 403) return 'ForbiddenError';
  if (res.status === 404) return 'NotFoundError';
  if (res.status === 409 || res.status === 412) return 'PreconditionFailedError';
  if (res.status === 429 || res.status === 503) return 'UnavailableError';
  return 'ServerError';
}

export type RenewResult = ActionResult & { expiration: string; historyId: string };

/** The Gmail watch probe and its renewal action, both through the platform's admin endpoint. */
export function gmailActivities(deps: GmailActivityDeps) {
  const fetchImpl = deps.fetch ?? fetch;
  const timeoutMs = deps.timeoutMs ?? 10_000;
  const now = deps.now ?? Date.now;
  const secrets = deps.token ? [deps.token] : [];
  const headers: Record<string, string> = deps.token ? { authorization: `Bearer ${deps.token}` } : {};
  const label = `Gmail watch endpoint ${describeUrl(deps.watchUrl)}`;
  const renewed = new RecentKeys<RenewResult>();

  return {
    /** How long the Gmail watch has left: degraded under `warnHours`, down once expired. */
    async gmailWatch(input: ProbeInput): Promise<Finding> {
      const args = parseActivityArgs(gmailProbeArgs.gmailWatch, input.args ?? {}, 'gmailWatch');
      const res = await httpRequest(fetchImpl, { url: deps.watchUrl, headers, timeoutMs, secrets, label });
      if (!res.ok) {
        return makeFinding(
          input.probeId,
          'unknown',
          `cannot read the Gmail watch: ${res.message}`,
          {},
          [],
          secrets,
        );
      }
      if (res.status === 401 || res.status === 403) {
        return makeFinding(
          input.probeId,
          'unknown',
          `${label} rejected the admin token (${res.status}); check the token the worker uses`,
          { httpStatus: res.status },
        );
      }
      if (res.status !== 200) {
        return makeFinding(input.probeId, 'unknown', `${label} answered ${res.status}`, {
          httpStatus: res.status,
        });
      }
      const body = parseJsonBody(gmailWatchSchema, res.body);
      if (!body.ok) return makeFinding(input.probeId, 'unknown', `${label}: ${body.error}`);
      const { expiration, historyId } = body.value;
      const leftMs = expiration - now();
      const hoursLeft = roundHours(leftMs);
      const metrics = { hoursLeft, expiration: new Date(expiration).toISOString(), historyId };
      if (leftMs <= 0) {
        return makeFinding(
          input.probeId,
          'down',
          `the Gmail watch expired ${roundHours(-leftMs)} h ago (${metrics.expiration}); no new mail is pushed`,
          metrics,
        );
      }
      if (hoursLeft < args.warnHours) {
        return makeFinding(
          input.probeId,
          'degraded',
          `the Gmail watch expires in ${hoursLeft} h (${metrics.expiration}); renew it`,
          metrics,
        );
      }
      return makeFinding(input.probeId, 'ok', `the Gmail watch is valid for ${hoursLeft} h more`, metrics);
    },

    /**
     * Re-runs the Gmail watch setup. The idempotency key goes to the platform as `Idempotency-Key` and is
     * remembered here, so a retry with the same key returns the first renewal instead of renewing again.
     */
    async renewGmailWatch(input: ActionInput): Promise<RenewResult> {
      parseActivityArgs(gmailActionArgs.renewGmailWatch, input.args ?? {}, 'renewGmailWatch');
      const earlier = renewed.get(input.idempotencyKey);
      if (earlier) return { ...earlier, changed: false, summary: `already renewed: ${earlier.summary}` };
      const res = await httpRequest(fetchImpl, {
        url: deps.watchUrl,
        method: 'POST',
        headers: { ...headers, 'idempotency-key': input.idempotencyKey },
        timeoutMs,
        secrets,
        label,
      });
      if (!res.ok)
        throw activityError(failureKind(res), `renewing the Gmail watch failed: ${res.message}`, secrets);
      if (res.status !== 200 && res.status !== 201) {
        throw activityError(
          failureKind(res),
          `renewing the Gmail watch failed: ${label} answered ${res.status}`,
        );
      }
      const body = parseJsonBody(gmailWatchSchema, res.body);
      if (!body.ok) throw activityError('ServerError', `renewing the Gmail watch: ${label}: ${body.error}`);
      const expiration = new Date(body.value.expiration).toISOString();
      const hours = roundHours(body.value.expiration - now());
      const replayed = res.headers.get('idempotent-replayed') === 'true';
      const result: RenewResult = {
        changed: !replayed,
        summary: `Gmail watch ${replayed ? 'was already renewed' : 'renewed'}: expires ${expiration} (in ${hours} h)`,
        expiration,
        historyId: body.value.historyId,
      };
      renewed.set(input.idempotencyKey, result);
      return result;
    },
  };
}
