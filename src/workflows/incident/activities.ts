import * as wf from '@temporalio/workflow';
import type { CoreActivities } from '../../domain/activity-contract.js';

/**
 * Replay only. Release 2026-12-01b ran the probes and the runbook load as local activities
 * (`patched('local-reads')`); that was withdrawn (the time-skipping test server cannot complete workflow
 * tasks with local activities in flight), but its recorded histories are kept and must replay. New runs
 * record `remote-reads` and use activity tasks; a history with the `local-reads` marker and without
 * `remote-reads` replays as it ran.
 */
export const REMOTE_READS = 'remote-reads';
export const LOCAL_READS = 'local-reads';
export const localReads = (): boolean => !wf.patched(REMOTE_READS) && wf.patched(LOCAL_READS);

// Loading a runbook is retried a few times, not forever: an incident that cannot load one still opens
// (as triage, or the built-in triage) instead of staying unopened.
const runbookLoading = {
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 5, initialInterval: '1 second', maximumInterval: '10 seconds' },
} as const;
const remoteRunbooks = wf.proxyActivities<CoreActivities>(runbookLoading);
const localRunbooks = wf.proxyLocalActivities<CoreActivities>({
  ...runbookLoading,
  localRetryThreshold: '2 seconds',
});
export const runbooks = (): Pick<CoreActivities, 'loadRunbook'> =>
  localReads() ? localRunbooks : remoteRunbooks;

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
