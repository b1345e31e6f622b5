import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { timeSkippingEnv } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { alert, productWorker, raise, refusal, status, until } from '../helpers/workflows.js';
import { incidentActions } from '../../src/workflows/api.js';

// A fresh time-skipping server per test: a workflow left open by one test cannot hold the next one's clock.
let env: TestWorkflowEnvironment;
beforeEach(async () => {
  env = await timeSkippingEnv();
});
afterEach(async () => {
  await env?.teardown();
});

const ackEscalations = (p: FakePlatform) =>
  p.sent('escalated').filter((n) => n.text.includes('not acknowledged'));

describe('acknowledgement deadline', () => {
  it('escalates a P1 at 5 minutes and not before, each level to a role not yet paged, until none is left', async () => {
    const platform = new FakePlatform();
    platform.status = { postgres: 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-ack'),
      ]);
      await until(
        () => status(handle),
        (s) => s.status === 'AwaitingApproval',
        'approval wait',
      );
      // Opening paged the runbook's team and on-call (chain: on-call, platform, manager).
      expect(platform.sent('opened')[0]?.roles.sort()).toEqual(['on-call', 'platform']);
      await env.sleep(290_000);
      expect((await status(handle)).ackLevel ?? 0).toBe(0);
      expect(ackEscalations(platform)).toEqual([]);

      await env.sleep('20 seconds');
      await vi.waitFor(() => expect(ackEscalations(platform).map((n) => n.roles)).toEqual([['manager']]));
      await env.sleep('30 minutes');
      expect(ackEscalations(platform)).toHaveLength(1);
      const s = await status(handle);
      expect(s.ackLevel).toBe(1);
      const timeline = s.timeline.filter((t) => t.type === 'escalated');
      expect(timeline.some((t) => t.text.includes('not acknowledged within 5m'))).toBe(true);
      await handle.executeUpdate(incidentActions.resolve.update, {
        args: [{ by: 'alice', summary: 'test over' }],
      });
      await handle.result();
      expect(
        platform.ledger
          .filter((e) => e.type === 'escalated' && e.data.kind === 'acknowledgement')
          .map((e) => e.data.to),
      ).toEqual(['manager']);
    });
  });

  it('uses 60 minutes for P3 and reaches on-call, whom a P3 does not page at open', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'high-agent-latency', [
        alert('FTEHighAgentLatency', 'fp-p3'),
      ]);
      await until(
        () => status(handle),
        (s) => s.status === 'Monitoring',
        'waiting for the alert to resolve',
      );
      expect((await status(handle)).severity).toBe('P3');
      expect(platform.sent('opened')[0]?.roles).toEqual(['platform']);
      await env.sleep('59 minutes');
      expect(ackEscalations(platform)).toEqual([]);
      await env.sleep('2 minutes');
      await vi.waitFor(() => expect(ackEscalations(platform).map((n) => n.roles)).toEqual([['on-call']]));
      await env.sleep('50 minutes');
      expect(ackEscalations(platform)).toHaveLength(1);
      await env.sleep('20 minutes');
      await vi.waitFor(() =>
        expect(ackEscalations(platform).map((n) => n.roles)).toEqual([['on-call'], ['ai-ml']]),
      );
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });

  it('re-arms the deadline when findings raise a P3 to P2, still counting from the first alert', async () => {
    const platform = new FakePlatform();
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'high-agent-latency', [
        alert('FTEHighAgentLatency', 'fp-raise'),
      ]);
      await until(
        () => status(handle),
        (s) => s.status === 'Monitoring',
        'waiting for the alert to resolve',
      );
      await env.sleep('10 minutes');
      // Channel metrics go down: a new alert makes the incident look again, and the finding raises it to P2.
      platform.status = { 'channel-metrics': 'down' };
      await raise(env, taskQueue, 'high-agent-latency', [alert('FTEHighAgentLatency', 'fp-raise-2')]);
      await until(
        () => status(handle),
        (s) => s.severity === 'P2',
        'severity raised',
      );
      await env.sleep('4 minutes');
      expect(ackEscalations(platform)).toEqual([]);
      await env.sleep('2 minutes');
      // 15 minutes after the first alert, not 15 after the raise and not 60 after the first alert.
      await vi.waitFor(() => expect(ackEscalations(platform)).toHaveLength(1));
      expect(ackEscalations(platform)[0]?.text).toMatch(/not acknowledged within 15m \(P2\)/);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });

  it('uses 15 minutes for P2 and stops escalating once acknowledged', async () => {
    const platform = new FakePlatform();
    platform.status = { webhook: 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'whatsapp-channel-down', [
        alert('FTEWhatsAppChannelDown', 'fp-p2'),
      ]);
      await until(
        () => status(handle),
        (s) => s.status === 'AwaitingApproval',
        'approval wait',
      );
      await env.sleep('14 minutes');
      expect(ackEscalations(platform)).toEqual([]);
      await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'erin' }] });
      await env.sleep('2 hours');
      expect(ackEscalations(platform)).toEqual([]);
      const s = await status(handle);
      expect(s.acknowledgedBy).toBe('erin');
      expect(s.timeToAcknowledgeMs).toBeGreaterThanOrEqual(14 * 60_000);
      expect(
        await refusal(handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'bob' }] })),
      ).toMatch(/already acknowledged by erin/);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'erin' }] });
      await handle.result();
    });
  });
});

