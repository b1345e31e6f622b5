import * as wf from '@temporalio/workflow';
import type { CoreActivities, LedgerEvent, NotificationKind } from '../domain/activity-contract.js';
import {
  addFollowUpArgs,
  completeFollowUpArgs,
  markRunbookUpdatedArgs,
  parseArgs,
  submitReportArgs,
} from '../domain/commands.js';
import {
  isPostIncidentComplete,
  OVERDUE_REMINDER_EVERY_MS,
  postIncidentMissing,
  REPORT_DUE_MS,
  REPORT_REMINDERS_MS,
  type CompletionRules,
  type PostIncidentInput,
  type PostIncidentState,
} from '../domain/post-incident.js';
import {
  IncidentRunbook,
  IncidentSeverity,
  IncidentTeam,
  postIncidentActions,
  postIncidentStatusQuery,
  ReportDueAt,
  ReportStatus,
} from './api.js';
import { registerHumanActions } from './human-actions.js';
import type { Identity } from '../domain/identity.js';
import { ledgerActor, timelineEntry } from '../domain/incident.js';

const notifier = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});

// As the incident's: the ledger may be the very database that is down, so writes retry for a while in the
// background and never hold the report up; a write that still fails is recorded in the timeline.
const ledger = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 20, initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

/**
 * Ledger writes and the rule that a report needs a follow-up or the explicit statement that none is needed.
 * Reports that started before it replay as they ran; from this point on they follow it too.
 */
export const LEDGER_AND_FOLLOW_UP_RULE_PATCH = 'post-incident-ledger-and-explicit-follow-ups';

const errorMessage = (error: unknown): string => {
  if (error instanceof wf.ActivityFailure && error.cause) return errorMessage(error.cause);
  return error instanceof Error ? error.message : String(error);
};
const iso = (ms: number) => new Date(ms).toISOString();

/**
 * The seed's post-incident rule for P1/P2: a report with the root cause within 24 hours of resolution,
 * follow-up tickets, and a runbook update when the failure mode was new. Reminds, then marks Overdue and
 * tells the manager; completes when everything is done.
 */
