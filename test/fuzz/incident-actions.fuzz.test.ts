import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowUpdateFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Worker } from '@temporalio/worker';
import proto from '@temporalio/proto';
import { runbookActivities } from '../../src/activities/runbooks.js';
import { peopleInRoles } from '../../src/domain/contacts.js';
import type { IncidentState } from '../../src/domain/incident.js';
import type { PostIncidentState } from '../../src/domain/post-incident.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import {
  alertsSignal,
  incidentActions,
  incidentStatusQuery,
  postIncidentActions,
  postIncidentStatusQuery,
} from '../../src/workflows/api.js';
import type { incidentWorkflow } from '../../src/workflows/incident.js';
import { postIncidentWorkflow } from '../../src/workflows/post-incident.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { contactsFile, runbooksDir } from '../helpers/paths.js';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { alert, productWorker, until } from '../helpers/workflows.js';

// Generated arguments for every Update and Signal of a running incident (incidentActions and the alerts
// Signal) and of a post-incident report (postIncidentActions), on the time-skipping server with the
// activity fakes (this is the workflows' own input handling). Each argument is built from a valid one with a
// defect the generator knows (a field missing, of the wrong type, blank, too long, an unknown key, an
// unknown step, task or follow-up, a person without the right role or not in the contacts file, no object
// at all, deeply nested values, odd unicode), so every one must be refused: an Update answers with a
// WorkflowUpdateFailedError that says why, a Signal is recorded as a `rejected-attempt` and counted in
// `rejectedAttempts`; nothing else changes, the workflow never fails a task, keeps its history bounded
// (continuing as new), and takes valid actions at the end.
const BATCHES = Number(process.env.FUZZ_BATCHES ?? 220);
const REPORT_BATCHES = Number(process.env.FUZZ_REPORT_BATCHES ?? 80);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2_147_483_647);
/** Low, so that the incident continues as new during the run (the default is 8,000 events). */
const HISTORY_LIMIT = 600;
const RUNBOOK = 'whatsapp-channel-down';

let env: TestWorkflowEnvironment;
let worker: Worker;
let taskQueue: string;
let running: Promise<void>;
/** Rejects once the worker stops: a workflow that takes the worker down fails the test at once. */
let workerStopped: Promise<never>;
const platform = new FakePlatform();

beforeAll(async () => {
  // The dev server, not the time-skipping one: nothing here waits on a timer, and the test server's
  // continue-as-new is not atomic (temporalio/sdk-java#1538): Signals sent while the incident continues as new
  // were lost there, or the next run never answered a query. The real server loses none, which is what counts.
  env = await devServerEnv();
  // The webhook is down: restart-processor waits for approval, and the runbook's manual tasks are open.
  platform.status = { webhook: 'down' };
  ({ worker, taskQueue } = await productWorker(env, platform.activities()));
  running = worker.run();
  workerStopped = running.then(
    () => Promise.reject(new Error('the worker stopped')),
    (error: unknown) => Promise.reject(new Error(`the worker failed: ${String(error)}`)),
  );
  workerStopped.catch(() => {});
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

// ---------------------------------------------------------------------------------------------------------
// Generated arguments
// ---------------------------------------------------------------------------------------------------------

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** What the generator knows about the running workflow: who may do what, which steps and tasks exist. */
interface Knowledge {
  people: string[];
  approvers: string[];
  steps: string[];
  tasks: string[];
  followUps: string[];
}

type Field =
  | { kind: 'person' | 'approver' | 'contact'; optional?: boolean }
  | { kind: 'text'; max: number }
  | { kind: 'optText'; max: number }
  | { kind: 'optBool' | 'url' | 'datetime' }
  | { kind: 'step' | 'task' | 'followUp' };

const INCIDENT_ACTIONS: Record<keyof typeof incidentActions, Record<string, Field>> = {
  acknowledge: { by: { kind: 'person' } },
  approve: { step: { kind: 'step' }, by: { kind: 'approver' }, reason: { kind: 'optText', max: 2000 } },
  reject: { step: { kind: 'step' }, by: { kind: 'approver' }, reason: { kind: 'text', max: 2000 } },
  resolve: {
    by: { kind: 'person' },
    summary: { kind: 'optText', max: 2000 },
    newFailureMode: { kind: 'optBool' },
  },
  escalate: { by: { kind: 'person' }, reason: { kind: 'text', max: 2000 } },
  addNote: { by: { kind: 'person' }, text: { kind: 'text', max: 4000 } },
  completeTask: { task: { kind: 'task' }, by: { kind: 'person' } },
  cancel: { by: { kind: 'contact' }, reason: { kind: 'text', max: 500 } },
};
const REPORT_ACTIONS: Record<keyof typeof postIncidentActions, Record<string, Field>> = {
  submitReport: {
    by: { kind: 'person' },
    rootCause: { kind: 'text', max: 4000 },
    link: { kind: 'url' },
    noFollowUps: { kind: 'optBool' },
  },
  addFollowUp: {
    title: { kind: 'text', max: 300 },
    owner: { kind: 'person' },
    dueAt: { kind: 'datetime' },
    by: { kind: 'person', optional: true },
  },
  completeFollowUp: { id: { kind: 'followUp' }, by: { kind: 'person' } },
  markRunbookUpdated: { by: { kind: 'person' }, ref: { kind: 'text', max: 500 } },
};

const oddText = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 30 }),
  fc.constantFrom(
    '\u0000',
    '\u202e',
    '🔥🔥',
    'ǅ',
    '\ud800',
    '\udfff',
    'e\u0301',
    '${{scope}}',
    '{{finding:x}}',
    '<script>',
    "'; DROP TABLE incidents; --",
    '\\u0000',
  ),
);
/** Blank once trimmed (the person and text fields trim): unicode spaces included. */
const blank = fc.constantFrom('', ' ', '\t\n', '\u00a0', '\u2003', '\ufeff', ' \u3000 ', '\r\n\r\n');
const nest = (depth: number, leaf: Json, asMap: boolean): Json => {
  let v = leaf;
  for (let i = 0; i < depth; i++) v = asMap ? { a: v } : [v];
  return v;
};
const deep = fc
  .tuple(fc.integer({ min: 20, max: 1500 }), fc.boolean())
  .map(([d, asMap]) => nest(d, 'alice', asMap));
