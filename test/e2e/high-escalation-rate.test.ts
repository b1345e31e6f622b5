import { describe, expect, it } from 'vitest';
import { useProduct } from './harness.js';

// Seed procedure 5: more than 30 % of conversations escalate for over ten minutes, one reason dominant
// (real rows in the platform's agent_metrics table). The human team is told at once; the AI/ML team reviews
// the reasons, and once their fix is in the rate falls and the incident resolves.

const runbook = 'high-escalation-rate';
const product = useProduct(runbook);

describe('escalation-spike', () => {
  it('tells the human team, opens the review for AI/ML, and resolves when the rate falls', async () => {
    const { sandbox } = product();
    await sandbox.apply('escalation-spike');

    expect(await product().alert('FTEEscalationRateHigh', 'firing')).toBe(202);
    const informed = await product().waitFor(
      runbook,
      (s) => s.steps.some((st) => st.id === 'inform-human-team' && st.runs === 1),
      'diagnosis and the message to the human team',
      120,
    );
    expect(informed.severity).toBe('P3');
    const rate = informed.findings['escalation-rate'];
    expect(['degraded', 'down']).toContain(rate?.status);
    expect(rate?.summary).toContain('refund request misread as complaint');
    expect(informed.tasks.find((t) => t.id === 'review-reasons')).toMatchObject({
      owner: 'ai-ml',
      status: 'open',
    });

    const id = product().incidentId(runbook);
    expect(await product().incidentctl(['task', 'done', id, 'review-reasons', '--as', 'dave'])).toContain(
      'review-reasons',
    );
    // The prompt fix is in: new conversations escalate at the usual rate again.
    expect(await sandbox.scenarios.recover('escalation-spike')).toBe(true);
    expect(await product().alert('FTEEscalationRateHigh', 'resolved')).toBe(202);
    await product().handle(runbook).result();
    const final = await product().status(runbook);
    expect(final.status).toBe('Resolved');
    expect(final.findings['escalation-rate']?.status).toBe('ok');
  }, 420_000);
});
