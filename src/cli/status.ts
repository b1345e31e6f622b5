import type { IncidentState } from '../domain/incident.js';
import type { PostIncidentState } from '../domain/post-incident.js';
import { incidentStatusQuery, postIncidentStatusQuery } from '../workflows/api.js';
import type { CliContext } from './context.js';

const OPENING_RETRIES = 25;
const OPENING_PAUSE_MS = 200;

const isStillOpening = (error: unknown): boolean => {
  const text = `${String(error)} ${String((error as { cause?: unknown }).cause)}`;
  return text.includes('still opening');
};

/** The incident's `status` query; a just-declared incident answers once its runbook is loaded. */
export async function readIncidentStatus(ctx: CliContext, workflowId: string): Promise<IncidentState> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await ctx.viaWorker('query', workflowId, (handle) => handle.query(incidentStatusQuery));
    } catch (error) {
      if (!isStillOpening(error) || attempt >= OPENING_RETRIES) throw error;
      await new Promise((r) => setTimeout(r, OPENING_PAUSE_MS));
    }
  }
}

export function readPostIncidentStatus(ctx: CliContext, workflowId: string): Promise<PostIncidentState> {
  return ctx.viaWorker('query', workflowId, (handle) => handle.query(postIncidentStatusQuery));
}
