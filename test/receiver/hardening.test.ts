import { afterEach, beforeAll, afterAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { bearer, listeningReceiver, post, sample, TOKEN } from './harness.js';

// No worker: the requests here are refused before anything reaches Temporal, or are invalid payloads.
let env: TestWorkflowEnvironment;
let app: FastifyInstance | undefined;
beforeAll(async () => {
  env = await devServerEnv();
});
afterEach(async () => {
  await app?.close();
  app = undefined;
});
afterAll(async () => {
  await env?.teardown();
});

describe('per-source rate limit', () => {
  it('answers 429 with Retry-After past the limit, counts it, and keeps the health probes open', async () => {
    const r = await listeningReceiver(env.client, uniqueName('rate'), { rateLimitPerMinute: 5 });
    app = r.app;
    const statuses: number[] = [];
    for (let i = 0; i < 7; i++) statuses.push((await post(`${r.url}/webhooks/alertmanager`, {})).status);
    // Five invalid payloads are answered for what they are; the sixth and seventh are not read at all.
    expect(statuses).toEqual([400, 400, 400, 400, 400, 429, 429]);
    const limited = await post(`${r.url}/webhooks/alertmanager`, {});
    expect(limited.status).toBe(429);
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(String(limited.body.error)).toMatch(/more than 5 requests a minute/);
    expect((await fetch(`${r.url}/healthz`)).status).toBe(200);
    // /metrics is behind the limit too; read it from a fresh receiver's view: the counter was kept.
    const metrics = await r.app.inject({ method: 'GET', url: '/metrics', remoteAddress: '127.0.0.2' });
    expect(
      sample(metrics.body, 'incident_receiver_requests_rejected_total', { reason: 'rate-limited' }),
    ).toBe(3);
  });

  it('has no limit unless one is set', async () => {
    const r = await listeningReceiver(env.client, uniqueName('rate-off'));
    app = r.app;
    for (let i = 0; i < 30; i++) expect((await post(`${r.url}/webhooks/alertmanager`, {})).status).toBe(400);
  });
});

describe('/metrics behind the token', () => {
  it('asks for the token when told to, and is open by default', async () => {
    const closed = await listeningReceiver(env.client, uniqueName('metrics-auth'), {
      metricsRequireToken: true,
    });
    app = closed.app;
    expect((await fetch(`${closed.url}/metrics`)).status).toBe(401);
    const wrong = await fetch(`${closed.url}/metrics`, {
      headers: { authorization: bearer('x'.repeat(20)) },
    });
    expect(wrong.status).toBe(401);
    const ok = await fetch(`${closed.url}/metrics`, { headers: { authorization: bearer(TOKEN) } });
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('incident_receiver_requests_rejected_total');
    await closed.app.close();

    const open = await listeningReceiver(env.client, uniqueName('metrics-open'));
    app = open.app;
    expect((await fetch(`${open.url}/metrics`)).status).toBe(200);
  });
});
