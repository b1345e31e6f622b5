import * as wf from '@temporalio/workflow';
import { peopleInRoles } from '../../domain/contacts.js';
import { formatDuration } from '../../domain/duration.js';
import type { StepState } from '../../domain/incident.js';
import type { StepSpec } from '../../domain/runbook.js';
import type { Incident } from './context.js';

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
      {
        waitingFor,
        command,
      },
    );
  }
  let remindAt = Date.now() + spec.approvalTimeout;
  for (;;) {
    await wf.condition(
      () => st.status !== 'awaiting-approval' || inc.resolveRequested || inc.historyTooLong(),
      Math.max(1, remindAt - Date.now()),
      { summary: `approval of ${spec.id}` },
    );
    if (st.status !== 'awaiting-approval' || inc.resolveRequested) break;
    if (inc.historyTooLong()) {
      await continueAsNew();
      continue;
    }
    inc.notify(
      'approval-reminder',
      spec.approvers,
      `Still waiting ${formatDuration(spec.approvalTimeout)} more for approval: ${spec.title}`,
      { waitingFor, command },
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
