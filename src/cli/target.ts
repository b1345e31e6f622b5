import { WorkflowNotFoundError } from '@temporalio/common';
import { DEFAULT_SCOPE } from '../domain/alerts.js';
import { incidentWorkflowId } from '../domain/incident-key.js';
import { refused, unknownIncident, usageError } from './errors.js';

export type WorkflowKind = 'incident' | 'post-incident';

export interface Target {
  kind: WorkflowKind;
  workflowId: string;
  /** What the person typed, for messages. */
  ref: string;
}

const ID_PART = /^[a-z0-9][a-z0-9-]*$/;

/**
 * Accepts a full workflow id (`incident-…`, `post-…`) or the `<runbook>[/<scope>]` shorthand, which
 * names the incident of that runbook in that scope (default: the platform namespace).
 */
export function resolveTarget(ref: string): Target {
  const trimmed = ref.trim();
  if (trimmed.startsWith('post-')) return { kind: 'post-incident', workflowId: trimmed, ref };
  if (trimmed.startsWith('incident-')) return { kind: 'incident', workflowId: trimmed, ref };
  const [runbook = '', scope = DEFAULT_SCOPE, ...rest] = trimmed.split('/');
  if (rest.length > 0 || !ID_PART.test(runbook) || !ID_PART.test(scope)) {
    throw usageError(
      `"${ref}" is neither a workflow id (incident-…, post-…) nor <runbook>[/<scope>]` +
        ` (lower-case words joined by dashes)`,
    );
  }
  return { kind: 'incident', workflowId: incidentWorkflowId(runbook, scope), ref };
}

/** Like resolveTarget, but refuses a post-incident id where an incident is needed. */
export function resolveIncident(ref: string): Target {
  const target = resolveTarget(ref);
  if (target.kind !== 'incident') {
    throw usageError(`${target.workflowId} is a post-incident workflow; this command needs an incident`);
  }
  return target;
}

/**
 * The post-incident workflow named by `ref`: a post-incident id as is, or an incident (id or shorthand)
 * whose status names its post-incident workflow.
 */
export async function resolvePostIncident(
  ref: string,
  readIncident: (workflowId: string) => Promise<{ postIncidentWorkflowId?: string; severity: string }>,
): Promise<Target> {
  const target = resolveTarget(ref);
  if (target.kind === 'post-incident') return target;
  let incident: { postIncidentWorkflowId?: string; severity: string };
  try {
    incident = await readIncident(target.workflowId);
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) {
      throw unknownIncident(`unknown incident "${target.workflowId}" (from "${ref}")`, error);
    }
    throw error;
  }
  if (!incident.postIncidentWorkflowId) {
    throw refused(
      `incident ${target.workflowId} has no post-incident workflow yet: only resolved P1/P2 incidents get one` +
        ` (this one is ${incident.severity})`,
    );
  }
  return { kind: 'post-incident', workflowId: incident.postIncidentWorkflowId, ref };
}
