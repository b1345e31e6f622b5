/**
 * Records the workflow histories of one release into a new folder, test/histories/<release>/, with its
 * manifest (index.json). test/workflows/replay.test.ts replays every recorded history against the current
 * workflow code, so a change that would break incidents, reports or monitor runs already running in
 * production fails CI.
 *
 *   npx tsx test/histories/record.ts 2026-11-30
 *
 * It refuses a release that is already recorded: recorded histories are never re-recorded, edited or
 * deleted (re-recording would replace the very histories that guard the running workflows). Record a new
 * release into a new folder; change workflow code behind wf.patched() (test/histories/README.md).
 *
 * A release is recorded from a commit (`--commit REV`, default HEAD), never from uncommitted changes: the
 * commit's sources are exported (git archive) and bundled by that commit's own buildWorkflowBundle, the
 * function that builds the bundle its worker runs; the manifest names the commit. Each scenario runs on its
 * own time-skipping test server (scripts/temporal-test-server.sh) with that bundle and the activity fakes of
 * the workflow tests.
 *
 * Trying scenarios without making a release: `--out DIR` (a new folder outside test/histories/),
 * `--only name,name`, and `--worktree` to bundle the working tree instead of a commit; `--list` lists the
 * scenarios. RECORD_TRACE=1 prints each wait, RECORD_LOG_LEVEL=INFO the SDK's log.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { newKeyPair, parsePrivateKey, signAction } from '../../src/action-signing.js';
import { mkdir, rename, rm, rmdir, writeFile } from 'node:fs/promises';
import { basename, dirname, resolve, sep } from 'node:path';
import type { WorkflowHandle } from '@temporalio/client';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { DefaultLogger, Runtime, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import type { ActionInput, LoadedRunbook } from '../../src/domain/activity-contract.js';
import type { Alert } from '../../src/domain/alerts.js';
import { incidentWorkflowId, postIncidentWorkflowId } from '../../src/domain/incident-key.js';
import type { PostIncidentInput } from '../../src/domain/post-incident.js';
import { signalIncident } from '../../src/starters/deliver.js';
import {
  alertsSignal,
  incidentActions,
  postIncidentActions,
  postIncidentStatusQuery,
} from '../../src/workflows/api.js';
import type { incidentWorkflow } from '../../src/workflows/incident.js';
import type {
  DeliverMonitorAlertsInput,
  GmailWatchRenewalInput,
  HealthMonitorInput,
  KafkaLagMonitorInput,
  MonitorDeliveryReport,
} from '../../src/workflows/monitor-rules.js';
import type { postIncidentWorkflow } from '../../src/workflows/post-incident.js';
import { FakePlatform, retryableError } from '../helpers/fake-platform.js';
import { registerSearchAttributes } from '../helpers/services.js';
import { contactsFile, projectRoot } from '../helpers/paths.js';
import { alert, productBundle, status } from '../helpers/workflows.js';
import { workflowTraceSinks } from '../../src/tracing.js';
import {
  CLOSING_EVENTS,
  historiesDir,
  MANIFEST_FILE,
  releaseNamePattern,
  sha256,
  type HistoryEntry,
  type ReleaseManifest,
} from './manifest.js';

const { EventType } = proto.temporal.api.enums.v1;
type History = proto.temporal.api.history.v1.IHistory;
type Activity = (...args: never[]) => Promise<unknown>;

const SCOPE = 'customer-success-fte';
const TASK_QUEUE = 'record-histories';
const MIN = 60_000;
const HOUR = 60 * MIN;
/**
 * The continue-as-new scenario's history limit (production: 8,000 events): small, so that a storm of a few
 * dozen alerts crosses it and each run's history stays a reasonable file.
 */
const STORM_HISTORY_LIMIT = 120;
/** A scenario takes a few seconds; one that takes this long hangs. */
const SCENARIO_LIMIT_MS = 120_000;

/**
 * One monitor run started the way its Schedule starts it (the test server has no Schedules), checked to have
 * delivered exactly `expected` (alertname status), and kept as `file`.
 */
async function recordMonitorRun(
  ctx: ScenarioContext,
  workflowType: 'healthMonitorWorkflow' | 'kafkaLagMonitorWorkflow' | 'gmailWatchRenewalWorkflow',
  idPrefix: string,
  input: HealthMonitorInput | KafkaLagMonitorInput | GmailWatchRenewalInput,
  expected: string[],
  file: string,
  about: string,
): Promise<void> {
  await ctx.work({}, async () => {
    const run = await ctx.env.client.workflow.start(workflowType, {
      taskQueue: ctx.taskQueue,
      workflowId: await scheduledRunId(ctx.env, idPrefix),
      args: [input],
    });
    await run.result();
    const delivered = ctx.platform.monitorAlerts.map((a) => `${a.labels.alertname} ${a.status}`);
    if (delivered.join() !== expected.join())
      throw new Error(`${file}: delivered ${delivered.join(', ')}, expected ${expected.join(', ')}`);
    ctx.keep(file, run.workflowId, await runIdOf(run), about);
  });
}

// ---------------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------------

interface ScenarioContext {
  env: TestWorkflowEnvironment;
  taskQueue: string;
  platform: FakePlatform;
  /** Runs `body` while a worker serves the product's bundle with the platform's activities and `overrides`. */
  work(overrides: Record<string, Activity>, body: () => Promise<void>): Promise<void>;
  /** Writes the history of this run into the release once the scenario is over; the run must be closed. */
  keep(file: string, workflowId: string, runId: string, covers: string): void;
}

interface Scenario {
  name: string;
  run(ctx: ScenarioContext): Promise<void>;
}

const incidentId = (runbookId: string) => incidentWorkflowId(runbookId, SCOPE);

/** The environment of the scenario running now (one at a time). */
let activeEnv: TestWorkflowEnvironment | undefined;

/**
 * Reads (a query, a history) until the predicate holds. Each read has a deadline: the test server now and
 * then never answers a query that reaches an incident while it continues as new, and a read that fails or
 * times out is simply tried again (the last error is in the message when it never holds).
 */
