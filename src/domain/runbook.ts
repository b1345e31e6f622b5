import { z } from 'zod';
import { conditionSchema, probesOf, type Condition } from './conditions.js';
import { durationSchema } from './duration.js';
import { severitySchema } from './severity.js';

const idSchema = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'ids are lower-case words joined by dashes');
const roleSchema = z.string().regex(/^[a-z][a-z0-9-]*$/, 'roles are lower-case words joined by dashes');
const argsSchema = z.record(z.string(), z.unknown()).default({});
/** Which lines of docs/seed-runbook.md an element carries out, e.g. "1.D2" (diagnosis) or "6.R3" (resolution). */
const seedRefs = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]))
  .pipe(z.array(z.string().regex(/^[1-6]\.[DR]\d+$/, 'seed refs look like 1.D2 or 6.R3')))
  .optional();

export const labelMatcherSchema = z
  .strictObject({
    label: z.string().min(1),
    op: z.enum(['=', '!=', '=~', '!~']).default('='),
    value: z.string(),
  })
  .superRefine((m, ctx) => {
    if (m.op === '=~' || m.op === '!~') {
      try {
        new RegExp(m.value);
      } catch {
        ctx.addIssue({
          code: 'custom',
          path: ['value'],
          message: `not a valid regular expression: ${m.value}`,
        });
      }
    }
  });
export type LabelMatcher = z.infer<typeof labelMatcherSchema>;

export const probeSpecSchema = z.strictObject({
  id: idSchema,
  probe: z.string().min(1),
  args: argsSchema,
  timeout: durationSchema.default(30_000),
  retries: z.number().int().min(0).max(10).default(1),
  seed: seedRefs,
});
export type ProbeSpec = z.infer<typeof probeSpecSchema>;

export const retrySpecSchema = z.strictObject({
  maxAttempts: z.number().int().min(1).max(20).default(3),
  initialInterval: durationSchema.default(5_000),
  backoffCoefficient: z.number().min(1).max(10).default(2),
  maximumInterval: durationSchema.default(60_000),
});

export const stepSpecSchema = z
  .strictObject({
    id: idSchema,
    title: z.string().min(1),
    seed: seedRefs,
    when: conditionSchema.optional(),
    action: z.string().min(1),
    args: argsSchema,
    risk: z.enum(['low', 'high']),
    approvers: z.array(roleSchema).default([]),
    approvalTimeout: durationSchema.default(15 * 60_000),
    timeout: durationSchema.default(2 * 60_000),
    retry: retrySpecSchema.default({
      maxAttempts: 3,
      initialInterval: 5_000,
      backoffCoefficient: 2,
      maximumInterval: 60_000,
    }),
    verify: z
      .strictObject({
        probes: z.array(idSchema).min(1),
        within: durationSchema.default(5 * 60_000),
        every: durationSchema.default(30_000),
      })
      .optional(),
    maxRuns: z.number().int().min(1).max(10).default(1),
  })
  .superRefine((step, ctx) => {
    if (step.risk === 'high' && step.approvers.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['approvers'],
        message: 'a high-risk step needs at least one approver role',
      });
    }
  });
export type StepSpec = z.infer<typeof stepSpecSchema>;

export const taskSpecSchema = z.strictObject({
  id: idSchema,
  title: z.string().min(1),
  seed: seedRefs,
  owner: roleSchema,
  when: conditionSchema.optional(),
});
export type TaskSpec = z.infer<typeof taskSpecSchema>;

export const runbookSchema = z
  .strictObject({
    id: idSchema,
    title: z.string().min(1),
    summary: z.string().optional(),
    section: z.number().int().min(1).max(6).optional(),
    match: z.strictObject({
      alertnames: z.array(z.string().min(1)).default([]),
      labels: z.array(labelMatcherSchema).default([]),
      fallback: z.boolean().default(false),
    }),
    severity: z.strictObject({
      default: severitySchema,
      raise: z.array(z.strictObject({ when: conditionSchema, to: severitySchema })).default([]),
    }),
    team: roleSchema,
    escalation: z.array(roleSchema).min(1),
    probes: z.array(probeSpecSchema).default([]),
    steps: z.array(stepSpecSchema).default([]),
    tasks: z.array(taskSpecSchema).default([]),
    resolve: z
      .strictObject({
        when: conditionSchema.optional(),
        alertsResolved: z.boolean().default(true),
      })
      .default({ alertsResolved: true }),
  })
  .superRefine((rb, ctx) => {
    const probeIds = new Set<string>();
    rb.probes.forEach((p, i) => {
      if (probeIds.has(p.id))
        ctx.addIssue({ code: 'custom', path: ['probes', i, 'id'], message: `duplicate probe id "${p.id}"` });
      probeIds.add(p.id);
    });
    const checkCondition = (condition: Condition | undefined, path: (string | number)[]) => {
      for (const id of condition ? probesOf(condition) : []) {
        if (!probeIds.has(id))
          ctx.addIssue({
            code: 'custom',
            path,
            message: `refers to probe "${id}", which this runbook does not have`,
          });
      }
    };
    const stepIds = new Set<string>();
    rb.steps.forEach((s, i) => {
      if (stepIds.has(s.id))
        ctx.addIssue({ code: 'custom', path: ['steps', i, 'id'], message: `duplicate step id "${s.id}"` });
      stepIds.add(s.id);
      checkCondition(s.when, ['steps', i, 'when']);
      s.verify?.probes.forEach((id, j) => {
        if (!probeIds.has(id)) {
          ctx.addIssue({
            code: 'custom',
            path: ['steps', i, 'verify', 'probes', j],
            message: `unknown probe "${id}"`,
          });
        }
      });
    });
    const taskIds = new Set<string>();
    rb.tasks.forEach((t, i) => {
      if (taskIds.has(t.id))
        ctx.addIssue({ code: 'custom', path: ['tasks', i, 'id'], message: `duplicate task id "${t.id}"` });
      taskIds.add(t.id);
      checkCondition(t.when, ['tasks', i, 'when']);
    });
    rb.severity.raise.forEach((r, i) => checkCondition(r.when, ['severity', 'raise', i, 'when']));
    checkCondition(rb.resolve.when, ['resolve', 'when']);
    if (!rb.match.fallback && rb.match.alertnames.length === 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['match', 'alertnames'],
        message: 'a runbook matches at least one alert name (or is the fallback)',
      });
    }
  });
export type Runbook = z.infer<typeof runbookSchema>;
/** What a runbook file holds before defaults are applied. */
export type RunbookInput = z.input<typeof runbookSchema>;

/** Every role a runbook names, to check them against the contacts file. */
export function rolesOf(rb: Runbook): string[] {
  return [
    ...new Set([
      rb.team,
      ...rb.escalation,
      ...rb.steps.flatMap((s) => s.approvers),
      ...rb.tasks.map((t) => t.owner),
    ]),
  ];
}
