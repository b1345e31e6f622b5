import type { LoadedRunbook } from '../../domain/activity-contract.js';
import { runbookSchema } from '../../domain/runbook.js';

/**
 * The triage of last resort, built into the workflow: used when neither the alert's runbook nor
 * `runbooks/triage.yaml` (or the contacts file) can be loaded, so an alert still becomes an incident.
 * P2, so on-call is paged: a worker that cannot read its runbooks is itself an incident.
 */
export function lastResortTriage(): LoadedRunbook {
  const runbook = runbookSchema.parse({
    id: 'triage',
    title: 'Unrecognised alert (built-in triage: the runbooks could not be loaded)',
    match: { fallback: true },
    severity: { default: 'P2' },
    team: 'on-call',
    escalation: ['on-call', 'platform', 'manager'],
    probes: [
      { id: 'pods', probe: 'k8sPods', args: { namespace: '{{scope}}' } },
      { id: 'api-health', probe: 'httpHealth' },
    ],
    tasks: [
      {
        id: 'fix-runbooks',
        title: 'Fix the runbooks or contacts file the worker could not load (see the timeline)',
        owner: 'on-call',
      },
      { id: 'investigate', title: 'Investigate the alert by hand', owner: 'on-call' },
    ],
  });
  // Without a contacts file nobody can be checked as an approver; the built-in runbook has no steps.
  return { runbook, runbookHash: 'built-in-last-resort-triage', contacts: { roles: {}, people: [] } };
}
