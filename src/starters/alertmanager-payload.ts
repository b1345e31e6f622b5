import { z } from 'zod';
import type { Alert } from '../domain/alerts.js';
import { severitySchema } from '../domain/severity.js';

// Alertmanager's webhook body, version 4 (https://prometheus.io/docs/alerting/latest/configuration/#webhook_config).
// Objects are not strict: a newer Alertmanager may add fields, and that must not make it drop notifications.

const labelSet = z.record(z.string(), z.string());
const timestamp = z.iso.datetime({ offset: true, message: 'expected an RFC 3339 timestamp' });
const alertStatus = z.enum(['firing', 'resolved']);

/** Alertmanager's "no end time" value, sent in endsAt of firing alerts. */
const ZERO_TIME = /^0001-01-01T00:00:00(\.0+)?Z$/;

export const alertmanagerAlertSchema = z.object({
  status: alertStatus,
  labels: labelSet,
  annotations: labelSet.default({}),
  startsAt: timestamp,
  endsAt: timestamp.optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().min(1).max(200),
});

export const alertmanagerWebhookSchema = z.object({
  version: z.string().refine((v) => v === '4', {
    message: 'unsupported webhook payload version; this receiver reads Alertmanager payload version "4"',
  }),
  groupKey: z.string(),
  // Older Alertmanagers (before max_alerts existed) do not send it.
  truncatedAlerts: z.number().int().min(0).default(0),
  status: alertStatus,
  receiver: z.string(),
  groupLabels: labelSet.default({}),
  commonLabels: labelSet.default({}),
  commonAnnotations: labelSet.default({}),
  externalURL: z.string().default(''),
  alerts: z.array(alertmanagerAlertSchema),
});
export type AlertmanagerWebhook = z.output<typeof alertmanagerWebhookSchema>;
export type AlertmanagerAlert = z.output<typeof alertmanagerAlertSchema>;

/** The domain alert of one Alertmanager alert: what the incident keeps, nothing more. */
export function toDomainAlert(a: AlertmanagerAlert): Alert {
  return {
    fingerprint: a.fingerprint,
    status: a.status,
    labels: a.labels,
    annotations: a.annotations,
    startsAt: a.startsAt,
    ...(a.endsAt && !ZERO_TIME.test(a.endsAt) ? { endsAt: a.endsAt } : {}),
  };
}

/** A Kubernetes-namespace-like scope, since the scope is the namespace an incident is about. */
const scopeSchema = z
  .string()
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'scope must look like a Kubernetes namespace (a-z, 0-9, -)');

/** Body of POST /incidents: a person declares an incident by hand. */
export const declareIncidentSchema = z.strictObject({
  runbook: z.string().min(1).max(100),
  scope: scopeSchema.optional(),
  severity: severitySchema.optional(),
  title: z.string().trim().min(1).max(300).optional(),
  by: z.string().trim().min(1, 'say who you are ("by")').max(100),
});
export type DeclareIncident = z.output<typeof declareIncidentSchema>;

/** One line per problem, "path: message", for 400 answers that tell the sender what to fix. */
export function describeIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message));
}
