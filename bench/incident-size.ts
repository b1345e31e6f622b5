import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import type { Alert } from '../src/domain/alerts.js';
import type { IncidentTrigger } from '../src/domain/commands.js';
import { MAX_EVIDENCE_LINE_LENGTH, MAX_EVIDENCE_LINES, MAX_SUMMARY_LENGTH } from '../src/domain/findings.js';
import type { Finding } from '../src/domain/findings.js';
import type { IncidentState } from '../src/domain/incident.js';
import { signalIncident } from '../src/starters/deliver.js';
import { workflowTraceSinks } from '../src/tracing.js';
import { alertsSignal, incidentActions, incidentStatusQuery } from '../src/workflows/api.js';
import type { incidentWorkflow } from '../src/workflows/incident.js';
import { FakePlatform } from '../test/helpers/fake-platform.js';
import { runSizes, timeSkippingEnv, type RunSize } from './lib/history.js';
import { uniqueName, workflowBundle } from './lib/product.js';
import { figure, type Figure } from './lib/result.js';
import { runAlone, type Benchmark } from './lib/runner.js';
import type { BenchServices } from './lib/services.js';

// How big an incident's history gets, on the time-skipping server (escalations and approval reminders are
// minutes apart, a storm lasts a day) with the product's workflow bundle and activity fakes whose findings
// are as large as a finding may be (boundFinding's caps), so the bytes are an upper bound of real probes':
//  (a) a full P1 of all-channels-down: PostgreSQL, Kafka and fte-api down, all seven probes, three
//      approved steps, two escalations from timers (acknowledgement deadline, approval timeout);
//  (b) a 24-hour alert storm, the same alert re-delivered every 10 s to an unacknowledged P1 waiting for
//      approval: the incident continues as new; every run's size is read back from the server.

const KB = 1024;
const MB = 1024 * KB;
const RUNBOOK = 'all-channels-down';

/** The fakes' findings at the size caps: every finding carries as much as boundFinding lets through. */
function worstCaseFindings(
  activities: Record<string, (...args: never[]) => Promise<unknown>>,
): Record<string, (...args: never[]) => Promise<unknown>> {
  const line = (i: number) =>
    `${i} ${'x'.repeat(MAX_EVIDENCE_LINE_LENGTH)}`.slice(0, MAX_EVIDENCE_LINE_LENGTH);
  const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
  for (const [name, fn] of Object.entries(activities)) {
    wrapped[name] = async (...args: never[]) => {
      const result = await fn(...args);
      const f = result as Partial<Finding>;
      if (!f || typeof f !== 'object' || !('evidence' in f) || typeof f.summary !== 'string') return result;
      return {
        ...f,
        summary: `${f.summary} `.padEnd(MAX_SUMMARY_LENGTH, '.'),
        evidence: Array.from({ length: MAX_EVIDENCE_LINES }, (_, i) => line(i)),
      };
    };
  }
  return wrapped;
}

const firing = (fingerprint: string, status: Alert['status'] = 'firing'): Alert => ({
  fingerprint,
  status,
  labels: { alertname: 'FTEAllChannelsDown', namespace: 'customer-success-fte', severity: 'critical' },
  annotations: { summary: 'Health check failing and no messages processed on any channel' },
  startsAt: new Date().toISOString(),
});

