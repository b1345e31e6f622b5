import type { Client } from '@temporalio/client';

// gRPC status codes that mean "Temporal cannot take the call now", as opposed to "the call is wrong".
const UNAVAILABLE_CODES = new Map<number, string>([
  [4, 'DEADLINE_EXCEEDED'],
  [8, 'RESOURCE_EXHAUSTED'],
  [14, 'UNAVAILABLE'],
]);

function grpcCode(error: unknown): number | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'number' ? code : undefined;
}

/**
 * Why Temporal could not be reached (a gRPC status name), or undefined when the error is of another
 * kind. The client wraps gRPC errors (ServiceError with a cause), so the whole cause chain is read.
 */
export function temporalUnavailableReason(error: unknown): string | undefined {
  let current: unknown = error;
  for (let depth = 0; current && depth < 10; depth++) {
    const code = grpcCode(current);
    if (code !== undefined && UNAVAILABLE_CODES.has(code)) return UNAVAILABLE_CODES.get(code);
    current = (current as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Runs Temporal calls with one deadline for all of them, so a request never hangs on a down server. */
export function withTemporalDeadline<T>(client: Client, timeoutMs: number, fn: () => Promise<T>): Promise<T> {
  return client.connection.withDeadline(Date.now() + timeoutMs, fn);
}
