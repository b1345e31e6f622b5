import { afterEach, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import type { State } from '@temporalio/worker';
import { readiness, workerHealthApp, type PollerCheck } from '../../src/worker-health.js';

describe('readiness', () => {
  const now = 1_000_000;
  it('is ready only while running and listed as a poller at a recent look', () => {
    expect(readiness('RUNNING', { ok: true, at: now - 5_000 }, now, 30_000)).toEqual({ ready: true });
    expect(readiness('RUNNING', undefined, now, 30_000)).toEqual({
      ready: false,
      reason: 'not checked with Temporal yet',
    });
    expect(
      readiness(
        'RUNNING',
        { ok: false, at: now, reason: 'Temporal did not answer (gRPC status 14)' },
        now,
        30_000,
      ),
    ).toEqual({ ready: false, reason: 'Temporal did not answer (gRPC status 14)' });
    expect(readiness('RUNNING', { ok: true, at: now - 45_000 }, now, 30_000)).toEqual({
      ready: false,
      reason: 'no answer from Temporal for 45 s',
    });
    expect(readiness('DRAINING', { ok: true, at: now }, now, 30_000)).toEqual({
      ready: false,
      reason: 'the worker is draining',
    });
  });
});

describe('the worker health endpoints', () => {
  let app: FastifyInstance | undefined;
  afterEach(async () => {
    await app?.close();
  });

  const start = (state: () => State, check: () => Promise<PollerCheck>) => {
    app = workerHealthApp({ state, check, checkEveryMs: 60_000 });
    return app;
  };

  it('answers alive and ready when the worker runs and Temporal lists it', async () => {
    const a = start(
      () => 'RUNNING',
      async () => ({ ok: true, at: Date.now() }),
    );
    expect((await a.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok', state: 'RUNNING' });
    const ready = await a.inject({ url: '/readyz' });
    expect(ready.statusCode).toBe(200);
  });

  it('is not ready, saying why, until Temporal lists it; it looks again when asked', async () => {
    let listed = false;
    const a = start(
      () => 'RUNNING',
      async () =>
        listed ? { ok: true, at: Date.now() } : { ok: false, at: Date.now(), reason: 'no poller yet' },
    );
    const first = await a.inject({ url: '/readyz' });
    expect(first.statusCode).toBe(503);
    expect(first.json()).toEqual({ status: 'not ready', reason: 'no poller yet' });
    listed = true;
    expect((await a.inject({ url: '/readyz' })).statusCode).toBe(200);
  });

  it('is down once the worker failed or stopped', async () => {
    let state: State = 'RUNNING';
    const a = start(
      () => state,
      async () => ({ ok: true, at: Date.now() }),
    );
    state = 'FAILED';
    const health = await a.inject({ url: '/healthz' });
    expect(health.statusCode).toBe(503);
    expect(health.json()).toEqual({ status: 'down', state: 'FAILED' });
    expect((await a.inject({ url: '/readyz' })).statusCode).toBe(503);
  });
});
