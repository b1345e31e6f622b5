import { setTimeout as sleep } from 'node:timers/promises';
import type { Contacts, Target } from '../domain/contacts.js';
import { redact } from './common.js';
import { describeUrl, httpRequest } from './http.js';
import { logLine, slackMessage, webhookPayload, type OutgoingMessage } from './notify-message.js';
import { secretSetting } from '../secret-files.js';

/** One target and everyone who reaches it: a person in two roles, or two people on one channel, get one message. */
export interface Delivery {
  key: string;
  target: Target;
  recipients: string[];
}

function targetKey(person: string, target: Target): string {
  switch (target.type) {
    case 'slack':
      return `slack:${target.webhookUrlEnv}`;
    case 'webhook':
      return `webhook:${target.url}:${target.tokenEnv ?? ''}`;
    case 'log':
      return `log`;
    default:
      return `${person}:unknown`;
  }
}

/** Where each message goes for these people, deduplicated by target. */
export function planDeliveries(contacts: Contacts, people: string[]): Delivery[] {
  const byKey = new Map<string, Delivery>();
  for (const name of people) {
    const person = contacts.people.find((p) => p.name === name);
    for (const target of person?.targets ?? []) {
      const key = targetKey(name, target);
      const delivery = byKey.get(key) ?? { key, target, recipients: [] };
      if (!delivery.recipients.includes(name)) delivery.recipients.push(name);
      byKey.set(key, delivery);
    }
  }
  return [...byKey.values()];
}

const safeDecode = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

/** Parts of a secret URL shorter than this are not redacted on their own (they would hit ordinary words). */
const MIN_URL_PART = 16;

/**
 * A Slack webhook URL is a secret as a whole and in the parts an endpoint's error may quote back (a proxy's
 * 404 names the path it was asked for): its path and query, its long path segments (Slack's token) and a
 * password in it.
 */
export function urlSecretParts(value: string): string[] {
  if (!URL.canParse(value)) return [value];
  const u = new URL(value);
  const pathAndQuery = `${u.pathname}${u.search}`;
  const parts = [
    value,
    `${u.host}${pathAndQuery}`,
    pathAndQuery,
    ...u.pathname.split('/'),
    u.search.slice(1),
    u.password,
    safeDecode(u.password),
  ];
  return [value, ...parts.filter((p) => p.length >= MIN_URL_PART)];
}

/** Exact secret values the contacts point at, to strip from anything that is logged or returned. */
export function secretsOf(contacts: Contacts, env: NodeJS.ProcessEnv): string[] {
  const secrets = new Set<string>();
  for (const person of contacts.people) {
    for (const target of person.targets) {
      const name =
        target.type === 'slack'
          ? target.webhookUrlEnv
          : target.type === 'webhook'
            ? target.tokenEnv
            : undefined;
      let value: string | undefined;
      try {
        value = name ? secretSetting(env, name) : undefined;
      } catch {
        continue; // Unreadable: delivery says so; there is no value to hide.
      }
      if (!value) continue;
      for (const secret of target.type === 'slack' ? urlSecretParts(value) : [value]) secrets.add(secret);
    }
  }
  // Longest first: a whole URL is redacted before the parts of it.
  return [...secrets].sort((a, b) => b.length - a.length);
}

/** How a target is named in messages: by env variable or host, never by a secret. */
export function describeTarget(target: Target): string {
  switch (target.type) {
    case 'slack':
      return `Slack (${target.webhookUrlEnv})`;
    case 'webhook':
      return `webhook ${describeUrl(target.url)}`;
    case 'log':
      return 'log';
  }
}

export interface DeliveryContext {
  env: NodeJS.ProcessEnv;
  fetch: typeof fetch;
  log: (line: string) => void;
  timeoutMs: number;
  attempts: number;
  backoffMs: number;
  secrets: readonly string[];
}

export type DeliveryOutcome = { ok: true } | { ok: false; error: string };

interface PostRequest {
  url: string;
  body: unknown;
  headers?: Record<string, string>;
}

/** Posts JSON with retries on network failures, timeouts, 429 and 5xx; other answers are final. */
async function postWithRetry(
  ctx: DeliveryContext,
  label: string,
  req: PostRequest,
): Promise<DeliveryOutcome> {
  let last = '';
  for (let attempt = 1; attempt <= ctx.attempts; attempt++) {
    const res = await httpRequest(ctx.fetch, {
      url: req.url,
      method: 'POST',
      headers: { 'content-type': 'application/json', ...req.headers },
      body: JSON.stringify(req.body),
      timeoutMs: ctx.timeoutMs,
      secrets: ctx.secrets,
      label,
    });
    if (res.ok && res.status >= 200 && res.status < 300) return { ok: true };
    const retryable = !res.ok || res.status === 429 || res.status >= 500;
    last = res.ok
      ? `${label} answered ${res.status}${res.body ? ` (${res.body.slice(0, 100)})` : ''}`
      : res.message;
    if (!retryable) return { ok: false, error: last };
    if (attempt < ctx.attempts) await sleep(ctx.backoffMs * 2 ** (attempt - 1));
  }
  return { ok: false, error: `${last}; gave up after ${ctx.attempts} attempts` };
}

/** Sends one message to one target; never throws. */
export async function deliver(
  ctx: DeliveryContext,
  delivery: Delivery,
  message: OutgoingMessage,
): Promise<DeliveryOutcome> {
  const { target, recipients } = delivery;
  const label = describeTarget(target);
  try {
    switch (target.type) {
      case 'log':
        ctx.log(redact(logLine(message, recipients, new Date().toISOString()), ctx.secrets));
        return { ok: true };
      case 'slack': {
        const url = secretSetting(ctx.env, target.webhookUrlEnv);
        if (!url)
          return {
            ok: false,
            error: `environment variable ${target.webhookUrlEnv} is not set (nor ${target.webhookUrlEnv}_FILE)`,
          };
        if (!URL.canParse(url)) {
          return { ok: false, error: `environment variable ${target.webhookUrlEnv} does not hold a URL` };
        }
        return await postWithRetry(ctx, label, { url, body: slackMessage(message, recipients) });
      }
      case 'webhook': {
        const headers: Record<string, string> = {};
        if (message.idempotencyKey) headers['idempotency-key'] = message.idempotencyKey;
        if (target.tokenEnv) {
          const token = secretSetting(ctx.env, target.tokenEnv);
          if (!token)
            return {
              ok: false,
              error: `environment variable ${target.tokenEnv} (bearer token) is not set (nor ${target.tokenEnv}_FILE)`,
            };
          headers.authorization = `Bearer ${token}`;
        }
        const body = webhookPayload(message, recipients, new Date().toISOString());
        return await postWithRetry(ctx, label, { url: target.url, body, headers });
      }
    }
  } catch (error) {
    return { ok: false, error: error instanceof Error ? error.message : String(error) };
  }
}
