import { describe, expect, it } from 'vitest';
import { useProduct } from './harness.js';

// Seed procedure 1 when the database or the broker is the cause: the platform really loses PostgreSQL or
// Kafka (the sandbox cuts the worker's and fte-api's path to it), the pod crash-loops on the control plane,
// and only restarting that pod (approved by a person) brings it back.

const runbook = 'all-channels-down';
const product = useProduct(runbook);

describe.each([
  { scenario: 'postgres-down', pod: 'postgres-0', step: 'restart-postgres', probe: 'postgres' },
  { scenario: 'kafka-down', pod: 'kafka-0', step: 'restart-kafka', probe: 'kafka' },
] as const)('$scenario', ({ scenario, pod, step, probe }) => {
  it(`is diagnosed, ${step} is approved and verified, and the incident resolves with a pending report`, async () => {
    const { sandbox } = product();
    const workload = pod.replace(/-0$/, '');
    const before = (await sandbox.cluster.podsOf(workload)).find((p) => p.name === pod);
    await sandbox.apply(scenario);

    expect(await product().alert('FTEAllChannelsDown', 'firing')).toBe(202);
    const waiting = await product().waitFor(
      runbook,
      (s) => s.awaitingApproval.includes(step),
      `diagnosis and the approval request for ${step}`,
      120,
    );
    expect(waiting.findings[probe]?.status).toBe('down');
    expect(waiting.findings['api-health']?.status).toBe('down');
    expect(waiting.findings.pods?.summary).toContain(`${pod} CrashLoopBackOff`);
    expect(waiting.findings[`${probe}-logs`]?.status).toBe('degraded');
    expect(waiting.severity).toBe('P1');
    // The API cannot be the fix while its database or broker is down.
    expect(waiting.awaitingApproval).not.toContain('restart-api');

    // Approved with the plain temporal CLI, as an on-call engineer without incidentctl would.
    const id = product().incidentId(runbook);
    const answer = await product().temporal([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      id,
      '--name',
      'approve',
      '--input',
      JSON.stringify({ step, by: 'carol' }),
    ]);
    expect(answer).toContain(step);

    const recovered = await product().waitFor(
      runbook,
      (s) => s.status === 'Monitoring',
      `${step} to run and verify`,
      180,
    );
    expect(recovered.steps.find((s) => s.id === step)).toMatchObject({
      status: 'recovered',
      runs: 1,
      approvedBy: 'carol',
    });
    expect(recovered.findings[probe]?.status).toBe('ok');
    // The replacement pod (same name, new uid) logs cleanly.
    expect(recovered.findings[`${probe}-logs`]?.status).toBe('ok');
    expect(recovered.findings['api-health']?.status).toBe('ok');
    const after = (await sandbox.cluster.podsOf(workload)).find((p) => p.name === pod);
    expect(after?.uid).not.toBe(before?.uid);
    expect(after?.ready).toBe(true);
    // Only the broken pod was restarted.
    expect(recovered.steps.filter((s) => s.runs > 0).map((s) => s.id)).toEqual([step]);

    expect(await product().alert('FTEAllChannelsDown', 'resolved')).toBe(202);
    const outcome = (await product().handle(runbook).result()) as { postIncidentWorkflowId?: string };
    await product().pendingReport(outcome.postIncidentWorkflowId);
    expect(await product().ledgerEvents(id)).toEqual(
      expect.arrayContaining(['opened', 'step-approved', 'step-run', 'step-verified', 'resolved']),
    );
    await product()
      .env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string)
      .terminate('test done');
  }, 420_000);
});