async function until<T>(
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  tries = 150,
): Promise<T> {
  let last: unknown;
  if (process.env.RECORD_TRACE) console.error(`${new Date().toISOString()} waiting for ${what}`);
  for (let i = 0; i < tries; i++) {
    try {
      const value = activeEnv
        ? await activeEnv.connection.withDeadline(Date.now() + 5_000, read)
        : await read();
      last = value;
      if (predicate(value)) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const seen = last instanceof Error ? last.message : JSON.stringify(last);
  throw new Error(`timed out waiting for ${what}; last: ${String(seen).slice(0, 2000)}`);
}

function open(ctx: ScenarioContext, runbookId: string, alerts: Alert[]) {
  return signalIncident(
    { client: ctx.env.client, taskQueue: ctx.taskQueue },
    { runbookId, scope: SCOPE, source: 'alertmanager' },
    alerts,
  );
}

async function runIdOf(handle: WorkflowHandle): Promise<string> {
  return (await handle.describe()).runId;
}

/** Every run of a workflow id from `firstRunId` on, following continue-as-new to the last. */
async function runChain(env: TestWorkflowEnvironment, workflowId: string, firstRunId: string) {
  const runs: string[] = [];
  for (let runId: string | undefined = firstRunId; runId && runs.length < 20;) {
    runs.push(runId);
    const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const last = history.events?.at(-1);
    runId = last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
  }
  return runs;
}

/** The run, once its history ends with a closing event. */
async function closed(env: TestWorkflowEnvironment, workflowId: string, runId: string): Promise<void> {
  await until(
    () => env.client.workflow.getHandle(workflowId, runId).fetchHistory(),
    (h) => CLOSING_EVENTS.includes(EventType[h.events?.at(-1)?.eventType ?? 0] ?? ''),
    `run ${runId} of ${workflowId} to close`,
  );
}

/**
 * The run that `runId` continued as, once that run has finished its first workflow task. Read from the
 * histories, not by queries: a query that reaches a workflow id while it continues as new can go unanswered
 * on the test server. Address the next run by its run id from then on.
 */
async function continuedAs(env: TestWorkflowEnvironment, workflowId: string, runId: string): Promise<string> {
  const history = await until(
    () => env.client.workflow.getHandle(workflowId, runId).fetchHistory(),
    (h) => h.events?.at(-1)?.eventType === EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
    `run ${runId} of ${workflowId} to continue as new`,
  );
  const next = history.events?.at(-1)?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId;
  if (!next) throw new Error(`run ${runId} of ${workflowId} names no next run`);
  await until(
    () => env.client.workflow.getHandle(workflowId, next).fetchHistory(),
    (h) => (h.events ?? []).some((e) => e.eventType === EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED),
    `the first workflow task of run ${next}`,
  );
  return next;
}

/** The platform as all-channels-down finds it: postgres down; a pod restart heals what is given. */
function postgresDown(platform: FakePlatform, heals: Record<string, 'ok'> = { postgres: 'ok' }): void {
  platform.heals('restartStatefulSetPod', heals);
  platform.status = { postgres: 'down', ...Object.fromEntries(Object.keys(heals).map((k) => [k, 'down'])) };
  platform.metrics = { pods: { 'uid/postgres-0': 'uid-postgres-0' } };
}

const awaitingRestart = (handle: WorkflowHandle<typeof incidentWorkflow>) =>
  until(
    () => status(handle),
    (s) => s.awaitingApproval.includes('restart-postgres'),
    'the approval request of restart-postgres',
  );

const scenarios: Scenario[] = [
  {
    name: 'p1-full',
    async run(ctx) {
      const { env, platform } = ctx;
      postgresDown(platform, { postgres: 'ok', 'api-health': 'ok' });
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-p1')]);
        await awaitingRestart(handle);
        await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
        await handle.signal(incidentActions.addNote.signal, {
          by: 'alice',
          text: 'postgres-0 is in CrashLoopBackOff',
        });
        await handle.executeUpdate(incidentActions.approve.update, {
          args: [{ step: 'restart-postgres', by: 'carol' }],
        });
        await env.sleep('1 minute');
        await until(
          () => status(handle),
          (s) => s.status === 'Monitoring' && s.steps[0]?.status === 'recovered',
          'recovery, with the alert still firing',
        );
        await handle.signal(alertsSignal, { alerts: [alert('FTEAllChannelsDown', 'fp-p1', 'resolved')] });
        const outcome = await handle.result();
        if (outcome.resolvedBy !== 'system' || !outcome.postIncidentWorkflowId)
          throw new Error(`p1-full: unexpected outcome ${JSON.stringify(outcome)}`);

        const post = env.client.workflow.getHandle<typeof postIncidentWorkflow>(
          outcome.postIncidentWorkflowId,
        );
        const dueAt = new Date((await env.currentTimeMs()) + 2 * HOUR).toISOString();
        await post.executeUpdate(postIncidentActions.addFollowUp.update, {
          args: [{ title: 'Alert on postgres disk usage', owner: 'carol', dueAt, by: 'alice' }],
        });
        // Follow-up overdue at 2 h, report reminders at 12 h and 23 h, report overdue at 24 h.
        await env.sleep('25 hours');
        await until(
          () => post.query(postIncidentStatusQuery),
          (s) => s.reportStatus === 'Overdue' && s.followUps[0]?.overdueAt !== undefined,
          'the report and the follow-up overdue',
        );
        await post.executeUpdate(postIncidentActions.submitReport.update, {
          args: [
            { by: 'alice', rootCause: 'the postgres volume filled up', link: 'https://wiki.example/inc-1' },
          ],
        });
        await post.executeUpdate(postIncidentActions.completeFollowUp.update, {
          args: [{ id: 'FU-1', by: 'carol' }],
        });
        await post.result();
        ctx.keep(
          'p1-incident.json',
          handle.workflowId,
          await runIdOf(handle),
          'A full P1 (all-channels-down): alert by signalWithStart, diagnosis, approval request, acknowledge (update), a note (signal), approval of restart-postgres, look before acting, remediation, verification, alert resolved, resolved by the system, post-incident child started, bounded drain',
        );
        ctx.keep(
          'p1-post-incident.json',
          post.workflowId,
          await runIdOf(post),
          'The report of that P1: a follow-up with a due date, the follow-up overdue, report reminders at 12 h and 23 h, report overdue (manager told), report submitted late, follow-up done, completed; ledger writes throughout',
        );
      });
    },
  },
  {
    name: 'continue-as-new',
    async run(ctx) {
      const { env, platform } = ctx;
      postgresDown(platform);
      await ctx.work({}, async () => {
        const handle = await env.client.workflow.start<typeof incidentWorkflow>('incidentWorkflow', {
          taskQueue: ctx.taskQueue,
          workflowId: incidentId('all-channels-down'),
          args: [
            {
              trigger: {
                runbookId: 'all-channels-down',
                scope: SCOPE,
                source: 'alertmanager',
                alerts: [alert('FTEAllChannelsDown', 'fp-storm-0')],
              },
              historyLimit: STORM_HISTORY_LIMIT,
            },
          ],
        });
        const firstRun = handle.firstExecutionRunId;
        await awaitingRestart(handle);
        await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
        // An alert storm: alerts until the history crosses the limit, then the incident continues as new
        // (it may do so only once the signals stop: the server refuses a continue-as-new with new signals).
        const firstRunHandle = env.client.workflow.getHandle(handle.workflowId, firstRun);
        let sent = 1;
        while (((await firstRunHandle.fetchHistory()).events?.length ?? 0) < STORM_HISTORY_LIMIT) {
          if (sent > 300) throw new Error('continue-as-new: the storm never filled the history');
          for (let i = 0; i < 5; i++, sent++) {
            await handle.signal(alertsSignal, { alerts: [alert('FTEAllChannelsDown', `fp-storm-${sent}`)] });
          }
        }
        const next = env.client.workflow.getHandle<typeof incidentWorkflow>(
          handle.workflowId,
          await continuedAs(env, handle.workflowId, firstRun),
        );
        await until(
          () => status(next),
          (s) => Object.keys(s.alerts).length === sent && s.awaitingApproval.includes('restart-postgres'),
          'every alert kept across continue-as-new, still waiting for approval',
        );
        await next.executeUpdate(incidentActions.approve.update, {
          args: [{ step: 'restart-postgres', by: 'carol' }],
        });
        await env.sleep('1 minute');
        await until(
          () => status(next),
          (s) => s.steps[0]?.status === 'recovered',
          'recovery after continue-as-new',
        );
        await handle.executeUpdate(incidentActions.resolve.update, {
          args: [{ by: 'alice', summary: 'postgres restarted; the storm alerts are stale' }],
        });
        await handle.result();
        const runs = await runChain(env, handle.workflowId, firstRun);
        if (runs.length < 2) throw new Error('continue-as-new: the incident did not continue as new');
        runs.forEach((runId, i) =>
          ctx.keep(
            `storm-run-${i + 1}.json`,
            handle.workflowId,
            runId,
            i === 0
              ? `The first run of a P1 under an alert storm (historyLimit ${STORM_HISTORY_LIMIT}): opened, approval request, acknowledged, alerts by signal until the history is too long, bounded drain, continue-as-new with the carried state while waiting for approval`
              : i < runs.length - 1
                ? 'A middle run of the storm: resumed from the carried state, continued as new again'
                : 'The run after continue-as-new: resumes the approval wait from the carried state (approvers not asked again), approval, look before acting, remediation, verification, resolved by hand, post-incident child started',
          ),
        );
      });
    },
  },
  {
    name: 'signed-actions',
    async run(ctx) {
      const { env, platform } = ctx;
      // The contacts file with carol's public key and a strict policy for unsigned actions.
      const carol = newKeyPair();
      const key = parsePrivateKey(carol.privateKeyPem, 'carol');
      const contacts = parse(readFileSync(contactsFile, 'utf8')) as {
        people: { name: string; publicKey?: string }[];
        policy?: unknown;
      };
      for (const p of contacts.people) if (p.name === 'carol') p.publicKey = carol.publicKey;
      contacts.policy = { unverified: { allow: ['acknowledge', 'addNote'], decideSteps: 'none' } };
      const file = join(mkdtempSync(join(tmpdir(), 'record-contacts-')), 'contacts.yaml');
      writeFileSync(file, stringify(contacts));
      platform.contactsFile = file;
      postgresDown(platform, { postgres: 'ok', 'api-health': 'ok' });
      const sign = async (workflowId: string, action: string, args: Record<string, unknown>) => ({
        ...args,
        signature: signAction(key, { workflowId, action, args, now: new Date(await env.currentTimeMs()) }),
      });
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-signed')]);
        await awaitingRestart(handle);
        // Unsigned, the strict policy refuses the approval (a Signal: recorded as a refused attempt).
        await handle.signal(incidentActions.approve.signal, { step: 'restart-postgres', by: 'carol' });
        await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'bob' }] });
        const approve = await sign(handle.workflowId, 'approve', { step: 'restart-postgres', by: 'carol' });
        await handle.executeUpdate(incidentActions.approve.update, { args: [approve as never] });
        await env.sleep('1 minute');
        await until(
          () => status(handle),
          (s) => s.status === 'Monitoring' && s.steps[0]?.status === 'recovered',
          'recovery, with the alert still firing',
        );
        await handle.signal(alertsSignal, { alerts: [alert('FTEAllChannelsDown', 'fp-signed', 'resolved')] });
        const outcome = await handle.result();
        if (!outcome.postIncidentWorkflowId) throw new Error('signed-actions: no report was started');
        const post = env.client.workflow.getHandle<typeof postIncidentWorkflow>(outcome.postIncidentWorkflowId);
        const report = await sign(post.workflowId, 'submitReport', {
          by: 'carol',
          rootCause: 'the postgres volume filled up',
          noFollowUps: true,
        });
        await post.executeUpdate(postIncidentActions.submitReport.update, { args: [report as never] });
        await post.result();
        ctx.keep(
          'signed-incident.json',
          handle.workflowId,
          await runIdOf(handle),
          'A P1 under a strict contacts policy: an unsigned approval Signal refused (rejected attempt), an unsigned acknowledgement allowed (unverified), a signed approval verified (Ed25519 in the workflow), remediation, resolved by the system, the report started with the contacts',
        );
        ctx.keep(
          'signed-post-incident.json',
          post.workflowId,
          await runIdOf(post),
          'Its report: a signed submitReport (no follow-ups) verified against the contacts it was started with, completed',
        );
      });
    },
  },
  {
    name: 'rejected-step',
    async run(ctx) {
      ctx.platform.status = { postgres: 'down' };
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-rejected')]);
        await awaitingRestart(handle);
        await handle.executeUpdate(incidentActions.reject.update, {
          args: [{ step: 'restart-postgres', by: 'carol', reason: 'a DBA is already on it' }],
        });
        await until(
          () => status(handle),
          (s) => s.status === 'Escalated',
          'escalation once no step is left',
        );
        await handle.executeUpdate(incidentActions.resolve.update, {
          args: [{ by: 'carol', summary: 'the DBA brought postgres back' }],
        });
        await handle.result();
        ctx.keep(
          'rejected-step.json',
          handle.workflowId,
          await runIdOf(handle),
          'A P1 whose only applicable step is rejected (reject update): the step is skipped, nothing is left, Escalated with the stuck notification, resolved by hand, post-incident child started',
        );
      });
    },
  },
  {
    name: 'ack-escalation',
    async run(ctx) {
      const { env } = ctx;
      ctx.platform.status = { postgres: 'down' };
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-unacked')]);
        await awaitingRestart(handle);
        await env.sleep('6 minutes');
        await until(
          () => status(handle),
          (s) => s.ackLevel === 1,
          'the acknowledgement escalation at 5 minutes',
        );
        await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'bob' }] });
        await handle.executeUpdate(incidentActions.resolve.update, {
          args: [{ by: 'bob', summary: 'false alarm: a load test' }],
        });
        await handle.result();
        ctx.keep(
          'ack-escalation.json',
          handle.workflowId,
          await runIdOf(handle),
          'A P1 left unacknowledged past 5 minutes: the acknowledgement deadline fires and reaches the first role not yet paged (manager), the 5-minute re-check of the approval request runs meanwhile, then acknowledged late and resolved by hand',
        );
      });
    },
  },
  {
    name: 'approval-timeout',
    async run(ctx) {
      const { env } = ctx;
      postgresDown(ctx.platform);
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-timeout')]);
        await awaitingRestart(handle);
        await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
        await env.sleep(10.5 * MIN);
        await until(
          () => status(handle),
          (s) =>
            s.timeline.some(
              (t) => t.type === 'escalated' && t.text.includes('approval of "restart-postgres"'),
            ),
          'the approval reminder and escalation',
        );
        await handle.executeUpdate(incidentActions.approve.update, {
          args: [{ step: 'restart-postgres', by: 'alice' }],
        });
        await env.sleep('1 minute');
        await until(
          () => status(handle),
          (s) => s.steps[0]?.status === 'recovered',
          'recovery',
        );
        await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
        await handle.result();
        ctx.keep(
          'approval-timeout.json',
          handle.workflowId,
          await runIdOf(handle),
          'A P1 whose approval request times out (10 minutes): re-checks every 5 minutes, the approvers reminded and the wait escalated, then approved, look before acting, remediation, verification, resolved by hand',
        );
      });
    },
  },
  {
    name: 'stuck',
    async run(ctx) {
      const { env } = ctx;
      ctx.platform.status = { 'kafka-lag': 'down' };
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'high-agent-latency', [alert('FTEAgentLatencyHigh', 'fp-stuck')]);
        // scale-workers (low risk) runs at once and is verified every minute for 10 minutes: no recovery.
        await env.sleep('11 minutes');
        await until(
          () => status(handle),
          (s) => s.status === 'Escalated',
          'Escalated: nothing left to try',
        );
        await env.sleep('16 minutes');
        await until(
          () => status(handle),
          (s) => s.timeline.some((t) => t.type === 'diagnosis' && t.text.startsWith('periodic re-check')),
          'a periodic re-check while stuck',
        );
        await handle.executeUpdate(incidentActions.resolve.update, {
          args: [{ by: 'carol', summary: 'the consumer group was redeployed by hand' }],
        });
        await handle.result();
        ctx.keep(
          'stuck.json',
          handle.workflowId,
          await runIdOf(handle),
          'A P3 (high-agent-latency) whose low-risk step runs without approval and does not recover within its verification window: not-recovered, nothing left, Escalated with the stuck notification, a periodic re-check 15 minutes later, resolved by hand (no post-incident report for P3)',
        );
      });
    },
  },
  {
    name: 'early-signals',
    async run(ctx) {
      const { platform } = ctx;
      const { loadRunbook } = platform.activities() as {
        loadRunbook: (input: { runbookId: string }) => Promise<LoadedRunbook>;
      };
      let loading = false;
      let release: () => void = () => {};
      const loaded = new Promise<void>((r) => (release = r));
      const slowLoad = async (input: { runbookId: string }) => {
        loading = true;
        await loaded;
        return loadRunbook(input);
      };
      await ctx.work({ loadRunbook: slowLoad }, async () => {
        const handle = await open(ctx, 'high-agent-latency', [alert('FTEAgentLatencyHigh', 'fp-early')]);
        await until(async () => loading, Boolean, 'loadRunbook to start');
        await handle.signal(incidentActions.addNote.signal, {
          by: 'alice',
          text: 'looking at the processor dashboards',
        });
        await handle.signal(incidentActions.acknowledge.signal, { by: 'alice' });
        // Refused once the incident is open (the step does not wait for approval): a rejected attempt.
        await handle.signal(incidentActions.approve.signal, { step: 'scale-workers', by: 'erin' });
        await until(
          () => handle.fetchHistory(),
          (h) => handledAfterLastSignal(h),
          'the workflow to take the signals while the runbook loads',
        );
        release();
        await until(
          () => status(handle),
          (s) => s.status === 'Monitoring' && s.acknowledgedBy === 'alice' && s.rejectedAttempts === 1,
          'the incident open with the early signals applied',
        );
        await handle.signal(alertsSignal, { alerts: [alert('FTEAgentLatencyHigh', 'fp-early', 'resolved')] });
        await handle.result();
        ctx.keep(
          'early-signals.json',
          handle.workflowId,
          await runIdOf(handle),
          'Signals (addNote, acknowledge, and an approve that is refused) that arrive while loadRunbook is still running: deferred, applied once the incident is open; P3 monitoring until its alert resolves, resolved by the system',
        );
      });
    },
  },
  {
    name: 'cancel-update',
    async run(ctx) {
      ctx.platform.status = { postgres: 'down' };
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-cancel')]);
        await awaitingRestart(handle);
        await handle.executeUpdate(incidentActions.cancel.update, {
          args: [{ by: 'alice', reason: 'raised against the wrong cluster' }],
        });
        const outcome = await handle.result();
        if (!outcome.cancelled) throw new Error('cancel-update: the incident was not cancelled');
        ctx.keep(
          'cancel-update.json',
          handle.workflowId,
          await runIdOf(handle),
          'A P1 cancelled by a person (cancel update) while waiting for approval: its work scope and acknowledgement watcher cancelled, the request withdrawn, Cancelled with who and why in the ledger, the team told, completed with `cancelled` in the result',
        );
      });
    },
  },
  {
    name: 'cancel-request',
    async run(ctx) {
      const { env } = ctx;
      ctx.platform.status = { postgres: 'down' };
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [
          alert('FTEAllChannelsDown', 'fp-cancel-request'),
        ]);
        await awaitingRestart(handle);
        const runId = await runIdOf(handle);
        await handle.cancel();
        await handle.result().then(
          () => {
            throw new Error('cancel-request: the run completed instead of closing as cancelled');
          },
          () => undefined,
        );
        await closed(env, handle.workflowId, runId);
        ctx.keep(
          'cancel-request.json',
          handle.workflowId,
          runId,
          'A P1 cancelled by a Temporal cancel request while waiting for approval: the same trace as a person’s cancel, by `temporal`, in non-cancellable scopes; the run closes as cancelled',
        );
      });
    },
  },
  {
    name: 'next-occurrence',
    async run(ctx) {
      const { env, platform } = ctx;
      let releaseLedger: () => void = () => {};
      const held = new Promise<void>((r) => (releaseLedger = r));
      // The resolved run's ledger write is slow, so the run is still finishing when the alert fires again.
      platform.onLedgerWrite = (e) => (e.type === 'resolved' ? held : undefined);
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'high-agent-latency', [
          alert('FTEAgentLatencyHigh', 'fp-occurrence-1'),
        ]);
        await until(
          () => status(handle),
          (s) => s.status === 'Monitoring',
          'monitoring',
        );
        const firstRun = await runIdOf(handle);
        await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
        const first = await until(
          () => status(handle),
          (s) => s.status === 'Resolved',
          'resolved',
        );
        await open(ctx, 'high-agent-latency', [alert('FTEAgentLatencyHigh', 'fp-occurrence-2')]);
        await until(
          () => status(handle),
          (s) => s.timeline.some((t) => t.type === 'alert-after-close'),
          'the alert after close',
        );
        releaseLedger();
        const next = env.client.workflow.getHandle<typeof incidentWorkflow>(
          handle.workflowId,
          await continuedAs(env, handle.workflowId, firstRun),
        );
        await until(
          () => status(next),
          (s) => s.openedAt !== first.openedAt && s.status === 'Monitoring',
          'the next occurrence',
        );
        await next.executeUpdate(incidentActions.resolve.update, {
          args: [{ by: 'alice', summary: 'latency back to normal' }],
        });
        await next.result();
        const runs = await runChain(env, handle.workflowId, firstRun);
        if (runs.length !== 2) throw new Error(`next-occurrence: expected 2 runs, got ${runs.length}`);
        ctx.keep(
          'next-occurrence-run-1.json',
          handle.workflowId,
          runs[0] as string,
          'A P3 resolved by hand whose ledger write is slow: a firing alert arrives while the run finishes (alert-after-close), the bounded drain ends, and the run continues as new as the next occurrence',
        );
        ctx.keep(
          'next-occurrence-run-2.json',
          handle.workflowId,
          runs[1] as string,
          'The next occurrence: opened from the late alert under a new occurrence id (runbook loaded again), monitoring, resolved by hand',
        );
      });
    },
  },
  {
    name: 'approval-withdrawn',
    async run(ctx) {
      const { env, platform } = ctx;
      postgresDown(platform);
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [alert('FTEAllChannelsDown', 'fp-withdrawn')]);
        await awaitingRestart(handle);
        await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'bob' }] });
        platform.status = { postgres: 'ok' };
        await env.sleep('6 minutes');
        await until(
          () => status(handle),
          (s) => s.status === 'Monitoring' && s.timeline.some((t) => t.type === 'approval-withdrawn'),
          'the request withdrawn at the periodic re-check',
        );
        await handle.signal(alertsSignal, {
          alerts: [alert('FTEAllChannelsDown', 'fp-withdrawn', 'resolved')],
        });
        await handle.result();
        ctx.keep(
          'approval-withdrawn.json',
          handle.workflowId,
          await runIdOf(handle),
          'Look before acting: postgres recovers by itself while restart-postgres waits for approval; the 5-minute re-check withdraws the request (approvers told), monitoring, alert resolved, resolved by the system, post-incident child started',
        );
      });
    },
  },
  {
    name: 'step-withdrawn',
    async run(ctx) {
      const { platform } = ctx;
      postgresDown(platform);
      await ctx.work({}, async () => {
        const handle = await open(ctx, 'all-channels-down', [
          alert('FTEAllChannelsDown', 'fp-step-withdrawn'),
        ]);
        await awaitingRestart(handle);
        platform.status = { postgres: 'ok' };
        await handle.executeUpdate(incidentActions.approve.update, {
          args: [{ step: 'restart-postgres', by: 'carol' }],
        });
        await until(
          () => status(handle),
          (s) => s.status === 'Monitoring' && s.timeline.some((t) => t.type === 'step-withdrawn'),
          'the approved step withdrawn',
        );
        if (platform.timesActed('restartStatefulSetPod') !== 0)
          throw new Error('step-withdrawn: the withdrawn step ran');
        await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
        await handle.result();
        ctx.keep(
          'step-withdrawn.json',
          handle.workflowId,
          await runIdOf(handle),
          'Look before acting: restart-postgres approved after postgres recovered; the fresh diagnosis before acting withdraws the step (it does not run), monitoring, resolved by hand',
        );
      });
    },
  },
  {
    name: 'post-incident-overdue',
    async run(ctx) {
      const { env } = ctx;
      await ctx.work({}, async () => {
        const now = await env.currentTimeMs();
        const incident = incidentId('whatsapp-channel-down');
        const input: PostIncidentInput = {
          incidentId: incident,
          occurrence: '5b0c3f5e-8a7f-4d0e-9d5e-2f1b6c0e7a11',
          title: 'WhatsApp channel down',
          severity: 'P2',
          runbookId: 'whatsapp-channel-down',
          team: 'channel',
          resolvedAt: new Date(now).toISOString(),
          reportOwner: 'erin',
          runbookUpdateRequired: true,
          resolutionSummary: 'the Twilio webhook secret was rotated by hand',
        };
        const post = await env.client.workflow.start<typeof postIncidentWorkflow>('postIncidentWorkflow', {
          taskQueue: ctx.taskQueue,
          workflowId: postIncidentWorkflowId(incident, new Date(now - 40 * MIN).toISOString()),
          args: [input],
        });
        const read = () => post.query(postIncidentStatusQuery);
        await until(read, (s) => s.timeline.length > 0, 'the report workflow to start');
        await post.executeUpdate(postIncidentActions.addFollowUp.update, {
          args: [
            {
              title: 'Alert when the webhook signature check fails',
              owner: 'carol',
              dueAt: new Date(now + 36 * HOUR).toISOString(),
              by: 'erin',
            },
          ],
        });
        await post.executeUpdate(postIncidentActions.addFollowUp.update, {
          args: [{ title: 'Document the secret rotation', owner: 'erin' }],
        });
        await env.sleep('25 hours');
        await until(read, (s) => s.reportStatus === 'Overdue', 'the report overdue');
        // Another day: still overdue (daily reminder), and the first follow-up overdue at 36 h.
        await env.sleep('24 hours');
        await until(
          read,
          (s) =>
            s.followUps[0]?.overdueAt !== undefined &&
            s.timeline.filter((t) => t.type === 'report-overdue').length === 1,
          'the follow-up overdue',
        );
        await post.executeUpdate(postIncidentActions.submitReport.update, {
          args: [{ by: 'erin', rootCause: 'the webhook secret expired unnoticed' }],
        });
        // A Signal the workflow refuses (unknown follow-up): recorded as a rejected attempt.
        await post.signal(postIncidentActions.completeFollowUp.signal, { id: 'FU-9', by: 'carol' });
        await post.executeUpdate(postIncidentActions.completeFollowUp.update, {
          args: [{ id: 'FU-1', by: 'carol' }],
        });
        await post.executeUpdate(postIncidentActions.completeFollowUp.update, {
          args: [{ id: 'FU-2', by: 'erin' }],
        });
        await post.executeUpdate(postIncidentActions.markRunbookUpdated.update, {
          args: [{ by: 'erin', ref: 'runbooks/whatsapp-channel-down.yaml' }],
        });
        const state = await post.result();
        if (state.rejectedAttempts !== 1)
          throw new Error('post-incident-overdue: the refused signal is missing');
        ctx.keep(
          'post-incident-overdue.json',
          post.workflowId,
          await runIdOf(post),
          'A P2 report with two follow-ups (one due, one without a date) and a runbook update required: reminders, report overdue at 24 h (manager told), a daily overdue reminder, the dated follow-up overdue, report submitted two days late, a refused signal, both follow-ups done, runbook update recorded, completed',
        );
      });
    },
  },
  {
    name: 'health-monitor',
    async run(ctx) {
      const { platform } = ctx;
      platform.status = { 'api-health': 'down' };
      platform.metrics = { 'channel-metrics': channelMetrics() };
      const input: HealthMonitorInput = {
        scope: SCOPE,
        channelErrorRate: 0.5,
        channelDownForMs: 0,
        p95LatencyMs: 10_000,
        latencyForMs: 5 * MIN,
        escalationRate: 0.3,
        escalationForMs: 10 * MIN,
        poolUtilisation: 0.95,
        poolForMs: MIN,
        gmailWatchForMs: 0,
        repeatEveryMs: HOUR,
        everyMs: MIN,
      };
      await recordMonitorRun(ctx, 'healthMonitorWorkflow', 'monitor-health', input, ['FTEAllChannelsDown firing'], 'health-monitor.json', 'One scheduled run of the health monitor with all four probes (fte-api health, channel metrics, the database pool, the Gmail watch): fte-api health down, FTEAllChannelsDown fires and is delivered');
    },
  },
  {
    name: 'kafka-lag-monitor',
    async run(ctx) {
      const { platform } = ctx;
      platform.status = { 'kafka-lag': 'down' };
      platform.metrics = { 'kafka-lag': { totalLag: 4200 } };
      const input: KafkaLagMonitorInput = {
        scope: SCOPE,
        group: 'fte-message-processor',
        topic: 'fte-messages',
        threshold: 1000,
        forMs: 0,
        repeatEveryMs: HOUR,
        everyMs: MIN,
      };
      await recordMonitorRun(ctx, 'kafkaLagMonitorWorkflow', 'monitor-kafka-lag', input, ['FTEAgentLatencyHigh firing'], 'kafka-lag-monitor.json', 'One scheduled run of the Kafka lag monitor: the consumer group lags 4,200 messages (threshold 1,000), FTEAgentLatencyHigh fires and is delivered');
    },
  },
  {
    name: 'gmail-watch-renewal',
    async run(ctx) {
      const { platform } = ctx;
      // The first renewal fails (all its activity retries); the retry 15 minutes later succeeds.
      platform.onAction('renewGmailWatch', (input: ActionInput) => {
        if (!input.idempotencyKey.includes('/retry-')) throw retryableError('Gmail API: 503 backend error');
        return { changed: true, summary: 'watch renewed until 2026-12-07' };
      });
      const input: GmailWatchRenewalInput = {
        scope: SCOPE,
        retryEveryMs: 15 * MIN,
        retryForMs: HOUR,
        repeatEveryMs: HOUR,
      };
      await recordMonitorRun(ctx, 'gmailWatchRenewalWorkflow', 'gmail-watch-renewal', input, ['FTEGmailChannelDown firing', 'FTEGmailChannelDown resolved'], 'gmail-watch-renewal.json', 'One run of the Gmail watch renewal: the renewal fails after its activity retries, FTEGmailChannelDown fires and is delivered, a 15-minute timer, the retry succeeds, the alert resolved and delivered');
    },
  },
];

