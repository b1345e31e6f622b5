import { expect, it } from 'vitest';
import { ApplicationFailure } from '@temporalio/common';
import type { ActionInput } from '../../src/domain/activity-contract.js';
import { actionNamespacesSchema } from '../../src/domain/namespaces.js';
import { withNamespaceGuard } from '../../src/activities/namespace-guard.js';

const calls: string[] = [];
const action = (name: string) => async (input: ActionInput) => {
  calls.push(`${name}:${input.scope}`);
  return { changed: true, summary: 'done' };
};
const guarded = withNamespaceGuard(
  {
    rolloutRestart: action('rolloutRestart'),
    killIdleConnections: action('kill'),
    notifyTeam: action('notify'),
  },
  ['customer-success-fte'],
);
const input = (scope: string, args: Record<string, unknown> = {}): ActionInput => ({
  incidentId: 'i',
  scope,
  stepId: 's',
  idempotencyKey: 'k',
  args,
});

it('runs actions in an allowlisted namespace', async () => {
  await guarded.rolloutRestart(
    input('customer-success-fte', { namespace: 'customer-success-fte', name: 'fte-api' }),
  );
  expect(calls).toContain('rolloutRestart:customer-success-fte');
});

it('refuses, without retries, an incident scope or a namespace argument off the allowlist', async () => {
  const before = calls.length;
  for (const call of [
    () => guarded.rolloutRestart(input('kube-system', { namespace: 'kube-system', name: 'coredns' })),
    () =>
      guarded.rolloutRestart(input('customer-success-fte', { namespace: 'kube-system', name: 'coredns' })),
    () => guarded.killIdleConnections(input('payments', { olderThanSeconds: 60 })),
  ]) {
    const error = await call().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(ApplicationFailure);
    expect(error).toMatchObject({ type: 'ForbiddenError', nonRetryable: true });
    expect((error as Error).message).toMatch(/is not on the allowlist of namespaces incidents act in/);
  }
  expect(calls).toHaveLength(before);
  // Telling people touches no namespace.
  await guarded.notifyTeam(input('kube-system'));
  expect(calls.at(-1)).toBe('notify:kube-system');
});

it('reads ACTION_NAMESPACES as a comma list of namespace names', () => {
  expect(actionNamespacesSchema.parse(undefined)).toEqual(['customer-success-fte']);
  expect(actionNamespacesSchema.parse(' a, b-2 ,')).toEqual(['a', 'b-2']);
  expect(actionNamespacesSchema.safeParse('Bad_NS').success).toBe(false);
  expect(actionNamespacesSchema.safeParse(' , ').success).toBe(false);
});
