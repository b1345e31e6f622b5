// OpenTelemetry tracing inside the workflow sandbox (the process side is src/tracing.ts). Not the
// interceptors of @temporalio/interceptors-opentelemetry as they are: theirs wrap each call in async
// functions, so a workflow's own continuations run a few microtasks later than without them, which reorders
// the commands of concurrent branches: recorded post-incident histories fail to replay with them
// (test/workflows/replay.test.ts). These return the very promise the SDK returns and end their span beside it,
// so the workflow runs exactly as without them: no command, no yield added (only a trace header on what
// they start). Spans leave through the `exporter` sink, which drops them when tracing is off.
// The globals OpenTelemetry needs in the sandbox (performance.now).
import '@temporalio/interceptors-opentelemetry/lib/workflow/runtime.js';
import * as otel from '@opentelemetry/api';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import {
  extractContextFromHeaders,
  headersWithContext,
} from '@temporalio/interceptors-opentelemetry/lib/instrumentation.js';
import { ContextManager } from '@temporalio/interceptors-opentelemetry/lib/workflow/context-manager.js';
import { SpanExporter } from '@temporalio/interceptors-opentelemetry/lib/workflow/span-exporter.js';
import {
  ContinueAsNew,
  workflowInfo,
  type Headers,
  type WorkflowInterceptorsFactory,
} from '@temporalio/workflow';

let tracer: otel.Tracer | undefined;
let contextManager: ContextManager | undefined;

function getTracer(): otel.Tracer {
  if (!tracer) {
    contextManager = new ContextManager();
    const provider = new BasicTracerProvider({
      spanProcessors: [new SimpleSpanProcessor(new SpanExporter())],
    });
    provider.register({ contextManager });
    tracer = provider.getTracer('fte-incident-response-workflow');
  }
  return tracer;
}

function endWith(span: otel.Span, result: Promise<unknown>): void {
  result.then(
    () => {
      span.setStatus({ code: otel.SpanStatusCode.OK });
      span.end();
    },
    (error: unknown) => {
      if (!(error instanceof ContinueAsNew)) {
        span.setStatus({
          code: otel.SpanStatusCode.ERROR,
          message: error instanceof Error ? error.message : String(error),
        });
      }
      span.end();
    },
  );
}

/**
 * Runs `call` with a new span active (a child of `parent`, else of the active span) and returns its promise
 * untouched; the span ends when the promise settles.
 */
function traced<T>(name: string, parent: otel.Context | undefined, call: () => Promise<T>): Promise<T> {
  const context = parent ?? otel.context.active();
  const span = getTracer().startSpan(name, {}, context);
  const result = otel.context.with(otel.trace.setSpan(context, span), call);
  endWith(span, result);
  return result;
}

/** The same, for a call whose headers carry the new span to what it starts (an activity, a run, a signal). */
function tracedOut<I extends { headers: Headers }, T>(
  name: string,
  input: I,
  next: (input: I) => Promise<T>,
) {
  return traced(name, undefined, () => next({ ...input, headers: headersWithContext(input.headers) }));
}

export const interceptors: WorkflowInterceptorsFactory = () => {
  // Now, not at the first span: registering the provider installs the propagator that reads the headers.
  getTracer();
  return {
    inbound: [
      {
        execute: (input, next) =>
          traced(`RunWorkflow:${workflowInfo().workflowType}`, extractContextFromHeaders(input.headers), () =>
            next(input),
          ),
        handleSignal: (input, next) => {
          const parent = extractContextFromHeaders(input.headers);
          return parent ? traced(`HandleSignal:${input.signalName}`, parent, () => next(input)) : next(input);
        },
      },
    ],
    outbound: [
      {
        scheduleActivity: (input, next) => tracedOut(`StartActivity:${input.activityType}`, input, next),
        scheduleLocalActivity: (input, next) => tracedOut(`StartActivity:${input.activityType}`, input, next),
        startChildWorkflowExecution: (input, next) =>
          tracedOut(`StartChildWorkflow:${input.workflowType}`, input, next),
        signalWorkflow: (input, next) => tracedOut(`SignalWorkflow:${input.signalName}`, input, next),
        continueAsNew: (input, next) => tracedOut(`ContinueAsNew:${input.options.workflowType}`, input, next),
        getLogAttributes: (input, next) => {
          const span = otel.trace.getSpan(otel.context.active())?.spanContext();
          return span && otel.isSpanContextValid(span)
            ? next({ trace_id: span.traceId, span_id: span.spanId, ...input })
            : next(input);
        },
      },
    ],
    internals: [
      {
        dispose: (input, next) => {
          contextManager?.disable();
          next(input);
        },
      },
    ],
  };
};
