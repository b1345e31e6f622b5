import * as wf from '@temporalio/workflow';
import { peopleInRoles } from '../../domain/contacts.js';
import { formatDuration } from '../../domain/duration.js';
import { postIncidentWorkflowId } from '../../domain/incident-key.js';
import { REPORT_DUE_MS } from '../../domain/post-incident.js';
import { needsPostIncidentReport } from '../../domain/severity.js';
import {
  IncidentDrill,
  IncidentRunbook,
  IncidentSeverity,
  IncidentTeam,
  ReportDueAt,
  ReportStatus,
} from '../api.js';
import { postIncidentWorkflow } from '../post-incident.js';
import type { Incident } from './context.js';
import type { IncidentOutcome, IncidentWorkflowInput } from './types.js';

/**
 * Version marker: the run waits a bounded time for its ledger writes and notifications before it ends or
 * continues as new, and a firing alert that arrives once it resolved opens the next occurrence.
 */
export const BOUNDED_DRAIN = 'bounded-drain-and-late-alerts';
/** How long a closing run waits for ledger writes and notifications (the ledger database may be down). */
export const DRAIN_MS = 10 * 60_000;

/** Closes the incident: records and announces the resolution and starts the post-incident report (P1/P2). */
export async function resolveIncident(inc: Incident): Promise<IncidentOutcome> {
  const { state: s, snapshot } = inc.ready();
  s.resolvedAt = inc.now();
  s.timeToResolveMs = Date.parse(s.resolvedAt) - Date.parse(s.openedAt);
  for (const st of s.steps) if (st.status === 'awaiting-approval') st.status = 'idle';
  inc.setStatus('Resolved', 'nothing: resolved');
  inc.record(
    'resolved',
    `resolved after ${formatDuration(Math.round(s.timeToResolveMs / 1000) * 1000)}${s.resolutionSummary ? `: ${s.resolutionSummary}` : ''}`,
    s.resolvedBy,
  );
  inc.toLedger(
    'resolved',
    {
      timeToResolveMs: s.timeToResolveMs,
      timeToAcknowledgeMs: s.timeToAcknowledgeMs ?? null,
      summary: s.resolutionSummary ?? null,
    },
    s.resolvedBy,
  );
  inc.notify(
    'resolved',
    [s.team],
    `Resolved: ${s.title}${s.resolutionSummary ? ` (${s.resolutionSummary})` : ''}`,
  );

  if (needsPostIncidentReport(s.severity)) {
    const childId = postIncidentWorkflowId(inc.incidentId, s.openedAt);
    const reportOwner =
      s.acknowledgedBy ??
      (s.resolvedBy !== 'system' ? s.resolvedBy : undefined) ??
      peopleInRoles(snapshot.contacts, [s.team])[0] ??
      'unassigned';
    const due = new Date(Date.parse(s.resolvedAt) + REPORT_DUE_MS);
    await wf.startChild(postIncidentWorkflow, {
      workflowId: childId,
      parentClosePolicy: wf.ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: IncidentSeverity, value: s.severity },
        { key: IncidentRunbook, value: s.runbookId },
        { key: IncidentTeam, value: s.team },
        { key: ReportStatus, value: 'Pending' },
        { key: ReportDueAt, value: due },
        ...(s.drill ? [{ key: IncidentDrill, value: true }] : []),
      ],
      args: [
        {
          incidentId: inc.incidentId,
          occurrence: inc.occurrence,
          title: s.title,
          severity: s.severity,
          runbookId: s.runbookId,
          team: s.team,
          resolvedAt: s.resolvedAt,
          reportOwner,
          runbookUpdateRequired: s.newFailureMode,
          ...(s.resolutionSummary ? { resolutionSummary: s.resolutionSummary } : {}),
          ...(s.drill ? { drill: s.drill } : {}),
          contacts: snapshot.contacts,
        },
      ],
    });
    s.postIncidentWorkflowId = childId;
    inc.record('post-incident-started', `report due ${due.toISOString()} (owner ${reportOwner}): ${childId}`);
  }
  return {
    incidentId: inc.incidentId,
    severity: s.severity,
    resolvedBy: s.resolvedBy ?? 'system',
    resolvedAt: s.resolvedAt,
    timeToResolveMs: s.timeToResolveMs,
    ...(s.timeToAcknowledgeMs !== undefined ? { timeToAcknowledgeMs: s.timeToAcknowledgeMs } : {}),
    ...(s.postIncidentWorkflowId ? { postIncidentWorkflowId: s.postIncidentWorkflowId } : {}),
  };
}