/**
 * The workflow id a Schedule gives a run (the schedule id and the run's time): the monitors run on Schedules
 * (src/starters/schedules.ts), which the test server lacks, so each monitor is recorded as one run started
 * the way a Schedule starts it. (A cron workflow would hand runs their last result, but the test server
 * closes cron runs as continued-as-new, which is not what a scheduled run's history holds.)
 */
async function scheduledRunId(env: TestWorkflowEnvironment, scheduleId: string): Promise<string> {
  const minute = Math.floor((await env.currentTimeMs()) / MIN) * MIN;
  return `${scheduleId}-${new Date(minute).toISOString().replace('.000Z', 'Z')}`;
}

/** Per-channel metrics of a healthy fte-api, as `channelMetrics` reports them. */
function channelMetrics(): Record<string, number> {
  const metrics: Record<string, number> = {};
  for (const channel of ['email', 'whatsapp', 'web_form']) {
    metrics[`requests/${channel}`] = 120;
    metrics[`errorRate/${channel}`] = 0.01;
    metrics[`p95LatencyMs/${channel}`] = 2_400;
    metrics[`escalationRate/${channel}`] = 0.05;
  }
  return metrics;
}

/** True once a workflow task completed after the last signal in the history: the signals were handled. */
function handledAfterLastSignal(history: History): boolean {
  const types = (history.events ?? []).map((e) => e.eventType);
  const lastSignal = types.lastIndexOf(EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED);
  return (
    lastSignal >= 0 && types.indexOf(EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, lastSignal) > lastSignal
  );
}

