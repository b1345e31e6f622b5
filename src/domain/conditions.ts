import { z } from 'zod';
import { findingStatusSchema, type Findings } from './findings.js';

/**
 * A `when` condition over findings, written in runbook YAML:
 *   { finding: postgres, status: down }            the probe's status is one of these
 *   { metric: kafka-lag.totalLag, gt: 1000 }       a probe metric compared with a number
 *   { all: [...] } / { any: [...] } / { not: ... } combinations
 */
export type Condition =
  | { finding: string; status: z.infer<typeof findingStatusSchema>[] }
  | { metric: string; gt?: number; gte?: number; lt?: number; lte?: number; eq?: number | string | boolean }
  | { all: Condition[] }
  | { any: Condition[] }
  | { not: Condition };

const statusList = z
  .union([findingStatusSchema, z.array(findingStatusSchema).min(1)])
  .transform((s) => (Array.isArray(s) ? s : [s]));

export const conditionSchema: z.ZodType<Condition> = z.lazy(() =>
  z.union([
    z.strictObject({ finding: z.string().min(1), status: statusList }),
    z
      .strictObject({
        metric: z.string().regex(/^[^.]+\..+$/, 'metric is "<probe id>.<metric name>"'),
        gt: z.number().optional(),
        gte: z.number().optional(),
        lt: z.number().optional(),
        lte: z.number().optional(),
        eq: z.union([z.number(), z.string(), z.boolean()]).optional(),
      })
      .refine(
        (c) => [c.gt, c.gte, c.lt, c.lte, c.eq].some((v) => v !== undefined),
        'a metric needs a comparison',
      ),
    z.strictObject({ all: z.array(conditionSchema).min(1) }),
    z.strictObject({ any: z.array(conditionSchema).min(1) }),
    z.strictObject({ not: conditionSchema }),
  ]),
) as z.ZodType<Condition>;

/** The probe ids a condition reads, to check a runbook only names probes it has. */
export function probesOf(condition: Condition): string[] {
  if ('finding' in condition) return [condition.finding];
  if ('metric' in condition) return [condition.metric.split('.')[0] as string];
  if ('all' in condition) return condition.all.flatMap(probesOf);
  if ('any' in condition) return condition.any.flatMap(probesOf);
  return probesOf(condition.not);
}

/** Evaluates a condition; a probe with no finding yet counts as status `unknown` and has no metrics. */
export function evaluate(condition: Condition, findings: Findings): boolean {
  if ('finding' in condition) {
    return condition.status.includes(findings[condition.finding]?.status ?? 'unknown');
  }
  if ('metric' in condition) {
    const dot = condition.metric.indexOf('.');
    const value = findings[condition.metric.slice(0, dot)]?.metrics[condition.metric.slice(dot + 1)];
    if (value === undefined) return false;
    if (condition.eq !== undefined && value !== condition.eq) return false;
    if (typeof value !== 'number') {
      return (
        condition.gt === undefined &&
        condition.gte === undefined &&
        condition.lt === undefined &&
        condition.lte === undefined
      );
    }
    if (condition.gt !== undefined && !(value > condition.gt)) return false;
    if (condition.gte !== undefined && !(value >= condition.gte)) return false;
    if (condition.lt !== undefined && !(value < condition.lt)) return false;
    if (condition.lte !== undefined && !(value <= condition.lte)) return false;
    return true;
  }
  if ('all' in condition) return condition.all.every((c) => evaluate(c, findings));
  if ('any' in condition) return condition.any.some((c) => evaluate(c, findings));
  return !evaluate(condition.not, findings);
}
