import type { Contacts } from './contacts.js';
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
  /**
   * The incident's ledger occurrence (the first run id of the incident workflow): the report's events go to
   * the ledger under the incident's id and this occurrence. Absent: the parent's run id when this workflow
   * was started (the same unless the incident continued as new), else this workflow's own first run id.
   */
  occurrence?: string;
  /**
   * The incident's contacts file, for verifying signed actions (src/domain/identity.ts). Absent for reports
   * started before signatures existed: their actions are recorded as claimed, as they always were.
   */
  contacts?: Contacts;
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
  /** When its due date first passed with the follow-up still open. */
  overdueAt?: string;
}

export interface PostIncidentState extends PostIncidentInput {
  reportDueAt: string;
  reportStatus: ReportStatus;
  report?: {
    by: string;
    rootCause: string;
    link?: string;
    submittedAt: string;
    /** The report says explicitly that no follow-up is needed. */
    noFollowUps?: boolean;
  };
  nextReportReminderAt?: string;
  followUps: FollowUp[];
  runbookUpdate?: { by: string; ref: string; at: string };
  timeline: TimelineEntry[];
  rejectedAttempts: number;
  /** Nonces of the signed actions taken in the last minutes, with when each may be forgotten (ms). */
  signedNonces?: Record<string, number>;
  completedAt?: string;
  /** What the workflow still waits for before it closes (empty once complete). */
  missing?: string[];
}

export interface CompletionRules {
  /**
   * A report alone does not close the work: it needs a follow-up, or the report's explicit statement that none
   * is needed. Off only for workflows that started before this rule (replay of their histories).
   */
  followUpsOrStatement: boolean;
}

/** What the post-incident work still lacks, in words a person acts on; empty when it is complete. */
export function postIncidentMissing(
  s: PostIncidentState,
  rules: CompletionRules = { followUpsOrStatement: true },
): string[] {
  const missing: string[] = [];
  if (!s.report) missing.push('the report (root cause)');
  const open = s.followUps.filter((f) => f.status === 'open');
  if (open.length) missing.push(`follow-ups to be done: ${open.map((f) => f.id).join(', ')}`);
  else if (rules.followUpsOrStatement && s.followUps.length === 0 && !s.report?.noFollowUps) {
    missing.push('a follow-up, or the report saying that none is needed (noFollowUps)');
  }
  if (s.runbookUpdateRequired && !s.runbookUpdate) missing.push('the runbook update (new failure mode)');
  return missing;
}

/**
 * Done when the report is in, every follow-up is done (and there is one, or the report says none is needed)
 * and, where required, the runbook was updated.
 */
export function isPostIncidentComplete(
  s: PostIncidentState,
  rules: CompletionRules = { followUpsOrStatement: true },
): boolean {
  return postIncidentMissing(s, rules).length === 0;
}
