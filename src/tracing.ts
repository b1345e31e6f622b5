// OpenTelemetry tracing through Temporal's interceptors, off unless an OTLP endpoint is configured. The
// receiver's client interceptor starts the trace at an alert's signalWithStart and passes it in the
// workflow's headers; the workflow interceptors (always in the bundle: src/workflow-bundle.ts) continue it
// in the workflow and into each activity's headers; the activity interceptor continues it in the worker.
// Spans leave by OTLP over HTTP (JSON) to OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or to
// OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces.
import { diag, DiagLogLevel, type Tracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { Resource } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor, type SpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME } from '@opentelemetry/semantic-conventions';
import type { WorkflowClientInterceptor } from '@temporalio/client';
import {
  makeWorkflowExporter,
  OpenTelemetryActivityInboundInterceptor,
  OpenTelemetryActivityOutboundInterceptor,
  OpenTelemetryWorkflowClientInterceptor,
  type OpenTelemetryWorkflowExporter,
} from '@temporalio/interceptors-opentelemetry';
import type { InjectedSinks, WorkerInterceptors } from '@temporalio/worker';
import { z } from 'zod';
import { parseEnv } from './config.js';
import type { Logger } from './logging.js';
import { AsyncLocalStorageContextManager } from './tracing-context.js';

export const WORKER_SERVICE_NAME = 'fte-incident-response-worker';
export const RECEIVER_SERVICE_NAME = 'fte-incident-response-receiver';

const otlpUrl = z.preprocess(
  (v) => (v === '' ? undefined : v),
  z
    .url({
      protocol: /^https?$/,
      error: 'expected an http(s) URL of an OTLP/HTTP collector, e.g. http://otel-collector:4318',
    })
    .optional(),
);

/** The OpenTelemetry variables read (the standard ones; the exporter also reads OTEL_EXPORTER_OTLP_HEADERS). */
export const tracingEnvSchema = z.object({
  OTEL_EXPORTER_OTLP_ENDPOINT: otlpUrl,
  OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: otlpUrl,
});

/** Where spans go, or undefined: tracing is off. The traces endpoint is used as is, the base one gets /v1/traces. */
export function tracesUrl(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const cfg = parseEnv(tracingEnvSchema, env);
  if (cfg.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) return cfg.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
  if (cfg.OTEL_EXPORTER_OTLP_ENDPOINT)
    return `${cfg.OTEL_EXPORTER_OTLP_ENDPOINT.replace(/\/+$/, '')}/v1/traces`;
  return undefined;
}

export interface Tracing {
  /** The collector's URL without credentials or query, for a log line. */
  readonly endpoint: string;
  readonly tracer: Tracer;
  readonly resource: Resource;
  readonly spanProcessor: SpanProcessor;
  /** Sends the spans still buffered and stops. */
  shutdown(): Promise<void>;
}

/**
 * Starts this process's tracer provider and registers it globally, with the W3C trace-context propagator
 * the interceptors inject into and extract from Temporal headers and a context manager that carries the
 * active span across awaits. Exporter problems (collector unreachable) are logged as warnings.
 */
export function startTracing(options: { serviceName: string; url: string; logger?: Logger }): Tracing {
  const resource = new Resource({ [ATTR_SERVICE_NAME]: options.serviceName });
  const spanProcessor = new BatchSpanProcessor(new OTLPTraceExporter({ url: options.url }));
  const provider = new BasicTracerProvider({ resource, spanProcessors: [spanProcessor] });
  provider.register({ contextManager: new AsyncLocalStorageContextManager() });
  const logger = options.logger;
  if (logger) {
    const log = (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') => (message: string) =>
      logger[level]({ component: 'opentelemetry' }, message);
    diag.setLogger(
      {
        error: log('error'),
        warn: log('warn'),
        info: log('info'),
        debug: log('debug'),
        verbose: log('trace'),
      },
      DiagLogLevel.WARN,
    );
  }
  return {
    endpoint: `${new URL(options.url).origin}${new URL(options.url).pathname}`,
    tracer: provider.getTracer('fte-incident-response'),
    resource,
    spanProcessor,
    shutdown: () => provider.shutdown(),
  };
}

/** The client interceptors of a process that starts or signals workflows (the receiver). */
export function clientTracingInterceptors(tracing: Tracing | undefined): {
  workflow: WorkflowClientInterceptor[];
} {
  return tracing
    ? { workflow: [new OpenTelemetryWorkflowClientInterceptor({ tracer: tracing.tracer })] }
    : { workflow: [] };
}

export type WorkflowTraceSinks = InjectedSinks<{ exporter: OpenTelemetryWorkflowExporter }>;

/**
 * The `exporter` sink the workflow interceptors hand their spans to. Every worker running the product's
 * bundle registers one: when tracing is off it drops them (an unregistered sink is an error per activation).
 */
export function workflowTraceSinks(tracing: Tracing | undefined): WorkflowTraceSinks {
  if (tracing) return { exporter: makeWorkflowExporter(tracing.spanProcessor, tracing.resource) };
  return { exporter: { export: { fn: () => undefined } } };
}

/** What a worker adds to its options for tracing: the activity interceptors when it is on, the sink always. */
export function workerTracingOptions(tracing: Tracing | undefined): {
  interceptors: WorkerInterceptors;
  sinks: WorkflowTraceSinks;
} {
  const interceptors: WorkerInterceptors = tracing
    ? {
        activity: [
          (ctx) => ({
            inbound: new OpenTelemetryActivityInboundInterceptor(ctx, { tracer: tracing.tracer }),
            outbound: new OpenTelemetryActivityOutboundInterceptor(ctx),
          }),
        ],
      }
    : {};
  return { interceptors, sinks: workflowTraceSinks(tracing) };
}
