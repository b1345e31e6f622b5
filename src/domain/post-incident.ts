import type { DrillMark } from './alerts.js';
import type { Severity } from './severity.js';
import type { TimelineEntry } from './incident.js';

export const REPORT_DUE_MS = 24 * 3_600_000;
/** Reminders before the deadline, measured from resolution; after it, one a day until the report is in. */
export const REPORT_REMINDERS_MS = [12 * 3_600_000, 23 * 3_600_000];
export const OVERDUE_REMINDER_EVERY_MS = 24 * 3_600_000;

export type ReportStatus = 'Pending' | 'Submitted' | 'Overdue';

export interface PostIncidentInput {
  incidentId: string;
  title: string;
  severity: Severity;
  runbookId: string;
  team: string;
  resolvedAt: string;
  /** The person who owns the report: who acknowledged or resolved the incident. */
  reportOwner: string;
  /** The incident showed a failure mode the runbook lacks: the runbook must be updated. */
  runbookUpdateRequired: boolean;
  resolutionSummary?: string;
  /** The report of a drill incident: its reminders are marked and, unless `notify`, only logged. */
  drill?: DrillMark;
}

export interface FollowUp {
  id: string;
  title: string;
  owner: string;
  dueAt?: string;
  status: 'open' | 'done';
  doneBy?: string;
  doneAt?: string;
  nextReminderAt?: string;
}

export interface PostIncidentState extends PostIncidentInput {
  reportDueAt: string;
  reportStatus: ReportStatus;
  report?: { by: string; rootCause: string; link?: string; submittedAt: string };
  nextReportReminderAt?: string;
  followUps: FollowUp[];
  runbookUpdate?: { by: string; ref: string; at: string };
  timeline: TimelineEntry[];
  rejectedAttempts: number;
  completedAt?: string;
}

/** Done when the report is in, every follow-up is done and, where required, the runbook was updated. */
export function isPostIncidentComplete(s: PostIncidentState): boolean {
  return (
    s.report !== undefined &&
    s.followUps.every((f) => f.status === 'done') &&
    (!s.runbookUpdateRequired || s.runbookUpdate !== undefined)
  );
}
