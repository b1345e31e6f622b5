import * as wf from '@temporalio/workflow';
import {
  acknowledgeArgs,
  addNoteArgs,
  alertsArgs,
  approveArgs,
  cancelArgs,
  completeTaskArgs,
  escalateArgs,
  parseArgs,
  rejectArgs,
  resolveArgs,
} from '../../domain/commands.js';
import { isKnownPerson, rolesOfPerson } from '../../domain/contacts.js';
import type { Identity } from '../../domain/identity.js';
import { formatDuration } from '../../domain/duration.js';
import type { StepState } from '../../domain/incident.js';
import type { StepSpec } from '../../domain/runbook.js';
import { alertsSignal, incidentActions, incidentStatusQuery } from '../api.js';
import { registerHumanActions } from '../human-actions.js';
import { errorMessage } from './activities.js';
import type { Incident } from './context.js';

export function stepOf(inc: Incident, id: string): { spec: StepSpec; st: StepState } {
  const { state: s, snapshot: snap } = inc.ready();
  const spec = snap.runbook.steps.find((x) => x.id === id);
  const st = s.steps.find((x) => x.id === id);
  if (!spec || !st) {
    const known = snap.runbook.steps.map((x) => x.id).join(', ') || 'none';
    throw new Error(`unknown step "${id}" (steps of ${snap.runbook.id}: ${known})`);
  }
  return { spec, st };
}

