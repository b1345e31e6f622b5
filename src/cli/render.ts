import type { IncidentState, StepState, TimelineEntry } from '../domain/incident.js';
import type { PostIncidentState } from '../domain/post-incident.js';
import type { IncidentRow, ReportRow } from './visibility.js';

// Text comes from alerts and people: control characters (terminal escapes) never reach the terminal.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/g;

export function clean(text: string): string {
  return text.replace(CONTROL, '').replace(/\s*\n\s*/g, ' ');
}

const truncate = (text: string, max: number) => (text.length > max ? `${text.slice(0, max - 1)}…` : text);

/** Left-aligned columns, two spaces apart, widths from the content. */
export function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

/** "2026-11-27 03:00Z": minutes are what a person compares; --json has the exact instant. */
export function shortTime(iso: string | undefined): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return clean(iso);
  return `${d.toISOString().slice(0, 16).replace('T', ' ')}Z`;
}

/** A coarse duration: "45s", "12m", "2h05m", "3d4h". */
export function span(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${h % 24}h`;
}

const ago = (iso: string, now: Date) => `${span(now.getTime() - Date.parse(iso))} ago`;

function dueText(iso: string | undefined, now: Date): string {
  if (!iso) return '-';
  const left = Date.parse(iso) - now.getTime();
  return `${shortTime(iso)} (${left >= 0 ? `in ${span(left)}` : `${span(-left)} overdue`})`;
}

function executionNote(execution: string): string {
  return execution === 'RUNNING' || execution === 'COMPLETED' ? '' : ` [${execution.toLowerCase()}]`;
}

export function renderIncidentTable(rows: IncidentRow[], now: Date): string {
  if (rows.length === 0) return 'no incidents match';
  return table(
    ['ID', 'SEV', 'STATUS', 'RUNBOOK', 'AWAITING APPROVAL', 'OPENED'],
    rows.map((r) => [
      r.workflowId,
      r.severity ?? '-',
      `${r.status ?? '-'}${executionNote(r.execution)}${r.drill ? ' (drill)' : ''}`,
      r.runbook ?? '-',
      r.awaitingApproval.join(', ') || '-',
      `${shortTime(r.openedAt)} (${ago(r.openedAt, now)})`,
    ]),
  );
}

export function renderReportTable(rows: ReportRow[], now: Date): string {
  if (rows.length === 0) return 'no post-incident reports match';
  return table(
    ['ID', 'SEV', 'REPORT', 'DUE', 'RUNBOOK'],
    rows.map((r) => [
      r.workflowId,
      r.severity ?? '-',
      `${r.overdue && r.reportStatus !== 'Overdue' ? 'Overdue' : (r.reportStatus ?? '-')}${executionNote(r.execution)}${r.drill ? ' (drill)' : ''}`,
      r.reportStatus === 'Submitted' || r.execution !== 'RUNNING'
        ? shortTime(r.reportDueAt)
        : dueText(r.reportDueAt, now),
      r.runbook ?? '-',
    ]),
  );
}

function section(title: string, lines: string[]): string[] {
  return lines.length ? ['', `${title}:`, ...lines.map((l) => `  ${l}`)] : [];
}

function timelineLines(entries: TimelineEntry[], limit: number): string[] {
  const shown = limit > 0 ? entries.slice(-limit) : entries;
  const lines = shown.map(
    (t) => `${shortTime(t.at)}  ${t.type}${t.by ? ` (${clean(t.by)})` : ''}: ${truncate(clean(t.text), 300)}`,
  );
  const hidden = entries.length - shown.length;
  return hidden > 0 ? [`… ${hidden} earlier entries (--timeline 0 or --json shows all)`, ...lines] : lines;
}

function stepLine(st: StepState): string {
  const facts = [
    st.risk === 'high' ? `needs approval by ${st.approvers.join(' or ')}` : 'automatic',
    st.runs ? `runs ${st.runs}` : '',
    st.approvedBy ? `approved by ${clean(st.approvedBy)}` : '',
    st.rejectedBy ? `rejected by ${clean(st.rejectedBy)}` : '',
    st.reason ? `reason: ${truncate(clean(st.reason), 200)}` : '',
    st.result ? `result: ${truncate(clean(st.result), 200)}` : '',
    st.error ? `error: ${truncate(clean(st.error), 200)}` : '',
  ].filter(Boolean);
  return `${st.id}  ${st.status}  (${st.action}; ${facts.join('; ')})`;
}

export interface ShowOptions {
  now: Date;
  /** Last N timeline entries; 0 shows all. */
  timeline: number;
}

/** The `status` query as a person reads it: what is wrong, what it waits for, and the commands to act. */
export function renderIncident(s: IncidentState, o: ShowOptions): string {
  const id = s.incidentId;
  const lines = [
    `${id}`,
    `  ${s.severity} ${s.status}: ${clean(s.title)}`,
    `  runbook ${s.runbookId}@${s.runbookHash.slice(0, 12)}, scope ${s.scope}, team ${s.team}, escalation level ${s.escalationLevel}`,
    `  opened ${shortTime(s.openedAt)} (${ago(s.openedAt, o.now)}) from ${s.source}`,
    s.acknowledgedAt
      ? `  acknowledged by ${clean(s.acknowledgedBy ?? '?')} at ${shortTime(s.acknowledgedAt)}`
      : '  not acknowledged',
  ];
  if (s.drill) {
    lines.push(
      `  DRILL: a rehearsal (incidentctl drill); notifications ${s.drill.notify ? 'are sent, marked DRILL' : 'are only logged'}`,
    );
  }
  if (s.resolvedAt) {
    lines.push(
      `  resolved by ${clean(s.resolvedBy ?? '?')} at ${shortTime(s.resolvedAt)}${s.resolutionSummary ? `: ${clean(s.resolutionSummary)}` : ''}`,
    );
  }
  lines.push(`  waiting for: ${clean(s.waitingFor)}`);
  if (s.rejectedAttempts) lines.push(`  refused attempts: ${s.rejectedAttempts} (see the timeline)`);
  if (s.ledgerBehind) {
    lines.push(
      `  ledger behind: ${s.ledgerBehind} event(s) not written yet (its database is down or slow; retrying)`,
    );
  }

  const next: string[] = [];
  if (!s.resolvedAt) {
    for (const step of s.awaitingApproval) {
      next.push(`incidentctl approve ${id} ${step}`);
      next.push(`incidentctl reject ${id} ${step} --reason "…"`);
    }
    if (!s.acknowledgedAt) next.push(`incidentctl ack ${id}`);
    for (const t of s.tasks.filter((x) => x.status === 'open'))
      next.push(`incidentctl task done ${id} ${t.id}`);
    next.push(`incidentctl resolve ${id} --summary "…"`);
  } else if (s.postIncidentWorkflowId) {
    next.push(`incidentctl show ${s.postIncidentWorkflowId}`);
    next.push(`incidentctl report submit ${s.postIncidentWorkflowId} --root-cause "…"`);
  }
  lines.push(...section('Commands', next));

  lines.push(
    ...section(
      'Findings',
      Object.values(s.findings).map(
        (f) => `${f.probe}  ${f.status}  ${truncate(clean(f.summary), 200)}  (${shortTime(f.at)})`,
      ),
    ),
  );
  lines.push(...section('Steps', s.steps.map(stepLine)));
  lines.push(
    ...section(
      'Tasks',
      s.tasks.map((t) =>
        t.status === 'done'
          ? `[x] ${t.id}  ${clean(t.title)}  (done by ${clean(t.doneBy ?? '?')} ${shortTime(t.doneAt)})`
          : `[ ] ${t.id}  ${clean(t.title)}  (owner ${t.owner})`,
      ),
    ),
  );
  lines.push(
    ...section(
      'Alerts',
      Object.values(s.alerts).map(
        (a) =>
          `${clean(a.alertname)}  ${a.status}  x${a.deliveries}  first ${shortTime(a.firstSeen)}, last ${shortTime(a.lastSeen)}${a.summary ? `  ${truncate(clean(a.summary), 160)}` : ''}`,
      ),
    ),
  );
  if (s.postIncidentWorkflowId) lines.push('', `Post-incident: ${s.postIncidentWorkflowId}`);
  lines.push(...section('Timeline', timelineLines(s.timeline, o.timeline)));
  return lines.join('\n');
}

export function renderPostIncident(workflowId: string, p: PostIncidentState, o: ShowOptions): string {
  const overdue = !p.report && Date.parse(p.reportDueAt) < o.now.getTime();
  const lines = [
    workflowId,
    `  Report ${overdue && p.reportStatus !== 'Overdue' ? 'Overdue' : p.reportStatus} for ${p.severity} ${clean(p.title)}`,
    `  incident ${p.incidentId} (runbook ${p.runbookId}, team ${p.team}), resolved ${shortTime(p.resolvedAt)}${p.resolutionSummary ? `: ${clean(p.resolutionSummary)}` : ''}`,
    `  report owner ${clean(p.reportOwner)}, due ${p.report ? shortTime(p.reportDueAt) : dueText(p.reportDueAt, o.now)}`,
    `  runbook update: ${p.runbookUpdateRequired ? (p.runbookUpdate ? `done by ${clean(p.runbookUpdate.by)} (${clean(p.runbookUpdate.ref)})` : 'required (new failure mode)') : 'not required'}`,
  ];
  if (p.drill) lines.push('  DRILL: the report of a rehearsal (incidentctl drill)');
  if (p.completedAt) lines.push(`  completed ${shortTime(p.completedAt)}`);
  else if (p.missing?.length) lines.push(`  waiting for: ${p.missing.map(clean).join('; ')}`);
  if (p.rejectedAttempts) lines.push(`  refused attempts: ${p.rejectedAttempts} (see the timeline)`);
  if (p.report) {
    lines.push(
      ...section('Report', [
        `submitted by ${clean(p.report.by)} at ${shortTime(p.report.submittedAt)}`,
        `root cause: ${clean(p.report.rootCause)}`,
        ...(p.report.link ? [`link: ${clean(p.report.link)}`] : []),
        ...(p.report.noFollowUps ? ['no follow-up needed (said by the report)'] : []),
      ]),
    );
  }
  lines.push(
    ...section(
      'Follow-ups',
      p.followUps.map((f) =>
        f.status === 'done'
          ? `[x] ${f.id}  ${clean(f.title)}  (done by ${clean(f.doneBy ?? '?')} ${shortTime(f.doneAt)})`
          : `[ ] ${f.id}  ${clean(f.title)}  (owner ${clean(f.owner)}${f.dueAt ? `, due ${dueText(f.dueAt, o.now)}` : ''})`,
      ),
    ),
  );
  const next: string[] = [];
  if (!p.completedAt) {
    if (!p.report) {
      next.push(
        `incidentctl report submit ${workflowId} --root-cause "…" [--link URL]${p.followUps.length ? '' : ' [--no-follow-ups]'}`,
      );
    } else if (!p.report.noFollowUps && p.followUps.length === 0) {
      next.push(`incidentctl report submit ${workflowId} --root-cause "…" --no-follow-ups`);
    }
    next.push(`incidentctl followup add ${workflowId} --title "…" --owner NAME [--due ISO-8601]`);
    for (const f of p.followUps.filter((x) => x.status === 'open')) {
      next.push(`incidentctl followup done ${workflowId} ${f.id}`);
    }
    if (p.runbookUpdateRequired && !p.runbookUpdate) {
      next.push(`incidentctl report runbook-updated ${workflowId} --ref "…"`);
    }
  }
  lines.push(...section('Commands', next));
  lines.push(...section('Timeline', timelineLines(p.timeline, o.timeline)));
  return lines.join('\n');
}
