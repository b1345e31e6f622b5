import { Context } from '@temporalio/activity';

// A worker that dies (SIGKILL, OOM, a lost node) while an activity runs tells the server nothing: without
// heartbeats the server retries the activity only when its start-to-close timeout has passed, for an action
// the step's whole timeout (2 minutes by default) in the middle of an incident. When the workflow asks for
// heartbeats (a heartbeat timeout, as the incident's actions do), the activity heartbeats while it runs, so
// the server notices a dead worker within that timeout and another worker retries (the actions are
// idempotent: src/activities/kubernetes-actions.ts).

type AnyActivity = (...args: never[]) => Promise<unknown>;

/**
 * Wraps each activity so that, when its caller set a heartbeat timeout, it heartbeats three times per timeout
 * for as long as it runs (the SDK throttles what reaches the server). Without a heartbeat timeout, or outside
 * an activity (tests calling the function directly), it is the activity as it was.
 */
export function withHeartbeats<T extends Record<string, AnyActivity>>(activities: T): T {
  const wrapped: Record<string, AnyActivity> = {};
  for (const [name, activity] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      let context: Context;
      try {
        context = Context.current();
      } catch {
        return activity(...args);
      }
      const timeoutMs = context.info.heartbeatTimeoutMs;
      if (!timeoutMs) return activity(...args);
      const timer = setInterval(() => context.heartbeat(), Math.max(100, Math.floor(timeoutMs / 3)));
      try {
        return await activity(...args);
      } finally {
        clearInterval(timer);
      }
    };
  }
  return wrapped as T;
}
