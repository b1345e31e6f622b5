import * as wf from '@temporalio/workflow';
import { evaluate } from '../../domain/conditions.js';
import { peopleInRoles } from '../../domain/contacts.js';
import { formatDuration } from '../../domain/duration.js';
import type { StepState } from '../../domain/incident.js';
import type { StepSpec } from '../../domain/runbook.js';
import type { Incident } from './context.js';
import { runProbes } from './diagnosis.js';

/**
 * Version marker: while a step waits for approval the incident keeps looking (new alerts, every 5 minutes)
 * and withdraws a request that is no longer needed; an approved step runs only if it is still needed.
 */
export const LOOK_BEFORE_ACTING = 'look-before-acting';
/** While a step waits for approval, how often the incident looks at the platform again. */
export const APPROVAL_RECHECK_MS = 5 * 60_000;

/**
 * Asks the step's approvers and waits for a decision, reminding and escalating every approval timeout.
 * True when the step was approved and the incident is still open.
 */
export async function awaitApproval(
  inc: Incident,
  spec: StepSpec,
  st: StepState,
  continueAsNew: () => Promise<never>,
): Promise<boolean> {
  const { snapshot: snap } = inc.ready();
  const looks = wf.patched(LOOK_BEFORE_ACTING);
  const command = `incidentctl approve ${inc.incidentId} ${spec.id}`;
  const waitingFor = `approval of "${spec.title}" by ${spec.approvers.join(' or ')}`;
  // After continue-as-new the step may already be waiting: the approvers were told then.
  const resumed = st.status === 'awaiting-approval';
  st.status = 'awaiting-approval';
  inc.setStatus('AwaitingApproval', waitingFor);
  if (!resumed) {
    inc.record('approval-requested', `"${spec.title}" waits for ${spec.approvers.join(' or ')}`);
    const approvers = peopleInRoles(snap.contacts, spec.approvers).join(', ');
    inc.notify(
      'approval-needed',
      spec.approvers,
      `Approval needed: ${spec.title} (approvers: ${approvers})`,
      { waitingFor, command, step: spec.id },
    );
  }
  let remindAt = Date.now() + spec.approvalTimeout;
  let recheckAt = Date.now() + APPROVAL_RECHECK_MS;
  for (;;) {
    const seen = inc.alertVersion;
    const wakeAt = looks ? Math.min(remindAt, recheckAt) : remindAt;
    await wf.condition(
      () =>
        st.status !== 'awaiting-approval' ||
        inc.resolveRequested ||
        inc.historyTooLong() ||
        (looks && inc.alertVersion !== seen),
      Math.max(1, wakeAt - Date.now()),
      { summary: `approval of ${spec.id}` },
    );
    if (st.status !== 'awaiting-approval' || inc.resolveRequested) break;
    if (inc.historyTooLong()) {
      await continueAsNew();
      continue;
    }
    if (looks && (inc.alertVersion !== seen || Date.now() >= recheckAt)) {
      const why = inc.alertVersion !== seen ? 'new alerts' : 'periodic re-check';
      await runProbes(inc, undefined, `${why} while "${spec.id}" waits for approval`);
      recheckAt = Date.now() + APPROVAL_RECHECK_MS;
      if (st.status === 'awaiting-approval' && !stillNeeded(inc, spec)) {
        withdraw(inc, spec, st, 'approval-withdrawn', 'the request is withdrawn');
        break;
      }
      if (Date.now() < remindAt) continue;
    }
    inc.notify(
      'approval-reminder',
      spec.approvers,
      `Still waiting ${formatDuration(spec.approvalTimeout)} more for approval: ${spec.title}`,
      { waitingFor, command, step: spec.id },
    );
    inc.escalate(
      'system',
      `approval of "${spec.id}" not given within ${formatDuration(spec.approvalTimeout)}`,
    );
    remindAt += spec.approvalTimeout;
  }
  // Handlers changed the status while we waited; read it afresh rather than through TypeScript's narrowing.
  const decided = st.status as StepState['status'];
  if (decided === 'awaiting-approval') st.status = 'idle';
  inc.publish();
  return decided === 'approved' && !inc.resolveRequested;
}

/**
 * Right before an approved step acts: the whole diagnosis runs again, and the step runs only if its `when`
 * still holds on what the platform looks like now, not on findings from before the approval.
 */
export async function stillNeededBeforeActing(
  inc: Incident,
  spec: StepSpec,
  st: StepState,
): Promise<boolean> {
  if (!wf.patched(LOOK_BEFORE_ACTING)) return true;
  await runProbes(inc, undefined, `look before acting: ${spec.id}`);
  if (inc.resolveRequested) return false;
  if (stillNeeded(inc, spec)) return true;
  withdraw(inc, spec, st, 'step-withdrawn', `approved by ${st.approvedBy ?? '?'}, but it will not run`);
  return false;
}

function stillNeeded(inc: Incident, spec: StepSpec): boolean {
  return !spec.when || evaluate(spec.when, inc.ready().state.findings);
}

function withdraw(
  inc: Incident,
  spec: StepSpec,
  st: StepState,
  type: 'approval-withdrawn' | 'step-withdrawn',
  outcome: string,
): void {
  // Back to idle: if the condition returns, the step asks again; an approval given for the old picture
  // does not carry over.
  st.status = 'idle';
  const text = `"${spec.title}" is no longer needed (its condition no longer holds on fresh findings): ${outcome}`;
  inc.record(type, text);
  inc.toLedger(type, { step: spec.id });
  inc.notify('approval-withdrawn', spec.approvers, text);
  inc.publish();
}
