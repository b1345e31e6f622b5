import { randomUUID } from 'node:crypto';
import type { UpdateDefinition } from '@temporalio/common';
import { WorkflowNotFoundError } from '@temporalio/common';
import type { z } from 'zod';
import { signAction } from '../action-signing.js';
import type { CliContext } from './context.js';
import { refused, usageError } from './errors.js';
import { loadSigningKey } from './keys.js';
import type { Target } from './target.js';

// Argument names as the person typed them, so a validation message points at the right flag.
const FLAG_OF: Record<string, string> = {
  by: '--as',
  declaredBy: '--as',
  runbookId: '<runbook>',
  scope: '--scope',
  severity: '--severity',
  reason: '--reason',
  summary: '--summary',
  rootCause: '--root-cause',
  link: '--link',
  title: '--title',
  owner: '--owner',
  dueAt: '--due',
  ref: '--ref',
  text: '<text>',
  step: '<step>',
  task: '<task>',
  id: '<follow-up>',
};

/** Validates with the same zod schema the workflow uses, before anything is sent. */
export function validateArgs<S extends z.ZodType>(schema: S, raw: unknown): z.output<S> {
  const result = schema.safeParse(raw);
  if (result.success) return result.data;
  const problems = result.error.issues.map((i) => {
    const key = String(i.path[0] ?? '');
    return key ? `${FLAG_OF[key] ?? key}: ${i.message}` : i.message;
  });
  throw usageError(`invalid arguments: ${problems.join('; ')}`);
}

/**
 * Sends one human action as an Update and returns the workflow's verdict. An Update (not a Signal) so the
 * person learns at once whether it was accepted, and why not.
 */
export async function sendUpdate<A>(
  ctx: CliContext,
  target: Target,
  action: { update: UpdateDefinition<string, [A]> },
  schema: z.ZodType<A>,
  raw: unknown,
): Promise<string> {
  const args = validateArgs(schema, raw);
  const sent = signed(ctx, target, action.update.name, args);
  // Temporal applies an Update id once per workflow run: sent again with this id (after a timeout, say),
  // a note, an escalation or a follow-up is not added twice.
  const updateId = ctx.globals.updateId ?? randomUUID();
  try {
    return await ctx.viaWorker(
      'update',
      target.workflowId,
      (handle) => handle.executeUpdate(action.update, { args: [sent as A], updateId }),
      `to repeat it without acting twice, add --update-id ${updateId}`,
    );
  } catch (error) {
    if (error instanceof WorkflowNotFoundError) await explainClosed(ctx, target, error);
    throw error;
  }
}

/**
 * The action with the person's signature when they have a key (the incident records it as verified), else as
 * it is: an unverified claim, which the contacts file's policy may refuse for risky decisions.
 */
function signed<A>(
  ctx: CliContext,
  target: Target,
  action: string,
  args: A,
): A | (A & { signature: unknown }) {
  const key = loadSigningKey(ctx);
  if (!key) {
    ctx.err(
      `note: sent unsigned (no key; incidentctl keys init): recorded as claimed by ${ctx.identity}, not verified`,
    );
    return args;
  }
  const signature = signAction(key, {
    workflowId: target.workflowId,
    action,
    args: args as Record<string, unknown>,
  });
  return { ...args, signature };
}

/** The server answers "not found" for an Update to a closed workflow; say that it is closed instead. */
async function explainClosed(ctx: CliContext, target: Target, error: WorkflowNotFoundError): Promise<void> {
  const client = await ctx.client();
  const description = await client.workflow
    .getHandle(target.workflowId)
    .describe()
    .catch(() => undefined);
  if (!description || description.status.name === 'RUNNING') return;
  const what = target.kind === 'incident' ? 'incident' : 'post-incident workflow';
  throw refused(
    `${what} ${target.workflowId} is closed (${description.status.name.toLowerCase()}): it takes no more actions` +
      (target.kind === 'incident' ? ` (incidentctl show ${target.workflowId})` : ''),
    error,
  );
}
