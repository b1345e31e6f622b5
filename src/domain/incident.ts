import type { Alert, DrillMark } from './alerts.js';
import type { Contacts } from './contacts.js';
import type { Findings } from './findings.js';
import type { Identity } from './identity.js';
import type { Runbook } from './runbook.js';
import type { Severity } from './severity.js';

/**
 * Values of the IncidentStatus search attribute, in the order an incident usually moves through them.
 * Monitoring: remediation verified, waiting for the alerts to resolve. Resolved and Cancelled are final.
 */
export const incidentStatuses = [
  'Investigating',
  'AwaitingApproval',
  'Remediating',
  'Verifying',
  'Monitoring',
  'Escalated',
  'Resolved',
  'Cancelled',
] as const;
export type IncidentStatus = (typeof incidentStatuses)[number];

export type StepStatus =
  | 'idle'
  | 'awaiting-approval'
  | 'approved'
  | 'rejected'
  | 'running'
  | 'failed'
  | 'verifying'
  | 'recovered'
  | 'not-recovered'
  | 'done';

export interface StepState {
  id: string;
  title: string;
  action: string;
  risk: 'low' | 'high';
  approvers: string[];
  status: StepStatus;
  runs: number;
  approvedBy?: string;
  rejectedBy?: string;
  reason?: string;
  result?: string;
  error?: string;
}

export interface TaskState {
  id: string;
  title: string;
  owner: string;
  status: 'open' | 'done';
  doneBy?: string;
  doneAt?: string;
}

/** One thing that happened: when, what, and who did it (a person, or `system` for the workflow itself). */
export interface TimelineEntry {
  at: string;
  type: string;
  text: string;
  by: string;
  /** For a person's action: whether a signature proved `by` (src/domain/identity.ts), or it is only claimed. */
  verified?: boolean;
  /** The service that vouched for the person (e.g. `slack`). */
  via?: string;
}

/** A timeline entry; `by` is a name, an identity (a person's action, verified or claimed), or absent (system). */
export function timelineEntry(at: string, type: string, text: string, by?: string | Identity): TimelineEntry {
  if (typeof by !== 'object') return { at, type, text, by: by ?? 'system' };
  return { at, type, text, by: by.by, verified: by.verified, ...(by.via ? { via: by.via } : {}) };
}

/** How a ledger event names who acted: the name, and for a person's action whether it was verified. */
export function ledgerActor(by?: string | Identity): { by?: string; verification: Record<string, unknown> } {
  if (typeof by !== 'object') return by ? { by, verification: {} } : { verification: {} };
  return { by: by.by, verification: { verified: by.verified, ...(by.via ? { via: by.via } : {}) } };
}

export interface AlertState {
  fingerprint: string;
  alertname: string;
  status: Alert['status'];
  firstSeen: string;
  lastSeen: string;
  deliveries: number;
  summary?: string;
}

export interface IncidentState {
  incidentId: string;
  title: string;
  runbookId: string;
  runbookHash: string;
  scope: string;
  source: 'alertmanager' | 'monitor' | 'declared';
  severity: Severity;
  team: string;
  status: IncidentStatus;
  openedAt: string;
  acknowledgedAt?: string;
  acknowledgedBy?: string;
  timeToAcknowledgeMs?: number;
  resolvedAt?: string;
  resolvedBy?: string;
  resolutionSummary?: string;
  timeToResolveMs?: number;
  newFailureMode: boolean;
  escalationLevel: number;
  /** Roles told about this incident so far (opening, escalations, approvals); the acknowledgement chain skips them. */
  pagedRoles?: string[];
  /** Acknowledgement escalations so far: a level of their own, apart from approval, stuck and manual escalations. */
  ackLevel?: number;
  alerts: Record<string, AlertState>;
  findings: Findings;
  steps: StepState[];
  tasks: TaskState[];
  awaitingApproval: string[];
  waitingFor: string;
  timeline: TimelineEntry[];
  rejectedAttempts: number;
  /** Nonces of the signed actions taken in the last minutes, with when each may be forgotten (ms). */
  signedNonces?: Record<string, number>;
  postIncidentWorkflowId?: string;
  /** Set when the incident was cancelled (`cancel`, or a Temporal cancel request): who, when and why. */
  cancelled?: { by: string; at: string; reason: string };
  /** Set when the incident is a rehearsal (`incidentctl drill`); absent for real incidents. */
  drill?: DrillMark;
  /**
   * Ledger events written by this run but not yet in the ledger (its database is down or slow; the writes
   * retry). Only in the status query's answer, never in history; absent when the ledger is up to date.
   */
  ledgerBehind?: number;
}

/** What an incident keeps from the moment it opened: the runbook and contacts it was opened with. */
export interface IncidentSnapshot {
  runbook: Runbook;
  runbookHash: string;
  contacts: Contacts;
}