/** Any JSON value that is not a string. */
const notString: fc.Arbitrary<Json> = fc.oneof(
  fc.constantFrom<Json>(null, true, false, 0, -1, 1e21, [], {}, ['alice'], { by: 'alice' }),
  fc.jsonValue({ maxDepth: 3 }).filter((v) => typeof v !== 'string') as fc.Arbitrary<Json>,
  deep,
);
/** A string longer than `max` after trimming: plain, or odd unicode, up to a few hundred KiB. */
const tooLong = (max: number) =>
  fc.oneof(
    fc.integer({ min: max + 1, max: max + 50 }).map((n) => 'x'.repeat(n)),
    // zod counts code points: a fire is one, however many UTF-16 units it takes.
    fc.integer({ min: max + 1, max: 150_000 }).map((n) => '🔥'.repeat(n)),
    oddText.map((s) => `${s}${'z'.repeat(max + 1)}`),
  );
/** A plausible name that is none of `names` once trimmed. */
const otherName = (names: string[]) =>
  fc
    .oneof(
      fc.constantFrom(
        'Alice',
        'ALICE',
        'erin\u200b',
        'ｅrin',
        'alice bob',
        'alice,bob',
        'nobody',
        'root',
        'system',
        'temporal',
        '__proto__',
        'constructor',
        'toString',
        'on-call',
        'channel',
        '*',
        // Unpaired surrogates: JSON carries them (as \ud800), and a refusal that quotes them must stay text.
        '\ud800',
        'erin\udfff',
        '\udc00alice',
      ),
      fc.stringMatching(/^[a-z][a-z0-9._-]{0,20}$/),
      oddText,
    )
    .filter((s) => s.trim().length > 0 && s.trim().length <= 100 && !names.includes(s.trim()));

function validValue(field: Field, k: Knowledge): fc.Arbitrary<Json | undefined> {
  switch (field.kind) {
    case 'person':
      return fc.constantFrom(...k.people);
    case 'approver':
      return fc.constantFrom(...k.approvers);
    case 'contact':
      return fc.constantFrom(...k.people);
    case 'text':
      return fc.oneof(
        fc.constant('the database is fine, a DBA is on it'),
        oddText.filter((s) => s.trim().length > 0 && s.trim().length <= field.max),
      );
    case 'optText':
      return fc.option(oddText, { nil: undefined });
    case 'optBool':
      return fc.option(fc.boolean(), { nil: undefined });
    case 'url':
      return fc.option(fc.constant('https://wiki.example.test/postmortems/1'), { nil: undefined });
    case 'datetime':
      return fc.option(fc.constant('2031-01-01T00:00:00Z'), { nil: undefined });
    case 'step':
      return fc.constantFrom(...k.steps);
    case 'task':
      return fc.constantFrom(...k.tasks);
    case 'followUp':
      return fc.constantFrom(...k.followUps);
  }
}