// ---------------------------------------------------------------------------------------------------
// Running the scenarios and writing the release
// ---------------------------------------------------------------------------------------------------

async function runScenario(
  scenario: Scenario,
  server: string,
  bundle: WorkflowBundleWithSourceMap,
  outDir: string,
): Promise<HistoryEntry[]> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: server } },
  });
  activeEnv = env;
  try {
    const namespace = env.namespace ?? 'default';
    await registerSearchAttributes(env.connection, namespace);
    const platform = new FakePlatform();
    const kept: { file: string; workflowId: string; runId: string; covers: string }[] = [];
    const monitorDelivery = {
      deliverMonitorAlerts: async ({ alerts }: DeliverMonitorAlertsInput): Promise<MonitorDeliveryReport> => {
        platform.monitorAlerts.push(...(alerts as Alert[]));
        return { delivered: [], skipped: [] };
      },
    };
    const ctx: ScenarioContext = {
      env,
      taskQueue: TASK_QUEUE,
      platform,
      async work(overrides, body) {
        const worker = await Worker.create({
          connection: env.nativeConnection,
          namespace,
          taskQueue: TASK_QUEUE,
          workflowBundle: bundle,
          activities: { ...platform.activities(), ...monitorDelivery, ...overrides },
          sinks: workflowTraceSinks(undefined),
        });
        await worker.runUntil(body);
      },
      keep(file, workflowId, runId, covers) {
        if (kept.some((k) => k.file === file)) throw new Error(`${scenario.name}: ${file} kept twice`);
        kept.push({ file, workflowId, runId, covers });
      },
    };
    await scenario.run(ctx);
    if (kept.length === 0) throw new Error(`${scenario.name} kept no history`);
    const entries: HistoryEntry[] = [];
    for (const k of kept) {
      const history = await env.client.workflow.getHandle(k.workflowId, k.runId).fetchHistory();
      const events = history.events ?? [];
      const first = events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name;
      const last = EventType[events.at(-1)?.eventType ?? 0] ?? '';
      if (!first || !CLOSING_EVENTS.includes(last))
        throw new Error(`${scenario.name}: ${k.file} is not a closed run (ends with ${last})`);
      const json = historyToJSON(history);
      await writeFile(`${outDir}${k.file}`, json);
      entries.push({
        file: k.file,
        workflowType: first,
        workflowId: k.workflowId,
        runId: k.runId,
        scenario: scenario.name,
        covers: k.covers,
        events: events.length,
        bytes: Buffer.byteLength(json),
        sha256: sha256(json),
      });
    }
    return entries;
  } finally {
    activeEnv = undefined;
    await env.teardown();
  }
}

