import * as wf from '@temporalio/workflow';
import type { CoreActivities } from '../../domain/activity-contract.js';

// Loading a runbook is retried a few times, not forever: an incident that cannot load one still opens
// (as triage, or the built-in triage) instead of staying unopened.
export const runbooks = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second', maximumInterval: '10 seconds' },
});

export const notifier = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

// The ledger may be the very database that is down: writes retry for a while in the background and
// never hold the incident up.
export const ledger = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 20, initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

/** The message of an error, looking through an activity failure to what the activity said. */
export const errorMessage = (error: unknown): string => {
  if (error instanceof wf.ActivityFailure && error.cause) return errorMessage(error.cause);
  return error instanceof Error ? error.message : String(error);
};
