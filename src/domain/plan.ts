import { evaluate } from './conditions.js';
import type { Findings } from './findings.js';
import type { Runbook, StepSpec, TaskSpec } from './runbook.js';
import { mostSevere, type Severity } from './severity.js';

export interface StepProgress {
  runs: number;
  rejected: boolean;
}

/**
 * The next remediation step: the first in runbook order whose `when` holds, that was not rejected and has
 * runs left. Steps never tried come before steps being tried again, so a failed verification moves on.
 */
export function nextStep(
  runbook: Runbook,
  findings: Findings,
  progress: Record<string, StepProgress | undefined>,
): StepSpec | undefined {
  const eligible = runbook.steps.filter((step) => {
    const p = progress[step.id] ?? { runs: 0, rejected: false };
    return !p.rejected && p.runs < step.maxRuns && (!step.when || evaluate(step.when, findings));
  });
  return eligible.find((s) => (progress[s.id]?.runs ?? 0) === 0) ?? eligible[0];
}

/** Manual tasks whose condition holds now (a task without `when` always applies). */
export function applicableTasks(runbook: Runbook, findings: Findings): TaskSpec[] {
  return runbook.tasks.filter((t) => !t.when || evaluate(t.when, findings));
}

/** The runbook's severity, raised (never lowered) by its rules over findings and by the trigger. */
export function effectiveSeverity(runbook: Runbook, findings: Findings, floor?: Severity): Severity {
  let severity = floor ? mostSevere(runbook.severity.default, floor) : runbook.severity.default;
  for (const rule of runbook.severity.raise) {
    if (evaluate(rule.when, findings)) severity = mostSevere(severity, rule.to);
  }
  return severity;
}

/**
 * Whether the findings say the platform is healthy again: the runbook's `resolve.when`, or else every
 * probe that ran reports `ok`.
 */
export function isHealthy(runbook: Runbook, findings: Findings): boolean {
  if (runbook.resolve.when) return evaluate(runbook.resolve.when, findings);
  const ran = runbook.probes.filter((p) => findings[p.id]);
  return ran.length > 0 && ran.every((p) => findings[p.id]?.status === 'ok');
}
