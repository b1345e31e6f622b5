import { afterEach, describe, expect, it } from 'vitest';
import { channelMetricsResponseSchema, gmailTestPush } from '../../src/activities/http.js';
import { FteApiSim } from '../../src/sandbox/fte-api.js';

const sims: FteApiSim[] = [];
async function startSim(options: Parameters<typeof FteApiSim.start>[0] = {}): Promise<FteApiSim> {
  const sim = await FteApiSim.start(options);
  sims.push(sim);
  return sim;
}
afterEach(async () => {
  await Promise.all(sims.splice(0).map((s) => s.stop()));
});

describe('simulated fte-api', () => {
  it('listens on loopback on a random port and answers /health', async () => {
    const sim = await startSim();
    expect(sim.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${sim.url}/health`);
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'healthy', service: 'fte-api' });
    sim.setHealthy(false);
    const down = await fetch(`${sim.url}/health`);
    expect(down.status).toBe(503);
    expect(await down.json()).toMatchObject({ status: 'unhealthy' });
  });

  it('serves /metrics/channels in the documented shape, with state the test sets', async () => {
    const sim = await startSim();
    sim.setChannel('whatsapp', { error_rate: 0.25, p95_latency_ms: 15_000 });
    const body = channelMetricsResponseSchema.parse(
      await (await fetch(`${sim.url}/metrics/channels`)).json(),
    );
    expect(Object.keys(body.channels).sort()).toEqual(['email', 'web_form', 'whatsapp']);
    expect(body.channels.whatsapp).toMatchObject({ error_rate: 0.25, p95_latency_ms: 15_000 });
    expect(body.window_seconds).toBeGreaterThan(0);
  });

  it('takes escalation rates and health from optional callbacks', async () => {
    let dbUp = true;
    const sim = await startSim({
      escalationRate: (channel) => (channel === 'email' ? 0.42 : 0.1),
      healthy: () => dbUp,
    });
    const body = channelMetricsResponseSchema.parse(
      await (await fetch(`${sim.url}/metrics/channels`)).json(),
    );
    expect(body.channels.email.escalation_rate).toBe(0.42);
    dbUp = false;
    expect((await fetch(`${sim.url}/health`)).status).toBe(503);
  });

  it('accepts test=1 on the WhatsApp webhook and a Pub/Sub push on the Gmail webhook', async () => {
    const sim = await startSim();
    const wa = await fetch(`${sim.url}/webhooks/whatsapp`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'test=1',
    });
    expect(wa.status).toBe(200);
    const push = gmailTestPush('incident-x');
    const gm = await fetch(`${sim.url}/webhooks/gmail`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(push),
    });
    expect(gm.status).toBe(200);
    const bad = await fetch(`${sim.url}/webhooks/gmail`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ hello: 'world' }),
    });
    expect(bad.status).toBe(400);
    expect(sim.webhookDeliveries).toEqual({ whatsapp: [{ test: '1' }], gmail: [push] });
  });

  it('protects the Gmail watch endpoints with the bearer token and renews for 7 days', async () => {
    const sim = await startSim({ adminToken: 'sim-admin-token-123' });
    expect((await fetch(sim.gmailWatchUrl)).status).toBe(401);
    const wrong = await fetch(sim.gmailWatchUrl, { headers: { authorization: 'Bearer nope' } });
    expect(wrong.status).toBe(401);
    const auth = { authorization: 'Bearer sim-admin-token-123' };
    const watch = (await (await fetch(sim.gmailWatchUrl, { headers: auth })).json()) as Record<
      string,
      unknown
    >;
    expect(watch).toEqual({
      historyId: expect.stringMatching(/^\d+$/),
      expiration: expect.stringMatching(/^\d+$/),
    });

    sim.setGmailWatch({ expiration: Date.now() - 1_000 });
    const renew = () =>
      fetch(sim.gmailWatchUrl, { method: 'POST', headers: { ...auth, 'idempotency-key': 'k1' } });
    const first = await renew();
    const renewed = (await first.json()) as { expiration: string };
    expect(Number(renewed.expiration) - Date.now()).toBeGreaterThan(7 * 24 * 3_600_000 - 60_000);
    const replay = await renew();
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(await replay.json()).toEqual(renewed);
    expect(sim.gmailRenewals).toBe(1);
  });

  it('simulates per-endpoint faults: status, malformed JSON, delay', async () => {
    const sim = await startSim();
    sim.setFault('whatsapp-webhook', { status: 403 });
    const wa = await fetch(`${sim.url}/webhooks/whatsapp`, {
      method: 'POST',
      body: new URLSearchParams('test=1'),
    });
    expect(wa.status).toBe(403);
    sim.setFault('metrics', { malformedJson: true });
    const metrics = await fetch(`${sim.url}/metrics/channels`);
    expect(metrics.status).toBe(200);
    await expect(metrics.json()).rejects.toThrow();
    sim.setFault('health', { delayMs: 5_000 });
    await expect(fetch(`${sim.url}/health`, { signal: AbortSignal.timeout(200) })).rejects.toMatchObject({
      name: 'TimeoutError',
    });
    sim.clearFaults();
    expect((await fetch(`${sim.url}/health`)).status).toBe(200);
  });

  it('refuses connections while stopped and comes back on the same port with its state', async () => {
    const sim = await startSim();
    const url = sim.url;
    sim.setChannel('email', { error_rate: 0.3 });
    await sim.stop();
    expect(sim.running).toBe(false);
    const err = await fetch(`${url}/health`).catch((e: unknown) => e);
    expect((err as { cause?: { code?: string } }).cause?.code).toBe('ECONNREFUSED');
    await sim.start();
    expect(sim.url).toBe(url);
    const body = channelMetricsResponseSchema.parse(await (await fetch(`${url}/metrics/channels`)).json());
    expect(body.channels.email.error_rate).toBe(0.3);
  });
});
