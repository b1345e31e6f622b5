import * as wf from '@temporalio/workflow';
import { NON_RETRYABLE_ACTION_ERRORS, type ActionActivity } from '../../domain/activity-contract.js';
import type { StepState } from '../../domain/incident.js';
import { isHealthy } from '../../domain/plan.js';
import type { StepSpec } from '../../domain/runbook.js';
import { renderArgs } from '../../domain/templates.js';
import { errorMessage } from './activities.js';
import type { Incident } from './context.js';
import { runProbes } from './diagnosis.js';

/**
 * Version marker: actions heartbeat (src/activities/heartbeats.ts), so a worker that dies while one runs is
 * noticed within ACTION_HEARTBEAT_TIMEOUT_MS and another worker retries it, instead of after the step's whole
 * timeout. Steps that ran before it replay without a heartbeat timeout.
 */
export const ACTION_HEARTBEAT = 'action-heartbeat';
export const ACTION_HEARTBEAT_TIMEOUT_MS = 15_000;

/** Runs a step's action once (retries per the runbook), then verifies recovery and looks again. */
export async function runStep(inc: Incident, spec: StepSpec, st: StepState): Promise<void> {
  const s = inc.ready().state;
  st.runs++;
  st.status = 'running';
  inc.setStatus('Remediating', `action ${spec.action} of "${spec.title}"`);
  const idempotencyKey = `${inc.incidentId}/${inc.occurrence}/${spec.id}/${st.runs}`;
  try {
    const args = renderArgs(spec.args, { incidentId: inc.incidentId, scope: s.scope, findings: s.findings });
    const heartbeat = wf.patched(ACTION_HEARTBEAT)
      ? { heartbeatTimeout: Math.min(ACTION_HEARTBEAT_TIMEOUT_MS, spec.timeout) }
      : {};
    const act = wf.proxyActivities<Record<string, ActionActivity>>({
      startToCloseTimeout: spec.timeout,
      ...heartbeat,
      retry: {
        maximumAttempts: spec.retry.maxAttempts,
        initialInterval: spec.retry.initialInterval,
        backoffCoefficient: spec.retry.backoffCoefficient,
        maximumInterval: spec.retry.maximumInterval,
        nonRetryableErrorTypes: NON_RETRYABLE_ACTION_ERRORS,
      },
      summary: `step ${spec.id}`,
    });
    const result = await (act[spec.action] as ActionActivity)({
      incidentId: inc.incidentId,
      scope: s.scope,
      stepId: spec.id,
      idempotencyKey,
      args,
      ...(s.drill ? { drill: s.drill } : {}),
    });
    st.result = result.summary.slice(0, 500);
    delete st.error;
    inc.record('step-run', `ran "${spec.title}": ${st.result}`);
    inc.toLedger('step-run', { step: spec.id, changed: result.changed, run: st.runs });
  } catch (error) {
    st.status = 'failed';
    st.error = errorMessage(error).slice(0, 500);
    inc.record('step-failed', `"${spec.title}" failed: ${st.error}`);
    inc.toLedger('step-failed', { step: spec.id, error: st.error, run: st.runs });
    inc.notify('escalated', [s.team], `Step failed: ${spec.title}: ${st.error}`);
    return;
  }
  st.status = 'verifying';
  inc.setStatus('Verifying', `recovery after "${spec.title}"`);
  const recovered = await verify(inc, spec);
  st.status = recovered ? 'recovered' : 'not-recovered';
  inc.record(
    recovered ? 'step-verified' : 'step-not-recovered',
    `${recovered ? 'recovered' : 'not recovered'} after "${spec.title}"`,
  );
  inc.toLedger(recovered ? 'step-verified' : 'step-not-recovered', { step: spec.id });
  // Plan the next move on a fresh picture, not on findings from before the step.
  if (spec.verify && !inc.resolveRequested) await runProbes(inc, undefined, `diagnosis after ${spec.id}`);
}

async function verify(inc: Incident, spec: StepSpec): Promise<boolean> {
  const { snapshot: snap, state: s } = inc.ready();
  if (!spec.verify) {
    await runProbes(inc, undefined, `check after ${spec.id}`);
    return isHealthy(snap.runbook, s.findings);
  }
  const deadline = Date.now() + spec.verify.within;
  for (;;) {
    const wait = Math.max(1_000, Math.min(spec.verify.every, deadline - Date.now()));
    if (await wf.condition(() => inc.resolveRequested, wait, { summary: `verify ${spec.id}` })) return false;
    const findings = await runProbes(inc, spec.verify.probes, `verification of ${spec.id}`);
    if (findings.every((f) => f.status === 'ok')) return true;
    if (Date.now() >= deadline) return false;
  }
}
