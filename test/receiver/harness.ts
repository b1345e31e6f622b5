import type { AddressInfo } from 'node:net';
import type { Client } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';
import { loadRunbookDir } from '../../src/activities/runbooks.js';
import { createReceiver, type ReceiverOptions } from '../../src/starters/receiver.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { contactsFile, runbooksDir } from '../helpers/paths.js';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { productWorker } from '../helpers/workflows.js';

export const TOKEN = 'receiver-test-token-0123456789';
export const bearer = (token = TOKEN) => `Bearer ${token}`;
export const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

export async function projectRunbooks() {
  return (await loadRunbookDir(runbooksDir, contactsFile)).runbooks.map((r) => r.runbook);
}

/** A receiver listening on a free loopback port, answering for the given client and task queue. */
export async function listeningReceiver(
  client: Client,
  taskQueue: string,
  extra: Partial<ReceiverOptions> = {},
): Promise<{ app: FastifyInstance; url: string }> {
  const app = createReceiver({
    client,
    runbooks: await projectRunbooks(),
    token: TOKEN,
    taskQueue,
    metricsCacheMs: 0,
    ...extra,
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
}

/** Stops every incident left running on a test's task queue, so the shared dev server stays tidy. */
export async function terminateRunning(client: Client, taskQueue: string): Promise<void> {
  for await (const info of client.workflow.list({
    query: `TaskQueue = '${taskQueue}' AND ExecutionStatus = 'Running'`,
  })) {
    await client.workflow
      .getHandle(info.workflowId, info.runId)
      .terminate('test over')
      .catch(() => undefined);
  }
}

export interface Harness {
  env: TestWorkflowEnvironment;
  platform: FakePlatform;
  taskQueue: string;
  url: string;
  app: FastifyInstance;
  close(): Promise<void>;
}

/** The product workflows on the dev server with fake activities, and a receiver in front of them. */
export async function startHarness(
  extra: Partial<ReceiverOptions> & { logger?: FastifyBaseLogger } = {},
  /** Sets the fakes up before the worker starts (e.g. another contacts file). */
  prepare?: (platform: FakePlatform) => void,
): Promise<Harness> {
  const env = await devServerEnv();
  const platform = new FakePlatform();
  prepare?.(platform);
  const { worker, taskQueue } = await productWorker(env, platform.activities(), uniqueName('receiver'));
  const running = worker.run();
  const { app, url } = await listeningReceiver(env.client, taskQueue, extra);
  return {
    env,
    platform,
    taskQueue,
    url,
    app,
    async close() {
      await app.close();
      await terminateRunning(env.client, taskQueue);
      worker.shutdown();
      await running;
      await env.teardown();
    },
  };
}

export interface AmAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

/** One alert as Alertmanager sends it; the namespace label is the incident's scope. */
export function amAlert(
  alertname: string,
  fingerprint: string,
  namespace: string,
  status: AmAlert['status'] = 'firing',
): AmAlert {
  return {
    status,
    labels: { alertname, namespace, severity: 'critical' },
    annotations: { summary: `${alertname} in ${namespace}` },
    startsAt: '2026-11-27T03:00:00.123456789Z',
    endsAt: status === 'resolved' ? '2026-11-27T03:20:00Z' : '0001-01-01T00:00:00Z',
    generatorURL: 'http://prometheus:9090/graph?g0.expr=up',
    fingerprint,
  };
}

/** An Alertmanager webhook body (version 4) for one group of alerts. */
export function amPayload(
  alerts: AmAlert[],
  overrides: Record<string, unknown> = {},
): Record<string, unknown> {
  const first = alerts[0];
  return {
    version: '4',
    groupKey: `{}:{alertname="${first?.labels.alertname ?? ''}"}`,
    truncatedAlerts: 0,
    status: alerts.some((a) => a.status === 'firing') ? 'firing' : 'resolved',
    receiver: 'incident-response',
    groupLabels: { alertname: first?.labels.alertname ?? '' },
    commonLabels: first?.labels ?? {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager:9093',
    alerts,
    ...overrides,
  };
}

export interface Answer {
  status: number;
  headers: Headers;
  body: Record<string, unknown>;
}

/** POSTs like Alertmanager does: JSON, with the given Authorization header (none when null). */
export async function post(
  url: string,
  body: unknown,
  authorization: string | null = bearer(),
  contentType = 'application/json',
): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': contentType };
  if (authorization) headers.authorization = authorization;
  const res = await fetch(url, {
    method: 'POST',
    headers,
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let parsed: Record<string, unknown>;
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { text };
  }
  return { status: res.status, headers: res.headers, body: parsed };
}

/** The value of one sample in Prometheus text exposition, or undefined when the series is absent. */
export function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const found: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g))
      found[l[1] as string] = l[2] as string;
    const want = Object.entries(labels);
    if (want.length === Object.keys(found).length && want.every(([k, v]) => found[k] === v))
      return Number(m[3]);
  }
  return undefined;
}

export async function scrape(url: string): Promise<string> {
  const res = await fetch(`${url}/metrics`);
  if (res.status !== 200) throw new Error(`/metrics answered ${res.status}`);
  return res.text();
}
