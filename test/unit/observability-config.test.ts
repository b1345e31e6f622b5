import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { createLogger, loadLogLevel, temporalLogger } from '../../src/logging.js';
import { tracesUrl, workerTracingOptions } from '../../src/tracing.js';

describe('LOG_LEVEL', () => {
  it('defaults to info, takes a pino level, and names the variable when it is not one', () => {
    expect(loadLogLevel({})).toBe('info');
    expect(loadLogLevel({ LOG_LEVEL: '' })).toBe('info');
    expect(loadLogLevel({ LOG_LEVEL: 'debug' })).toBe('debug');
    expect(() => loadLogLevel({ LOG_LEVEL: 'verbose' })).toThrow(ConfigError);
    expect(() => loadLogLevel({ LOG_LEVEL: 'verbose' })).toThrow(/LOG_LEVEL: .*"info"/);
  });
});

describe('the OTLP endpoint', () => {
  it('is off when unset; the traces endpoint is used as is, the base endpoint gets /v1/traces', () => {
    expect(tracesUrl({})).toBeUndefined();
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: '' })).toBeUndefined();
    expect(tracesUrl({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318/' })).toBe(
      'http://collector:4318/v1/traces',
    );
    expect(
      tracesUrl({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/otlp/traces',
      }),
    ).toBe('https://traces.example/otlp/traces');
  });

  it('refuses what is not an http(s) URL, naming the variable and not echoing the value', () => {
    for (const [name, value] of [
      ['OTEL_EXPORTER_OTLP_ENDPOINT', 'tracing.internal:4318'],
      ['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', 'grpc://tracing.internal:4317'],
    ] as const) {
      let error: unknown;
      try {
        tracesUrl({ [name]: value });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(ConfigError);
      expect((error as Error).message).toMatch(new RegExp(`${name}: expected an http\\(s\\) URL`));
      expect((error as Error).message).not.toContain(value);
    }
  });

  it("off: the worker installs no interceptor, and its exporter sink drops the workflows' spans", () => {
    const options = workerTracingOptions(undefined);
    expect(options.interceptors).toEqual({});
    expect(Object.keys(options.sinks)).toEqual(['exporter']);
    expect(options.sinks.exporter.export.fn({} as never, [])).toBeUndefined();
  });
});

describe('the Temporal runtime logger', () => {
  it('writes JSON lines with runId, no task token, no credentials, trace ids only when tracing', () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString('utf8'));
        done();
      },
    });
    const meta = {
      workflowId: 'incident-x--ns',
      workflowRunId: 'run-1',
      activityType: 'loadRunbook',
      taskToken: 'c2VjcmV0',
      trace_id: 'abc',
      authorization: 'Bearer hunter2',
    };
    temporalLogger(createLogger({ level: 'debug', destination }), { traceIds: false }).debug(
      'Activity started',
      meta,
    );
    temporalLogger(createLogger({ level: 'info', destination }), { traceIds: true }).info(
      'Activity completed',
      meta,
    );
    temporalLogger(createLogger({ level: 'info', destination }), { traceIds: true }).debug('dropped', meta);
    const [off, on, ...rest] = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(rest).toEqual([]);
    expect(off).toMatchObject({
      level: 20,
      msg: 'Activity started',
      workflowId: 'incident-x--ns',
      runId: 'run-1',
    });
    expect(off).not.toHaveProperty('trace_id');
    expect(on).toMatchObject({ level: 30, trace_id: 'abc', activityType: 'loadRunbook' });
    for (const line of [off, on]) {
      expect(line).not.toHaveProperty('taskToken');
      expect(line).not.toHaveProperty('workflowRunId');
      expect(line?.authorization).toBe('[redacted]');
    }
  });
});
