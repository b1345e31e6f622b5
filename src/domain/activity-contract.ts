import type { DrillMark } from './alerts.js';
import type { Contacts } from './contacts.js';
import type { Finding } from './findings.js';
import type { Runbook } from './runbook.js';
import type { Severity } from './severity.js';

// The shapes the workflows and the activities agree on. Probe and action activities are called by the
// names runbooks give them, all with these signatures.

export interface ProbeInput {
  incidentId: string;
  scope: string;
  probeId: string;
  args: Record<string, unknown>;
}
export type ProbeActivity = (input: ProbeInput) => Promise<Finding>;

export interface ActionInput {
  incidentId: string;
  scope: string;
  stepId: string;
  /** Incident, step and run number: repeating the action with the same key changes nothing more. */
  idempotencyKey: string;
  args: Record<string, unknown>;
  /** Set when the incident is a drill: actions that reach people (notifyTeam) only log unless `notify`. */
  drill?: DrillMark;
}
export interface ActionResult {
  changed: boolean;
  summary: string;
}
export type ActionActivity = (input: ActionInput) => Promise<ActionResult>;

/** Error types an action throws for a request that cannot succeed by retrying. */
export const NON_RETRYABLE_ACTION_ERRORS = [
  'BadRequestError',
  'ForbiddenError',
  'NotFoundError',
  'PreconditionFailedError',
];

export interface LoadedRunbook {
  runbook: Runbook;
  runbookHash: string;
  contacts: Contacts;
}

export type NotificationKind =
  | 'opened'
  | 'escalated'
  | 'approval-needed'
  | 'approval-reminder'
  | 'approval-withdrawn'
  | 'stuck'
  | 'resolved'
  | 'cancelled'
  | 'report-reminder'
  | 'report-overdue'
  | 'follow-up-overdue';

export interface Notification {
  kind: NotificationKind;
  workflowId: string;
  title: string;
  severity: Severity;
  roles: string[];
  text: string;
  waitingFor?: string;
  /** The exact command a person runs to act, e.g. the approve command of a step. */
  command?: string;
  /** The step an approval notification asks about: Slack messages carry Approve and Reject buttons for it. */
  step?: string;
  /** A drill's notification: marked DRILL, and only logged unless `notify`. */
  drill?: DrillMark;
  /**
   * The same for every attempt of one notification: a retried activity does not deliver again what it
   * already delivered, and webhooks receive it as the Idempotency-Key header.
   */
  idempotencyKey?: string;
}
export interface NotifyResult {
  delivered: number;
  failed: number;
}

export interface LedgerEvent {
  incidentId: string;
  /** The first run id of the incident workflow: the same incident id may open again later. */
  occurrence: string;
  /** Unique per event: a retried write with the same id adds nothing. */
  eventId: string;
  type: string;
  at: string;
  by?: string;
  data: Record<string, string | number | boolean | null>;
}

export interface CoreActivities {
  loadRunbook(input: { runbookId: string }): Promise<LoadedRunbook>;
  notify(notification: Notification): Promise<NotifyResult>;
  recordIncidentEvent(event: LedgerEvent): Promise<void>;
}
