import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { FakePlatform } from '../helpers/fake-platform.js';
import { timeSkippingEnv } from '../helpers/services.js';
import { alert, productWorker, raise, refusal, status, until } from '../helpers/workflows.js';
import { incidentActions } from '../../src/workflows/api.js';

// A risky step acts on what the platform looks like when it runs, not on findings from before the approval.
let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const postgresDown = () => {
  const platform = new FakePlatform().heals('restartStatefulSetPod', { postgres: 'ok' });
  platform.status = { postgres: 'down' };
  platform.metrics = { pods: { 'uid/postgres-0': 'uid-a' } };
  return platform;
};

describe('look before acting', () => {
  it('an approved step whose condition cleared meanwhile does not run, and the approvers are told', async () => {
    const platform = postgresDown();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-lb1'),
      ]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      // postgres comes back by itself before anyone approves; the approval arrives on the old picture.
      platform.status = { postgres: 'ok' };
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      });
      const s = await until(
        () => status(handle),
        (x) => x.timeline.some((t) => t.type === 'step-withdrawn'),
        'the step withdrawn',
      );
      expect(platform.timesActed('restartStatefulSetPod')).toBe(0);
      expect(s.steps.find((st) => st.id === 'restart-postgres')).toMatchObject({ status: 'idle', runs: 0 });
      expect(s.timeline.find((t) => t.type === 'step-withdrawn')?.text).toMatch(/approved by carol/);
      // The notification and the ledger row are activities of their own, after the timeline entry.
      await vi.waitFor(() => {
        expect(platform.sent('approval-withdrawn').map((n) => n.roles)).toEqual([['platform', 'on-call']]);
        expect(
          platform.ledger.some((e) => e.type === 'step-withdrawn' && e.data.step === 'restart-postgres'),
        ).toBe(true);
      });
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });

  it('a request whose condition no longer holds is withdrawn at the periodic re-check', async () => {
    const platform = postgresDown();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-lb2'),
      ]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      platform.status = { postgres: 'ok' };
      await env.sleep('6 minutes');
      const s = await until(
        () => status(handle),
        (x) => x.awaitingApproval.length === 0,
        'the request withdrawn',
      );
      expect(s.timeline.some((t) => t.type === 'approval-withdrawn')).toBe(true);
      expect(s.findings.postgres?.status).toBe('ok');
      expect(platform.sent('approval-withdrawn')).toHaveLength(1);
      // Nobody was reminded or escalated about a request that no longer exists.
      expect(platform.sent('approval-reminder')).toEqual([]);
      expect(
        await refusal(
          handle.executeUpdate(incidentActions.approve.update, {
            args: [{ step: 'restart-postgres', by: 'carol' }],
          }),
        ),
      ).toMatch(/not waiting for approval/);
      expect(platform.timesActed('restartStatefulSetPod')).toBe(0);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });

  it('a new alert while a step waits makes the incident look again at once', async () => {
    const platform = postgresDown();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-lb3'),
      ]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      const probesBefore = platform.probeCalls.length;
      platform.status = { postgres: 'ok' };
      await raise(env, taskQueue, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-lb3b')]);
      await until(
        () => status(handle),
        (x) => x.timeline.some((t) => t.type === 'approval-withdrawn'),
        'the request withdrawn after the new alert',
      );
      expect(platform.probeCalls.length).toBeGreaterThan(probesBefore);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });

  it('a step still needed after the fresh look runs once', async () => {
    const platform = postgresDown();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-lb4'),
      ]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      });
      await env.sleep('1 minute');
      await until(
        () => status(handle),
        (x) => x.steps.some((st) => st.id === 'restart-postgres' && st.status === 'recovered'),
        'the step run and verified',
      );
      const s = await status(handle);
      expect(s.timeline.some((t) => t.text.startsWith('look before acting: restart-postgres'))).toBe(true);
      expect(platform.timesActed('restartStatefulSetPod')).toBe(1);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });
});
