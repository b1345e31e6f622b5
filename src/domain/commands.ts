import { z } from 'zod';
import { alertSchema, drillMarkSchema } from './alerts.js';
import { severitySchema } from './severity.js';

// Arguments of every human action and signal, validated the same way by the workflow, the CLI and the receiver.
const person = z.string().trim().min(1, 'say who you are ("by")').max(100);
const text = (what: string, max = 2000) => z.string().trim().min(1, `${what} must not be empty`).max(max);
/** A step, task or follow-up id: bounded, since a refusal quotes it back (and a refused Signal records it). */
const itemId = z.string().min(1).max(200);

export const acknowledgeArgs = z.strictObject({ by: person });
export const approveArgs = z.strictObject({
  step: itemId,
  by: person,
  reason: z.string().max(2000).optional(),
});
export const rejectArgs = z.strictObject({ step: itemId, by: person, reason: text('reason') });
export const resolveArgs = z.strictObject({
  by: person,
  summary: z.string().max(2000).optional(),
  newFailureMode: z.boolean().optional(),
});
export const escalateArgs = z.strictObject({ by: person, reason: text('reason') });
export const addNoteArgs = z.strictObject({ by: person, text: text('text', 4000) });
export const completeTaskArgs = z.strictObject({ task: itemId, by: person });

export const submitReportArgs = z.strictObject({
  by: person,
  rootCause: text('rootCause', 4000),
  link: z.url().optional(),
  /** The report says explicitly that no follow-up is needed; without it (or a follow-up) the work stays open. */
  noFollowUps: z.boolean().optional(),
});
export const addFollowUpArgs = z.strictObject({
  title: text('title', 300),
  owner: person,
  dueAt: z.iso.datetime({ offset: true }).optional(),
  /** Who added it (for the timeline and the ledger); the owner is who does it. */
  by: person.optional(),
});
export const completeFollowUpArgs = z.strictObject({ id: itemId, by: person });
export const markRunbookUpdatedArgs = z.strictObject({ by: person, ref: text('ref', 500) });

/** Alerts delivered to an open incident (by the receiver or a monitor). */
export const alertsArgs = z.strictObject({ alerts: z.array(alertSchema).max(500) });

/** What starts an incident: alerts routed to a runbook, or a person's declaration. */
export const cancelArgs = z.strictObject({ by: person, reason: text('reason', 500) });
export const incidentTriggerSchema = z.strictObject({
  runbookId: z.string().min(1),
  scope: z.string().min(1),
  source: z.enum(['alertmanager', 'monitor', 'declared']),
  alerts: z.array(alertSchema).max(500).default([]),
  declaredBy: z.string().optional(),
  title: z.string().max(300).optional(),
  severity: severitySchema.optional(),
  /** A rehearsal (`incidentctl drill`): marked everywhere, notifications only logged unless `notify`. */
  drill: drillMarkSchema.optional(),
});
export type IncidentTrigger = z.input<typeof incidentTriggerSchema>;
/** A trigger after validation: defaults applied. */
export type ParsedIncidentTrigger = z.output<typeof incidentTriggerSchema>;

export type AcknowledgeArgs = z.infer<typeof acknowledgeArgs>;
export type CancelArgs = z.infer<typeof cancelArgs>;
export type ApproveArgs = z.infer<typeof approveArgs>;
export type RejectArgs = z.infer<typeof rejectArgs>;
export type ResolveArgs = z.infer<typeof resolveArgs>;
export type EscalateArgs = z.infer<typeof escalateArgs>;
export type AddNoteArgs = z.infer<typeof addNoteArgs>;
export type CompleteTaskArgs = z.infer<typeof completeTaskArgs>;
export type SubmitReportArgs = z.infer<typeof submitReportArgs>;
export type AddFollowUpArgs = z.infer<typeof addFollowUpArgs>;
export type CompleteFollowUpArgs = z.infer<typeof completeFollowUpArgs>;
export type MarkRunbookUpdatedArgs = z.infer<typeof markRunbookUpdatedArgs>;
export type AlertsArgs = z.infer<typeof alertsArgs>;

const MAX_PROBLEMS = 5;
const MAX_PROBLEM_CHARS = 200;
const clip = (s: string) => (s.length > MAX_PROBLEM_CHARS ? `${s.slice(0, MAX_PROBLEM_CHARS)}…` : s);

/**
 * Parses with a schema and throws an Error whose message lists each problem (path: message). The message
 * is bounded: zod quotes unknown keys and paths back, and a refused Signal keeps the message in the timeline.
 */
export function parseArgs<S extends z.ZodType>(schema: S, value: unknown): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) =>
    clip(i.path.length ? `${i.path.map(String).join('.')}: ${i.message}` : i.message),
  );
  const more = problems.length > MAX_PROBLEMS ? `; and ${problems.length - MAX_PROBLEMS} more` : '';
  throw new Error(`invalid arguments: ${problems.slice(0, MAX_PROBLEMS).join('; ')}${more}`);
}