export async function postIncidentWorkflow(input: PostIncidentInput): Promise<PostIncidentState> {
  const info = wf.workflowInfo();
  // The report's events belong to the incident's story: its id and occurrence. Event ids start with this
  // workflow's own first run id, so they never collide with the incident's (`<its first run id>:<n>`).
  const occurrence = input.occurrence ?? info.parent?.runId ?? info.firstExecutionRunId;
  const resolvedAtMs = Date.parse(input.resolvedAt);
  // The contacts verify signed actions; they are not part of the report's state (nor of its status query).
  const { contacts, ...fields } = input;
  const state: PostIncidentState = {
    ...fields,
    reportDueAt: iso(resolvedAtMs + REPORT_DUE_MS),
    reportStatus: 'Pending',
    nextReportReminderAt: iso(resolvedAtMs + (REPORT_REMINDERS_MS[0] ?? REPORT_DUE_MS)),
    followUps: [],
    timeline: [],
    rejectedAttempts: 0,
  };
  let followUpSeq = 0;
  let ledgerSeq = 0;
  let version = 0;
  const pending: Promise<unknown>[] = [];
  const now = () => new Date().toISOString();

  function record(type: string, text: string, by?: string | Identity): void {
    state.timeline.push(timelineEntry(now(), type, text, by));
    version++;
  }

  const rules = (): CompletionRules => ({
    followUpsOrStatement: wf.patched(LEDGER_AND_FOLLOW_UP_RULE_PATCH),
  });

  function toLedger(type: string, data: LedgerEvent['data'] = {}, by?: string | Identity): void {
    if (!wf.patched(LEDGER_AND_FOLLOW_UP_RULE_PATCH)) return;
    const actor = ledgerActor(by);
    const event: LedgerEvent = {
      incidentId: state.incidentId,
      occurrence,
      eventId: `${info.firstExecutionRunId}:${++ledgerSeq}`,
      type,
      at: now(),
      data: {
        severity: state.severity,
        runbook: state.runbookId,
        postIncidentWorkflowId: info.workflowId,
        ...data,
        ...actor.verification,
      },
      ...(actor.by ? { by: actor.by } : {}),
    };
    pending.push(
      ledger.recordIncidentEvent(event).catch((error: unknown) => {
        record('ledger-failed', `could not write "${type}" to the incident ledger: ${errorMessage(error)}`);
      }),
    );
  }

  let notifySeq = 0;
  function notify(kind: NotificationKind, roles: string[], text: string): void {
    pending.push(
      notifier
        .notify({
          kind,
          workflowId: wf.workflowInfo().workflowId,
          title: state.title,
          severity: state.severity,
          roles,
          text,
          ...(state.drill ? { drill: state.drill } : {}),
          idempotencyKey: `${wf.workflowInfo().runId}/notify/${++notifySeq}`,
        })
        .catch((error: unknown) =>
          record('notify-failed', `notification (${kind}) failed: ${errorMessage(error)}`),
        ),
    );
  }

  function publish(): void {
    state.missing = state.completedAt ? [] : postIncidentMissing(state, rules());
    wf.upsertSearchAttributes([
      { key: ReportStatus, value: state.reportStatus },
      { key: ReportDueAt, value: new Date(state.reportDueAt) },
      { key: IncidentSeverity, value: state.severity },
      { key: IncidentRunbook, value: state.runbookId },
      { key: IncidentTeam, value: state.team },
    ]);
    const open = state.followUps.filter((f) => f.status === 'open');
    const lines = [
      state.drill ? '**DRILL**: the report of a rehearsal (`incidentctl drill`)' : '',
      `**Report ${state.reportStatus}** for ${state.severity} ${state.title} (\`${state.incidentId}\`), owner ${state.reportOwner}, due ${state.reportDueAt}`,
      `Open follow-ups: ${open.length ? open.map((f) => `${f.id} ${f.title} (${f.owner})`).join('; ') : 'none'}`,
      state.runbookUpdateRequired
        ? `Runbook update: ${state.runbookUpdate ? `done (${state.runbookUpdate.ref})` : 'required'}`
        : '',
      state.missing.length ? `Waiting for: ${state.missing.join('; ')}` : '',
    ];
    wf.setCurrentDetails(lines.filter(Boolean).join('\n\n'));
  }

  /** After completion (while the last writes finish) nothing is taken: it would be lost with the run. */
  function refuseWhenClosed(): void {
    if (state.completedAt) {
      throw new Error(
        `the post-incident work is complete (since ${state.completedAt}); it takes no more actions`,
      );
    }
  }

  /**
   * The report sent again only to say that no follow-up is needed: the one change a submitted report takes,
   * so that a report sent without follow-ups and without the statement can still close.
   */
  const isStatementOnly = (a: { noFollowUps?: boolean | undefined }) =>
    a.noFollowUps === true &&
    state.report !== undefined &&
    !state.report.noFollowUps &&
    state.followUps.length === 0;

  const actions = {
    submitReport: {
      validate: (raw: unknown) => {
        const a = parseArgs(submitReportArgs, raw);
        refuseWhenClosed();
        if (state.report && !isStatementOnly(a)) {
          const hint =
            !state.report.noFollowUps && state.followUps.length === 0
              ? '; to say that no follow-up is needed, send it again with noFollowUps'
              : '';
          throw new Error(`the report was already submitted by ${state.report.by}${hint}`);
        }
        if (a.noFollowUps && state.followUps.length > 0) {
          throw new Error(
            `noFollowUps contradicts the follow-ups already added (${state.followUps.map((f) => f.id).join(', ')})`,
          );
        }
        return a;
      },
      apply: (a: { by: string; rootCause: string; link?: string; noFollowUps?: boolean }, who: Identity) => {
        if (state.report) {
          state.report = {
            ...state.report,
            rootCause: a.rootCause,
            ...(a.link ? { link: a.link } : {}),
            noFollowUps: true,
          };
          record('report-amended', `report sent again: no follow-up is needed`, who);
          toLedger(
            'report-amended',
            { rootCause: a.rootCause, link: state.report.link ?? null, noFollowUps: true },
            who,
          );
          return 'report amended: no follow-up is needed';
        }
        state.report = {
          by: a.by,
          rootCause: a.rootCause,
          submittedAt: now(),
          ...(a.link ? { link: a.link } : {}),
          ...(a.noFollowUps ? { noFollowUps: true } : {}),
        };
        state.reportStatus = 'Submitted';
        delete state.nextReportReminderAt;
        record(
          'report-submitted',
          `report submitted${a.noFollowUps ? ' (no follow-up needed)' : ''}; root cause: ${a.rootCause.slice(0, 300)}`,
          who,
        );
        toLedger(
          'report-submitted',
          {
            rootCause: a.rootCause,
            link: a.link ?? null,
            noFollowUps: a.noFollowUps === true,
            followUps: state.followUps.length,
            dueAt: state.reportDueAt,
            late: Date.parse(state.report.submittedAt) > Date.parse(state.reportDueAt),
          },
          who,
        );
        return a.noFollowUps ? 'report submitted (no follow-up needed)' : 'report submitted';
      },
    },
    addFollowUp: {
      validate: (raw: unknown) => {
        const a = parseArgs(addFollowUpArgs, raw);
        refuseWhenClosed();
        return a;
      },
      apply: (a: { title: string; owner: string; dueAt?: string; by?: string }, who: Identity) => {
        // `by` is optional here: without it the follow-up is the system's, as before.
        const adder = a.by ? who : undefined;
        const id = `FU-${++followUpSeq}`;
        state.followUps.push({
          id,
          title: a.title,
          owner: a.owner,
          status: 'open',
          ...(a.dueAt
            ? { dueAt: new Date(a.dueAt).toISOString(), nextReminderAt: new Date(a.dueAt).toISOString() }
            : {}),
        });
        record(
          'follow-up-added',
          `${id}: ${a.title} (owner ${a.owner}${a.dueAt ? `, due ${a.dueAt}` : ''})`,
          adder,
        );
        toLedger(
          'follow-up-added',
          {
            followUp: id,
            title: a.title,
            owner: a.owner,
            dueAt: a.dueAt ? new Date(a.dueAt).toISOString() : null,
          },
          adder,
        );
        return id;
      },
    },
    completeFollowUp: {
      validate: (raw: unknown) => {
        const a = parseArgs(completeFollowUpArgs, raw);
        refuseWhenClosed();
        const f = state.followUps.find((x) => x.id === a.id);
        if (!f)
          throw new Error(
            `unknown follow-up "${a.id}" (known: ${state.followUps.map((x) => x.id).join(', ') || 'none'})`,
          );
        if (f.status === 'done') throw new Error(`follow-up ${a.id} was already done by ${f.doneBy}`);
        return a;
      },
      apply: (a: { id: string; by: string }, who: Identity) => {
        const f = state.followUps.find((x) => x.id === a.id);
        if (!f) throw new Error(`unknown follow-up "${a.id}"`);
        f.status = 'done';
        f.doneBy = a.by;
        f.doneAt = now();
        delete f.nextReminderAt;
        record('follow-up-done', `${f.id} done: ${f.title}`, who);
        toLedger('follow-up-done', { followUp: f.id, title: f.title, owner: f.owner }, who);
        return `follow-up ${f.id} done`;
      },
    },
    markRunbookUpdated: {
      validate: (raw: unknown) => {
        const a = parseArgs(markRunbookUpdatedArgs, raw);
        refuseWhenClosed();
        if (state.runbookUpdate)
          throw new Error(`the runbook update was already recorded by ${state.runbookUpdate.by}`);
        return a;
      },
      apply: (a: { by: string; ref: string }, who: Identity) => {
        state.runbookUpdate = { by: a.by, ref: a.ref, at: now() };
        record('runbook-updated', `runbook updated: ${a.ref}`, who);
        toLedger('runbook-updated', { ref: a.ref, required: state.runbookUpdateRequired }, who);
        return 'runbook update recorded';
      },
    },
  };

  registerHumanActions(postIncidentActions, actions, {
    ...(contacts
      ? {
          identity: {
            workflowId: info.workflowId,
            contacts: () => contacts,
            nonces: () => (state.signedNonces ??= {}),
          },
        }
      : {}),
    onRefused: (name, by, error) => {
      state.rejectedAttempts++;
      record('rejected-attempt', `${name} refused: ${errorMessage(error)}`, by);
    },
  });
  wf.setHandler(postIncidentStatusQuery, () => state);

  record('opened', `report due ${state.reportDueAt}, owner ${state.reportOwner}`);
  publish();

  function nextReportReminder(afterMs: number): string | undefined {
    const upcoming = REPORT_REMINDERS_MS.map((d) => resolvedAtMs + d).find((t) => t > afterMs);
    if (upcoming !== undefined && upcoming < resolvedAtMs + REPORT_DUE_MS) return iso(upcoming);
    const due = resolvedAtMs + REPORT_DUE_MS;
    if (afterMs < due) return iso(due);
    return iso(due + Math.ceil((afterMs - due + 1) / OVERDUE_REMINDER_EVERY_MS) * OVERDUE_REMINDER_EVERY_MS);
  }

  function handleDeadlines(): void {
    const t = Date.now();
    if (!state.report && state.nextReportReminderAt && Date.parse(state.nextReportReminderAt) <= t) {
      const due = Date.parse(state.reportDueAt);
      if (t >= due) {
        if (state.reportStatus !== 'Overdue') {
          state.reportStatus = 'Overdue';
          record('report-overdue', `no report ${REPORT_DUE_MS / 3_600_000} hours after resolution`);
          toLedger('report-overdue', { dueAt: state.reportDueAt, owner: state.reportOwner });
          notify(
            'report-overdue',
            ['manager'],
            `Post-incident report overdue for ${state.incidentId} (owner ${state.reportOwner})`,
          );
        } else {
          notify(
            'report-overdue',
            ['manager'],
            `Post-incident report still overdue for ${state.incidentId} (owner ${state.reportOwner})`,
          );
        }
        notify(
          'report-reminder',
          [state.team],
          `${state.reportOwner}: the report for ${state.incidentId} is overdue`,
        );
      } else {
        const hoursLeft = Math.round((due - t) / 3_600_000);
        record('report-reminder', `report reminder: due in ${hoursLeft} h`);
        notify(
          'report-reminder',
          [state.team],
          `${state.reportOwner}: the report for ${state.incidentId} is due in ${hoursLeft} h`,
        );
      }
      state.nextReportReminderAt = nextReportReminder(t);
    }
    for (const f of state.followUps) {
      if (f.status === 'open' && f.nextReminderAt && Date.parse(f.nextReminderAt) <= t) {
        record('follow-up-overdue', `${f.id} overdue: ${f.title} (owner ${f.owner})`);
        if (!f.overdueAt) {
          // The ledger gets the moment it became overdue; the daily reminders after it are the timeline's.
          f.overdueAt = now();
          toLedger('follow-up-overdue', {
            followUp: f.id,
            title: f.title,
            owner: f.owner,
            dueAt: f.dueAt ?? null,
          });
        }
        notify(
          'follow-up-overdue',
          [state.team],
          `Follow-up ${f.id} "${f.title}" for ${state.incidentId} is overdue (owner ${f.owner})`,
        );
        f.nextReminderAt = iso(Date.parse(f.nextReminderAt) + OVERDUE_REMINDER_EVERY_MS);
      }
    }
  }

  while (!isPostIncidentComplete(state, rules())) {
    const wakeups = [
      state.report ? undefined : state.nextReportReminderAt,
      ...state.followUps.map((f) => (f.status === 'open' ? f.nextReminderAt : undefined)),
    ]
      .filter((x): x is string => x !== undefined)
      .map((x) => Date.parse(x));
    const seen = version;
    const wait = wakeups.length ? Math.max(1, Math.min(...wakeups) - Date.now()) : undefined;
    if (wait === undefined) await wf.condition(() => version !== seen);
    else await wf.condition(() => version !== seen, wait, { summary: 'next report or follow-up deadline' });
    handleDeadlines();
    publish();
  }
  state.completedAt = now();
  record('completed', 'report, follow-ups and runbook update are done');
  toLedger('post-incident-completed', {
    followUps: state.followUps.length,
    noFollowUps: state.report?.noFollowUps === true,
    runbookUpdated: state.runbookUpdate !== undefined,
  });
  publish();
  await Promise.all(pending.splice(0));
  await wf.condition(wf.allHandlersFinished);
  return state;
}