/** Values that certainly make the field invalid, each with a name for the record. */
function defectsOf(field: Field, k: Knowledge): fc.Arbitrary<[string, Json | undefined]>[] {
  const tag = (name: string, a: fc.Arbitrary<Json | undefined>) =>
    a.map((v) => [name, v] as [string, Json | undefined]);
  const missing = tag('missing', fc.constant(undefined));
  switch (field.kind) {
    case 'person':
    case 'approver':
    case 'contact': {
      const out = [tag('not a string', notString), tag('blank', blank), tag('too long', tooLong(100))];
      if (!field.optional) out.push(missing);
      if (field.kind === 'approver') out.push(tag('not an approver', otherName(k.approvers)));
      if (field.kind === 'contact') out.push(tag('not in the contacts', otherName(k.people)));
      return out;
    }
    case 'text':
      return [
        missing,
        tag('not a string', notString),
        tag('blank', blank),
        tag('too long', tooLong(field.max)),
      ];
    case 'optText':
      return [tag('not a string', notString), tag('too long', tooLong(field.max))];
    case 'optBool':
      return [
        tag(
          'not a boolean',
          fc.oneof(
            fc.constantFrom<Json>('true', 'false', 0, 1, null, [], {}, 'yes'),
            fc.jsonValue().filter((v) => typeof v !== 'boolean') as fc.Arbitrary<Json>,
          ),
        ),
      ];
    case 'url':
      return [
        tag('not a string', notString),
        tag('not a URL', fc.constantFrom('not a url', 'http//x', '', '//x', 'javascript', ' ')),
      ];
    case 'datetime':
      return [
        tag('not a string', notString),
        tag(
          'not a date-time',
          fc.constantFrom(
            'yesterday',
            '2031-13-01T00:00:00Z',
            '2031-01-01',
            '2031-01-01T00:00:00',
            '',
            'now',
          ),
        ),
      ];
    case 'step':
    case 'task':
    case 'followUp': {
      const known = field.kind === 'step' ? k.steps : field.kind === 'task' ? k.tasks : k.followUps;
      return [
        missing,
        tag('not a string', notString),
        tag('empty', fc.constant('')),
        tag(
          `unknown ${field.kind}`,
          fc
            .oneof(
              otherName(known),
              fc.constantFrom(...known.map((id) => ` ${id}`), ...known.map((id) => id.toUpperCase())),
              tooLong(200),
            )
            .filter((s) => !known.includes(s)),
        ),
      ];
    }
  }
}

/** One generated attempt: an action's name, how it is sent, its argument and what is wrong with it. */
interface Attempt {
  name: string;
  via: 'update' | 'signal';
  raw: Json | undefined;
  defect: string;
}

function attemptsFor(
  actions: Record<string, Record<string, Field>>,
  k: Knowledge,
  extra: fc.Arbitrary<Attempt>[] = [],
): fc.Arbitrary<Attempt> {
  const perAction = Object.entries(actions).map(([name, fields]) => {
    const base = fc.record(
      Object.fromEntries(Object.entries(fields).map(([f, field]) => [f, validValue(field, k)])),
    ) as fc.Arbitrary<Record<string, Json | undefined>>;
    const withField = (f: string, value: Json | undefined) => (b: Record<string, Json | undefined>) => {
      const copy: Record<string, Json | undefined> = { ...b, [f]: value };
      return copy;
    };
    const fieldDefects = Object.entries(fields).flatMap(([f, field]) =>
      defectsOf(field, k).map((d) =>
        fc.tuple(base, d).map(([b, [what, value]]) => ({
          defect: `${f}: ${what}`,
          raw: withField(f, value)(b),
        })),
      ),
    );
    const keys = Object.keys(fields);
    const shapeDefects = [
      fc
        .tuple(
          base,
          fc.oneof(
            fc.constantFrom('__proto__', 'constructor', 'prototype', 'BY', 'by ', 'Step', 'alerts', ''),
            fc.string({ maxLength: 20 }),
            tooLong(1000),
          ),
          fc.jsonValue({ maxDepth: 2 }),
        )
        .filter(([, key]) => !keys.includes(key))
        .map(([b, key, v]) => ({ defect: 'an unknown key', raw: { ...b, [key]: v as Json } })),
      fc
        .oneof(
          fc.constantFrom<Json | undefined>(undefined, null, 0, '', 'alice', true, [], [[]]),
          fc
            .jsonValue({ maxDepth: 3 })
            .filter((v) => v === null || typeof v !== 'object' || Array.isArray(v)),
          base.map((b) => [b] as Json),
          deep,
        )
        .map((raw) => ({ defect: 'no object', raw: raw as Json | undefined })),
    ];
    return fc
      .tuple(
        fc.oneof(...fieldDefects, ...shapeDefects),
        fc.constantFrom<'update' | 'signal'>('update', 'signal'),
      )
      .map(([{ defect, raw }, via]): Attempt => ({ name, via, raw: clean(raw), defect }));
  });
  return fc.oneof(...perAction, ...extra);
}

