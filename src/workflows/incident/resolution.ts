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
import type { IncidentOutcome } from './types.js';

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
          title: s.title,
          severity: s.severity,
          runbookId: s.runbookId,
          team: s.team,
          resolvedAt: s.resolvedAt,
          reportOwner,
          runbookUpdateRequired: s.newFailureMode,
          ...(s.resolutionSummary ? { resolutionSummary: s.resolutionSummary } : {}),
          ...(s.drill ? { drill: s.drill } : {}),
        },
      ],
    });
    s.postIncidentWorkflowId = childId;
    inc.record('post-incident-started', `report due ${due.toISOString()} (owner ${reportOwner}): ${childId}`);
  }
  await Promise.all(inc.pending.splice(0));
  await wf.condition(wf.allHandlersFinished);
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