const git = (...args: string[]) =>
  execFileSync('git', args, { cwd: projectRoot, encoding: 'utf8' }).trimEnd();

/**
 * The product's workflow bundle as of `rev`: the commit's src/ exported (git archive) into .data/ (inside
 * the project, so that its imports resolve to the project's node_modules) and bundled by the commit's own
 * buildWorkflowBundle (src/workflow-bundle.ts).
 */
async function bundleAt(rev: string): Promise<{ bundle: WorkflowBundleWithSourceMap; recordedFrom: string }> {
  const commit = git('rev-parse', '--verify', `${rev}^{commit}`);
  const subject = git('log', '-1', '--format=%s', commit);
  const dir = `${projectRoot}.data/record-histories/${commit}-${process.pid}/`;
  await mkdir(dir, { recursive: true });
  try {
    execFileSync('bash', ['-c', 'git archive "$1" src | tar -x -C "$2"', 'export', commit, dir], {
      cwd: projectRoot,
    });
    if (!existsSync(`${dir}src/workflow-bundle.ts`))
      throw new Error(`commit ${commit} has no src/workflow-bundle.ts to build its workflow bundle with`);
    const { buildWorkflowBundle } = (await import(`${dir}src/workflow-bundle.ts`)) as {
      buildWorkflowBundle(): Promise<WorkflowBundleWithSourceMap>;
    };
    return { bundle: await buildWorkflowBundle(), recordedFrom: `commit ${commit} (${subject})` };
  } finally {
    await rm(dir, { recursive: true, force: true });
    await rmdir(`${projectRoot}.data/record-histories`).catch(() => {}); // when no other recording uses it
  }
}

