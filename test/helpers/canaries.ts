import { randomBytes } from 'node:crypto';
import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

// Canary secrets: distinctive values planted where the product meets secrets, and the search for them in
// everything it wrote (histories, logs, notifications, the ledger), in the forms a leaked secret takes.

/** A distinctive value that occurs nowhere by chance: `canary-<32 hex digits>`. */
export function canary(): string {
  return `canary-${randomBytes(16).toString('hex')}`;
}

/** A secret value planted somewhere, and what it is (for the failure message). */
export interface Canary {
  name: string;
  value: string;
}

/**
 * The forms a leaked value takes: itself, and base64 / base64url (how a Kubernetes Secret's data, a basic-auth
 * header and many encoders carry it), padded and not.
 */
export function leakForms(value: string): string[] {
  const b64 = Buffer.from(value, 'utf8').toString('base64');
  return [...new Set([value, b64, b64.replace(/=+$/, ''), Buffer.from(value, 'utf8').toString('base64url')])];
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})+(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * A JSON document as text, followed by every base64 string in it decoded (and, where that is JSON again,
 * its base64 strings decoded too): `temporal workflow show --output json` prints payloads as base64.
 */
export function withDecodedBase64(json: string): string {
  const out = [json];
  const walk = (value: unknown, depth: number): void => {
    if (depth > 50) return;
    if (typeof value === 'string') {
      if (value.length >= 8 && BASE64.test(value)) {
        const decoded = Buffer.from(value, 'base64').toString('utf8');
        out.push(decoded);
        try {
          walk(JSON.parse(decoded), depth + 1);
        } catch {
          // Not JSON: the decoded text is searched as it is.
        }
      }
    } else if (Array.isArray(value)) {
      for (const v of value) walk(v, depth + 1);
    } else if (value && typeof value === 'object') {
      for (const v of Object.values(value)) walk(v, depth + 1);
    }
  };
  try {
    walk(JSON.parse(json), 0);
  } catch {
    // Not one JSON document (e.g. JSON lines): searched as text only.
  }
  return out.join('\n');
}

/** Where a canary showed up: which canary, in which source, with some text around it. */
export interface Leak {
  canary: string;
  form: string;
  source: string;
  context: string;
}

/** Every occurrence of any canary (in any of its forms) in the sources. */
export function findLeaks(canaries: Canary[], sources: Record<string, string>): Leak[] {
  const leaks: Leak[] = [];
  for (const c of canaries) {
    for (const form of leakForms(c.value)) {
      for (const [source, text] of Object.entries(sources)) {
        const at = text.indexOf(form);
        if (at < 0) continue;
        leaks.push({
          canary: c.name,
          form: form === c.value ? 'as is' : `encoded (${form})`,
          source,
          context: text.slice(Math.max(0, at - 200), at + form.length + 100),
        });
      }
    }
  }
  return leaks;
}

/** One request a recording server received. */
export interface ReceivedRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

/**
 * A local HTTP endpoint (a Slack incoming webhook, a paging webhook) that records every request and answers
 * what `answer` says for it (the n-th request, from 0).
 */
export async function recordingServer(
  answer: (request: ReceivedRequest, n: number) => { status: number; body?: string },
): Promise<{ url: string; received: ReceivedRequest[]; close(): Promise<void> }> {
  const received: ReceivedRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const request: ReceivedRequest = {
        method: req.method ?? '',
        url: req.url ?? '',
        headers: req.headers,
        body: Buffer.concat(chunks).toString('utf8'),
      };
      const { status, body = '' } = answer(request, received.length);
      received.push(request);
      res.writeHead(status, { 'content-type': 'text/plain' }).end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
