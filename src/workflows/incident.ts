import * as wf from '@temporalio/workflow';
import {
  NON_RETRYABLE_ACTION_ERRORS,
  type ActionActivity,
  type CoreActivities,
  type LedgerEvent,
  type LoadedRunbook,
  type NotificationKind,
  type ProbeActivity,
} from '../domain/activity-contract.js';
import type { Alert } from '../domain/alerts.js';
import {
  acknowledgeArgs,
  addNoteArgs,
  alertsArgs,
  approveArgs,
  completeTaskArgs,
  escalateArgs,
  incidentTriggerSchema,
  parseArgs,
  rejectArgs,
  resolveArgs,
  type IncidentTrigger,
} from '../domain/commands.js';
import { isKnownPerson, peopleInRoles, rolesOfPerson } from '../domain/contacts.js';
import { formatDuration } from '../domain/duration.js';
import { boundFinding, unknownFinding, type Finding } from '../domain/findings.js';
import type { IncidentSnapshot, IncidentState, IncidentStatus, StepState } from '../domain/incident.js';
import { postIncidentWorkflowId } from '../domain/incident-key.js';
import { applicableTasks, effectiveSeverity, isHealthy, nextStep } from '../domain/plan.js';
import type { ProbeSpec, StepSpec } from '../domain/runbook.js';
import { needsPostIncidentReport, responseTimeMs } from '../domain/severity.js';
import { renderArgs } from '../domain/templates.js';
import {
  alertsSignal,
  AwaitingApproval,
  IncidentDrill,
  IncidentRunbook,
  IncidentSeverity,
  IncidentStatus as IncidentStatusKey,
  IncidentTeam,
  incidentActions,
  incidentStatusQuery,
  ReportDueAt,
  ReportStatus,
} from './api.js';
import { registerHumanActions } from './human-actions.js';
import { postIncidentWorkflow } from './post-incident.js';
import { REPORT_DUE_MS } from '../domain/post-incident.js';

export interface IncidentWorkflowInput {
  trigger: IncidentTrigger;
  /** History length at which the incident continues as new, keeping its state; default 8,000 events. */
  historyLimit?: number;
  /** Set only by continue-as-new: everything the incident knew so far. */
  carried?: {
    state: IncidentState;
    snapshot: IncidentSnapshot;
    ledgerSeq: number;
    ackEscalations: number;
    stuckEscalated: boolean;
  };
}

export interface IncidentOutcome {
  incidentId: string;
  severity: IncidentState['severity'];
  resolvedBy: string;
  resolvedAt: string;
  timeToAcknowledgeMs?: number;
  timeToResolveMs: number;
  postIncidentWorkflowId?: string;
}

/** While nothing is left to try, how often the incident looks at the platform again. */
const RECHECK_MS = 15 * 60_000;
/** History length at which the incident continues as new, keeping its state (alert storms). */
const DEFAULT_HISTORY_LIMIT = 8_000;
const TIMELINE_LIMIT = 500;
const FALLBACK_RUNBOOK = 'triage';

const core = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { initialInterval: '1 second', maximumInterval: '1 minute' },
});
const notifier = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 3, initialInterval: '2 seconds' },
});
// The ledger may be the very database that is down: writes retry for a while in the background and
// never hold the incident up.
const ledger = wf.proxyActivities<CoreActivities>({
  startToCloseTimeout: '30 seconds',
  retry: { maximumAttempts: 20, initialInterval: '2 seconds', maximumInterval: '1 minute' },
});

const errorMessage = (error: unknown): string => {
  if (error instanceof wf.ActivityFailure && error.cause) return errorMessage(error.cause);
  return error instanceof Error ? error.message : String(error);
};