/** A hand-written attempt (an example every run tries). */
const attemptOf = (via: 'update' | 'signal', name: string, raw: Json): Attempt => ({
  name,
  via,
  raw,
  defect: 'an unpaired surrogate',
});

/** The argument as the workflow sees it: JSON, so a field that is undefined is no field at all. */
function clean(raw: Json | undefined | Record<string, Json | undefined>): Json | undefined {
  return raw === undefined ? undefined : (JSON.parse(JSON.stringify(raw)) as Json);
}

/** Invalid alert deliveries: the alerts Signal is the receiver's and the monitors' way in. */
function alertDefects(): fc.Arbitrary<Attempt> {
  const good = alert('FTEWhatsAppChannelDown', 'fuzz-fp') as unknown as Record<string, Json>;
  const wrongAlert: fc.Arbitrary<[string, Json]> = fc.oneof(
    fc.constantFrom('fingerprint', 'status', 'labels', 'startsAt').map((k): [string, Json] => {
      const copy = { ...good };
      delete copy[k];
      return [`alert without ${k}`, copy];
    }),
    fc.constantFrom<[string, Json]>(
      ['empty fingerprint', { ...good, fingerprint: '' }],
      ['fingerprint too long', { ...good, fingerprint: 'f'.repeat(201) }],
      ['status pending', { ...good, status: 'pending' }],
      ['label not a string', { ...good, labels: { alertname: 7 } }],
      ['labels a list', { ...good, labels: ['alertname'] }],
      ['annotation not a string', { ...good, annotations: { summary: null } }],
      ['startsAt a number', { ...good, startsAt: 17 }],
      ['endsAt an object', { ...good, endsAt: {} }],
    ),
    notString.map((v): [string, Json] => ['an alert that is no object', v]),
  );
  return fc
    .oneof(
      wrongAlert.map(([d, a]) => ({ defect: d, raw: { alerts: [a] } as Json })),
      wrongAlert.map(([d, a]) => ({
        defect: `${d} among valid ones`,
        raw: { alerts: [good, a, good] } as Json,
      })),
      fc.constant({ defect: '501 alerts', raw: { alerts: Array.from({ length: 501 }, () => good) } as Json }),
      notString
        .filter((v) => !(Array.isArray(v) && v.length === 0))
        .map((v) => ({ defect: 'alerts not a list of alerts', raw: { alerts: v } as Json })),
      fc.constant({ defect: 'no alerts', raw: {} as Json }),
      fc.jsonValue().map((v) => ({ defect: 'an unknown key', raw: { alerts: [], extra: v } as Json })),
      fc
        .oneof(fc.constantFrom<Json | undefined>(undefined, null, 'alerts', [good]), deep)
        .map((raw) => ({ defect: 'no object', raw: raw as Json })),
    )
    .map(({ defect, raw }) => ({ name: alertsSignal.name, via: 'signal' as const, raw: clean(raw), defect }));
}

// ---------------------------------------------------------------------------------------------------------
// Sending and judging
// ---------------------------------------------------------------------------------------------------------

const describeAttempt = (a: Attempt) =>
  `${a.via} ${a.name} (${a.defect}): ${(JSON.stringify(a.raw) ?? 'undefined').slice(0, 200)}`;

/** Who a refused Signal's record names: what the argument says, bounded (human-actions.ts), else system. */
function describeClaim(by: Json | undefined): string {
  try {
    return String(by).slice(0, 100);
  } catch {
    return '(an object)';
  }
}