/** Closes a cancelled incident: who and why in the timeline and the ledger, a final status, people told. */
export async function closeCancelled(inc: Incident): Promise<IncidentOutcome> {
  const s = inc.ready().state;
  const by = inc.cancelRequest?.by ?? 'temporal';
  const reason =
    inc.cancelRequest?.reason ??
    'cancel requested through Temporal (the request in the workflow history says by whom)';
  const at = inc.now();
  s.cancelled = { by, at, reason };
  inc.resolveRequested = true;
  for (const st of s.steps) if (st.status === 'awaiting-approval') st.status = 'idle';
  inc.setStatus('Cancelled', 'nothing: cancelled');
  inc.record('cancelled', `cancelled: ${reason}`, by);
  inc.toLedger('cancelled', { reason }, by);
  inc.notify('cancelled', [s.team], `Cancelled: ${s.title} (${reason})`);
  const finished = await inc.drain(DRAIN_MS);
  if (!finished) reportUnwritten(inc);
  return {
    incidentId: inc.incidentId,
    severity: s.severity,
    resolvedBy: by,
    resolvedAt: at,
    timeToResolveMs: Date.parse(at) - Date.parse(s.openedAt),
    ...(s.timeToAcknowledgeMs !== undefined ? { timeToAcknowledgeMs: s.timeToAcknowledgeMs } : {}),
    cancelled: { by, reason },
    ...(inc.unwritten.size ? { unwrittenLedgerEvents: [...inc.unwritten.values()] } : {}),
  };
}

function reportUnwritten(inc: Incident): void {
  if (inc.unwritten.size === 0) return;
  const types = [...inc.unwritten.values()].map((e) => e.type).join(', ');
  inc.record(
    'ledger-failed',
    `${inc.unwritten.size} ledger event(s) not written before the run ended (${types}); they are in this timeline and the workflow result`,
  );
}

/**
 * The end of a run: waits (bounded) for background work, then either completes with the outcome or, when a
 * firing alert arrived after the incident closed, continues as the next occurrence so the alert is not lost.
 */
export async function finish(
  inc: Incident,
  input: IncidentWorkflowInput,
  outcome: IncidentOutcome,
): Promise<IncidentOutcome> {
  if (!wf.patched(BOUNDED_DRAIN)) {
    await Promise.all(inc.pending.splice(0));
    await wf.condition(wf.allHandlersFinished);
    return outcome;
  }
  const finished = await inc.drain(DRAIN_MS);
  if (!finished) reportUnwritten(inc);
  const firing = inc.lateAlerts.filter((a) => a.status === 'firing');
  if (firing.length > 0) {
    const names = [...new Set(firing.map((a) => a.labels.alertname ?? 'unnamed'))].join(', ');
    inc.record('next-occurrence', `firing after the incident closed (${names}): opening the next occurrence`);
    return wf.continueAsNew<(input: IncidentWorkflowInput) => Promise<IncidentOutcome>>({
      trigger: { ...inc.trigger, alerts: firing },
      ...(input.historyLimit ? { historyLimit: input.historyLimit } : {}),
      occurrence: wf.uuid4(),
    });
  }
  return {
    ...outcome,
    ...(inc.unwritten.size ? { unwrittenLedgerEvents: [...inc.unwritten.values()] } : {}),
  };
}