export async function incidentWorkflow(input: IncidentWorkflowInput): Promise<IncidentOutcome> {
  const parsedTrigger = incidentTriggerSchema.safeParse(input.trigger);
  if (!parsedTrigger.success) {
    // Fail the run visibly instead of retrying a workflow task that can never succeed.
    throw wf.ApplicationFailure.nonRetryable(
      `invalid incident trigger: ${parsedTrigger.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      'InvalidTrigger',
    );
  }
  const trigger = parsedTrigger.data;
  const info = wf.workflowInfo();
  const incidentId = info.workflowId;
  const occurrence = info.firstExecutionRunId;

  let snapshot: IncidentSnapshot | undefined = input.carried?.snapshot;
  let state: IncidentState | undefined = input.carried?.state;
  let ledgerSeq = input.carried?.ledgerSeq ?? 0;
  let ackEscalations = input.carried?.ackEscalations ?? 0;
  let stuckEscalated = input.carried?.stuckEscalated ?? false;
  let alertVersion = 0;
  // A resolve that came in while the previous run was continuing as new is carried as resolvedBy.
  let resolveRequested = Boolean(state?.resolvedAt || state?.resolvedBy);
  const pending: Promise<unknown>[] = [];
  const bufferedAlerts: Alert[] = [...trigger.alerts];
  // Signals that arrive while the incident is still loading its runbook are applied once it is open.
  const earlySignals: (() => void)[] = [];

  const now = () => new Date().toISOString();
  const ready = (): { state: IncidentState; snapshot: IncidentSnapshot } => {
    if (!state || !snapshot) throw new Error('the incident is still opening; try again in a moment');
    return { state, snapshot };
  };

  // ---- effects: timeline, ledger, notifications, search attributes --------------------------------------

  function record(type: string, text: string, by?: string): void {
    const s = ready().state;
    s.timeline.push({ at: now(), type, text, by: by ?? 'system' });
    if (s.timeline.length > TIMELINE_LIMIT) s.timeline.splice(0, s.timeline.length - TIMELINE_LIMIT);
  }

  function toLedger(type: string, data: LedgerEvent['data'] = {}, by?: string): void {
    const s = ready().state;
    const event: LedgerEvent = {
      incidentId,
      occurrence,
      eventId: `${occurrence}:${++ledgerSeq}`,
      type,
      at: now(),
      data: { severity: s.severity, runbook: s.runbookId, ...data },
      ...(by ? { by } : {}),
    };
    pending.push(
      ledger.recordIncidentEvent(event).catch((error: unknown) => {
        record('ledger-failed', `could not write "${type}" to the incident ledger: ${errorMessage(error)}`);
      }),
    );
  }

  function notify(
    kind: NotificationKind,
    roles: string[],
    text: string,
    extra: { waitingFor?: string; command?: string } = {},
  ): void {
    const s = ready().state;
    pending.push(
      notifier
        .notify({
          kind,
          workflowId: incidentId,
          title: s.title,
          severity: s.severity,
          roles,
          text,
          ...extra,
          ...(s.drill ? { drill: s.drill } : {}),
        })
        .then((r) => {
          if (r.failed > 0)
            record(
              'notify-failed',
              `${r.failed} of ${r.delivered + r.failed} notifications (${kind}) failed`,
            );
        })
        .catch((error: unknown) =>
          record('notify-failed', `notification (${kind}) failed: ${errorMessage(error)}`),
        ),
    );
  }

  let published = '';
  function publish(): void {
    const s = ready().state;
    s.awaitingApproval = s.steps.filter((st) => st.status === 'awaiting-approval').map((st) => st.id);
    const key = JSON.stringify([s.severity, s.status, s.awaitingApproval, s.waitingFor]);
    if (key === published) return;
    published = key;
    wf.upsertSearchAttributes([
      { key: IncidentSeverity, value: s.severity },
      { key: IncidentStatusKey, value: s.status },
      { key: IncidentRunbook, value: s.runbookId },
      { key: IncidentTeam, value: s.team },
      { key: AwaitingApproval, value: s.awaitingApproval },
    ]);
    const lines = [
      ...(s.drill ? ['**DRILL**: a rehearsal (`incidentctl drill`), not a real incident'] : []),
      `**${s.severity} ${s.status}**: ${s.title} (runbook \`${s.runbookId}\`, scope \`${s.scope}\`)`,
      `Waiting for: ${s.waitingFor}`,
      ...s.awaitingApproval.map((id) => `Approve: \`incidentctl approve ${incidentId} ${id}\``),
    ];
    wf.setCurrentDetails(lines.join('\n\n'));
  }

  function setStatus(status: IncidentStatus, waitingFor: string): void {
    const s = ready().state;
    s.status = status;
    s.waitingFor = waitingFor;
    publish();
  }

  function escalate(by: string, reason: string): void {
    const { state: s, snapshot: snap } = ready();
    const chain = snap.runbook.escalation;
    s.escalationLevel = Math.min(s.escalationLevel + 1, chain.length - 1);
    const role = chain[s.escalationLevel] as string;
    record('escalated', `escalated to ${role}: ${reason}`, by);
    toLedger('escalated', { to: role, reason }, by);
    notify('escalated', [role], `Escalated to ${role}: ${reason}`, { waitingFor: s.waitingFor });
  }

  // ---- human actions: validation shared by Updates and Signals ------------------------------------------

  const stepOf = (id: string): { spec: StepSpec; st: StepState } => {
    const { state: s, snapshot: snap } = ready();
    const spec = snap.runbook.steps.find((x) => x.id === id);
    const st = s.steps.find((x) => x.id === id);
    if (!spec || !st) {
      const known = snap.runbook.steps.map((x) => x.id).join(', ') || 'none';
      throw new Error(`unknown step "${id}" (steps of ${snap.runbook.id}: ${known})`);
    }
    return { spec, st };
  };
  const open = () => {
    const r = ready();
    if (r.state.resolvedAt) throw new Error(`incident ${incidentId} is already resolved`);
    return r;
  };
  const mayDecide = (step: string, by: string) => {
    const { snapshot: snap } = open();
    const { spec, st } = stepOf(step);
    if (st.status !== 'awaiting-approval') {
      throw new Error(`step "${step}" is not waiting for approval (it is ${st.status})`);
    }
    const roles = rolesOfPerson(snap.contacts, by);
    if (!spec.approvers.some((r) => roles.includes(r))) {
      const has = isKnownPerson(snap.contacts, by)
        ? `has roles [${roles.join(', ')}]`
        : 'is not in the contacts file';
      throw new Error(
        `${by} may not decide step "${step}": it needs one of [${spec.approvers.join(', ')}], and ${by} ${has}`,
      );
    }
    return st;
  };

  const actions = {
    acknowledge: {
      validate: (raw: unknown) => {
        const a = parseArgs(acknowledgeArgs, raw);
        const { state: s } = open();
        if (s.acknowledgedAt)
          throw new Error(`already acknowledged by ${s.acknowledgedBy} at ${s.acknowledgedAt}`);
        return a;
      },
      apply: (a: { by: string }) => {
        const s = ready().state;
        s.acknowledgedAt = now();
        s.acknowledgedBy = a.by;
        s.timeToAcknowledgeMs = Date.parse(s.acknowledgedAt) - Date.parse(s.openedAt);
        record(
          'acknowledged',
          `acknowledged after ${formatDuration(Math.round(s.timeToAcknowledgeMs / 1000) * 1000)}`,
          a.by,
        );
        toLedger('acknowledged', { timeToAcknowledgeMs: s.timeToAcknowledgeMs }, a.by);
        return `acknowledged ${incidentId}`;
      },
    },
    approve: {
      validate: (raw: unknown) => {
        const a = parseArgs(approveArgs, raw);
        mayDecide(a.step, a.by);
        return a;
      },
      apply: (a: { step: string; by: string; reason?: string }) => {
        const { st } = stepOf(a.step);
        st.status = 'approved';
        st.approvedBy = a.by;
        if (a.reason) st.reason = a.reason;
        record('step-approved', `approved "${st.title}"${a.reason ? `: ${a.reason}` : ''}`, a.by);
        toLedger('step-approved', { step: st.id }, a.by);
        publish();
        return `approved step ${st.id}; it runs now`;
      },
    },
    reject: {
      validate: (raw: unknown) => {
        const a = parseArgs(rejectArgs, raw);
        mayDecide(a.step, a.by);
        return a;
      },
      apply: (a: { step: string; by: string; reason: string }) => {
        const { st } = stepOf(a.step);
        st.status = 'rejected';
        st.rejectedBy = a.by;
        st.reason = a.reason;
        record('step-rejected', `rejected "${st.title}": ${a.reason}`, a.by);
        toLedger('step-rejected', { step: st.id, reason: a.reason }, a.by);
        publish();
        return `rejected step ${st.id}; it will not run`;
      },
    },
    resolve: {
      validate: (raw: unknown) => {
        const a = parseArgs(resolveArgs, raw);
        open();
        if (resolveRequested) throw new Error(`incident ${incidentId} is already being resolved`);
        return a;
      },
      apply: (a: { by: string; summary?: string; newFailureMode?: boolean }) => {
        const s = ready().state;
        resolveRequested = true;
        s.resolvedBy = a.by;
        if (a.summary) s.resolutionSummary = a.summary;
        if (a.newFailureMode) s.newFailureMode = true;
        record('resolve-requested', `resolved by hand${a.summary ? `: ${a.summary}` : ''}`, a.by);
        return `resolving ${incidentId}`;
      },
    },
    escalate: {
      validate: (raw: unknown) => {
        const a = parseArgs(escalateArgs, raw);
        open();
        return a;
      },
      apply: (a: { by: string; reason: string }) => {
        escalate(a.by, a.reason);
        const s = ready().state;
        return `escalated to ${ready().snapshot.runbook.escalation[s.escalationLevel]}`;
      },
    },
    addNote: {
      validate: (raw: unknown) => {
        const a = parseArgs(addNoteArgs, raw);
        ready();
        return a;
      },
      apply: (a: { by: string; text: string }) => {
        record('note', a.text, a.by);
        toLedger('note', { text: a.text.slice(0, 500) }, a.by);
        return 'note added';
      },
    },
    completeTask: {
      validate: (raw: unknown) => {
        const a = parseArgs(completeTaskArgs, raw);
        const task = ready().state.tasks.find((t) => t.id === a.task);
        if (!task) {
          const known =
            ready()
              .state.tasks.map((t) => t.id)
              .join(', ') || 'none';
          throw new Error(`unknown task "${a.task}" (open tasks: ${known})`);
        }
        if (task.status === 'done') throw new Error(`task "${a.task}" was already done by ${task.doneBy}`);
        return a;
      },
      apply: (a: { task: string; by: string }) => {
        const task = ready().state.tasks.find((t) => t.id === a.task);
        if (!task) throw new Error(`unknown task "${a.task}"`);
        task.status = 'done';
        task.doneBy = a.by;
        task.doneAt = now();
        record('task-done', `done: ${task.title}`, a.by);
        toLedger('task-done', { task: task.id }, a.by);
        return `task ${task.id} done`;
      },
    },
  };

  registerHumanActions(incidentActions, actions, {
    ready: () => state !== undefined,
    deferred: earlySignals,
    onRefused: (name, by, error) => {
      ready().state.rejectedAttempts++;
      record('rejected-attempt', `${name} refused: ${errorMessage(error)}`, by);
    },
  });

  wf.setHandler(alertsSignal, (raw: unknown) => {
    try {
      bufferedAlerts.push(...parseArgs(alertsArgs, raw).alerts);
    } catch (error) {
      if (state) record('rejected-attempt', `alerts refused: ${errorMessage(error)}`);
      return;
    }
    if (state) takeAlerts();
  });
  wf.setHandler(incidentStatusQuery, () => ready().state);

  function takeAlerts(): void {
    const s = ready().state;
    for (const alert of bufferedAlerts.splice(0)) {
      const known = s.alerts[alert.fingerprint];
      if (known && known.status === alert.status) {
        known.deliveries++;
        known.lastSeen = now();
        continue;
      }
      const alertname = alert.labels.alertname ?? 'unnamed';
      s.alerts[alert.fingerprint] = {
        fingerprint: alert.fingerprint,
        alertname,
        status: alert.status,
        firstSeen: known?.firstSeen ?? now(),
        lastSeen: now(),
        deliveries: (known?.deliveries ?? 0) + 1,
        ...(alert.annotations.summary ? { summary: alert.annotations.summary.slice(0, 300) } : {}),
      };
      record(
        `alert-${alert.status}`,
        `${alertname} ${alert.status}${alert.annotations.summary ? `: ${alert.annotations.summary.slice(0, 200)}` : ''}`,
      );
      alertVersion++;
    }
  }

  // ---- diagnosis, remediation, verification ----------------------------------------------------------

  async function runProbe(spec: ProbeSpec): Promise<Finding> {
    const s = ready().state;
    try {
      const probes = wf.proxyActivities<Record<string, ProbeActivity>>({
        startToCloseTimeout: spec.timeout,
        scheduleToCloseTimeout: spec.timeout * (spec.retries + 1) + 5_000 * spec.retries,
        retry: {
          maximumAttempts: spec.retries + 1,
          initialInterval: '1 second',
          maximumInterval: '5 seconds',
        },
        summary: `probe ${spec.id}`,
      });
      const args = renderArgs(spec.args, { incidentId, scope: s.scope, findings: s.findings });
      const probe = probes[spec.probe] as ProbeActivity;
      const finding = await probe({ incidentId, scope: s.scope, probeId: spec.id, args });
      return boundFinding({ ...finding, probe: spec.id, at: finding.at || now() });
    } catch (error) {
      return unknownFinding(spec.id, `probe ${spec.probe} gave no answer: ${errorMessage(error)}`, now());
    }
  }

  async function runProbes(ids: string[] | undefined, why: string): Promise<Finding[]> {
    const { state: s, snapshot: snap } = ready();
    const specs = ids ? snap.runbook.probes.filter((p) => ids.includes(p.id)) : snap.runbook.probes;
    if (specs.length === 0) return [];
    const findings = await Promise.all(specs.map(runProbe));
    for (const f of findings) s.findings[f.probe] = f;
    const summary = findings.map((f) => `${f.probe}=${f.status}`).join(', ');
    record('diagnosis', `${why}: ${summary}`);
    for (const f of findings) {
      if (f.status !== 'ok') record('finding', `${f.probe} ${f.status}: ${f.summary}`);
    }
    afterFindings();
    return findings;
  }

  function afterFindings(): void {
    const { state: s, snapshot: snap } = ready();
    const severity = effectiveSeverity(snap.runbook, s.findings, s.severity);
    if (severity !== s.severity) {
      record('severity-raised', `severity raised from ${s.severity} to ${severity} by findings`);
      toLedger('severity-raised', { from: s.severity, to: severity });
      s.severity = severity;
      notify('escalated', ['on-call'], `Severity raised to ${severity}`);
      publish();
    }
    for (const task of applicableTasks(snap.runbook, s.findings)) {
      if (s.tasks.some((t) => t.id === task.id)) continue;
      s.tasks.push({ id: task.id, title: task.title, owner: task.owner, status: 'open' });
      record('task-opened', `manual task for ${task.owner}: ${task.title}`);
    }
  }

  async function awaitApproval(spec: StepSpec, st: StepState): Promise<boolean> {
    const { snapshot: snap } = ready();
    const command = `incidentctl approve ${incidentId} ${spec.id}`;
    const waitingFor = `approval of "${spec.title}" by ${spec.approvers.join(' or ')}`;
    // After continue-as-new the step may already be waiting: the approvers were told then.
    const resumed = st.status === 'awaiting-approval';
    st.status = 'awaiting-approval';
    setStatus('AwaitingApproval', waitingFor);
    if (!resumed) {
      record('approval-requested', `"${spec.title}" waits for ${spec.approvers.join(' or ')}`);
      const approvers = peopleInRoles(snap.contacts, spec.approvers).join(', ');
      notify('approval-needed', spec.approvers, `Approval needed: ${spec.title} (approvers: ${approvers})`, {
        waitingFor,
        command,
      });
    }
    let remindAt = Date.now() + spec.approvalTimeout;
    for (;;) {
      await wf.condition(
        () => st.status !== 'awaiting-approval' || resolveRequested || historyTooLong(),
        Math.max(1, remindAt - Date.now()),
        { summary: `approval of ${spec.id}` },
      );
      if (st.status !== 'awaiting-approval' || resolveRequested) break;
      if (historyTooLong()) {
        await continueAsNew();
        continue;
      }
      notify(
        'approval-reminder',
        spec.approvers,
        `Still waiting ${formatDuration(spec.approvalTimeout)} more for approval: ${spec.title}`,
        { waitingFor, command },
      );
      escalate('system', `approval of "${spec.id}" not given within ${formatDuration(spec.approvalTimeout)}`);
      remindAt += spec.approvalTimeout;
    }
    // Handlers changed the status while we waited; read it afresh rather than through TypeScript's narrowing.
    const decided = st.status as StepState['status'];
    if (decided === 'awaiting-approval') st.status = 'idle';
    publish();
    return decided === 'approved' && !resolveRequested;
  }

  async function runStep(spec: StepSpec, st: StepState): Promise<void> {
    const s = ready().state;
    st.runs++;
    st.status = 'running';
    setStatus('Remediating', `action ${spec.action} of "${spec.title}"`);
    const idempotencyKey = `${incidentId}/${occurrence}/${spec.id}/${st.runs}`;
    try {
      const args = renderArgs(spec.args, { incidentId, scope: s.scope, findings: s.findings });
      const act = wf.proxyActivities<Record<string, ActionActivity>>({
        startToCloseTimeout: spec.timeout,
        retry: {
          maximumAttempts: spec.retry.maxAttempts,
          initialInterval: spec.retry.initialInterval,
          backoffCoefficient: spec.retry.backoffCoefficient,
          maximumInterval: spec.retry.maximumInterval,
          nonRetryableErrorTypes: NON_RETRYABLE_ACTION_ERRORS,
        },
        summary: `step ${spec.id}`,
      });
      const result = await (act[spec.action] as ActionActivity)({
        incidentId,
        scope: s.scope,
        stepId: spec.id,
        idempotencyKey,
        args,
        ...(s.drill ? { drill: s.drill } : {}),
      });
      st.result = result.summary.slice(0, 500);
      delete st.error;
      record('step-run', `ran "${spec.title}": ${st.result}`);
      toLedger('step-run', { step: spec.id, changed: result.changed, run: st.runs });
    } catch (error) {
      st.status = 'failed';
      st.error = errorMessage(error).slice(0, 500);
      record('step-failed', `"${spec.title}" failed: ${st.error}`);
      toLedger('step-failed', { step: spec.id, error: st.error, run: st.runs });
      notify('escalated', [s.team], `Step failed: ${spec.title}: ${st.error}`);
      return;
    }
    st.status = 'verifying';
    setStatus('Verifying', `recovery after "${spec.title}"`);
    const recovered = await verify(spec);
    st.status = recovered ? 'recovered' : 'not-recovered';
    record(
      recovered ? 'step-verified' : 'step-not-recovered',
      `${recovered ? 'recovered' : 'not recovered'} after "${spec.title}"`,
    );
    toLedger(recovered ? 'step-verified' : 'step-not-recovered', { step: spec.id });
    // Plan the next move on a fresh picture, not on findings from before the step.
    if (spec.verify && !resolveRequested) await runProbes(undefined, `diagnosis after ${spec.id}`);
  }

  async function verify(spec: StepSpec): Promise<boolean> {
    const { snapshot: snap, state: s } = ready();
    if (!spec.verify) {
      await runProbes(undefined, `check after ${spec.id}`);
      return isHealthy(snap.runbook, s.findings);
    }
    const deadline = Date.now() + spec.verify.within;
    for (;;) {
      const wait = Math.max(1_000, Math.min(spec.verify.every, deadline - Date.now()));
      if (await wf.condition(() => resolveRequested, wait, { summary: `verify ${spec.id}` })) return false;
      const findings = await runProbes(spec.verify.probes, `verification of ${spec.id}`);
      if (findings.every((f) => f.status === 'ok')) return true;
      if (Date.now() >= deadline) return false;
    }
  }

  // ---- waiting for people, continue-as-new ------------------------------------------------------------

  const historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
  function historyTooLong(): boolean {
    const i = wf.workflowInfo();
    return i.continueAsNewSuggested || i.historyLength >= historyLimit;
  }

  /** Continues as new with everything the incident knows; only called where the main loop can resume. */
  async function continueAsNew(): Promise<never> {
    const r = ready();
    await Promise.all(pending.splice(0));
    await wf.condition(wf.allHandlersFinished);
    takeAlerts();
    return wf.continueAsNew<typeof incidentWorkflow>({
      trigger: { ...trigger, alerts: [] },
      historyLimit,
      carried: { state: r.state, snapshot: r.snapshot, ledgerSeq, ackEscalations, stuckEscalated },
    });
  }

  async function ackWatch(): Promise<void> {
    const { snapshot: snap } = ready();
    const openedAt = Date.parse(ready().state.openedAt);
    while (ackEscalations < snap.runbook.escalation.length - 1) {
      const s = ready().state;
      const due = openedAt + (ackEscalations + 1) * responseTimeMs[s.severity];
      const done = () => Boolean(s.acknowledgedAt || s.resolvedAt || resolveRequested);
      if (done()) return;
      const remaining = due - Date.now();
      if (remaining > 0 && (await wf.condition(done, remaining, { summary: 'acknowledgement deadline' })))
        return;
      ackEscalations++;
      escalate(
        'system',
        `not acknowledged within ${formatDuration(ackEscalations * responseTimeMs[s.severity])} (${s.severity})`,
      );
    }
  }

  // ---- the incident, start to end ---------------------------------------------------------------------

  if (!snapshot || !state) {
    let loaded: LoadedRunbook;
    let loadProblem: string | undefined;
    try {
      loaded = await core.loadRunbook({ runbookId: trigger.runbookId });
    } catch (error) {
      // A missing or broken runbook must not lose the incident: it opens as triage and says why.
      if (trigger.runbookId === FALLBACK_RUNBOOK) throw error;
      loadProblem = `runbook "${trigger.runbookId}" could not be loaded (${errorMessage(error)}); opened as ${FALLBACK_RUNBOOK}`;
      loaded = await core.loadRunbook({ runbookId: FALLBACK_RUNBOOK });
    }
    snapshot = { runbook: loaded.runbook, runbookHash: loaded.runbookHash, contacts: loaded.contacts };
    const rb = loaded.runbook;
    state = {
      incidentId,
      title: trigger.title ?? rb.title,
      runbookId: rb.id,
      runbookHash: loaded.runbookHash,
      scope: trigger.scope,
      source: trigger.source,
      severity: trigger.severity ? effectiveSeverity(rb, {}, trigger.severity) : rb.severity.default,
      team: rb.team,
      status: 'Investigating',
      openedAt: now(),
      newFailureMode: rb.match.fallback,
      escalationLevel: 0,
      alerts: {},
      findings: {},
      steps: rb.steps.map((st) => ({
        id: st.id,
        title: st.title,
        action: st.action,
        risk: st.risk,
        approvers: st.approvers,
        status: 'idle',
        runs: 0,
      })),
      tasks: [],
      awaitingApproval: [],
      waitingFor: 'diagnosis',
      timeline: [],
      rejectedAttempts: 0,
      ...(trigger.drill ? { drill: trigger.drill } : {}),
    };
    takeAlerts();
    const s = state;
    const opener = trigger.declaredBy ?? trigger.source;
    if (loadProblem) record('runbook-problem', loadProblem);
    record(
      'opened',
      `${s.severity} incident opened from ${trigger.source} (runbook ${rb.id}@${loaded.runbookHash.slice(0, 12)})`,
      opener,
    );
    if (s.drill) {
      record(
        'drill',
        `this is a drill: notifications ${s.drill.notify ? 'are marked DRILL and sent' : 'are marked DRILL and only logged, not sent'}`,
      );
    }
    toLedger(
      'opened',
      {
        title: s.title,
        scope: s.scope,
        source: s.source,
        team: s.team,
        openedAt: s.openedAt,
        ...(s.drill ? { drill: true } : {}),
      },
      trigger.declaredBy,
    );
    publish();
    const roles = [...new Set([rb.team, ...(s.severity === 'P3' ? [] : ['on-call'])])];
    notify('opened', roles, `${s.severity} ${s.title}: incident opened`, {
      command: `incidentctl ack ${incidentId}`,
    });
    for (const apply of earlySignals.splice(0)) apply();
    await runProbes(undefined, 'initial diagnosis');
  } else {
    takeAlerts();
    publish();
  }

  const s = state;
  const rb = snapshot.runbook;
  void ackWatch();
  while (!resolveRequested) {
    const spec = nextStep(
      rb,
      s.findings,
      Object.fromEntries(s.steps.map((st) => [st.id, { runs: st.runs, rejected: st.status === 'rejected' }])),
    );
    if (spec) {
      stuckEscalated = false;
      const st = stepOf(spec.id).st;
      if (spec.risk === 'high' && st.status !== 'approved' && !(await awaitApproval(spec, st))) continue;
      if (resolveRequested) break;
      await runStep(spec, st);
      continue;
    }
    const healthy = isHealthy(rb, s.findings);
    const alerts = Object.values(s.alerts);
    const alertsSettled = !rb.resolve.alertsResolved || alerts.every((a) => a.status === 'resolved');
    const recovered = s.steps.some((st) => st.status === 'recovered');
    if (healthy && alertsSettled && (recovered || alerts.length > 0)) {
      resolveRequested = true;
      s.resolvedBy = 'system';
      s.resolutionSummary ??= recovered ? 'recovered after remediation' : 'recovered; alerts resolved';
      break;
    }
    const attempted = s.steps.some((st) => st.runs > 0 || st.status === 'rejected');
    if (healthy) {
      setStatus('Monitoring', 'alerts to resolve, or a person to resolve the incident');
    } else if (attempted) {
      if (!stuckEscalated) {
        stuckEscalated = true;
        setStatus('Escalated', 'a person: no runbook step is left to try');
        escalate('system', 'the runbook has no step left to try and the platform is not healthy');
        notify('stuck', [s.team], `No automated step left for ${s.title}; a person must act`, {
          waitingFor: s.waitingFor,
        });
      }
    } else {
      setStatus(
        'Investigating',
        s.tasks.some((t) => t.status === 'open') ? 'a person: open manual tasks' : 'a person to investigate',
      );
    }
    const seen = alertVersion;
    await wf.condition(() => resolveRequested || alertVersion !== seen || historyTooLong(), RECHECK_MS, {
      summary: 'waiting for people or alerts',
    });
    if (!resolveRequested && historyTooLong()) await continueAsNew();
    if (!resolveRequested)
      await runProbes(undefined, alertVersion !== seen ? 'new alerts' : 'periodic re-check');
  }

  // ---- resolution ---------------------------------------------------------------------------------------
  s.resolvedAt = now();
  s.timeToResolveMs = Date.parse(s.resolvedAt) - Date.parse(s.openedAt);
  for (const st of s.steps) if (st.status === 'awaiting-approval') st.status = 'idle';
  setStatus('Resolved', 'nothing: resolved');
  record(
    'resolved',
    `resolved after ${formatDuration(Math.round(s.timeToResolveMs / 1000) * 1000)}${s.resolutionSummary ? `: ${s.resolutionSummary}` : ''}`,
    s.resolvedBy,
  );
  toLedger(
    'resolved',
    {
      timeToResolveMs: s.timeToResolveMs,
      timeToAcknowledgeMs: s.timeToAcknowledgeMs ?? null,
      summary: s.resolutionSummary ?? null,
    },
    s.resolvedBy,
  );
  notify(
    'resolved',
    [s.team],
    `Resolved: ${s.title}${s.resolutionSummary ? ` (${s.resolutionSummary})` : ''}`,
  );

  if (needsPostIncidentReport(s.severity)) {
    const childId = postIncidentWorkflowId(incidentId, s.openedAt);
    const reportOwner =
      s.acknowledgedBy ??
      (s.resolvedBy !== 'system' ? s.resolvedBy : undefined) ??
      peopleInRoles(snapshot.contacts, [s.team])[0] ??
      'unassigned';
    const due = new Date(Date.parse(s.resolvedAt) + REPORT_DUE_MS);
    await wf.startChild(postIncidentWorkflow, {
      workflowId: childId,
      parentClosePolicy: wf.ParentClosePolicy.ABANDON,
      typedSearchAttributes: [
        { key: IncidentSeverity, value: s.severity },
        { key: IncidentRunbook, value: s.runbookId },
        { key: IncidentTeam, value: s.team },
        { key: ReportStatus, value: 'Pending' },
        { key: ReportDueAt, value: due },
        ...(s.drill ? [{ key: IncidentDrill, value: true }] : []),
      ],
      args: [
        {
          incidentId,
          title: s.title,
          severity: s.severity,
          runbookId: s.runbookId,
          team: s.team,
          resolvedAt: s.resolvedAt,
          reportOwner,
          runbookUpdateRequired: s.newFailureMode,
          ...(s.resolutionSummary ? { resolutionSummary: s.resolutionSummary } : {}),
          ...(s.drill ? { drill: s.drill } : {}),
        },
      ],
    });
    s.postIncidentWorkflowId = childId;
    record('post-incident-started', `report due ${due.toISOString()} (owner ${reportOwner}): ${childId}`);
  }
  await Promise.all(pending.splice(0));
  await wf.condition(wf.allHandlersFinished);
  return {
    incidentId,
    severity: s.severity,
    resolvedBy: s.resolvedBy ?? 'system',
    resolvedAt: s.resolvedAt,
    timeToResolveMs: s.timeToResolveMs,
    ...(s.timeToAcknowledgeMs !== undefined ? { timeToAcknowledgeMs: s.timeToAcknowledgeMs } : {}),
    ...(s.postIncidentWorkflowId ? { postIncidentWorkflowId: s.postIncidentWorkflowId } : {}),
  };
}
