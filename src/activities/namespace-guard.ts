import type { ActionInput } from '../domain/activity-contract.js';
import { notAllowedNamespace } from '../domain/namespaces.js';
import { activityError } from './common.js';
import { actionArgSchemas } from './runbook-calls.js';

type AnyActivity = (...args: never[]) => Promise<unknown>;

/** Actions that only tell people: they touch no namespace, and a triage incident may still send them. */
const TELLING_ONLY = new Set(['notifyTeam']);

/**
 * Every action that changes the platform refuses an incident whose scope, or a `namespace` argument, is off
 * the allowlist (non-retryable ForbiddenError): the receiver already routes such alerts to triage, and this
 * holds for incidents started any other way (incidentctl declare, a `temporal workflow start`).
 */
export function withNamespaceGuard<T extends Record<string, AnyActivity>>(
  activities: T,
  allowed: readonly string[],
): T {
  const guarded: Record<string, AnyActivity> = { ...activities };
  for (const name of Object.keys(actionArgSchemas)) {
    const action = activities[name];
    if (!action || TELLING_ONLY.has(name)) continue;
    guarded[name] = (async (input: ActionInput) => {
      const namespaces = [input.scope, input.args?.namespace].filter(
        (n): n is string => typeof n === 'string',
      );
      for (const ns of namespaces) {
        const refusal = notAllowedNamespace(allowed, ns);
        if (refusal) throw activityError('ForbiddenError', `${name} refused: ${refusal}`);
      }
      return (action as (input: ActionInput) => Promise<unknown>)(input);
    }) as AnyActivity;
  }
  return guarded as T;
}
