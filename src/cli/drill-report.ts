import { z } from 'zod';
import { findingStatusSchema, type Findings } from '../domain/findings.js';
import type { IncidentState } from '../domain/incident.js';
import { severitySchema } from '../domain/severity.js';
import type { ScenarioInfo } from '../sandbox/scenarios.js';
import { ExitCode } from './errors.js';
import { clean, span, table } from './render.js';

// The drill report: what the scenario expected, what the incident did, how long it took, and whether the
// drill passed. Built from the incident's `status` query by pure functions, so the verdict is testable.

export const drillOutcomes = ['passed', 'wrong-runbook', 'not-resolved', 'timeout'] as const;
export type DrillOutcome = (typeof drillOutcomes)[number];

export const drillExitCodes: Record<DrillOutcome, ExitCode> = {
  passed: ExitCode.ok,
  'wrong-runbook': ExitCode.drillWrongRunbook,
  'not-resolved': ExitCode.drillNotResolved,
  timeout: ExitCode.drillTimeout,
};

const findingRow = z.object({ probe: z.string(), status: findingStatusSchema, summary: z.string() });
const nullableString = z.string().nullable();
const nullableMs = z.number().int().nullable();

export const drillReportSchema = z.object({
  scenario: z.string(),
  procedure: z.number().int().nullable(),
  breaks: z.string(),
  repairedBy: z.string(),
  via: z.enum(['alertmanager', 'monitors']),
  target: z.object({
    scope: z.string(),
    /** False with SANDBOX=off / --no-sandbox: the drill applied no fault. */
    sandbox: z.boolean(),
  }),
  outcome: z.enum(drillOutcomes),
  passed: z.boolean(),
  exitCode: z.number().int(),
  /** Why the drill did not pass; empty when it did. */
  reasons: z.array(z.string()),
  /** Things worth a look that do not fail the drill. */
  warnings: z.array(z.string()),
  incidentId: nullableString,
  /** The incident carries the drill mark (IncidentDrill, DRILL notifications, the ledger flag). */
  marked: z.boolean(),
  notify: z.boolean(),
  runbook: z.object({
    expected: nullableString,
    actual: nullableString,
    /** Other incidents the fault opened in the scope (other runbooks). */
    others: z.array(z.string()),
  }),
  severity: severitySchema.nullable(),
  status: nullableString,
  resolvedBy: nullableString,
  resolutionSummary: nullableString,
  findings: z.object({
    /** What the first diagnosis saw. */
    diagnosis: z.array(findingRow),
    /** The last findings the incident had. */
    final: z.array(findingRow),
  }),
  steps: z.array(
    z.object({
      id: z.string(),
      title: z.string(),
      status: z.string(),
      runs: z.number().int(),
      /** One of the scenario's remedies. */
      expected: z.boolean(),
      approvedBy: nullableString,
      rejectedBy: nullableString,
      /** What running it did (the action's summary) or why it failed. */
      effect: nullableString,
    }),
  ),
  tasks: z.array(
    z.object({
      id: z.string(),
      title: z.string(),
      status: z.enum(['open', 'done', 'not-opened']),
      doneBy: nullableString,
      expected: z.boolean(),
    }),
  ),
  times: z.object({
    faultAt: z.string(),
    openedAt: nullableString,
    acknowledgedAt: nullableString,
    resolvedAt: nullableString,
    /** Fault applied → incident opened. */
    detectMs: nullableMs,
    /** Incident opened → acknowledged (by a person; the drill does not acknowledge). */
    acknowledgeMs: nullableMs,
    /** Incident opened → resolved. */
    resolveMs: nullableMs,
    /** Fault applied → resolved. */
    totalMs: nullableMs,
  }),
  postIncidentWorkflowId: nullableString,
  /** What the drill itself did, in order. */
  actions: z.array(z.object({ at: z.string(), action: z.string(), detail: z.string() })),
});
export type DrillReport = z.infer<typeof drillReportSchema>;
export type DrillAction = DrillReport['actions'][number];

