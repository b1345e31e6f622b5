import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { createReceiver } from '../../src/starters/receiver.js';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { projectRunbooks, terminateRunning, TOKEN } from '../receiver/harness.js';

// Generated requests against the receiver's whole HTTP pipeline (parsers, auth, validation), on the real
// Temporal dev server with no worker: each request is built either valid or with a defect the generator
// knows, so the test can say which answers are right and that only valid requests started incidents.
const BODY_LIMIT = 8 * 1024;
const RUNS = 10_000;

let env: TestWorkflowEnvironment;
let app: FastifyInstance;
let taskQueue: string;

beforeAll(async () => {
  env = await devServerEnv();
  taskQueue = uniqueName('receiver-fuzz');
  app = createReceiver({
    client: env.client,
    runbooks: await projectRunbooks(),
    token: TOKEN,
    taskQueue,
    bodyLimit: BODY_LIMIT,
    metricsCacheMs: 0,
  });
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  if (env) await terminateRunning(env.client, taskQueue);
  await env?.teardown();
});

type Defect = 'auth' | 'content-type' | 'json' | 'schema' | 'oversize' | 'none';

interface Generated {
  path: '/webhooks/alertmanager' | '/incidents';
  headers: Record<string, string>;
  body: string;
  defect: Defect;
}

const oddText = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom(
    '',
    ' ',
    '\u0000',
    '\u202e',
    '🔥🔥',
    'ǅ',
    '\ud800',
    'a'.repeat(300),
    '${{scope}}',
    '{{finding:x}}',
  ),
);
const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,20}$/);
const labels = (max: number) =>
  fc.dictionary(labelName, oddText, { maxKeys: max }).map((l) => ({ ...l, alertname: 'FTEFuzz' }));
const namespace = fc.stringMatching(/^[a-z][a-z0-9]{0,10}$/).map((s) => `fuzz-${s}`);
const timestamp = fc
  .date({ min: new Date('2020-01-01T00:00:00Z'), max: new Date('2030-01-01T00:00:00Z'), noInvalidDate: true })
  .map((d) => d.toISOString());

const validAlert = fc.record({
  status: fc.constantFrom('firing', 'resolved'),
  labels: fc.tuple(labels(40), namespace).map(([l, ns]) => ({ ...l, namespace: ns })),
  annotations: fc.dictionary(labelName, oddText, { maxKeys: 5 }),
  startsAt: timestamp,
  fingerprint: fc.stringMatching(/^[0-9a-f]{8,16}$/),
});
const validWebhook = fc.record({
  version: fc.constant('4'),
  groupKey: oddText,
  status: fc.constantFrom('firing', 'resolved'),
  receiver: fc.constant('fte-incident-response'),
  groupLabels: fc.constant({}),
  commonLabels: fc.constant({}),
  commonAnnotations: fc.constant({}),
  externalURL: fc.constant('http://127.0.0.1:9093'),
  alerts: fc.array(validAlert, { minLength: 1, maxLength: 3 }),
});
const validDeclaration = fc.record(
  {
    runbook: fc.constantFrom('all-channels-down', 'triage', 'gmail-channel-down'),
    scope: namespace,
    by: fc.constantFrom('alice', 'bob'),
    title: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 50 }).filter((t) => t.trim().length > 0),
  },
  { requiredKeys: ['runbook', 'by'] },
);

/** A JSON value that is certainly not a valid body: wrong types, missing or misspelt fields. */
const brokenWebhook = fc.oneof(
  fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
  validWebhook.chain((w) =>
    fc.oneof(
      fc.constantFrom('version', 'groupKey', 'status', 'receiver', 'alerts').map((k) => {
        const copy: Record<string, unknown> = { ...w };
        delete copy[k];
        return copy;
      }),
      fc.constant({ ...w, version: '3' }),
      fc.constant({ ...w, alerts: 'many' }),
      fc.constant({ ...w, truncatedAlerts: -1 }),
      fc.jsonValue().map((v) => ({ ...w, alerts: [{ ...w.alerts[0], startsAt: v === null ? 7 : v }] })),
      fc.constant({ ...w, alerts: [{ ...w.alerts[0], fingerprint: '' }] }),
      fc.constant({ ...w, alerts: [{ ...w.alerts[0], status: 'pending' }] }),
      fc.constant({ ...w, alerts: [{ ...w.alerts[0], labels: { alertname: 7 } }] }),
    ),
  ),
);
const brokenDeclaration = fc.oneof(
  fc.jsonValue().filter((v) => typeof v !== 'object' || v === null || Array.isArray(v)),
  validDeclaration.chain((d) =>
    fc.oneof(
      fc.constant({ ...d, by: undefined }),
      fc.constant({ ...d, by: '   ' }),
      fc.constant({ ...d, runbook: 'no-such-runbook' }),
      fc.constant({ ...d, severity: 'P0' }),
      fc.constant({ ...d, scope: 'Not A Namespace' }),
      oddText.map((extra) => ({ ...d, [`x${extra.length}`]: extra })),
    ),
  ),
);

