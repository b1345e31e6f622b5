import type { CliContext } from './context.js';
import { usageError } from './errors.js';
import { renderIncident, renderIncidentTable, renderPostIncident, renderReportTable } from './render.js';
import { readIncidentStatus, readPostIncidentStatus } from './status.js';
import { resolveTarget } from './target.js';
import { listIncidents, listReports, parseListFilters } from './visibility.js';

export interface ListCommandOptions {
  status?: string;
  severity?: string;
  runbook?: string;
  open?: boolean;
  all?: boolean;
  reports?: boolean;
  overdue?: boolean;
  limit?: string;
  json?: boolean;
}

const json = (value: unknown) => JSON.stringify(value, null, 2);

/** `list`: incidents (or, with --reports, post-incident reports) from the search attributes. */
export async function listCommand(ctx: CliContext, o: ListCommandOptions): Promise<void> {
  const { json: asJson = false, reports = false, ...raw } = o;
  const filters = parseListFilters(raw);
  const wantsReports = reports || filters.overdue;
  if (wantsReports && filters.status) {
    throw usageError('--status filters incidents; reports have --overdue');
  }
  const client = await ctx.client();
  const now = new Date();
  if (wantsReports) {
    const rows = await listReports(client, filters, now);
    ctx.out(asJson ? json(rows) : renderReportTable(rows, now));
  } else {
    const rows = await listIncidents(client, filters);
    ctx.out(asJson ? json(rows) : renderIncidentTable(rows, now));
  }
}

export interface ShowCommandOptions {
  json?: boolean;
  timeline?: string;
}

/** `show`: the `status` query of an incident or a post-incident workflow. */
export async function showCommand(ctx: CliContext, ref: string, o: ShowCommandOptions): Promise<void> {
  const timeline = o.timeline === undefined ? 30 : Number(o.timeline);
  if (!Number.isInteger(timeline) || timeline < 0) {
    throw usageError('--timeline takes a whole number of entries (0 shows all)');
  }
  const target = resolveTarget(ref);
  const now = new Date();
  if (target.kind === 'post-incident') {
    const state = await readPostIncidentStatus(ctx, target.workflowId);
    ctx.out(o.json ? json(state) : renderPostIncident(target.workflowId, state, { now, timeline }));
    return;
  }
  const state = await readIncidentStatus(ctx, target.workflowId);
  ctx.out(o.json ? json(state) : renderIncident(state, { now, timeline }));
}