/** The people's side of an incident: Updates and Signals (validated alike), the alerts Signal, the status Query. */
export function registerIncidentHandlers(inc: Incident): void {
  const mayDecide = (step: string, by: string) => {
    const { snapshot: snap } = inc.open();
    const { spec, st } = stepOf(inc, step);
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
        const { state: s } = inc.open();
        if (s.acknowledgedAt)
          throw new Error(`already acknowledged by ${s.acknowledgedBy} at ${s.acknowledgedAt}`);
        return a;
      },
      apply: (a: { by: string }, who: Identity) => {
        const s = inc.ready().state;
        s.acknowledgedAt = inc.now();
        s.acknowledgedBy = a.by;
        s.timeToAcknowledgeMs = Date.parse(s.acknowledgedAt) - Date.parse(s.openedAt);
        inc.record(
          'acknowledged',
          `acknowledged after ${formatDuration(Math.round(s.timeToAcknowledgeMs / 1000) * 1000)}`,
          who,
        );
        inc.toLedger('acknowledged', { timeToAcknowledgeMs: s.timeToAcknowledgeMs }, who);
        return `acknowledged ${inc.incidentId}`;
      },
    },
    approve: {
      validate: (raw: unknown) => {
        const a = parseArgs(approveArgs, raw);
        mayDecide(a.step, a.by);
        return a;
      },
      risk: (a: { step: string }) => stepOf(inc, a.step).spec.risk,
      apply: (a: { step: string; by: string; reason?: string }, who: Identity) => {
        const { st } = stepOf(inc, a.step);
        st.status = 'approved';
        st.approvedBy = a.by;
        if (a.reason) st.reason = a.reason;
        inc.record('step-approved', `approved "${st.title}"${a.reason ? `: ${a.reason}` : ''}`, who);
        inc.toLedger('step-approved', { step: st.id }, who);
        inc.publish();
        return `approved step ${st.id}; it runs now`;
      },
    },
    reject: {
      validate: (raw: unknown) => {
        const a = parseArgs(rejectArgs, raw);
        mayDecide(a.step, a.by);
        return a;
      },
      risk: (a: { step: string }) => stepOf(inc, a.step).spec.risk,
      apply: (a: { step: string; by: string; reason: string }, who: Identity) => {
        const { st } = stepOf(inc, a.step);
        st.status = 'rejected';
        st.rejectedBy = a.by;
        st.reason = a.reason;
        inc.record('step-rejected', `rejected "${st.title}": ${a.reason}`, who);
        inc.toLedger('step-rejected', { step: st.id, reason: a.reason }, who);
        inc.publish();
        return `rejected step ${st.id}; it will not run`;
      },
    },
    resolve: {
      validate: (raw: unknown) => {
        const a = parseArgs(resolveArgs, raw);
        inc.open();
        if (inc.resolveRequested) throw new Error(`incident ${inc.incidentId} is already being resolved`);
        return a;
      },
      apply: (a: { by: string; summary?: string; newFailureMode?: boolean }, who: Identity) => {
        const s = inc.ready().state;
        inc.resolveRequested = true;
        s.resolvedBy = a.by;
        if (a.summary) s.resolutionSummary = a.summary;
        if (a.newFailureMode) s.newFailureMode = true;
        inc.record('resolve-requested', `resolved by hand${a.summary ? `: ${a.summary}` : ''}`, who);
        return `resolving ${inc.incidentId}`;
      },
    },
    escalate: {
      validate: (raw: unknown) => {
        const a = parseArgs(escalateArgs, raw);
        inc.open();
        return a;
      },
      apply: (a: { by: string; reason: string }, who: Identity) => {
        inc.escalate(who, a.reason);
        const s = inc.ready().state;
        return `escalated to ${inc.ready().snapshot.runbook.escalation[s.escalationLevel]}`;
      },
    },
    addNote: {
      validate: (raw: unknown) => {
        const a = parseArgs(addNoteArgs, raw);
        inc.ready();
        return a;
      },
      apply: (a: { by: string; text: string }, who: Identity) => {
        inc.record('note', a.text, who);
        inc.toLedger('note', { text: a.text.slice(0, 500) }, who);
        return 'note added';
      },
    },
    completeTask: {
      validate: (raw: unknown) => {
        const a = parseArgs(completeTaskArgs, raw);
        const tasks = inc.ready().state.tasks;
        const task = tasks.find((t) => t.id === a.task);
        if (!task) {
          const known = tasks.map((t) => t.id).join(', ') || 'none';
          throw new Error(`unknown task "${a.task}" (open tasks: ${known})`);
        }
        if (task.status === 'done') throw new Error(`task "${a.task}" was already done by ${task.doneBy}`);
        return a;
      },
      apply: (a: { task: string; by: string }, who: Identity) => {
        const task = inc.ready().state.tasks.find((t) => t.id === a.task);
        if (!task) throw new Error(`unknown task "${a.task}"`);
        task.status = 'done';
        task.doneBy = a.by;
        task.doneAt = inc.now();
        inc.record('task-done', `done: ${task.title}`, who);
        inc.toLedger('task-done', { task: task.id }, who);
        return `task ${task.id} done`;
      },
    },
    cancel: {
      validate: (raw: unknown) => {
        const a = parseArgs(cancelArgs, raw);
        const { snapshot: snap } = inc.open();
        if (inc.resolveRequested) throw new Error(`incident ${inc.incidentId} is already being resolved`);
        if (!isKnownPerson(snap.contacts, a.by))
          throw new Error(`${a.by} may not cancel ${inc.incidentId}: only people in the contacts file may`);
        return a;
      },
      apply: (a: { by: string; reason: string }) => {
        inc.cancelRequest ??= a;
        inc.cancelWork();
        return `cancelling ${inc.incidentId}`;
      },
    },
  };

  registerHumanActions(incidentActions, actions, {
    identity: {
      workflowId: wf.workflowInfo().workflowId,
      contacts: () => inc.ready().snapshot.contacts,
      nonces: () => (inc.ready().state.signedNonces ??= {}),
    },
    ready: () => inc.state !== undefined,
    deferred: inc.earlySignals,
    onRefused: (name, by, error) => {
      inc.ready().state.rejectedAttempts++;
      inc.record('rejected-attempt', `${name} refused: ${errorMessage(error)}`, by);
    },
  });

  wf.setHandler(alertsSignal, (raw: unknown) => {
    let alerts;
    try {
      alerts = parseArgs(alertsArgs, raw).alerts;
    } catch (error) {
      // Counted and recorded as a human action's refused Signal is; while the incident opens, once it is open.
      const refuse = () => {
        inc.ready().state.rejectedAttempts++;
        inc.record('rejected-attempt', `alerts refused: ${errorMessage(error)}`);
      };
      if (inc.state) refuse();
      else inc.earlySignals.push(refuse);
      return;
    }
    if (inc.resolveRequested || inc.state?.cancelled) {
      // This occurrence is over: the alerts belong to the next one (see incidentWorkflow).
      inc.lateAlerts.push(...alerts);
      const firing = alerts.filter((a) => a.status === 'firing').length;
      inc.record(
        'alert-after-close',
        `${alerts.length} alert(s) after the incident closed, ${firing} firing`,
      );
      return;
    }
    inc.bufferedAlerts.push(...alerts);
    if (inc.state) inc.takeAlerts();
  });
  wf.setHandler(incidentStatusQuery, () => {
    const state = inc.ready().state;
    return inc.unwritten.size ? { ...state, ledgerBehind: inc.unwritten.size } : state;
  });
}
