import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { httpActivities } from '../../src/activities/http.js';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import { FteApiSim } from '../../src/sandbox/fte-api.js';

const probe = (probeId: string, args: Record<string, unknown> = {}): ProbeInput => ({
  incidentId: 'incident-test--customer-success-fte',
  scope: 'customer-success-fte',
  probeId,
  args,
});

/** A stand-in for status.openai.com / status.twilio.com: `/<name>/api/v2/status.json` answers `pages[name]`. */
function startStatusPages(pages: Record<string, { status: number; body: string }>): Promise<Server> {
  const server = createServer((req, res) => {
    const name = /^\/([^/]+)\/api\/v2\/status\.json$/.exec(req.url ?? '')?.[1];
    const page = name ? pages[name] : undefined;
    if (!page) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(page.status, { 'content-type': 'application/json' }).end(page.body);
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** The URL of a port nothing listens on. */
async function freePort(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

const statusJson = (indicator: string, description: string) =>
  JSON.stringify({
    page: { id: 'x', name: 'Vendor', url: 'https://status.example', updated_at: '2025-01-01T00:00:00Z' },
    status: { indicator, description },
  });

let sim: FteApiSim;
let pages: Server;
const statusPages: Record<string, { status: number; body: string }> = {};
let pagesUrl = '';

beforeAll(async () => {
  sim = await FteApiSim.start();
  pages = await startStatusPages(statusPages);
  pagesUrl = `http://127.0.0.1:${(pages.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await sim.stop();
  await new Promise((resolve) => pages.close(resolve));
});

afterEach(async () => {
  sim.clearFaults();
  sim.setHealthy(true);
  for (const ch of ['email', 'whatsapp', 'web_form'] as const) {
    sim.setChannel(ch, { requests: 100, error_rate: 0.01, p95_latency_ms: 2_000, escalation_rate: 0.1 });
  }
  await sim.start();
});

const acts = (timeoutMs = 5_000) =>
  httpActivities({
    apiBaseUrl: sim.url,
    statusPages: { openai: `${pagesUrl}/openai`, twilio: `${pagesUrl}/twilio/api/v2/status.json` },
    timeoutMs,
  });

describe('httpHealth', () => {
  it('is ok when fte-api answers healthy', async () => {
    const f = await acts().httpHealth(probe('api-health'));
    expect(f.status).toBe('ok');
    expect(f.probe).toBe('api-health');
    expect(f.metrics.httpStatus).toBe(200);
    expect(typeof f.metrics.latencyMs).toBe('number');
  });

  it('is down when fte-api reports unhealthy (503)', async () => {
    sim.setHealthy(false);
    const f = await acts().httpHealth(probe('api-health'));
    expect(f.status).toBe('down');
    expect(f.summary).toContain('503');
  });

  it('is down on a 500', async () => {
    sim.setFault('health', { status: 500 });
    const f = await acts().httpHealth(probe('api-health'));
    expect(f.status).toBe('down');
    expect(f.metrics.httpStatus).toBe(500);
  });

  it('is down with a clear message when the server is stopped', async () => {
    await sim.stop();
    const f = await acts().httpHealth(probe('api-health'));
    expect(f.status).toBe('down');
    expect(f.summary).toMatch(/refused the connection/);
  });

  it('is down and names the timeout when fte-api does not answer in time', async () => {
    sim.setFault('health', { delayMs: 3_000 });
    const f = await acts(200).httpHealth(probe('api-health'));
    expect(f.status).toBe('down');
    expect(f.summary).toContain('200 ms timeout');
  });

  it('is degraded when healthy but slower than the threshold', async () => {
    sim.setFault('health', { delayMs: 400 });
    const f = await acts().httpHealth(probe('api-health', { slowMs: 50 }));
    expect(f.status).toBe('degraded');
    expect(f.summary).toMatch(/slow/);
  });

  it('is degraded when the 200 body is not the expected JSON', async () => {
    sim.setFault('health', { malformedJson: true });
    const f = await acts().httpHealth(probe('api-health'));
    expect(f.status).toBe('degraded');
    expect(f.summary).toContain('not valid JSON');
  });
});

describe('channelMetrics', () => {
  it('reports every channel within thresholds as ok, with metrics per channel', async () => {
    const f = await acts().channelMetrics(probe('channel-metrics'));
    expect(f.status).toBe('ok');
    expect(f.metrics).toMatchObject({
      'requests/email': 100,
      'errorRate/whatsapp': 0.01,
      'p95LatencyMs/web_form': 2_000,
      'escalationRate/email': 0.1,
    });
    expect(f.evidence).toHaveLength(3);
  });

  it('is degraded at an error rate of 5 % or more and down at 50 %', async () => {
    sim.setChannel('whatsapp', { error_rate: 0.07 });
    expect((await acts().channelMetrics(probe('m', { channel: 'whatsapp' }))).status).toBe('degraded');
    expect((await acts().channelMetrics(probe('m', { channel: 'email' }))).status).toBe('ok');
    sim.setChannel('whatsapp', { error_rate: 0.6 });
    const f = await acts().channelMetrics(probe('m', { channel: 'whatsapp' }));
    expect(f.status).toBe('down');
    expect(f.summary).toContain('whatsapp: error rate 60.0 %');
    expect(f.metrics['errorRate/email']).toBeUndefined();
  });

  it('is degraded when the p95 latency is over 10 s (agent processing > 10s)', async () => {
    sim.setChannel('email', { p95_latency_ms: 12_500 });
    const f = await acts().channelMetrics(probe('m'));
    expect(f.status).toBe('degraded');
    expect(f.summary).toContain('email: p95 latency 12500 ms');
  });

  it('reports the escalation rate and uses it only when asked to', async () => {
    sim.setChannel('web_form', { escalation_rate: 0.45 });
    expect((await acts().channelMetrics(probe('m'))).status).toBe('ok');
    const f = await acts().channelMetrics(probe('m', { maxEscalationRate: 0.3 }));
    expect(f.status).toBe('degraded');
    expect(f.summary).toContain('web_form: escalation rate 45.0 %');
  });

  it('is unknown with a clear message on malformed JSON', async () => {
    sim.setFault('metrics', { malformedJson: true });
    const f = await acts().channelMetrics(probe('m'));
    expect(f.status).toBe('unknown');
    expect(f.summary).toBe('fte-api /metrics/channels: the body is not valid JSON');
  });

  it('is down on a 500 and when the API refuses connections, unknown on a timeout', async () => {
    sim.setFault('metrics', { status: 500 });
    expect((await acts().channelMetrics(probe('m'))).status).toBe('down');
    sim.setFault('metrics', { delayMs: 3_000 });
    const slow = await acts(200).channelMetrics(probe('m'));
    expect(slow.status).toBe('unknown');
    expect(slow.summary).toContain('200 ms timeout');
    await sim.stop();
    const refused = await acts().channelMetrics(probe('m'));
    expect(refused.status).toBe('down');
    expect(refused.summary).toContain('refused the connection');
  });

  it('rejects an unknown channel as a bad request', async () => {
    await expect(acts().channelMetrics(probe('m', { channel: 'sms' }))).rejects.toMatchObject({
      type: 'BadRequestError',
      nonRetryable: true,
    });
  });
});

describe('webhookCheck', () => {
  it('POSTs test=1 to the WhatsApp webhook and is ok on 200', async () => {
    const before = sim.webhookDeliveries.whatsapp.length;
    const f = await acts().webhookCheck(probe('webhook', { channel: 'whatsapp' }));
    expect(f.status).toBe('ok');
    expect(sim.webhookDeliveries.whatsapp.slice(before)).toEqual([{ test: '1' }]);
  });

  it('is down on 403, naming the Twilio signature check', async () => {
    sim.setFault('whatsapp-webhook', { status: 403 });
    const f = await acts().webhookCheck(probe('webhook', { channel: 'whatsapp' }));
    expect(f.status).toBe('down');
    expect(f.summary).toContain('403');
    expect(f.summary).toContain('TWILIO_AUTH_TOKEN');
  });

  it('sends a Pub/Sub-shaped push to the Gmail webhook', async () => {
    const before = sim.webhookDeliveries.gmail.length;
    const f = await acts().webhookCheck(probe('gmail-webhook', { channel: 'gmail' }));
    expect(f.status).toBe('ok');
    const [push] = sim.webhookDeliveries.gmail.slice(before);
    expect(push?.subscription).toMatch(/^projects\/.+\/subscriptions\/.+$/);
    const data = JSON.parse(Buffer.from(push?.message.data ?? '', 'base64').toString('utf8'));
    expect(data).toHaveProperty('emailAddress');
  });

  it('is down on 5xx, on a stopped server and on a timeout', async () => {
    sim.setFault('gmail-webhook', { status: 502 });
    expect((await acts().webhookCheck(probe('w', { channel: 'gmail' }))).status).toBe('down');
    sim.setFault('gmail-webhook', { delayMs: 3_000 });
    const slow = await acts(200).webhookCheck(probe('w', { channel: 'gmail' }));
    expect(slow.status).toBe('down');
    expect(slow.summary).toContain('timeout');
    await sim.stop();
    const refused = await acts().webhookCheck(probe('w', { channel: 'whatsapp' }));
    expect(refused.status).toBe('down');
    expect(refused.summary).toContain('refused');
  });
});

describe('statusPage', () => {
  it.each([
    ['none', 'All Systems Operational', 'ok'],
    ['minor', 'Minor Service Outage', 'degraded'],
    ['major', 'Partial System Outage', 'down'],
    ['critical', 'Major System Outage', 'down'],
  ])('maps indicator %s to %s', async (indicator, description, expected) => {
    statusPages.openai = { status: 200, body: statusJson(indicator, description) };
    statusPages.twilio = { status: 200, body: statusJson(indicator, description) };
    const openai = await acts().statusPage(probe('openai-status', { service: 'openai' }));
    const twilio = await acts().statusPage(probe('twilio-status', { service: 'twilio' }));
    for (const f of [openai, twilio]) {
      expect(f.status).toBe(expected);
      expect(f.metrics.indicator).toBe(indicator);
      expect(f.summary).toContain(description);
    }
  });

  it('is unknown on an unknown indicator, malformed JSON, an error status or no answer', async () => {
    statusPages.openai = { status: 200, body: statusJson('purple', 'Odd') };
    expect((await acts().statusPage(probe('s', { service: 'openai' }))).status).toBe('unknown');
    statusPages.openai = { status: 200, body: '{"status": ' };
    const malformed = await acts().statusPage(probe('s', { service: 'openai' }));
    expect(malformed.status).toBe('unknown');
    expect(malformed.summary).toContain('not valid JSON');
    statusPages.openai = { status: 500, body: '' };
    expect((await acts().statusPage(probe('s', { service: 'openai' }))).summary).toContain('500');
    const closed = await freePort();
    const unreachable = await httpActivities({
      apiBaseUrl: sim.url,
      statusPages: { openai: closed, twilio: closed },
    }).statusPage(probe('s', { service: 'twilio' }));
    expect(unreachable.status).toBe('unknown');
    expect(unreachable.summary).toContain('twilio status page refused the connection');
  });
});
