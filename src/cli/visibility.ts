import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { z } from 'zod';
import { incidentStatuses } from '../domain/incident.js';
import { severitySchema } from '../domain/severity.js';
import {
  AwaitingApproval,
  IncidentDrill,
  IncidentRunbook,
  IncidentSeverity,
  IncidentStatus,
  IncidentTeam,
  ReportDueAt,
  ReportStatus,
} from '../workflows/api.js';
import { usageError } from './errors.js';

// Listing reads the search attributes the workflows publish; it never queries a workflow, so it works
// without a worker and stays cheap for hundreds of incidents.

const byLowerCase = new Map(incidentStatuses.map((s) => [s.toLowerCase(), s]));

export const listFiltersSchema = z
  .object({
    status: z
      .string()
      .transform((s) => byLowerCase.get(s.toLowerCase()) ?? s)
      .pipe(z.enum(incidentStatuses, { error: `--status is one of ${incidentStatuses.join(', ')}` }))
      .optional(),
    severity: z
      .string()
      .transform((s) => s.toUpperCase())
      .pipe(z.enum(severitySchema.options, { error: '--severity is one of P1, P2, P3' }))
      .optional(),
    runbook: z
      .string()
      .regex(/^[a-z0-9][a-z0-9-]*$/, '--runbook takes a runbook id (lower-case words joined by dashes)')
      .optional(),
    open: z.boolean().default(false),
    all: z.boolean().default(false),
    overdue: z.boolean().default(false),
    limit: z.coerce
      .number({ error: '--limit takes a number' })
      .int('--limit takes a whole number')
      .positive('--limit must be positive')
      .max(1000)
      .default(100),
  })
  .refine((f) => !(f.open && f.all), { error: '--open and --all exclude each other' });
export type ListFilters = z.output<typeof listFiltersSchema>;

export function parseListFilters(raw: unknown): ListFilters {
  const result = listFiltersSchema.safeParse(raw);
  if (!result.success) throw usageError(result.error.issues.map((i) => i.message).join('; '));
  return result.data;
}

/** Only closed runs (and the open one) of an incident, not the links of a continue-as-new chain. */
const notContinued = "ExecutionStatus != 'ContinuedAsNew'";

/** Open means not resolved: an incident reports Resolved a moment before its workflow completes. */
const showsOpen = (f: ListFilters) => !f.all && f.status !== 'Resolved';

export function incidentListQuery(f: ListFilters): string {
  const clauses = ["WorkflowType = 'incidentWorkflow'"];
  // Resolved incidents are closed workflows: asking for them implies --all.
  clauses.push(showsOpen(f) ? "ExecutionStatus = 'Running'" : notContinued);
  if (f.severity) clauses.push(`${IncidentSeverity.name} = '${f.severity}'`);
  if (f.status) clauses.push(`${IncidentStatus.name} = '${f.status}'`);
  if (f.runbook) clauses.push(`${IncidentRunbook.name} = '${f.runbook}'`);
  return clauses.join(' AND ');
}

export function reportListQuery(f: ListFilters, now: Date): string {
  const clauses = ["WorkflowType = 'postIncidentWorkflow'"];
  clauses.push(f.all ? notContinued : "ExecutionStatus = 'Running'");
  if (f.severity) clauses.push(`${IncidentSeverity.name} = '${f.severity}'`);
  if (f.runbook) clauses.push(`${IncidentRunbook.name} = '${f.runbook}'`);
  if (f.overdue) {
    // Overdue is published when the deadline passes; a Pending report past its due time is overdue too.
    clauses.push(
      `(${ReportStatus.name} = 'Overdue' OR (${ReportStatus.name} = 'Pending' AND ${ReportDueAt.name} < '${now.toISOString()}'))`,
    );
  }
  return clauses.join(' AND ');
}

export interface IncidentRow {
  workflowId: string;
  runId: string;
  execution: string;
  severity?: string;
  status?: string;
  runbook?: string;
  team?: string;
  awaitingApproval: string[];
  openedAt: string;
  closedAt?: string;
  /** A rehearsal (`incidentctl drill`): only present, as true, on drills. */
  drill?: true;
}

export interface ReportRow {
  workflowId: string;
  runId: string;
  execution: string;
  severity?: string;
  reportStatus?: string;
  reportDueAt?: string;
  overdue: boolean;
  runbook?: string;
  team?: string;
  startedAt: string;
  closedAt?: string;
  drill?: true;
}

function incidentRow(w: WorkflowExecutionInfo): IncidentRow {
  const sa = w.typedSearchAttributes;
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    execution: w.status.name,
    severity: sa.get(IncidentSeverity),
    status: sa.get(IncidentStatus),
    runbook: sa.get(IncidentRunbook),
    team: sa.get(IncidentTeam),
    awaitingApproval: sa.get(AwaitingApproval) ?? [],
    openedAt: w.startTime.toISOString(),
    ...(w.closeTime ? { closedAt: w.closeTime.toISOString() } : {}),
    ...(sa.get(IncidentDrill) ? { drill: true as const } : {}),
  };
}

function reportRow(w: WorkflowExecutionInfo, now: Date): ReportRow {
  const sa = w.typedSearchAttributes;
  const due = sa.get(ReportDueAt);
  const reportStatus = sa.get(ReportStatus);
  return {
    workflowId: w.workflowId,
    runId: w.runId,
    execution: w.status.name,
    severity: sa.get(IncidentSeverity),
    reportStatus,
    ...(due ? { reportDueAt: due.toISOString() } : {}),
    overdue: reportStatus === 'Overdue' || (reportStatus === 'Pending' && due !== undefined && due < now),
    runbook: sa.get(IncidentRunbook),
    team: sa.get(IncidentTeam),
    startedAt: w.startTime.toISOString(),
    ...(w.closeTime ? { closedAt: w.closeTime.toISOString() } : {}),
    ...(sa.get(IncidentDrill) ? { drill: true as const } : {}),
  };
}

async function take<T>(
  client: Client,
  query: string,
  limit: number,
  map: (w: WorkflowExecutionInfo) => T,
): Promise<T[]> {
  const rows: T[] = [];
  for await (const w of client.workflow.list({ query, pageSize: Math.min(limit, 100) })) {
    rows.push(map(w));
    if (rows.length >= limit) break;
  }
  return rows;
}

export async function listIncidents(client: Client, f: ListFilters): Promise<IncidentRow[]> {
  const rows = await take(client, incidentListQuery(f), f.limit, incidentRow);
  return showsOpen(f) ? rows.filter((r) => r.status !== 'Resolved') : rows;
}

export function listReports(client: Client, f: ListFilters, now = new Date()): Promise<ReportRow[]> {
  return take(client, reportListQuery(f, now), f.limit, (w) => reportRow(w, now));
}
