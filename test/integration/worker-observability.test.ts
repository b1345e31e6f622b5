import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type proto from '@temporalio/proto';
import { z } from 'zod';
import { ENCRYPTED_ENCODING, newPayloadKeyEntry } from '../../src/payload-codec.js';
import { useProduct } from '../e2e/harness.js';
import { projectRoot } from '../helpers/paths.js';
import { freePort } from '../helpers/ports.js';
import { prebuiltWorkflowBundle, startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';
import { until } from '../helpers/workflows.js';

// What an operator sees of the worker: its stdout is JSON lines, an activity's lines say which workflow run
// and which activity they are about, a workflow's lines which run; and, with an OTLP endpoint set, one trace
// per incident in the collector, from the receiver's signalWithStart through the workflow into the activities.

const runbook = 'all-channels-down';
const product = useProduct(runbook, { worker: 'none' });

const spanSchema = z.object({ traceId: z.string(), spanId: z.string(), name: z.string() });
const exportSchema = z.object({
  resourceSpans: z.array(
    z.object({
      resource: z.object({
        attributes: z.array(
          z.object({ key: z.string(), value: z.object({ stringValue: z.string().optional() }) }),
        ),
      }),
      scopeSpans: z.array(z.object({ spans: z.array(spanSchema) })),
    }),
  ),
});
interface ReceivedSpan extends z.infer<typeof spanSchema> {
  service: string;
}

let dir = '';
let bundle = '';
let collector: FastifyInstance;
let collectorUrl = '';
const received: ReceivedSpan[] = [];
const contentTypes = new Set<string>();
const workers: WorkerProcess[] = [];
const receivers: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fte-observability-'));
  bundle = await prebuiltWorkflowBundle(dir);
  // A collector as small as it gets: OTLP/HTTP, which the exporter sends as JSON.
  collector = Fastify({ bodyLimit: 16 * 1024 * 1024 });
  collector.post('/v1/traces', async (request) => {
    contentTypes.add(String(request.headers['content-type']));
    for (const rs of exportSchema.parse(request.body).resourceSpans) {
      const service =
        rs.resource.attributes.find((a) => a.key === 'service.name')?.value.stringValue ?? '(none)';
      for (const ss of rs.scopeSpans) for (const span of ss.spans) received.push({ ...span, service });
    }
    return {};
  });
  const port = await freePort();
  await collector.listen({ host: '127.0.0.1', port });
  collectorUrl = `http://127.0.0.1:${port}`;
}, 240_000);
// A test's worker never outlives it: another one polling the task queue would take the next test's tasks.
afterEach(async () => {
  for (const r of receivers.splice(0)) if (r.exitCode === null) r.kill('SIGKILL');
  for (const w of workers.splice(0)) await w.kill('SIGKILL');
});
afterAll(async () => {
  await collector?.close();
  await rm(dir, { recursive: true, force: true });
});

function startWorker(env: Record<string, string>, name: string): WorkerProcess {
  const worker = startWorkerProcess({
    env: { ...product().workerEnv, WORKFLOW_BUNDLE: bundle, ...env },
    logFile: join(dir, `${name}.log`),
  });
  workers.push(worker);
  return worker;
}

// The log file holds stderr too: Node's own process warnings ("(node:<pid>) …" and their continuation
// lines) are not the worker's.
const nodeWarning = /^\(node:\d+\) |^\(Use `node --trace-warnings|^Timeout duration was set to/;
const jsonLines = async (file: string) =>
  (await readFile(file, 'utf8'))
    .split('\n')
    .filter((l) => l.trim() !== '' && !nodeWarning.test(l))
    .map((line) => {
      try {
        return JSON.parse(line) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON line in ${file}: ${line}`);
      }
    });

describe('the worker process without an OTLP endpoint', () => {
  it('writes JSON lines; activity lines carry workflowId, runId and activityType, workflow lines workflowId and runId', async () => {
    const p = product();
    const worker = startWorker({ LOG_LEVEL: 'debug' }, 'logs');
    await worker.polling(p.env.connection, 'default');
    expect(await p.alert('FTEAllChannelsDown', 'firing')).toBe(202);
    await p.waitFor(runbook, (s) => Object.keys(s.findings).length > 0, 'the diagnosis', 90);
    const { runId } = await p.handle(runbook).describe();
    const workflowId = p.incidentId(runbook);

    const lines = await until(
      () => jsonLines(worker.logFile),
      (ls) => ls.some((l) => l.activityType === 'loadRunbook' && l.runId === runId),
      'an activity log line',
    );
    expect(lines.find((l) => String(l.msg).startsWith('worker: polling task queue'))).toMatchObject({
      level: 30,
      msg: expect.stringContaining(p.taskQueue),
    });
    // The SDK's lines of an activity (debug: started, completed), with the run it works for.
    expect(lines.find((l) => l.activityType === 'loadRunbook' && l.runId === runId)).toMatchObject({
      workflowId,
      runId,
      workflowType: 'incidentWorkflow',
      activityType: 'loadRunbook',
    });
    // A workflow's own log line ("Workflow started", logged inside the workflow sandbox).
    expect(lines.find((l) => l.msg === 'Workflow started' && l.workflowId === workflowId)).toMatchObject({
      level: 20,
      runId,
      workflowType: 'incidentWorkflow',
    });
    // No task token (it completes an activity from outside), and no trace ids when nothing is traced.
    expect(lines.filter((l) => 'taskToken' in l || 'trace_id' in l)).toEqual([]);

    await worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
    expect(received).toEqual([]);
  }, 300_000);
});