describe('approvals', () => {
  it('reminds and escalates after the approval timeout; approving twice acts once', async () => {
    const platform = new FakePlatform().heals('restartStatefulSetPod', { postgres: 'ok' });
    platform.status = { postgres: 'down' };
    platform.metrics = { pods: { 'uid/postgres-0': 'uid-a' } };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-appr'),
      ]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
      await env.sleep(630_000);
      await vi.waitFor(() => {
        expect(platform.sent('approval-reminder')).toHaveLength(1);
        expect(platform.sent('approval-reminder')[0]?.roles).toEqual(['platform', 'on-call']);
        expect(
          platform.sent('escalated').some((n) => n.text.includes('approval of "restart-postgres"')),
        ).toBe(true);
      });
      expect(platform.actionCalls).toEqual([]);

      // dave (ai-ml) may not approve a platform step; the Update says why.
      expect(
        await refusal(
          handle.executeUpdate(incidentActions.approve.update, {
            args: [{ step: 'restart-postgres', by: 'dave' }],
          }),
        ),
      ).toMatch(/dave may not decide step "restart-postgres": it needs one of \[platform, on-call\]/);
      expect(
        await refusal(
          handle.executeUpdate(incidentActions.approve.update, {
            args: [{ step: 'restart-nothing', by: 'alice' }],
          }),
        ),
      ).toMatch(/unknown step "restart-nothing"/);

      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'alice' }],
      });
      expect(
        await refusal(
          handle.executeUpdate(incidentActions.approve.update, {
            args: [{ step: 'restart-postgres', by: 'carol' }],
          }),
        ),
      ).toMatch(/not waiting for approval/);
      await handle.signal(incidentActions.approve.signal, { step: 'restart-postgres', by: 'carol' });
      await env.sleep('1 minute');
      await until(
        () => status(handle),
        (s) => s.steps[0]?.status === 'recovered',
        'recovery',
      );
      expect(platform.timesActed('restartStatefulSetPod')).toBe(1);
      expect(platform.actionsNamed('restartStatefulSetPod')).toHaveLength(1);
      const s = await status(handle);
      expect(s.steps[0]?.approvedBy).toBe('alice');
      expect(s.rejectedAttempts).toBe(1);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });

  it('a rejection skips the step and keeps the reason', async () => {
    const platform = new FakePlatform();
    platform.status = { postgres: 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-rej'),
      ]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      await handle.executeUpdate(incidentActions.reject.update, {
        args: [{ step: 'restart-postgres', by: 'carol', reason: 'a DBA is already on it' }],
      });
      const s = await until(
        () => status(handle),
        (x) => x.status === 'Escalated',
        'escalation after nothing left',
      );
      expect(s.steps[0]).toMatchObject({
        status: 'rejected',
        rejectedBy: 'carol',
        reason: 'a DBA is already on it',
      });
      expect(platform.actionCalls).toEqual([]);
      await vi.waitFor(() => expect(platform.sent('stuck')).toHaveLength(1));
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'carol' }] });
      await handle.result();
    });
  });

  it('an approval by Signal from a person without the role is recorded as refused and does nothing', async () => {
    const platform = new FakePlatform();
    platform.status = { postgres: 'down' };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    await worker.runUntil(async () => {
      const handle = await raise(env, taskQueue, 'all-channels-down', [
        alert('FTEAllChannelsDown', 'fp-sig'),
      ]);
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-postgres'),
        'approval wait',
      );
      await handle.signal(incidentActions.approve.signal, { step: 'restart-postgres', by: 'erin' });
      await handle.signal(incidentActions.approve.signal, { step: 'restart-postgres' } as never);
      const s = await until(
        () => status(handle),
        (x) => x.rejectedAttempts === 2,
        'refused attempts',
      );
      const refused = s.timeline.filter((t) => t.type === 'rejected-attempt');
      expect(refused[0]).toMatchObject({ by: 'erin' });
      expect(refused[0]?.text).toMatch(/approve refused: erin may not decide step "restart-postgres"/);
      expect(refused[1]?.text).toMatch(/approve refused: invalid arguments: by:/);
      expect(s.awaitingApproval).toEqual(['restart-postgres']);
      expect(platform.actionCalls).toEqual([]);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  });
});