export interface DrillFacts {
  scenario: ScenarioInfo;
  via: 'alertmanager' | 'monitors';
  scope: string;
  sandbox: boolean;
  notify: boolean;
  faultAt: string;
  /** The incident the drill followed (the scenario's runbook, or what the alert opened instead). */
  incidentId?: string;
  /** Its last `status`; undefined when no incident opened. */
  state?: IncidentState;
  /** The findings of its first diagnosis. */
  diagnosis?: Findings;
  /** Runbooks of other incidents the fault opened in the scope. */
  otherRunbooks: string[];
  /** The deadline passed before the incident resolved. */
  timedOut: boolean;
  /** The drill stopped early: the incident could not resolve any more (escalated, nothing left to try). */
  stuck?: string;
  actions: DrillAction[];
  warnings: string[];
}

const rows = (findings: Findings | undefined) =>
  Object.values(findings ?? {}).map((f) => ({ probe: f.probe, status: f.status, summary: f.summary }));

const msBetween = (from: string | undefined, to: string | undefined): number | null =>
  from && to ? Math.max(0, Date.parse(to) - Date.parse(from)) : null;

/** The verdict: resolved by the system, on the expected runbook, through the scenario's remedy. */
export function judgeDrill(f: DrillFacts): { outcome: DrillOutcome; reasons: string[] } {
  const expected = f.scenario.runbook;
  const s = f.state;
  if (!s) {
    if (f.otherRunbooks.length > 0 && expected && !f.otherRunbooks.includes(expected)) {
      return {
        outcome: 'wrong-runbook',
        reasons: [`the fault opened ${f.otherRunbooks.join(', ')}, not ${expected}`],
      };
    }
    return {
      outcome: 'timeout',
      reasons: [`no incident${expected ? ` of ${expected}` : ''} opened before the timeout`],
    };
  }
  if (expected && s.runbookId !== expected) {
    return {
      outcome: 'wrong-runbook',
      reasons: [`the incident ran runbook ${s.runbookId}; scenario ${f.scenario.name} expects ${expected}`],
    };
  }
  if (!s.resolvedAt) {
    if (f.stuck) return { outcome: 'not-resolved', reasons: [f.stuck] };
    return {
      outcome: f.timedOut ? 'timeout' : 'not-resolved',
      reasons: [`the incident did not resolve (${s.status}; waiting for ${s.waitingFor})`],
    };
  }
  const reasons: string[] = [];
  if (s.resolvedBy !== 'system') {
    reasons.push(`resolved by hand by ${s.resolvedBy ?? '?'}, not by itself after the remedy`);
  }
  const steps = f.scenario.steps.map((id) => s.steps.find((st) => st.id === id));
  if (f.scenario.steps.length > 0) {
    if (f.scenario.recoversWhenTold) {
      // Upstream recovery ends these: the remedy is that its steps ran (their verification cannot pass
      // before the vendor or the review is done).
      const notRun = f.scenario.steps.filter((id, i) => {
        const st = steps[i];
        return !st || st.runs === 0 || st.status === 'failed';
      });
      if (notRun.length > 0) reasons.push(`the remedy did not run: ${notRun.join(', ')}`);
    } else if (!steps.some((st) => st?.status === 'recovered')) {
      const tried = steps
        .filter((st) => st !== undefined)
        .map((st) => `${st.id} ${st.status}${st.runs ? ` after ${st.runs} run(s)` : ''}`);
      reasons.push(
        `no remedy step (${f.scenario.steps.join(', ')}) ran and verified recovery${tried.length ? `: ${tried.join(', ')}` : ''}`,
      );
    }
  }
  const undone = f.scenario.tasks.filter((id) => s.tasks.find((t) => t.id === id)?.status !== 'done');
  if (undone.length > 0) reasons.push(`manual task(s) not done: ${undone.join(', ')}`);
  return reasons.length ? { outcome: 'not-resolved', reasons } : { outcome: 'passed', reasons: [] };
}

