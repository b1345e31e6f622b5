import * as wf from '@temporalio/workflow';
import type { CoreActivities } from '../../domain/activity-contract.js';

/**
 * Version marker: what only reads (loading the runbook, the probes) runs as local activities, on the worker
 * that runs the incident's workflow task. It needs none of an activity task's round trips through the
 * server, so the diagnosis is seen sooner, and leaves one event in history instead of three. A worker that
 * dies meanwhile fails its workflow task and the next one reads again; actions, notifications and ledger
 * writes stay activities of their own (each done once, retried for long).
 */
export const LOCAL_READS = 'local-reads';

// Loading a runbook is retried a few times, not forever: an incident that cannot load one still opens
// (as triage, or the built-in triage) instead of staying unopened.
const runbookLoading = {
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second', maximumInterval: '10 seconds' },
} as const;
const remoteRunbooks = wf.proxyActivities<CoreActivities>(runbookLoading);
// Longer backoffs wait on timers, not in the workflow task (a load that keeps failing takes a while).
const localRunbooks = wf.proxyLocalActivities<CoreActivities>({
  ...runbookLoading,
  localRetryThreshold: '2 seconds',
});
export const runbooks = (): Pick<CoreActivities, 'loadRunbook'> =>
  wf.patched(LOCAL_READS) ? localRunbooks : remoteRunbooks;

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
