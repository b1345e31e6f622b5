import { z } from 'zod';
import type { LabelMatcher, Runbook } from './runbook.js';

/** One alert as the incident keeps it: Alertmanager's fields that matter, nothing more. */
export const alertSchema = z.object({
  fingerprint: z.string().min(1).max(200),
  status: z.enum(['firing', 'resolved']),
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).default({}),
  startsAt: z.string(),
  endsAt: z.string().optional(),
});
export type Alert = z.infer<typeof alertSchema>;

export const DEFAULT_SCOPE = 'customer-success-fte';

function matches(m: LabelMatcher, labels: Record<string, string>): boolean {
  const value = labels[m.label] ?? '';
  switch (m.op) {
    case '=':
      return value === m.value;
    case '!=':
      return value !== m.value;
    case '=~':
      return new RegExp(`^(?:${m.value})$`).test(value);
    case '!~':
      return !new RegExp(`^(?:${m.value})$`).test(value);
  }
}

/** The runbook for an alert: the first whose alert names and label matchers fit, else the fallback. */
export function matchRunbook<R extends Pick<Runbook, 'id' | 'match'>>(
  runbooks: R[],
  labels: Record<string, string>,
): R | undefined {
  const alertname = labels.alertname ?? '';
  const direct = runbooks.find(
    (rb) => rb.match.alertnames.includes(alertname) && rb.match.labels.every((m) => matches(m, labels)),
  );
  return direct ?? runbooks.find((rb) => rb.match.fallback);
}

/**
 * Labels that mark a rehearsal (`incidentctl drill`): `drill="true"` opens the incident as a drill, and
 * `drill_notify="true"` lets its notifications reach the contacts (otherwise they are only logged).
 */
export const DRILL_LABEL = 'drill';
export const DRILL_NOTIFY_LABEL = 'drill_notify';

/** How an incident is a drill: marked, and whether its notifications reach people. */
export const drillMarkSchema = z.strictObject({ notify: z.boolean() });
export type DrillMark = z.infer<typeof drillMarkSchema>;

/**
 * The drill mark of alerts that open an incident together: only when every one of them is a drill alert,
 * so a real alert never opens a muted incident.
 */
export function drillOf(alerts: Pick<Alert, 'labels'>[]): DrillMark | undefined {
  if (alerts.length === 0 || !alerts.every((a) => a.labels[DRILL_LABEL] === 'true')) return undefined;
  return { notify: alerts.every((a) => a.labels[DRILL_NOTIFY_LABEL] === 'true') };
}

/** An incident's scope: the alert's namespace label, else the platform namespace. */
export function scopeOf(labels: Record<string, string>): string {
  return labels.namespace || DEFAULT_SCOPE;
}
