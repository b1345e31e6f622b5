import { z } from 'zod';

export const findingStatusSchema = z.enum(['ok', 'degraded', 'down', 'unknown']);
export type FindingStatus = z.infer<typeof findingStatusSchema>;

export const MAX_EVIDENCE_LINES = 20;
export const MAX_EVIDENCE_LINE_LENGTH = 300;
export const MAX_SUMMARY_LENGTH = 300;

/** What one probe saw. Metrics hold numbers and short facts (e.g. a pod uid) that steps may use. */
export const findingSchema = z.object({
  probe: z.string(),
  status: findingStatusSchema,
  summary: z.string(),
  metrics: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])).default({}),
  evidence: z.array(z.string()).default([]),
  at: z.string(),
});
export type Finding = z.infer<typeof findingSchema>;

const truncate = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Caps a finding's size before it enters workflow history. */
export function boundFinding(finding: Finding): Finding {
  const evidence = finding.evidence
    .slice(-MAX_EVIDENCE_LINES)
    .map((l) => truncate(l, MAX_EVIDENCE_LINE_LENGTH));
  return { ...finding, summary: truncate(finding.summary, MAX_SUMMARY_LENGTH), evidence };
}

export function unknownFinding(probe: string, reason: string, at: string): Finding {
  return {
    probe,
    status: 'unknown',
    summary: truncate(reason, MAX_SUMMARY_LENGTH),
    metrics: {},
    evidence: [],
    at,
  };
}

export type Findings = Record<string, Finding>;