function claimed(raw: Json | undefined): string {
  return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && 'by' in raw
    ? describeClaim(raw.by)
    : 'system';
}

/** A refusal a person can act on: non-empty, bounded, no stack trace, no file of the worker. */
function expectClearMessage(message: string, what: string): void {
  if (message.trim().length === 0) throw new Error(`${what}: refused without a message`);
  if (message.length > 1500) throw new Error(`${what}: a refusal of ${message.length} characters`);
  if (/\n\s+at .+:\d+|node_modules|\/src\/|webpack|\.ts:\d+/.test(message)) {
    throw new Error(`${what}: the refusal shows code: ${message.slice(0, 500)}`);
  }
}

/** The answer to a call, unless the worker stops or nothing answers within a minute. */
async function answered<T>(work: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within 60 s`)), 60_000);
  });
  try {
    return await Promise.race([work, late, workerStopped]);
  } finally {
    clearTimeout(timer);
  }
}

async function sendAll(handle: WorkflowHandle, attempts: Attempt[]): Promise<Attempt[]> {
  const signalled: Attempt[] = [];
  for (const a of attempts) {
    if (a.via === 'update') {
      const answer = await answered(handle.executeUpdate(a.name, { args: [a.raw] }), describeAttempt(a)).then(
        (value: unknown) => ({ ok: true as const, value }),
        (error: unknown) => ({ ok: false as const, error }),
      );
      if (answer.ok) throw new Error(`${describeAttempt(a)}: accepted, answered ${String(answer.value)}`);
      if (!(answer.error instanceof WorkflowUpdateFailedError)) {
        throw new Error(`${describeAttempt(a)}: failed with ${String(answer.error)}`, {
          cause: answer.error,
        });
      }
      // The validator's refusal, as the caller gets it: a failure with the message, no stack of the worker.
      const cause = answer.error.cause;
      if (!(cause instanceof ApplicationFailure))
        throw new Error(`${describeAttempt(a)}: refused with ${String(cause)}`);
      expectClearMessage(cause.message, describeAttempt(a));
      if (/\/src\/|node_modules|webpack|\.[jt]s:\d+/.test(cause.stack ?? '')) {
        throw new Error(
          `${describeAttempt(a)}: the refusal carries the worker's stack: ${cause.stack?.slice(0, 300)}`,
        );
      }
    } else {
      await answered(handle.signal(a.name, a.raw), describeAttempt(a));
      signalled.push(a);
    }
  }
  return signalled;
}