async function until(
  handle: WorkflowHandle,
  predicate: (s: IncidentState) => boolean,
  what: string,
): Promise<IncidentState> {
  let last: IncidentState | undefined;
  for (let i = 0; i < 600; i++) {
    last = await handle.query(incidentStatusQuery).catch(() => undefined);
    if (last && predicate(last)) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}; status ${last?.status}, waiting for ${last?.waitingFor}`);
}

/** A platform where PostgreSQL, Kafka and fte-api are down, each healed only by its runbook step. */
function brokenPlatform(): FakePlatform {
  const platform = new FakePlatform();
  platform.status = {
    pods: 'degraded',
    'api-health': 'down',
    'api-logs': 'degraded',
    postgres: 'down',
    'postgres-logs': 'degraded',
    kafka: 'down',
    'kafka-logs': 'degraded',
  };
  platform.metrics = { pods: { 'uid/postgres-0': 'uid-p0', 'uid/kafka-0': 'uid-k0' } };
  platform.onAction('restartStatefulSetPod', (input) => {
    const which = input.args.pod === 'postgres-0' ? 'postgres' : 'kafka';
    Object.assign(platform.status, { [which]: 'ok', [`${which}-logs`]: 'ok' });
    if (platform.status.postgres === 'ok' && platform.status.kafka === 'ok') platform.status.pods = 'ok';
    return { changed: true, summary: `restarted ${String(input.args.pod)}` };
  });
  platform.heals('rolloutRestart', { 'api-health': 'ok', 'api-logs': 'ok' });
  return platform;
}

async function productWorker(env: TestWorkflowEnvironment, platform: FakePlatform, capped = true) {
  const taskQueue = uniqueName('incident-size');
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await workflowBundle(),
    activities: capped ? worstCaseFindings(platform.activities()) : platform.activities(),
    sinks: workflowTraceSinks(undefined),
  });
  return { worker, taskQueue };
}

interface P1Result {
  runs: RunSize[];
  escalations: number;
  approvedSteps: number;
  probeCalls: number;
  resolved: boolean;
  reportBytes: number;
}

/** The P1; `capped`: findings at the size caps, else the fakes' own (a one-line summary, no evidence). */
export async function fullP1(env: TestWorkflowEnvironment, capped = true): Promise<P1Result> {
  const platform = brokenPlatform();
  const { worker, taskQueue } = await productWorker(env, platform, capped);
  return worker.runUntil(async () => {
    const trigger: IncidentTrigger = { runbookId: RUNBOOK, scope: 'p1', source: 'alertmanager' };
    const alert = firing(randomBytes(8).toString('hex'));
    const handle = await signalIncident({ client: env.client, taskQueue }, trigger, [alert]);
    const firstRunId = (await handle.describe()).runId;
    const approve = async (step: string, next: (s: IncidentState) => boolean, what: string) => {
      await handle.executeUpdate(incidentActions.approve.update, { args: [{ step, by: 'carol' }] });
      await env.sleep('2 minutes');
      await until(handle, next, what);
    };
    await until(handle, (s) => s.awaitingApproval.includes('restart-postgres'), 'diagnosis');
    // Nobody answers for 11 minutes: the acknowledgement deadline (5 min) and the approval timeout (10 min)
    // each escalate, and the approval wait re-checks the platform every 5 minutes.
    await env.sleep('11 minutes');
    await until(handle, (s) => s.timeline.filter((t) => t.type === 'escalated').length >= 2, 'escalations');
    await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
    await approve('restart-postgres', (s) => s.awaitingApproval.includes('restart-kafka'), 'restart-kafka');
    await approve('restart-kafka', (s) => s.awaitingApproval.includes('restart-api'), 'restart-api');
    const recovered = await (async () => {
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-api', by: 'carol' }],
      });
      await env.sleep('2 minutes');
      return until(handle, (s) => s.status === 'Monitoring', 'recovery');
    })();
    await signalIncident({ client: env.client, taskQueue }, trigger, [firing(alert.fingerprint, 'resolved')]);
    const outcome = await (handle as WorkflowHandle<typeof incidentWorkflow>).result();
    const runs = await runSizes(env.client, handle.workflowId, firstRunId);
    let reportBytes = 0;
    if (outcome.postIncidentWorkflowId) {
      const report = env.client.workflow.getHandle(outcome.postIncidentWorkflowId);
      const reportRun = (await report.describe()).runId;
      reportBytes = (await runSizes(env.client, report.workflowId, reportRun))[0]?.bytes ?? 0;
      await report.terminate('benchmark done');
    }
    return {
      runs,
      escalations: recovered.timeline.filter((t) => t.type === 'escalated').length,
      approvedSteps: recovered.steps.filter((s) => s.approvedBy && s.status === 'recovered').length,
      probeCalls: platform.probeCalls.length,
      resolved: Boolean(outcome.resolvedAt ?? outcome.resolvedBy),
      reportBytes,
    };
  });
}

interface StormResult {
  runs: RunSize[];
  deliveriesCounted: number;
  hours: number;
}

export async function alertStorm(
  env: TestWorkflowEnvironment,
  deliveries: number,
  historyLimit: number | undefined,
  log: (line: string) => void,
): Promise<StormResult> {
  const platform = brokenPlatform();
  const { worker, taskQueue } = await productWorker(env, platform);
  return worker.runUntil(async () => {
    const trigger: IncidentTrigger = { runbookId: RUNBOOK, scope: 'storm', source: 'alertmanager' };
    const alert = firing(randomBytes(8).toString('hex'));
    const options = { client: env.client, taskQueue };
    // The product's path (deliver.ts); a small run starts the incident itself only to set a lower limit.
    const handle = historyLimit
      ? await env.client.workflow.signalWithStart<typeof incidentWorkflow, [{ alerts: Alert[] }]>(
          'incidentWorkflow',
          {
            taskQueue,
            workflowId: `incident-${RUNBOOK}--${trigger.scope}`,
            args: [{ trigger: { ...trigger, alerts: [] }, historyLimit }],
            signal: alertsSignal,
            signalArgs: [{ alerts: [alert] }],
          },
        )
      : await signalIncident(options, trigger, [alert]);
    const firstRunId = (await handle.describe()).runId;
    for (let i = 1; i < deliveries; i++) {
      await env.sleep(10_000);
      await signalIncident(options, trigger, [alert]);
      if (i % (deliveries > 1000 ? 1000 : 50) === 0) log(`  storm: ${i}/${deliveries} deliveries`);
    }
    const latest = env.client.workflow.getHandle(handle.workflowId);
    const state = await until(
      latest,
      (s) => (s.alerts[alert.fingerprint]?.deliveries ?? 0) >= deliveries,
      'every delivery counted',
    );
    const runs = await runSizes(env.client, handle.workflowId, firstRunId);
    await latest.terminate('benchmark done');
    return {
      runs,
      deliveriesCounted: state.alerts[alert.fingerprint]?.deliveries ?? 0,
      hours: ((deliveries - 1) * 10) / 3600,
    };
  });
}

export const benchmark: Benchmark = {
  name: 'incident-size',
  title: 'Incident size: a full P1 and a 24-hour alert storm, in history events and bytes',
  async run({ services, small, log }) {
    const deliveries = small ? 300 : 8_640;
    // The small storm continues as new at a lower history length; the full one at the product's default.
    const historyLimit = small ? 400 : undefined;
    // A server of its own for each part: after the P1, the same server no longer skipped time for the storm.
    const p1 = await withTimeSkipping(services, (env) => fullP1(env));
    const p1Small = await withTimeSkipping(services, (env) => fullP1(env, false));
    log(`  P1: ${p1.runs.map((r) => `${r.events} events, ${r.bytes} bytes`).join('; ')}`);
    const storm = await withTimeSkipping(services, (env) => alertStorm(env, deliveries, historyLimit, log));
    {
      const p1Events = sum(p1.runs.map((r) => r.events));
      const p1Bytes = sum(p1.runs.map((r) => r.bytes));
      const maxEvents = Math.max(...storm.runs.map((r) => r.events));
      const maxBytes = Math.max(...storm.runs.map((r) => r.bytes));
      const figures: Figure[] = [
        figure('P1: approved steps recovered', p1.approvedSteps, 'steps', { atLeast: 3 }),
        figure('P1: escalations', p1.escalations, 'escalations', { atLeast: 2 }),
        figure('P1: probe runs', p1.probeCalls, 'probes'),
        figure('P1: runs', p1.runs.length, 'runs'),
        figure('P1: history events', p1Events, 'events', { atMost: 300 }),
        figure('P1: history size', p1Bytes / KB, 'KB', { atMost: 512 }),
        figure(
          'P1: history size, findings without evidence',
          sum(p1Small.runs.map((r) => r.bytes)) / KB,
          'KB',
        ),
        figure('P1: search attribute upserts', sum(p1.runs.map((r) => r.upserts)), 'upserts'),
        figure(
          "P1: patch markers (each with the SDK's TemporalChangeVersion upsert)",
          sum(p1.runs.map((r) => r.markers.core_patch ?? 0)),
          'markers',
        ),
        figure(
          'P1: local activities (probes, runbook load: one marker each)',
          sum(p1.runs.map((r) => r.markers.core_local_activity ?? 0)),
          'markers',
        ),
        figure('P1: post-incident report history', p1.reportBytes / KB, 'KB'),
        figure('storm: deliveries counted', storm.deliveriesCounted, 'deliveries', { atLeast: deliveries }),
        figure('storm: runs (continued as new)', storm.runs.length, 'runs', { atLeast: 2 }),
        figure('storm: max events per run', maxEvents, 'events', {
          atMost: 10_000,
          text: '≤ 10000 (warn limit; hard 50K)',
        }),
        figure('storm: max history per run', maxBytes / MB, 'MB', {
          atMost: 10,
          text: '≤ 10 MB (warn limit; hard 50 MB)',
        }),
        figure('storm: total events', sum(storm.runs.map((r) => r.events)), 'events'),
        figure('storm: search attribute upserts', sum(storm.runs.map((r) => r.upserts)), 'upserts'),
      ];
      return {
        params: {
          deliveries,
          stormHours: Math.round(storm.hours * 10) / 10,
          historyLimit: historyLimit ?? 'default',
        },
        figures,
        notes: [
          "time-skipping test server (the escalations are 5 and 10 minutes away, the storm lasts a day) running the product's workflow bundle; activities are fakes whose findings are at boundFinding's caps (20 evidence lines of 300 characters, 300-character summary), so the bytes are an upper bound of what real probes put in history",
          `P1: all-channels-down with PostgreSQL, Kafka and fte-api down; unanswered for 11 minutes (acknowledgement deadline → manager, approval timeout → platform), then acknowledged, restart-postgres, restart-kafka and restart-api approved, each verified; resolved by its alert; ${p1.probeCalls} probe runs`,
          `each storm run continues as new when the server suggests it (continueAsNewSuggested; the dev server's default is at 4,096 events) or at the workflow's own limit (${historyLimit ?? 'the default 8,000'} events), whichever comes first`,
          `P1 events by type: ${p1.runs[0]?.byType.map(([t, n]) => `${t} ${n}`).join(', ')}`,
          `storm: the same alert re-delivered every 10 s through deliver.ts (signalWithStart) for ${Math.round(storm.hours * 10) / 10} h to an unacknowledged P1 waiting for approval (re-checks every 5 min, reminders every 10 min); runs: ${storm.runs.map((r) => `${r.events} ev/${Math.round(r.bytes / KB)} KB`).join(', ')}`,
        ],
      };
    }
  },
};

async function withTimeSkipping<T>(
  services: BenchServices,
  work: (env: TestWorkflowEnvironment) => Promise<T>,
): Promise<T> {
  const env = await timeSkippingEnv(services);
  try {
    return await work(env);
  } finally {
    await env.teardown();
  }
}

const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);

await runAlone(import.meta.url, 'incident-size');
