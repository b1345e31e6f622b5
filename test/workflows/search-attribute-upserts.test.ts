import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { defaultPayloadConverter } from '@temporalio/common';
import type proto from '@temporalio/proto';
import { timeSkippingEnv } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { alert, productWorker, raise, status, until } from '../helpers/workflows.js';
import { incidentActions } from '../../src/workflows/api.js';

let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

/** The upserts of a history, each as the values it wrote, and which of them changed nothing. */
function upserts(history: proto.temporal.api.history.v1.IHistory) {
  const current: Record<string, string> = {};
  const all: Record<string, unknown>[] = [];
  const unchanged: Record<string, unknown>[] = [];
  for (const e of history.events ?? []) {
    const fields = e.upsertWorkflowSearchAttributesEventAttributes?.searchAttributes?.indexedFields;
    // The SDK's own upsert beside each patch marker (TemporalChangeVersion) is not the incident's.
    if (!fields || 'TemporalChangeVersion' in fields) continue;
    const values: Record<string, unknown> = {};
    let changed = false;
    for (const [key, payload] of Object.entries(fields)) {
      values[key] = defaultPayloadConverter.fromPayload(payload);
      const text = JSON.stringify(values[key]);
      if (current[key] !== text) changed = true;
      current[key] = text;
    }
    all.push(values);
    if (!changed) unchanged.push(values);
  }
  return { all, unchanged };
}

describe('search attributes', () => {
  it('are upserted only when a value a person filters on changes', async () => {
    const platform = new FakePlatform().heals('restartStatefulSetPod', { postgres: 'ok' });
    platform.status = { postgres: 'down' };
    platform.metrics = { pods: { 'uid/postgres-0': 'uid-1' } };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-sa')]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      });
      await env.sleep('2 minutes');
      await until(
        () => status(handle),
        (s) => s.status === 'Monitoring',
        'recovery',
      );
      await handle.signal('alerts', { alerts: [alert('FTEAllChannelsDown', 'fp-sa', 'resolved')] });
      const outcome = await handle.result();
      expect(outcome.resolvedBy).toBe('system');
      const { all, unchanged } = upserts(await handle.fetchHistory());
      expect(unchanged).toEqual([]);
      // Still every status a person filters on, in order.
      const statuses = all.flatMap((v) => (v.IncidentStatus ? [v.IncidentStatus] : []));
      expect(statuses).toEqual([
        'Investigating',
        'AwaitingApproval',
        'AwaitingApproval',
        'Remediating',
        'Verifying',
        'Monitoring',
        'Resolved',
      ]);
      expect(all[0]).toMatchObject({ IncidentRunbook: 'all-channels-down', IncidentTeam: 'platform' });
    });
  });
});
