import { WorkflowNotFoundError } from '@temporalio/common';
import { InvalidFileError, loadRunbookDir } from '../activities/runbooks.js';
import { DEFAULT_SCOPE } from '../domain/alerts.js';
import { incidentTriggerSchema } from '../domain/commands.js';
import { incidentWorkflowId } from '../domain/incident-key.js';
import type { Runbook } from '../domain/runbook.js';
import { signalIncident } from '../starters/deliver.js';
import { validateArgs } from './actions.js';
import type { CliContext } from './context.js';
import { usageError } from './errors.js';

export interface DeclareOptions {
  runbook: string;
  scope?: string;
  severity?: string;
  title?: string;
}

export interface Declared {
  workflowId: string;
  runbook: Runbook;
  /** False when an incident of this runbook and scope was already open: the declaration joined it. */
  opened: boolean;
}

// A scope is a Kubernetes namespace: the runbooks pass it to probes and actions as such.
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

async function findRunbook(ctx: CliContext, id: string): Promise<Runbook> {
  const { runbooksDir, contactsFile } = ctx.paths;
  let runbooks: Runbook[];
  try {
    runbooks = (await loadRunbookDir(runbooksDir, contactsFile)).runbooks.map((r) => r.runbook);
  } catch (error) {
    if (!(error instanceof InvalidFileError)) throw error;
    throw usageError(
      `cannot check the runbook: the runbooks in ${runbooksDir} have problems (incidentctl runbook lint):\n${error.message}`,
      error,
    );
  }
  const runbook = runbooks.find((r) => r.id === id);
  if (!runbook) {
    throw usageError(`unknown runbook "${id}" (known: ${runbooks.map((r) => r.id).join(', ')})`);
  }
  return runbook;
}

/** A person opens an incident by hand; it opens (or joins) exactly like one opened by alerts. */
export async function declareIncident(ctx: CliContext, o: DeclareOptions): Promise<Declared> {
  const scope = o.scope ?? DEFAULT_SCOPE;
  if (!NAMESPACE.test(scope)) {
    throw usageError(
      `--scope "${scope}" is not a Kubernetes namespace name (lower-case letters, digits, dashes)`,
    );
  }
  const trigger = validateArgs(incidentTriggerSchema, {
    runbookId: o.runbook,
    scope,
    source: 'declared',
    declaredBy: ctx.identity,
    ...(o.title !== undefined ? { title: o.title } : {}),
    ...(o.severity !== undefined ? { severity: o.severity.toUpperCase() } : {}),
  });
  const runbook = await findRunbook(ctx, trigger.runbookId);
  const client = await ctx.client();
  const { taskQueue } = await ctx.settings();
  const workflowId = incidentWorkflowId(runbook.id, scope);
  const alreadyOpen = await client.workflow
    .getHandle(workflowId)
    .describe()
    .then(
      (d) => d.status.name === 'RUNNING',
      (error: unknown) => {
        if (error instanceof WorkflowNotFoundError) return false;
        throw error;
      },
    );
  await signalIncident({ client, taskQueue }, trigger, [], runbook.title);
  return { workflowId, runbook, opened: !alreadyOpen };
}
