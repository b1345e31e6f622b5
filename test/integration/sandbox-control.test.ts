import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { controlApp } from '../../src/sandbox/control.js';
import { scenarioNames } from '../../src/sandbox/scenarios.js';
import { startTestSandbox, type TestSandbox } from '../helpers/sandbox.js';

// The sandbox's control port as a drill or a person uses it: what it lists, what it refuses, and that a
// vendor scenario ends only when told while a platform fault does not end by being told.

let sandbox: TestSandbox;
let app: FastifyInstance;
beforeAll(async () => {
  sandbox = await startTestSandbox();
  app = controlApp(sandbox);
}, 120_000);
afterAll(async () => {
  await app?.close();
  await sandbox?.stop();
});

describe('the sandbox control port', () => {
  it('lists every scenario with the procedure and runbook that answers it', async () => {
    const res = await app.inject({ method: 'GET', url: '/scenarios' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ scenarios: { name: string; runbook: string | null; active: boolean }[] }>();
    expect(body.scenarios.map((s) => s.name)).toEqual([...scenarioNames]);
    expect(body.scenarios.find((s) => s.name === 'db-connections-exhausted')).toMatchObject({
      runbook: 'database-connection-failures',
      active: false,
    });
    expect(res.json<{ kubernetes: string }>().kubernetes).toBe('ready');
  });

  it('answers 404 with the usage for an unknown scenario and changes nothing', async () => {
    const res = await app.inject({ method: 'POST', url: '/scenarios/everything-down' });
    expect(res.statusCode).toBe(404);
    expect(res.json<{ usage: string }>().usage).toContain('api-down');
    expect(sandbox.scenarios.active).toEqual([]);
  });

  it('ends a vendor outage when told, but not a platform fault, which only its remedy repairs', async () => {
    expect((await app.inject({ method: 'POST', url: '/scenarios/openai-degraded' })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/scenarios/api-down' })).statusCode).toBe(200);
    const listed = (await app.inject({ method: 'GET', url: '/scenarios' })).json<{ active: string[] }>();
    expect(listed.active).toEqual(['openai-degraded', 'api-down']);
    await expect
      .poll(async () => (await fetch(`${sandbox.api.url}/health`)).status, { timeout: 30_000 })
      .toBe(503);

    const refused = await app.inject({ method: 'POST', url: '/scenarios/api-down/recover' });
    expect(refused.statusCode).toBe(409);
    const recovered = await app.inject({ method: 'POST', url: '/scenarios/openai-degraded/recover' });
    expect(recovered.json()).toMatchObject({ recovered: 'openai-degraded', active: ['api-down'] });

    expect((await app.inject({ method: 'POST', url: '/scenarios/healthy' })).json()).toMatchObject({
      active: [],
    });
    await expect
      .poll(async () => (await sandbox.cluster.podsOf('fte-api')).every((p) => p.ready), { timeout: 30_000 })
      .toBe(true);
    expect((await fetch(`${sandbox.api.url}/health`)).status).toBe(200);
  });
});