/** The state once `count` refused attempts are recorded (Signals are handled after they are sent). */
async function recorded<S extends { rejectedAttempts: number }>(
  read: () => Promise<S>,
  count: number,
): Promise<S> {
  const deadline = Date.now() + 90_000;
  for (;;) {
    const s = await answered(read(), 'the status query');
    if (s.rejectedAttempts >= count || Date.now() > deadline) {
      if (s.rejectedAttempts < count) {
        throw new Error(`${s.rejectedAttempts} refused attempts recorded after 90 s, ${count} expected`);
      }
      return s;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * Sends one batch of invalid attempts and checks what a person would see: each refused Signal counted and
 * recorded in order, the workflow's facts unchanged, no other timeline entry.
 */
async function refuseBatch<
  S extends { rejectedAttempts: number; timeline: { type: string; text: string; by: string }[] },
>(
  handle: WorkflowHandle,
  read: () => Promise<S>,
  facts: (s: S) => unknown,
  batch: Attempt[],
): Promise<{ after: S; signalled: number }> {
  const before = await read();
  const signalled = await sendAll(handle, batch);
  const after = await recorded(read, before.rejectedAttempts + signalled.length);
  expect(after.rejectedAttempts).toBe(before.rejectedAttempts + signalled.length);
  expectRecorded(after.timeline, signalled);
  expect(facts(after)).toEqual(facts(before));
  expect(newEntries(before.timeline, after.timeline)).toEqual([]);
  return { after, signalled: signalled.length };
}

/** Every refused Signal is the next `rejected-attempt` entry, in order, naming the action and the sender. */
function expectRecorded(timeline: { type: string; text: string; by: string }[], signalled: Attempt[]): void {
  if (signalled.length === 0) return;
  const refused = timeline.filter((t) => t.type === 'rejected-attempt').slice(-signalled.length);
  expect(refused).toHaveLength(signalled.length);
  signalled.forEach((a, i) => {
    const entry = refused[i];
    const what = describeAttempt(a);
    if (!entry?.text.startsWith(`${a.name} refused: `) || entry.text.length <= `${a.name} refused: `.length) {
      throw new Error(`${what}: recorded as ${JSON.stringify(entry)?.slice(0, 300)}`);
    }
    expectClearMessage(entry.text, what);
    expect(entry.by, what).toBe(claimed(a.raw));
  });
}

/** What refused input must never change, timeline aside. */
function incidentFacts(s: IncidentState) {
  return {
    status: s.status,
    severity: s.severity,
    waitingFor: s.waitingFor,
    steps: s.steps,
    tasks: s.tasks,
    awaitingApproval: s.awaitingApproval,
    acknowledgedAt: s.acknowledgedAt,
    acknowledgedBy: s.acknowledgedBy,
    resolvedAt: s.resolvedAt,
    resolvedBy: s.resolvedBy,
    resolutionSummary: s.resolutionSummary,
    newFailureMode: s.newFailureMode,
    escalationLevel: s.escalationLevel,
    ackLevel: s.ackLevel,
    alerts: s.alerts,
    cancelled: s.cancelled,
  };
}

function reportFacts(s: PostIncidentState) {
  return {
    report: s.report,
    reportStatus: s.reportStatus,
    followUps: s.followUps,
    runbookUpdate: s.runbookUpdate,
    completedAt: s.completedAt,
    missing: s.missing,
  };
}

/** Entries other than refused attempts that appeared between two readings of a timeline. */
function newEntries(before: { type: string }[], after: { type: string }[]): unknown[] {
  const known = new Set(before.map((t) => JSON.stringify(t)));
  return after.filter((t) => t.type !== 'rejected-attempt' && !known.has(JSON.stringify(t)));
}

const UNHANDLED_COMMAND =
  proto.temporal.api.enums.v1.WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND;

/**
 * No workflow task of any run failed: a handler that threw would show here (and the workflow would be stuck).
 * UNHANDLED_COMMAND is the server's, not the workflow's: a Signal arrived while the run was completing (to
 * continue as new), so the task is run again with the Signal in it.
 */
async function expectNoTaskFailures(workflowId: string, runIds: Iterable<string>): Promise<void> {
  for (const runId of runIds) {
    const history = await env.client.workflow.getHandle(workflowId, runId).fetchHistory();
    const failed = (history.events ?? []).filter(
      (e) =>
        e.workflowTaskFailedEventAttributes &&
        e.workflowTaskFailedEventAttributes.cause !== UNHANDLED_COMMAND,
    );
    expect(failed.map((e) => JSON.stringify(e.workflowTaskFailedEventAttributes))).toEqual([]);
  }
}

/**
 * A Signal's argument stays in the history (a refused Update's does not). Up to this size here: a few big
 * ones are enough, and a history of many megabytes no longer fits the 4 MiB gRPC messages the test server and
 * clients use (the post-incident workflow, which never continues as new, got there with unbounded sizes).
 */
const MAX_SIGNAL_BYTES = 160_000;

/** Batches of attempts; a counterexample prints each attempt shortened (some are hundreds of KiB). */
const batches = (a: fc.Arbitrary<Attempt>) =>
  fc.array(
    a
      .filter((x) => x.via === 'update' || Buffer.byteLength(JSON.stringify(x.raw) ?? '') <= MAX_SIGNAL_BYTES)
      .map((x) => Object.assign(x, { [fc.toStringMethod]: () => describeAttempt(x) })),
    { minLength: 1, maxLength: 25 },
  );

describe('a running incident under generated Updates and Signals', () => {
  it(`refuses ${BATCHES} batches of invalid arguments clearly, records refused Signals, and stays correct`, async () => {
    const workflowId = incidentWorkflowId(RUNBOOK, `ns-${taskQueue}`);
    await env.client.workflow.signalWithStart<typeof incidentWorkflow, [{ alerts: unknown[] }]>(
      'incidentWorkflow',
      {
        taskQueue,
        workflowId,
        args: [
          {
            trigger: { runbookId: RUNBOOK, scope: `ns-${taskQueue}`, source: 'alertmanager', alerts: [] },
            historyLimit: HISTORY_LIMIT,
          },
        ],
        signal: alertsSignal,
        signalArgs: [{ alerts: [alert('FTEWhatsAppChannelDown', 'fuzz-open')] }],
      },
    );
    const handle = env.client.workflow.getHandle(workflowId);
    const read = () => handle.query(incidentStatusQuery);
    const waiting = await until(
      read,
      (s) => s.awaitingApproval.length > 0 && s.tasks.length > 0,
      'the approval request and the manual tasks',
    );
    const { runbook, contacts } = await runbookActivities({ runbooksDir, contactsFile }).loadRunbook({
      runbookId: RUNBOOK,
    });
    const step = waiting.awaitingApproval[0] as string;
    const knowledge: Knowledge = {
      people: contacts.people.map((p) => p.name),
      approvers: peopleInRoles(contacts, runbook.steps.find((s) => s.id === step)?.approvers ?? []),
      steps: runbook.steps.map((s) => s.id),
      tasks: waiting.tasks.map((t) => t.id),
      followUps: [],
    };
    expect(knowledge.approvers.length).toBeGreaterThan(0);
    // Every step but the waiting one is not waiting: approving or rejecting it is refused whoever asks.
    const otherSteps = knowledge.steps.filter((id) => id !== step);
    const notWaiting: fc.Arbitrary<Attempt>[] = otherSteps.length
      ? [
          fc
            .tuple(
              fc.constantFrom('approve', 'reject'),
              fc.constantFrom(...otherSteps),
              fc.constantFrom(...knowledge.approvers),
              fc.constantFrom<'update' | 'signal'>('update', 'signal'),
            )
            .map(([name, s, by, via]) => ({
              name,
              via,
              raw: { step: s, by, reason: 'not waiting' },
              defect: 'a step that is not waiting',
            })),
        ]
      : [];
    const attempt = attemptsFor(INCIDENT_ACTIONS, { ...knowledge, steps: [step] }, [
      alertDefects(),
      alertDefects(),
      ...notWaiting,
    ]);

    const runIds = new Set<string>();
    let signals = 0;
    let updates = 0;
    let maxHistory = 0;
    const started = Date.now();
    await fc.assert(
      fc.asyncProperty(batches(attempt), async (batch) => {
        const sent = await refuseBatch(handle, read, incidentFacts, batch);
        signals += sent.signalled;
        updates += batch.length - sent.signalled;
        expect(sent.after.timeline.length).toBeLessThanOrEqual(500);
        const d = await handle.describe();
        runIds.add(d.runId);
        maxHistory = Math.max(maxHistory, d.historyLength);
        expect(d.status.name).toBe('RUNNING');
      }),
      {
        numRuns: BATCHES,
        seed,
        endOnFailure: true,
        // Always tried first: unpaired surrogates that a refusal quotes back.
        examples: [
          [
            [
              attemptOf('update', 'approve', { step: '\ud800', by: 'alice' }),
              attemptOf('update', 'approve', { step, by: '\udc00' }),
              attemptOf('update', 'completeTask', { task: '\udfff', by: 'erin' }),
              attemptOf('update', 'cancel', { by: '\ud800', reason: 'x' }),
              attemptOf('update', 'acknowledge', { by: 'alice', '\ud83d': 1 }),
              attemptOf('signal', 'approve', { step: '\ud800', by: 'alice' }),
            ],
          ],
        ],
      },
    );
    const fuzzMs = Date.now() - started;

    // Every refused Signal counted, across every continue-as-new.
    const end = await read();
    expect(end.rejectedAttempts).toBe(signals);
    // The history stayed bounded: the incident continued as new instead of growing.
    expect(maxHistory).toBeLessThan(HISTORY_LIMIT + 400);

    // Valid actions still work.
    expect(
      await handle.executeUpdate(incidentActions.acknowledge.update, {
        args: [{ by: knowledge.people[0] ?? 'alice' }],
      }),
    ).toMatch(/acknowledged/);
    expect(
      await handle.executeUpdate(incidentActions.completeTask.update, {
        args: [{ task: knowledge.tasks[0] ?? '', by: 'erin' }],
      }),
    ).toMatch(/done/);
    expect(
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step, by: knowledge.approvers[0] ?? '' }],
      }),
    ).toMatch(/approved step/);
    await until(
      read,
      (s) => s.steps.find((x) => x.id === step)?.status !== 'awaiting-approval',
      'the approved step to leave the approval wait',
    );
    expect(
      await handle.executeUpdate(incidentActions.resolve.update, {
        args: [{ by: 'alice', summary: 'fuzz over' }],
      }),
    ).toMatch(/resolving/);
    const outcome = (await handle.result()) as { resolvedBy: string; postIncidentWorkflowId?: string };
    expect(outcome.resolvedBy).toBe('alice');
    const final = await read();
    expect(final.status).toBe('Resolved');
    expect(final.rejectedAttempts).toBe(signals);
    runIds.add((await handle.describe()).runId);
    await expectNoTaskFailures(workflowId, runIds);
    if (outcome.postIncidentWorkflowId) {
      await env.client.workflow.getHandle(outcome.postIncidentWorkflowId).terminate('fuzz test done');
    }
    console.log(
      `incident actions fuzz (seed ${seed}): ${updates} Updates and ${signals} Signals refused in ${fuzzMs} ms; ` +
        `${runIds.size} run(s) (continued as new ${runIds.size - 1} time(s)), longest history ${maxHistory} events`,
    );
    expect(runIds.size).toBeGreaterThan(1);
  }, 300_000);
});

