import {
  ApiException,
  AppsV1Api,
  AutoscalingV2Api,
  CoreV1Api,
  CustomObjectsApi,
  Observable,
  type ConfigurationOptions,
  type KubeConfig,
  type ObservableMiddleware,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { ApplicationFailure } from '@temporalio/activity';
import { z } from 'zod';
import { activityError, withTimeout, type ErrorKind } from './common.js';

/** How a Kubernetes call failed: an answer from the API server (with its HTTP code), or no answer at all. */
export class KubeFailure extends Error {
  override name = 'KubeFailure';
  constructor(
    readonly kind: 'api' | 'timeout' | 'unreachable',
    message: string,
    readonly code?: number,
  ) {
    super(message);
  }
}

export const isConflict = (e: unknown) => e instanceof KubeFailure && e.code === 409;
export const isNotFound = (e: unknown) => e instanceof KubeFailure && e.code === 404;
export const isUnreachable = (e: unknown) => e instanceof KubeFailure && e.kind === 'unreachable';

const statusSchema = z.object({ message: z.string().optional(), reason: z.string().optional() });

/** The API server's own words from a Status body; never the raw exception text (it carries headers). */
function statusMessage(error: ApiException<unknown>): string {
  const body: unknown = error.body;
  if (typeof body === 'string') {
    try {
      const status = statusSchema.safeParse(JSON.parse(body));
      if (status.success && status.data.message) return status.data.message;
    } catch {
      // not JSON: fall through to the code alone
    }
  }
  return error.code === 401 ? 'Unauthorized' : `HTTP ${error.code}`;
}

const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EPIPE',
  'EAI_AGAIN',
]);

function toKubeFailure(what: string, error: unknown, timeoutMs: number): KubeFailure | ApplicationFailure {
  if (error instanceof KubeFailure) return error;
  if (error instanceof ApiException) {
    return new KubeFailure(
      'api',
      `${what}: Kubernetes API answered ${error.code}: ${statusMessage(error)}`,
      error.code,
    );
  }
  if (error instanceof ApplicationFailure) return error;
  const e = error as { name?: string; code?: string; type?: string; message?: string };
  if (e?.name === 'AbortError' || e?.type === 'aborted' || e?.type === 'request-timeout') {
    return new KubeFailure('timeout', `${what}: the Kubernetes API did not answer within ${timeoutMs} ms`);
  }
  if (e?.code && UNREACHABLE_CODES.has(e.code)) {
    return new KubeFailure('unreachable', `${what}: the Kubernetes API is unreachable (${e.code})`);
  }
  if (e?.name === 'FetchError' || e?.type === 'system') {
    return new KubeFailure(
      'unreachable',
      `${what}: the Kubernetes API is unreachable (${e.code ?? e.message ?? 'network error'})`,
    );
  }
  return new KubeFailure('api', `${what}: ${e?.message ?? String(error)}`);
}

function kindForCode(code: number): ErrorKind {
  if (code === 400 || code === 422) return 'BadRequestError';
  if (code === 401 || code === 403) return 'ForbiddenError';
  if (code === 404) return 'NotFoundError';
  if (code === 409 || code === 412) return 'PreconditionFailedError';
  if (code === 408 || code === 504) return 'TimeoutError';
  if (code === 429 || code === 503) return 'UnavailableError';
  return 'ServerError';
}

/** The classified, redacted activity failure for anything a Kubernetes call threw. */
export function toActivityError(error: unknown, known: readonly string[] = []): ApplicationFailure {
  if (!(error instanceof KubeFailure)) {
    if (error instanceof ApplicationFailure) return error;
    return activityError('ServerError', error instanceof Error ? error.message : String(error), known);
  }
  if (error.kind === 'timeout') return activityError('TimeoutError', error.message, known);
  if (error.kind === 'unreachable') return activityError('UnavailableError', error.message, known);
  return activityError(kindForCode(error.code ?? 500), error.message, known);
}

/** Per-call options: an abort deadline on the request and, for patches, the patch content type. */
function callOptions(timeoutMs: number, contentType?: string): ConfigurationOptions<ObservableMiddleware> {
  const middleware: ObservableMiddleware = {
    pre: (request: RequestContext) => {
      request.setSignal(AbortSignal.timeout(timeoutMs));
      if (contentType) request.setHeaderParam('Content-Type', contentType);
      return new Observable(Promise.resolve(request));
    },
    post: (response: ResponseContext) => new Observable(Promise.resolve(response)),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

export const MERGE_PATCH = 'application/merge-patch+json';

export interface KubeClient {
  core: CoreV1Api;
  apps: AppsV1Api;
  autoscaling: AutoscalingV2Api;
  /** Aggregated and custom APIs by group/version/plural, e.g. the resource metrics API (metrics.k8s.io). */
  custom: CustomObjectsApi;
  /**
   * Runs one API call with a deadline. `run` gets the per-call options to pass to the client method;
   * failures come out as KubeFailure (or a TimeoutError when even the abort did not end the call).
   */
  call<T>(what: string, run: (options: ConfigurationOptions) => Promise<T>, contentType?: string): Promise<T>;
}

export function kubeClient(kubeConfig: KubeConfig, timeoutMs: number): KubeClient {
  return {
    core: kubeConfig.makeApiClient(CoreV1Api),
    apps: kubeConfig.makeApiClient(AppsV1Api),
    autoscaling: kubeConfig.makeApiClient(AutoscalingV2Api),
    custom: kubeConfig.makeApiClient(CustomObjectsApi),
    async call(what, run, contentType) {
      try {
        // The abort ends a slow request; the outer deadline also covers a client that ignores it.
        return await withTimeout(timeoutMs + 1_000, what, run(callOptions(timeoutMs, contentType)));
      } catch (error) {
        throw toKubeFailure(what, error, timeoutMs);
      }
    },
  };
}
