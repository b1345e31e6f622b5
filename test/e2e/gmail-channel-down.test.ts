import { describe, expect, it } from 'vitest';
import { useProduct } from './harness.js';

// Seed procedure 3: the Gmail watch expired (they last 7 days), so the email channel receives nothing.
// Renewing the watch is low risk: the incident does it without asking, verifies it and resolves.

const runbook = 'gmail-channel-down';
const product = useProduct(runbook);

describe('gmail-watch-expired', () => {
  it('renews the watch for seven more days without asking, and the incident resolves', async () => {
    const { sandbox } = product();
    await sandbox.apply('gmail-watch-expired');
    const expired = sandbox.api.gmailWatch.expiration;
    expect(expired).toBeLessThan(Date.now());

    expect(await product().alert('FTEGmailChannelDown', 'firing')).toBe(202);
    const renewed = await product().waitFor(
      runbook,
      (s) => s.steps.some((st) => st.id === 'renew-watch' && st.status === 'recovered'),
      'the watch renewal and its verification',
      180,
    );
    expect(renewed.severity).toBe('P2');
    const step = renewed.steps.find((s) => s.id === 'renew-watch');
    expect(step).toMatchObject({ runs: 1, risk: 'low' });
    expect(step?.approvedBy).toBeUndefined();
    const timeline = renewed.timeline.map((t) => t.text).join('\n');
    expect(timeline).toMatch(/gmail-watch.*(down|expired)/is);
    const watch = sandbox.api.gmailWatch;
    expect(watch.expiration).toBeGreaterThan(Date.now() + 6.9 * 24 * 3_600_000);
    expect(sandbox.api.gmailRenewals).toBe(1);

    expect(await product().alert('FTEGmailChannelDown', 'resolved')).toBe(202);
    const outcome = (await product().handle(runbook).result()) as { postIncidentWorkflowId?: string };
    expect((await product().status(runbook)).status).toBe('Resolved');
    expect(outcome.postIncidentWorkflowId).toBeDefined();
    await product()
      .env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string)
      .terminate('test done');
  }, 420_000);
});