/** The working tree's bundle (productBundle), for trials: named by HEAD and the changed workflow sources. */
async function worktreeBundle(): Promise<{ bundle: WorkflowBundleWithSourceMap; recordedFrom: string }> {
  const changed = git('status', '--porcelain', '--', 'src')
    .split('\n')
    .filter(Boolean)
    .map((line) => line.slice(3));
  const head = git('rev-parse', 'HEAD');
  return {
    bundle: await productBundle(),
    recordedFrom: `the working tree at ${head}${changed.length ? `, changed: ${changed.join(', ')}` : ''}`,
  };
}

function usage(message?: string): never {
  if (message) console.error(`record.ts: ${message}`);
  console.error(
    'usage: npx tsx test/histories/record.ts <release> [--commit REV]   every scenario, from REV (HEAD), into test/histories/<release>/\n' +
      '       npx tsx test/histories/record.ts <release> --out DIR [--only a,b] [--commit REV | --worktree]   a trial outside test/histories/\n' +
      '       npx tsx test/histories/record.ts --list',
  );
  process.exit(2);
}

async function main(): Promise<void> {
  // Workers start and stop once per scenario, and some activities fail on purpose: only errors.
  Runtime.install({
    logger: new DefaultLogger((process.env.RECORD_LOG_LEVEL as 'INFO' | undefined) ?? 'ERROR'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
  });
  const args = process.argv.slice(2);
  if (args.includes('--list')) {
    for (const s of scenarios) console.log(s.name);
    return;
  }
  const option = (name: string) => {
    const i = args.indexOf(name);
    if (i < 0) return undefined;
    const value = args[i + 1];
    if (!value || value.startsWith('--')) usage(`${name} needs a value`);
    args.splice(i, 2);
    return value;
  };
  const out = option('--out');
  const only = option('--only')?.split(',');
  const commit = option('--commit') ?? 'HEAD';
  const worktree = args.includes('--worktree');
  if (worktree) args.splice(args.indexOf('--worktree'), 1);
  const [release, ...rest] = args;
  if (!release || rest.length) usage();
  if (!releaseNamePattern.test(release))
    usage(`"${release}" is not a release name (e.g. 2026-11-30, 2026-11-30b)`);
  if (only && !out) usage('--only makes a partial set: use it with --out, never for a release');
  if (worktree && !out) usage('a release is recorded from a commit: --worktree only with --out');
  const unknown = only?.filter((n) => !scenarios.some((s) => s.name === n)) ?? [];
  if (unknown.length) usage(`unknown scenario(s): ${unknown.join(', ')} (see --list)`);

  const target = out ? `${resolve(out)}${sep}` : `${historiesDir}${release}/`;
  if (out && target.startsWith(historiesDir))
    usage('--out must be outside test/histories/ (releases are made without it)');
  if (existsSync(target)) {
    console.error(
      `record.ts: ${target} already exists. Recorded histories are never re-recorded or overwritten: they are what ` +
        'replay checks running workflows against. Record a new release into a new folder.',
    );
    process.exit(1);
  }
  // Written into a hidden folder beside the target (the replay test skips hidden folders) and renamed into
  // place at the end: a failed run leaves no half release.
  const partial = `${dirname(target)}${sep}.${basename(target)}.partial-${process.pid}${sep}`;
  await mkdir(partial, { recursive: true });
  try {
    const server = execFileSync('bash', [`${historiesDir}../../scripts/temporal-test-server.sh`, 'path'], {
      encoding: 'utf8',
    }).trim();
    const { bundle, recordedFrom } = worktree ? await worktreeBundle() : await bundleAt(commit);
    console.log(`recording from ${recordedFrom}`);
    const histories: HistoryEntry[] = [];
    for (const scenario of scenarios.filter((s) => !only || only.includes(s.name))) {
      const started = Date.now();
      // A scenario that hangs (a call the test server never answers) ends the recording, leaving nothing.
      const watchdog = setTimeout(() => {
        console.error(
          `record.ts: ${scenario.name} did not finish within ${SCENARIO_LIMIT_MS / 1000} s; nothing recorded`,
        );
        rmSync(partial, { recursive: true, force: true });
        process.exit(1);
      }, SCENARIO_LIMIT_MS);
      const entries = await runScenario(scenario, server, bundle, partial);
      clearTimeout(watchdog);
      histories.push(...entries);
      const files = entries.map((e) => `${e.file} (${e.events} events, ${Math.round(e.bytes / 1024)} KiB)`);
      console.log(`${scenario.name}: ${files.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    }
    const manifest: ReleaseManifest = {
      release,
      recordedFrom,
      recordedAt: new Date().toISOString(),
      note: 'Recorded by test/histories/record.ts on the time-skipping test server with the activity fakes of the workflow tests. Never re-record or edit these files (test/histories/README.md).',
      histories,
    };
    await writeFile(`${partial}${MANIFEST_FILE}`, `${JSON.stringify(manifest, null, 2)}\n`);
    if (existsSync(target)) throw new Error(`${target} appeared while recording; not overwriting it`);
    await rename(partial, target);
    const total = histories.reduce((n, h) => n + h.bytes, 0);
    console.log(`recorded ${histories.length} histories (${Math.round(total / 1024)} KiB) into ${target}`);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    throw error;
  }
}

await main();