const goodAuth = fc.constantFrom(
  `Bearer ${TOKEN}`,
  `Basic ${Buffer.from(`alertmanager:${TOKEN}`).toString('base64')}`,
);
const badAuth = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    'Bearer',
    'Bearer ',
    `Bearer ${TOKEN}x`,
    `bearer ${TOKEN.slice(1)}`,
    'Basic !!!',
    'Basic Og==',
  ),
  oddText.map((s) => `Bearer ${s}`),
  fc.string({ maxLength: 60 }).filter((s) => !s.includes(TOKEN)),
);
const badContentType = fc.constantFrom(
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=x',
  'application/xml',
  'application/jsonx',
);

const request: fc.Arbitrary<Generated> = fc
  .record({
    path: fc.constantFrom('/webhooks/alertmanager' as const, '/incidents' as const),
    defect: fc.constantFrom<Defect>('auth', 'content-type', 'json', 'schema', 'schema', 'oversize', 'none'),
    seed: fc.nat(),
  })
  .chain(({ path, defect }) => {
    const valid = path === '/incidents' ? validDeclaration : validWebhook;
    const broken = path === '/incidents' ? brokenDeclaration : brokenWebhook;
    const json = (v: unknown) => JSON.stringify(v) ?? 'null';
    const body: fc.Arbitrary<string> =
      defect === 'schema'
        ? broken.map(json)
        : defect === 'json'
          ? fc.oneof(
              fc.string({ maxLength: 200 }).filter((s) => {
                try {
                  JSON.parse(s);
                  return false;
                } catch {
                  return true;
                }
              }),
              valid.map((v) => json(v).slice(0, -1)),
            )
          : defect === 'oversize'
            ? valid.map((v) => json({ ...v, padding: 'x'.repeat(BODY_LIMIT) }))
            : valid.map(json);
    const auth = defect === 'auth' ? badAuth : goodAuth;
    const contentType: fc.Arbitrary<string | undefined> =
      defect === 'content-type'
        ? fc.oneof(badContentType, fc.constant(undefined))
        : fc.constantFrom('application/json', 'application/json; charset=utf-8');
    return fc.record({ body, auth, contentType }).map(({ body, auth, contentType }) => ({
      path,
      defect,
      body,
      headers: {
        ...(auth !== undefined ? { authorization: auth } : {}),
        ...(contentType !== undefined ? { 'content-type': contentType } : {}),
      },
    }));
  });

/** Which answers are right for a request with this defect (auth is checked first, then size and parsing). */
function allowed(r: Generated, status: number): boolean {
  if (status === 503) return true; // Temporal unavailable: the sender retries, nothing is lost.
  switch (r.defect) {
    case 'auth':
      return status === 401;
    case 'content-type':
      return status === 415 || status === 400 || status === 401;
    case 'json':
      return status === 400;
    case 'schema':
      return status === 400;
    case 'oversize':
      return status === 413;
    case 'none':
      return status === 202;
  }
}

describe('the receiver under generated requests', () => {
  it(`answers ${RUNS} generated requests correctly, never 5xx, and starts incidents only for valid ones`, async () => {
    const started = new Set<string>();
    const wrong: string[] = [];
    await fc.assert(
      fc.asyncProperty(request, async (r) => {
        const res = await app.inject({ method: 'POST', url: r.path, headers: r.headers, payload: r.body });
        if (res.statusCode >= 500 && res.statusCode !== 503) {
          throw new Error(`answered ${res.statusCode} (${res.body.slice(0, 200)}) to a ${r.defect} request`);
        }
        if (res.statusCode === 503)
          expect(res.json<{ error: string }>().error).toMatch(/Temporal is unavailable/);
        if (!allowed(r, res.statusCode)) {
          wrong.push(`${r.defect} ${r.path} → ${res.statusCode}: ${res.body.slice(0, 200)}`);
          return false;
        }
        // Every refusal says why, as JSON.
        if (res.statusCode >= 400) expect(res.json<{ error: string }>().error.length).toBeGreaterThan(0);
        if (res.statusCode === 202) {
          const answer = res.json<{
            workflowId?: string;
            incidents?: { workflowId: string; delivered: boolean }[];
          }>();
          // Only resolved alerts for an incident that is not open are answered but start nothing.
          const ids = answer.incidents
            ? answer.incidents.filter((i) => i.delivered).map((i) => i.workflowId)
            : [answer.workflowId ?? ''];
          for (const id of ids) started.add(id);
        }
        return true;
      }),
      { numRuns: RUNS, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2_147_483_647) },
    );
    expect(wrong).toEqual([]);
    // Exactly the incidents valid requests reported, and nothing else, exist on this task queue (the
    // visibility store catches up within a few seconds).
    await vi.waitFor(
      async () => {
        const listed = new Set<string>();
        for await (const info of env.client.workflow.list({ query: `TaskQueue = '${taskQueue}'` })) {
          listed.add(info.workflowId);
        }
        expect([...listed].sort()).toEqual([...started].sort());
      },
      { timeout: 30_000, interval: 1_000 },
    );
    expect(started.size).toBeGreaterThan(0);
  }, 600_000);
});
