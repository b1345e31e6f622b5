import { describe, expect, it } from 'vitest';
import type { IncidentState } from '../../src/domain/incident.js';
import { useChaos } from './chaos.js';
import {
  ALERT,
  api,
  approve,
  breakPlatform,
  finish,
  kafka,
  postgres,
  runbook,
  waitAndApprove,
} from './incident.js';

// The worker is a process of its own and is killed with SIGKILL in each phase of an incident, then replaced.
// Whatever the phase, the incident completes, its action changed the platform exactly once (as the API server
// saw it: the writes the worker made, the pod's uid, the deployment's generation), every alert sent reached
// it, and its timeline and ledger hold each event once.
// This file: the action in flight, the verification and the report's wait; the phases before:
// worker-crash-opening-to-approval.test.ts.

const chaos = useChaos(runbook);

/**
 * The action that died with its worker ran again within its heartbeat timeout (15 s, then the retry's 5 s and
 * the dead worker's sticky queue), not after the step's whole timeout (2 minutes): actions heartbeat.
 */
function expectRetriedSoon(s: IncidentState, crashedAt: number): void {
  const ran = s.timeline.find((e) => e.type === 'step-run');
  expect(ran).toBeDefined();
  expect(Date.parse(ran?.at ?? '') - crashedAt).toBeLessThan(90_000);
}

describe('the worker is killed (SIGKILL) and replaced', () => {
  it('with the pod restart in flight: the deletion reaches the API server after the worker died', async () => {
    const c = chaos();
    const before = await breakPlatform(c, postgres);
    expect(await c.alert(ALERT, 'chaos-action-pod', 'firing')).toBe(202);
    await c.product.waitFor(runbook, (s) => s.awaitingApproval.includes(postgres.step), 'the approval', 150);
    const crashed = c.crashOnRequest(
      { verb: 'delete', resource: 'pods', name: postgres.pod },
      'action in flight: deleting the pod',
    );
    await approve(c, postgres.step);
    expect((await crashed).status).toBe(200);
    const crashedAt = Date.now();
    await c.startWorker();
    const s = await finish(c, postgres, before, {
      'chaos-action-pod': { status: 'resolved', deliveries: 2 },
    });
    // The retry found the restart the dead worker had done.
    expect(s.steps.find((x) => x.id === postgres.step)?.result).toMatch(/already restarted for this step/);
    expectRetriedSoon(s, crashedAt);
  }, 420_000);

  it('with the rollout restart in flight: the patch reaches the API server after the worker died', async () => {
    const c = chaos();
    const before = await breakPlatform(c, api);
    expect(await c.alert(ALERT, 'chaos-action-rollout', 'firing')).toBe(202);
    await c.product.waitFor(runbook, (s) => s.awaitingApproval.includes(api.step), 'the approval', 150);
    const crashed = c.crashOnRequest(
      { verb: 'patch', resource: 'deployments', name: api.deployment },
      'action in flight: patching the deployment',
    );
    await approve(c, api.step);
    expect((await crashed).status).toBe(200);
    const crashedAt = Date.now();
    await c.startWorker();
    const s = await finish(c, api, before, {
      'chaos-action-rollout': { status: 'resolved', deliveries: 2 },
    });
    expect(s.steps.find((x) => x.id === api.step)?.result).toMatch(/already restarted for this step/);
    expectRetriedSoon(s, crashedAt);
  }, 420_000);

  it('while verifying: the alert resolves while no worker runs', async () => {
    const c = chaos();
    const before = await breakPlatform(c, api);
    expect(await c.alert(ALERT, 'chaos-verify', 'firing')).toBe(202);
    await waitAndApprove(c, api.step);
    await c.product.waitFor(runbook, (s) => s.status === 'Verifying', 'the verification', 120);
    await c.crash('verification');
    expect(await c.alert(ALERT, 'chaos-verify', 'resolved')).toBe(202);
    await c.startWorker();
    await finish(
      c,
      api,
      before,
      { 'chaos-verify': { status: 'resolved', deliveries: 2 } },
      { resolveAlerts: false },
    );
  }, 420_000);

  it('while the report workflow waits: the report comes while no worker runs', async () => {
    const c = chaos();
    const before = await breakPlatform(c, kafka);
    expect(await c.alert(ALERT, 'chaos-report', 'firing')).toBe(202);
    await waitAndApprove(c, kafka.step);
    await finish(
      c,
      kafka,
      before,
      { 'chaos-report': { status: 'resolved', deliveries: 2 } },
      { crashBeforeReport: true },
    );
  }, 420_000);
});
