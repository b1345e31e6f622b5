import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type {
  AcknowledgeArgs,
  AddFollowUpArgs,
  AddNoteArgs,
  AlertsArgs,
  ApproveArgs,
  CancelArgs,
  CompleteFollowUpArgs,
  CompleteTaskArgs,
  EscalateArgs,
  MarkRunbookUpdatedArgs,
  RejectArgs,
  ResolveArgs,
  SubmitReportArgs,
} from '../domain/commands.js';
import type { IncidentState } from '../domain/incident.js';
import type { PostIncidentState } from '../domain/post-incident.js';

export * from './search-attributes.js';

export const TASK_QUEUE = 'incident-response';

// Each human action is an Update (validated, answers the caller) and a Signal of the same name and argument
// (for `temporal workflow signal` and the Temporal UI); an invalid Signal is recorded as a rejected attempt.
export const incidentActions = {
  acknowledge: {
    update: defineUpdate<string, [AcknowledgeArgs]>('acknowledge'),
    signal: defineSignal<[AcknowledgeArgs]>('acknowledge'),
  },
  approve: {
    update: defineUpdate<string, [ApproveArgs]>('approve'),
    signal: defineSignal<[ApproveArgs]>('approve'),
  },
  reject: {
    update: defineUpdate<string, [RejectArgs]>('reject'),
    signal: defineSignal<[RejectArgs]>('reject'),
  },
  resolve: {
    update: defineUpdate<string, [ResolveArgs]>('resolve'),
    signal: defineSignal<[ResolveArgs]>('resolve'),
  },
  escalate: {
    update: defineUpdate<string, [EscalateArgs]>('escalate'),
    signal: defineSignal<[EscalateArgs]>('escalate'),
  },
  addNote: {
    update: defineUpdate<string, [AddNoteArgs]>('addNote'),
    signal: defineSignal<[AddNoteArgs]>('addNote'),
  },
  completeTask: {
    update: defineUpdate<string, [CompleteTaskArgs]>('completeTask'),
    signal: defineSignal<[CompleteTaskArgs]>('completeTask'),
  },
  cancel: {
    update: defineUpdate<string, [CancelArgs]>('cancel'),
    signal: defineSignal<[CancelArgs]>('cancel'),
  },
} as const;

export const postIncidentActions = {
  submitReport: {
    update: defineUpdate<string, [SubmitReportArgs]>('submitReport'),
    signal: defineSignal<[SubmitReportArgs]>('submitReport'),
  },
  addFollowUp: {
    update: defineUpdate<string, [AddFollowUpArgs]>('addFollowUp'),
    signal: defineSignal<[AddFollowUpArgs]>('addFollowUp'),
  },
  completeFollowUp: {
    update: defineUpdate<string, [CompleteFollowUpArgs]>('completeFollowUp'),
    signal: defineSignal<[CompleteFollowUpArgs]>('completeFollowUp'),
  },
  markRunbookUpdated: {
    update: defineUpdate<string, [MarkRunbookUpdatedArgs]>('markRunbookUpdated'),
    signal: defineSignal<[MarkRunbookUpdatedArgs]>('markRunbookUpdated'),
  },
} as const;

/** Alerts for an open incident: the receiver and monitors deliver them with signalWithStart. */
export const alertsSignal = defineSignal<[AlertsArgs]>('alerts');

export const incidentStatusQuery = defineQuery<IncidentState>('status');
export const postIncidentStatusQuery = defineQuery<PostIncidentState>('status');