export function buildDrillReport(f: DrillFacts): DrillReport {
  const { outcome, reasons } = judgeDrill(f);
  const s = f.state;
  const expectedSteps = new Set(f.scenario.steps);
  const expectedTasks = new Set(f.scenario.tasks);
  const tasks: DrillReport['tasks'] = (s?.tasks ?? []).map((t) => ({
    id: t.id,
    title: t.title,
    status: t.status,
    doneBy: t.doneBy ?? null,
    expected: expectedTasks.has(t.id),
  }));
  for (const id of f.scenario.tasks) {
    if (!tasks.some((t) => t.id === id)) {
      tasks.push({ id, title: '', status: 'not-opened', doneBy: null, expected: true });
    }
  }
  const report: DrillReport = {
    scenario: f.scenario.name,
    procedure: f.scenario.procedure,
    breaks: f.scenario.breaks,
    repairedBy: f.scenario.repairedBy,
    via: f.via,
    target: { scope: f.scope, sandbox: f.sandbox },
    outcome,
    passed: outcome === 'passed',
    exitCode: drillExitCodes[outcome],
    reasons,
    warnings: f.warnings,
    incidentId: f.incidentId ?? null,
    marked: Boolean(s?.drill),
    notify: f.notify,
    runbook: {
      expected: f.scenario.runbook,
      actual: s?.runbookId ?? null,
      others: [...new Set(f.otherRunbooks)].filter((r) => r !== s?.runbookId),
    },
    severity: s?.severity ?? null,
    status: s?.status ?? null,
    resolvedBy: s?.resolvedBy ?? null,
    resolutionSummary: s?.resolutionSummary ?? null,
    findings: { diagnosis: rows(f.diagnosis), final: rows(s?.findings) },
    steps: (s?.steps ?? []).map((st) => ({
      id: st.id,
      title: st.title,
      status: st.status,
      runs: st.runs,
      expected: expectedSteps.has(st.id),
      approvedBy: st.approvedBy ?? null,
      rejectedBy: st.rejectedBy ?? null,
      effect: st.error ?? st.result ?? null,
    })),
    tasks,
    times: {
      faultAt: f.faultAt,
      openedAt: s?.openedAt ?? null,
      acknowledgedAt: s?.acknowledgedAt ?? null,
      resolvedAt: s?.resolvedAt ?? null,
      detectMs: msBetween(f.faultAt, s?.openedAt),
      acknowledgeMs: s?.timeToAcknowledgeMs ?? null,
      resolveMs: s?.timeToResolveMs ?? msBetween(s?.openedAt, s?.resolvedAt),
      totalMs: msBetween(f.faultAt, s?.resolvedAt),
    },
    postIncidentWorkflowId: s?.postIncidentWorkflowId ?? null,
    actions: f.actions,
  };
  return drillReportSchema.parse(report);
}

