import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { gmailActivities } from '../../src/activities/gmail.js';
import type { ActionInput, ProbeInput } from '../../src/domain/activity-contract.js';
import { FteApiSim } from '../../src/sandbox/fte-api.js';

const HOUR = 3_600_000;
const probe: ProbeInput = {
  incidentId: 'incident-gmail',
  scope: 'customer-success-fte',
  probeId: 'gmail-watch',
  args: {},
};
const action = (idempotencyKey: string): ActionInput => ({
  incidentId: 'incident-gmail',
  scope: 'customer-success-fte',
  stepId: 'renew-watch',
  idempotencyKey,
  args: {},
});

let sim: FteApiSim;
beforeAll(async () => {
  sim = await FteApiSim.start();
});
afterAll(async () => {
  await sim.stop();
});
afterEach(async () => {
  sim.clearFaults();
  await sim.start();
});

const gmail = (token = sim.adminToken) =>
  gmailActivities({ watchUrl: sim.gmailWatchUrl, token, timeoutMs: 5_000 });

describe('gmailWatch', () => {
  it('is ok with days left and reports the hours left', async () => {
    sim.setGmailWatch({ expiration: Date.now() + 5 * 24 * HOUR });
    const f = await gmail().gmailWatch(probe);
    expect(f.status).toBe('ok');
    expect(f.metrics.hoursLeft).toBeGreaterThan(119);
    expect(f.metrics.hoursLeft).toBeLessThanOrEqual(120);
  });

  it('is degraded with less than 24 hours left', async () => {
    const expiration = Date.now() + 3 * HOUR;
    sim.setGmailWatch({ expiration });
    const f = await gmail().gmailWatch(probe);
    expect(f.status).toBe('degraded');
    expect(f.metrics.hoursLeft).toBeCloseTo(3, 0);
    expect(f.metrics.expiration).toBe(new Date(expiration).toISOString());
    expect(f.summary).toContain('renew');
  });

  it('is down once the watch has expired', async () => {
    sim.setGmailWatch({ expiration: Date.now() - 2 * HOUR });
    const f = await gmail().gmailWatch(probe);
    expect(f.status).toBe('down');
    expect(f.summary).toMatch(/expired 2 h ago/);
    expect(f.metrics.hoursLeft).toBeLessThan(0);
  });

  it('is unknown when the admin token is rejected, without showing the token', async () => {
    const wrong = 'not-the-admin-token-4711';
    const f = await gmail(wrong).gmailWatch(probe);
    expect(f.status).toBe('unknown');
    expect(f.summary).toContain('401');
    expect(JSON.stringify(f)).not.toContain(wrong);
  });

  it('is unknown when the endpoint is down, slow or malformed', async () => {
    sim.setFault('gmail-watch', { malformedJson: true });
    expect((await gmail().gmailWatch(probe)).summary).toContain('not valid JSON');
    sim.setFault('gmail-watch', { delayMs: 3_000 });
    const slow = await gmailActivities({
      watchUrl: sim.gmailWatchUrl,
      token: sim.adminToken,
      timeoutMs: 200,
    }).gmailWatch(probe);
    expect(slow.status).toBe('unknown');
    expect(slow.summary).toContain('200 ms timeout');
    await sim.stop();
    const refused = await gmail().gmailWatch(probe);
    expect(refused.status).toBe('unknown');
    expect(refused.summary).toContain('refused the connection');
  });
});

describe('renewGmailWatch', () => {
  it('renews an expired watch for 7 days, once per idempotency key', async () => {
    sim.setGmailWatch({ expiration: Date.now() - HOUR });
    const before = sim.gmailRenewals;
    const acts = gmail();
    const first = await acts.renewGmailWatch(action('incident-gmail/run1/renew-watch/1'));
    expect(first.changed).toBe(true);
    expect(Date.parse(first.expiration)).toBe(sim.gmailWatch.expiration);
    expect(Date.parse(first.expiration) - Date.now()).toBeGreaterThan(167 * HOUR);
    expect(first.summary).toContain(first.expiration);
    expect(sim.gmailRenewals).toBe(before + 1);

    const again = await acts.renewGmailWatch(action('incident-gmail/run1/renew-watch/1'));
    expect(again.changed).toBe(false);
    expect(again.expiration).toBe(first.expiration);
    expect(sim.gmailRenewals).toBe(before + 1);

    // Another worker (no memory of the first call) with the same key: the platform replays the first answer.
    const elsewhere = await gmail().renewGmailWatch(action('incident-gmail/run1/renew-watch/1'));
    expect(elsewhere.changed).toBe(false);
    expect(elsewhere.expiration).toBe(first.expiration);
    expect(sim.gmailRenewals).toBe(before + 1);

    expect((await acts.gmailWatch(probe)).status).toBe('ok');

    const nextRun = await acts.renewGmailWatch(action('incident-gmail/run1/renew-watch/2'));
    expect(nextRun.changed).toBe(true);
    expect(sim.gmailRenewals).toBe(before + 2);
  });

  it('fails non-retryably on a rejected token and retryably when the endpoint is down', async () => {
    const before = sim.gmailRenewals;
    const secret = 'wrong-token-for-the-test-42';
    const rejected = gmail(secret).renewGmailWatch(action('k-forbidden'));
    await expect(rejected).rejects.toMatchObject({ type: 'ForbiddenError', nonRetryable: true });
    await expect(rejected).rejects.not.toHaveProperty('message', expect.stringContaining(secret));
    sim.setFault('gmail-watch', { status: 500 });
    await expect(gmail().renewGmailWatch(action('k-500'))).rejects.toMatchObject({
      type: 'ServerError',
      nonRetryable: false,
    });
    await sim.stop();
    await expect(gmail().renewGmailWatch(action('k-down'))).rejects.toMatchObject({
      type: 'UnavailableError',
      nonRetryable: false,
    });
    expect(sim.gmailRenewals).toBe(before);
  });
});