describe('tracing to an OTLP collector', () => {
  it('one trace from the receiver through the workflow into the activities', async () => {
    const p = product();
    const worker = startWorker({ OTEL_EXPORTER_OTLP_ENDPOINT: collectorUrl }, 'traced');
    await worker.polling(p.env.connection, 'default');

    const token = 'observability-test-token-0123456789';
    const receiver = spawn(process.execPath, ['--import', 'tsx', 'src/starters/receiver.ts'], {
      cwd: projectRoot,
      env: {
        PATH: process.env.PATH ?? '',
        RECEIVER_TOKEN: token,
        RECEIVER_PORT: '0',
        TEMPORAL_ADDRESS: p.temporalAddress,
        TEMPORAL_NAMESPACE: 'default',
        TEMPORAL_TASK_QUEUE: p.taskQueue,
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${collectorUrl}/v1/traces`,
      },
    });
    receivers.push(receiver);
    let output = '';
    receiver.stdout?.on('data', (d: Buffer) => (output += d.toString()));
    receiver.stderr?.on('data', (d: Buffer) => (output += d.toString()));
    const url = await until(
      async () => /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1],
      (u) => u !== undefined || receiver.exitCode !== null,
      'the receiver listening',
      300,
    );
    expect(url, output).toBeDefined();

    const labels = { alertname: 'FTEAllChannelsDown', namespace: p.namespace, severity: 'critical' };
    const answer = await fetch(`${url}/webhooks/alertmanager`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        version: '4',
        groupKey: '{}:{alertname="FTEAllChannelsDown"}',
        truncatedAlerts: 0,
        status: 'firing',
        receiver: 'fte-incident-response',
        groupLabels: { alertname: 'FTEAllChannelsDown' },
        commonLabels: labels,
        commonAnnotations: {},
        externalURL: 'http://alertmanager.example:9093',
        alerts: [
          {
            status: 'firing',
            labels,
            annotations: { summary: 'traced' },
            startsAt: new Date().toISOString(),
            endsAt: '0001-01-01T00:00:00Z',
            generatorURL: 'http://prometheus.example:9090/graph',
            fingerprint: 'observability-traced',
          },
        ],
      }),
    });
    expect(answer.status, output).toBe(202);
    await p.waitFor(runbook, (s) => Object.keys(s.findings).length > 0, 'the diagnosis', 90);

    // The receiver's span starts the trace; the workflow's spans (through the worker's sink) and the
    // activities' spans continue it. Spans leave in batches every few seconds.
    const spans = await until(
      async () => received,
      (all) => {
        const start = all.find((s) => s.name === 'SignalWithStartWorkflow:incidentWorkflow');
        return (
          start !== undefined &&
          all.some((s) => s.traceId === start.traceId && s.name === 'StartActivity:loadRunbook') &&
          all.some((s) => s.traceId === start.traceId && s.name === 'RunActivity:loadRunbook')
        );
      },
      'the spans of the incident in the collector',
      600,
    ).catch(async (error: Error) => {
      console.error(await worker.output(80));
      throw new Error(
        `${error.message}; received: ${JSON.stringify(received.map((s) => [s.service, s.name]))}`,
      );
    });
    const start = spans.find((s) => s.name === 'SignalWithStartWorkflow:incidentWorkflow');
    const trace = spans.filter((s) => s.traceId === start?.traceId);
    expect(start?.service).toBe('fte-incident-response-receiver');
    expect(trace.find((s) => s.name === 'StartActivity:loadRunbook')?.service).toBe(
      'fte-incident-response-worker',
    );
    expect(trace.find((s) => s.name === 'RunActivity:loadRunbook')?.service).toBe(
      'fte-incident-response-worker',
    );
    // The probes of the diagnosis are in the same trace.
    expect(trace.filter((s) => s.name.startsWith('RunActivity:')).length).toBeGreaterThan(1);
    expect([...contentTypes]).toEqual(['application/json']);

    receiver.kill('SIGTERM');
    await once(receiver, 'exit');
    await worker.kill('SIGTERM');
    expect(await worker.exited).toEqual({ code: 0, signal: null });
  }, 300_000);
});

describe('the worker process with PAYLOAD_KEYS', () => {
  it('encrypts the payloads it writes into history, and still reads the ones written in the clear', async () => {
    const p = product();
    const worker = startWorker({ PAYLOAD_KEYS: newPayloadKeyEntry('obs-1') }, 'encrypted');
    await worker.polling(p.env.connection, 'default');
    // The receiver here has no keys: the alert arrives in the clear, and the worker reads it all the same.
    expect(await p.alert('FTEAllChannelsDown', 'firing')).toBe(202);
    const encrypted = (e: proto.temporal.api.history.v1.IHistoryEvent) =>
      (e.activityTaskScheduledEventAttributes?.input?.payloads ?? []).some(
        (x) => Buffer.from(x.metadata?.encoding ?? new Uint8Array()).toString() === ENCRYPTED_ENCODING,
      );
    const history = await until(
      () => p.handle(runbook).fetchHistory(),
      (h) => (h.events ?? []).some(encrypted),
      'an activity scheduled with an encrypted input',
    );
    // Read without the key, none of its activity inputs says which probe it runs.
    const inputs = (history.events ?? [])
      .filter(encrypted)
      .flatMap((e) => e.activityTaskScheduledEventAttributes?.input?.payloads ?? []);
    expect(inputs.map((x) => Buffer.from(x.data ?? new Uint8Array()).toString()).join('')).not.toContain(
      'probeId',
    );
  }, 300_000);
});