/** "45s", "1m15s", "12m03s"; longer ones as `span` does. */
function duration(ms: number | null): string {
  if (ms === null) return '-';
  const s = Math.round(ms / 1000);
  if (s < 60 || s >= 3600) return span(ms);
  return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** "03:00:05Z": a drill is minutes long, so seconds matter. */
export function clock(iso: string | null | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? clean(iso) : `${d.toISOString().slice(11, 19)}Z`;
}

/** The report as a person reads it at the end of a drill. */
export function renderDrillReport(r: DrillReport): string {
  const lines: string[] = [];
  lines.push(
    `Drill ${r.scenario}${r.procedure ? ` (procedure ${r.procedure})` : ''} via ${r.via}, scope ${r.target.scope}${r.target.sandbox ? '' : ' (no sandbox: no fault applied by the drill)'}`,
  );
  lines.push(`  breaks:       ${clean(r.breaks)}`);
  lines.push(`  repaired by:  ${clean(r.repairedBy)}`);
  lines.push(
    r.passed
      ? `  PASSED: the incident resolved through the runbook's remedy`
      : `  FAILED (${r.outcome}, exit ${r.exitCode}): ${r.reasons.map(clean).join('; ')}`,
  );
  lines.push('');
  lines.push(`Incident ${r.incidentId ?? '(none opened)'}`);
  lines.push(
    `  runbook      expected ${r.runbook.expected ?? '-'}, actual ${r.runbook.actual ?? '-'}${r.runbook.others.length ? ` (also opened: ${r.runbook.others.join(', ')})` : ''}`,
  );
  if (r.incidentId) {
    lines.push(
      `  marked       ${r.marked ? `DRILL (notifications ${r.notify ? 'sent, marked DRILL' : 'logged only'})` : 'no: opened as a real incident (its notifications went out unmarked)'}`,
    );
    lines.push(`  severity     ${r.severity ?? '-'}, status ${r.status ?? '-'}`);
    if (r.resolvedBy) {
      lines.push(
        `  resolved by  ${clean(r.resolvedBy)}${r.resolutionSummary ? `: ${clean(r.resolutionSummary)}` : ''}`,
      );
    }
  }
  lines.push('');
  lines.push('Times:');
  lines.push(
    `  detect       ${duration(r.times.detectMs)}  (fault ${r.times.faultAt.slice(0, 10)} ${clock(r.times.faultAt)} -> incident opened ${clock(r.times.openedAt)})`,
  );
  lines.push(
    `  acknowledge  ${duration(r.times.acknowledgeMs)}${r.times.acknowledgeMs === null ? '  (nobody acknowledged)' : ''}`,
  );
  lines.push(`  resolve      ${duration(r.times.resolveMs)}  (opened -> resolved)`);
  lines.push(`  total        ${duration(r.times.totalMs)}  (fault -> resolved)`);

  if (r.findings.diagnosis.length) {
    lines.push('', 'Findings at diagnosis:');
    lines.push(
      ...table(
        ['PROBE', 'STATUS', 'SUMMARY'],
        r.findings.diagnosis.map((f) => [f.probe, f.status, clean(f.summary).slice(0, 160)]),
      )
        .split('\n')
        .map((l) => `  ${l}`),
    );
  }
  const steps = r.steps.filter((s) => s.expected || s.runs > 0 || s.status !== 'idle');
  if (steps.length) {
    lines.push('', 'Steps:');
    for (const s of steps) {
      const who = [
        s.approvedBy ? `approved by ${clean(s.approvedBy)}` : '',
        s.rejectedBy ? `rejected by ${clean(s.rejectedBy)}` : '',
      ]
        .filter(Boolean)
        .join(', ');
      lines.push(
        `  ${s.id}  ${s.status}  runs ${s.runs}${s.expected ? '  (the remedy)' : ''}${who ? `  ${who}` : ''}`,
      );
      if (s.effect) lines.push(`    ${clean(s.effect).slice(0, 300)}`);
    }
  }
  if (r.tasks.length) {
    lines.push('', 'Tasks:');
    for (const t of r.tasks) {
      const mark = t.status === 'done' ? '[x]' : t.status === 'open' ? '[ ]' : '[-]';
      lines.push(
        `  ${mark} ${t.id}${t.title ? `  ${clean(t.title)}` : ''}${t.doneBy ? `  (done by ${clean(t.doneBy)})` : ''}${t.status === 'not-opened' ? '  (never opened)' : ''}${t.expected ? '  (the scenario’s)' : ''}`,
      );
    }
  }
  if (r.postIncidentWorkflowId) {
    lines.push('', `Post-incident report: ${r.postIncidentWorkflowId}`);
    lines.push(
      `  practise it: incidentctl report submit ${r.postIncidentWorkflowId} --root-cause "…" (it is marked as a drill)`,
    );
  }
  if (r.warnings.length) lines.push('', 'Warnings:', ...r.warnings.map((w) => `  ${clean(w)}`));
  if (r.actions.length) {
    lines.push('', 'What the drill did:');
    for (const a of r.actions) lines.push(`  ${clock(a.at)}  ${a.action}: ${clean(a.detail)}`);
  }
  return lines.join('\n');
}
