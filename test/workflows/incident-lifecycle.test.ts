import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import { FakePlatform, retryableError } from '../helpers/fake-platform.js';
import { timeSkippingEnv } from '../helpers/services.js';
import { alert, productWorker, raise, refusal, status, until } from '../helpers/workflows.js';
import { incidentActions } from '../../src/workflows/api.js';

// The end of an incident: cancellation by a person or through Temporal, the bounded wait for ledger writes,
// and alerts that arrive once the incident has closed.
let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const searchStatus = async (handle: { describe(): Promise<{ searchAttributes: Record<string, unknown> }> }) =>
  (await handle.describe()).searchAttributes.IncidentStatus;

describe('cancelling an incident', () => {
  it('a person’s cancel records who and why in the timeline and the ledger and ends it as Cancelled', async () => {
    const platform = new FakePlatform();
    platform.status = { postgres: 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-c1')]);
      await until(
        () => status(handle),
        (s) => s.status === 'AwaitingApproval',
        'approval wait',
      );
      expect(
        await refusal(
          handle.executeUpdate(incidentActions.cancel.update, { args: [{ by: 'mallory', reason: 'bored' }] }),
        ),
      ).toMatch(/mallory may not cancel/);
      await handle.executeUpdate(incidentActions.cancel.update, {
        args: [{ by: 'alice', reason: 'raised against the wrong cluster' }],
      });
      const outcome = await handle.result();
      expect(outcome.cancelled).toEqual({ by: 'alice', reason: 'raised against the wrong cluster' });
      const s = await status(handle);
      expect(s.status).toBe('Cancelled');
      expect(s.awaitingApproval).toEqual([]);
      expect(s.cancelled).toMatchObject({ by: 'alice', reason: 'raised against the wrong cluster' });
      expect(s.timeline.find((t) => t.type === 'cancelled')).toMatchObject({ by: 'alice' });
      expect(await searchStatus(handle)).toEqual(['Cancelled']);
      expect(platform.ledger.find((e) => e.type === 'cancelled')).toMatchObject({
        by: 'alice',
        data: { reason: 'raised against the wrong cluster' },
      });
      expect(platform.sent('cancelled').map((n) => n.roles)).toEqual([['platform']]);
      // Every notification has its own idempotency key, so a retried send does not page twice.
      const keys = platform.notifications.map((n) => n.idempotencyKey);
      expect(keys.every((k) => k?.includes('/notify/'))).toBe(true);
      expect(new Set(keys).size).toBe(keys.length);
      // Its acknowledgement deadline stopped with it: nobody is paged about a cancelled incident.
      await env.sleep('1 hour');
      expect(platform.sent('escalated')).toEqual([]);
    });
  });

  it('a Temporal cancel request closes the run as cancelled, with the same trace', async () => {
    const platform = new FakePlatform();
    platform.status = { postgres: 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-c2')]);
      await until(
        () => status(handle),
        (s) => s.status === 'AwaitingApproval',
        'approval wait',
      );
      await handle.cancel();
      const failure = await handle.result().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(failure).toBeInstanceOf(WorkflowFailedError);
      expect((await handle.describe()).status.name).toBe('CANCELLED');
      const s = await status(handle);
      expect(s.status).toBe('Cancelled');
      expect(s.timeline.find((t) => t.type === 'cancelled')?.text).toMatch(/through Temporal/);
      expect(platform.ledger.find((e) => e.type === 'cancelled')?.by).toBe('temporal');
      expect(await searchStatus(handle)).toEqual(['Cancelled']);
    });
  });
});

describe('the end of a run', () => {
  it('waits at most 10 minutes for a ledger that is down, and reports the events it could not write', async () => {
    const platform = new FakePlatform();
    platform.onLedgerWrite = () => {
      throw retryableError('connect ECONNREFUSED 127.0.0.1:5432');
    };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'high-agent-latency', [
        alert('FTEHighAgentLatency', 'fp-l1'),
      ]);
      await until(
        () => status(handle),
        (s) => s.status === 'Monitoring',
        'monitoring',
      );
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      const outcome = await handle.result();
      const closedAt = (await handle.describe()).closeTime?.getTime() ?? Infinity;
      expect(closedAt - Date.parse(outcome.resolvedAt)).toBeLessThanOrEqual(10 * 60_000 + 5_000);
      expect(outcome.unwrittenLedgerEvents?.map((e) => e.type)).toEqual(
        expect.arrayContaining(['opened', 'resolved']),
      );
      const s = await status(handle);
      expect(
        s.timeline.some((t) => t.type === 'ledger-failed' && /not written before the run ended/.test(t.text)),
      ).toBe(true);
    });
  });

  it('a firing alert that arrives while the incident resolves opens the next occurrence', async () => {
    const platform = new FakePlatform();
    let release: () => void = () => {};
    const held = new Promise<void>((r) => (release = r));
    platform.onLedgerWrite = (e) => (e.type === 'resolved' ? held : undefined);
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'high-agent-latency', [
        alert('FTEHighAgentLatency', 'fp-o1'),
      ]);
      await until(
        () => status(handle),
        (s) => s.status === 'Monitoring',
        'monitoring',
      );
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await until(
        () => status(handle),
        (s) => s.status === 'Resolved',
        'resolved',
      );
      const first = await status(handle);
      // The same alert fires again while the resolved run still writes its ledger.
      await raise(env, taskQueue, 'high-agent-latency', [alert('FTEHighAgentLatency', 'fp-o2')]);
      release();
      const next = await until(
        () => status(handle),
        (s) => s.openedAt !== first.openedAt && s.status !== 'Resolved',
        'the next occurrence',
      );
      expect(Object.keys(next.alerts)).toEqual(['fp-o2']);
      await until(
        async () => platform.ledger.filter((e) => e.type === 'opened').length,
        (n) => n === 2,
        'two occurrences in the ledger',
      );
      expect(new Set(platform.ledger.filter((e) => e.type === 'opened').map((e) => e.occurrence)).size).toBe(
        2,
      );
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });
});

describe('opening when no runbook can be loaded', () => {
  for (const [what, failure] of [
    [
      'a broken runbooks directory',
      () => ApplicationFailure.nonRetryable('cannot read the file (EACCES)', 'InvalidRunbookError'),
    ],
    ['a load that keeps failing', () => new Error('contacts file: cannot read (EIO)')],
  ] as const) {
    it(`opens with the built-in triage after ${what}, and pages on-call`, async () => {
      const platform = new FakePlatform();
      const activities = {
        ...platform.activities(),
        loadRunbook: async () => {
          throw failure();
        },
      };
      const { worker, taskQueue } = await productWorker(env, activities);
      await worker.runUntil(async () => {
        const handle = await raise(env, taskQueue, 'all-channels-down', [
          alert('FTEAllChannelsDown', 'fp-t1'),
        ]);
        // Each load is retried a few times with backoff: let the server clock run past the retries.
        await env.sleep('2 minutes');
        const s = await until(
          () => status(handle),
          (x) => x.tasks.length > 0,
          'the built-in triage',
        );
        expect(s.runbookId).toBe('triage');
        expect(s.severity).toBe('P2');
        expect(s.timeline.find((t) => t.type === 'runbook-problem')?.text).toMatch(
          /could not be loaded.*built-in triage/,
        );
        expect(s.tasks.map((t) => t.id)).toEqual(['fix-runbooks', 'investigate']);
        expect(platform.sent('opened')[0]?.roles).toContain('on-call');
        await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
        await handle.result();
      });
    });
  }
});
