import { z } from 'zod';

export const severitySchema = z.enum(['P1', 'P2', 'P3']);
export type Severity = z.infer<typeof severitySchema>;

/** The seed runbook's response times: how long an incident may wait for acknowledgement. */
export const responseTimeMs: Record<Severity, number> = {
  P1: 5 * 60_000,
  P2: 15 * 60_000,
  P3: 60 * 60_000,
};

const rank: Record<Severity, number> = { P1: 1, P2: 2, P3: 3 };

/** The more severe of two severities (P1 is the most severe). */
export function mostSevere(a: Severity, b: Severity): Severity {
  return rank[a] <= rank[b] ? a : b;
}

/** P1 and P2 incidents need a post-incident report; they also page on-call at open. */
export function needsPostIncidentReport(severity: Severity): boolean {
  return severity === 'P1' || severity === 'P2';
}