describe('a post-incident report under generated Updates and Signals', () => {
  it(`refuses ${REPORT_BATCHES} batches of invalid arguments and completes with valid ones`, async () => {
    const handle = await env.client.workflow.start(postIncidentWorkflow, {
      taskQueue,
      workflowId: uniqueName('post-incident-fuzz'),
      args: [
        {
          incidentId: 'incident-all-channels-down--fuzz',
          occurrence: 'fuzz-occurrence',
          title: 'All channels down',
          severity: 'P1',
          runbookId: 'all-channels-down',
          team: 'platform',
          resolvedAt: new Date(await env.currentTimeMs()).toISOString(),
          reportOwner: 'alice',
          runbookUpdateRequired: true,
        },
      ],
    });
    const read = () => handle.query(postIncidentStatusQuery);
    await until(read, (s) => s.timeline.length > 0, 'the report workflow to start');
    const fu = await handle.executeUpdate(postIncidentActions.addFollowUp.update, {
      args: [{ title: 'Alert on pool saturation', owner: 'carol' }],
    });
    const knowledge: Knowledge = {
      people: ['alice', 'bob', 'carol', 'dave', 'erin', 'frank'],
      approvers: [],
      steps: [],
      tasks: [],
      followUps: [fu],
    };
    // With a follow-up open, a report that says none is needed contradicts it.
    const contradiction = fc.constantFrom<'update' | 'signal'>('update', 'signal').map((via): Attempt => ({
      name: 'submitReport',
      via,
      raw: { by: 'alice', rootCause: 'a full disk', noFollowUps: true },
      defect: 'noFollowUps with a follow-up open',
    }));
    const attempt = attemptsFor(REPORT_ACTIONS, knowledge, [contradiction]);
    let signals = 0;
    let updates = 0;
    await fc.assert(
      fc.asyncProperty(batches(attempt), async (batch) => {
        const { signalled } = await refuseBatch(handle, read, reportFacts, batch);
        signals += signalled;
        updates += batch.length - signalled;
        expect((await handle.describe()).status.name).toBe('RUNNING');
      }),
      {
        numRuns: REPORT_BATCHES,
        seed,
        endOnFailure: true,
        // Always tried first: a refusal short enough for protobufjs's own UTF-8 encoder, quoting a surrogate.
        examples: [
          [
            [
              attemptOf('update', 'completeFollowUp', { id: '\ud800', by: 'alice' }),
              attemptOf('update', 'completeFollowUp', { id: '\udc00', by: 'bob' }),
              attemptOf('signal', 'completeFollowUp', { id: '\ud800', by: 'alice' }),
            ],
          ],
        ],
      },
    );

    await handle.executeUpdate(postIncidentActions.submitReport.update, {
      args: [{ by: 'alice', rootCause: 'the pool was exhausted by idle connections' }],
    });
    await handle.executeUpdate(postIncidentActions.completeFollowUp.update, {
      args: [{ id: fu, by: 'carol' }],
    });
    await handle.executeUpdate(postIncidentActions.markRunbookUpdated.update, {
      args: [{ by: 'alice', ref: 'runbooks/all-channels-down.yaml' }],
    });
    const final = await handle.result();
    expect(final.completedAt).toBeDefined();
    expect(final.rejectedAttempts).toBe(signals);
    await expectNoTaskFailures(handle.workflowId, [(await handle.describe()).runId]);
    console.log(
      `post-incident actions fuzz (seed ${seed}): ${updates} Updates and ${signals} Signals refused`,
    );
  }, 300_000);
});
