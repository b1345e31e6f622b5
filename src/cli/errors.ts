import { isGrpcServiceError, ServiceError, WorkflowUpdateFailedError } from '@temporalio/client';
import { NamespaceNotFoundError, WorkflowNotFoundError } from '@temporalio/common';
import { ConfigError } from '../config.js';

/** incidentctl's exit codes; scripts and docs rely on them. */
export const ExitCode = {
  ok: 0,
  refused: 1,
  usage: 2,
  unknownIncident: 3,
  unreachable: 4,
  /** `drill`: the incident opened on another runbook than the scenario's. */
  drillWrongRunbook: 5,
  /** `drill`: the incident did not resolve through the runbook's remedy (stuck, or resolved otherwise). */
  drillNotResolved: 6,
  /** `drill`: --timeout passed before the incident resolved (or, with --via monitors, opened). */
  drillTimeout: 7,
  /** `drill`: the sandbox control API did not answer, or could not apply the scenario. */
  sandboxUnavailable: 8,
} as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** An error whose message is meant for the person at the terminal, with the exit code it ends in. */
export class CliError extends Error {
  override name = 'CliError';
  constructor(
    readonly exitCode: ExitCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export const usageError = (message: string, cause?: unknown) =>
  new CliError(ExitCode.usage, message, { cause });
export const refused = (message: string, cause?: unknown) =>
  new CliError(ExitCode.refused, message, { cause });
export const unknownIncident = (message: string, cause?: unknown) =>
  new CliError(ExitCode.unknownIncident, message, { cause });
export const unreachable = (message: string, cause?: unknown) =>
  new CliError(ExitCode.unreachable, message, { cause });

// gRPC status codes that mean "the server could not be reached or did not answer in time".
const UNREACHABLE_CODES = new Set([4 /* DEADLINE_EXCEEDED */, 14 /* UNAVAILABLE */]);

function grpcCode(error: unknown): number | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    if (isGrpcServiceError(e)) return e.code;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

function grpcDetails(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e && depth < 5; depth++) {
    if (isGrpcServiceError(e)) return e.details;
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

export interface ErrorContext {
  address: string;
  namespace: string;
}

/** Turns anything thrown while running a command into a message and exit code a person can act on. */
export function classifyError(error: unknown, where: ErrorContext): CliError {
  if (error instanceof CliError) return error;
  if (error instanceof ConfigError) return usageError(error.message, error);
  if (error instanceof WorkflowUpdateFailedError) {
    return refused(`refused: ${error.cause?.message ?? error.message}`, error);
  }
  if (error instanceof WorkflowNotFoundError) {
    const id = error.workflowId ? `"${error.workflowId}"` : '';
    return unknownIncident(
      `unknown incident ${id}: no such workflow in namespace "${where.namespace}" on ${where.address}`,
      error,
    );
  }
  if (error instanceof NamespaceNotFoundError) {
    return usageError(`namespace "${where.namespace}" does not exist on ${where.address}`, error);
  }
  const code = grpcCode(error);
  if (code !== undefined && UNREACHABLE_CODES.has(code)) {
    return unreachable(
      `Temporal at ${where.address} did not answer (${grpcDetails(error) ?? 'unavailable'}); is the server running and the address right?`,
      error,
    );
  }
  if (error instanceof ServiceError) {
    return refused(`Temporal refused the request: ${grpcDetails(error) ?? error.message}`, error);
  }
  const message = error instanceof Error ? error.message : String(error);
  return refused(`error: ${message}`, error);
}
