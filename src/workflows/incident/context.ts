import * as wf from '@temporalio/workflow';
import type { LedgerEvent, NotificationKind } from '../../domain/activity-contract.js';
import type { Alert } from '../../domain/alerts.js';
import type { ParsedIncidentTrigger } from '../../domain/commands.js';
import type { Identity } from '../../domain/identity.js';
import {
  ledgerActor,
  timelineEntry,
  type IncidentSnapshot,
  type IncidentState,
  type IncidentStatus,
} from '../../domain/incident.js';
import {
  AwaitingApproval,
  IncidentRunbook,
  IncidentSeverity,
  IncidentStatus as IncidentStatusKey,
  IncidentTeam,
} from '../api.js';
import { errorMessage, ledger, notifier } from './activities.js';
import type { IncidentWorkflowInput } from './types.js';

/** History length at which the incident continues as new, keeping its state (alert storms). */
const DEFAULT_HISTORY_LIMIT = 8_000;
const TIMELINE_LIMIT = 500;
/** From this patch on, a status change that leaves every search attribute as it was writes no upsert. */
export const UPSERT_ONLY_CHANGES = 'upsert-only-changed-search-attributes';

/**
 * One run of an incident: what it knows and its effects on the world outside the workflow (timeline,
 * ledger, notifications, search attributes). Every other part of the incident works through it.
 */
export class Incident {
  readonly incidentId: string;
  readonly occurrence: string;
  readonly historyLimit: number;
  snapshot: IncidentSnapshot | undefined;
  state: IncidentState | undefined;
  ledgerSeq: number;
  ackEscalations: number;
  stuckEscalated: boolean;
  /** Bumped by every alert that changes what the incident knows; waits watch it. */
  alertVersion = 0;
  /** A resolve that came in while the previous run was continuing as new is carried as resolvedBy. */
  resolveRequested: boolean;
  /** Background work (ledger writes, notifications) awaited before the run ends or continues as new. */
  readonly pending: Promise<unknown>[] = [];
  readonly bufferedAlerts: Alert[];
  /** Signals that arrive while the incident is still loading its runbook are applied once it is open. */
  readonly earlySignals: (() => void)[] = [];
  /** Alerts delivered after the incident resolved: a firing one opens the next occurrence. */
  readonly lateAlerts: Alert[] = [];
  /** Ledger events not yet written, by event id: carried over continue-as-new, reported if never written. */
  readonly unwritten = new Map<string, LedgerEvent>();
  /** Who cancelled the incident and why, when a person used `cancel`. */
  cancelRequest: { by: string; reason: string } | undefined;
  /** Cancels the incident's work (the plan loop and its waits); set by the workflow function. */
  cancelWork: () => void = () => {};
  private published = '';
  private publishedAttributes = '';
  private notifySeq = 0;

  constructor(
    readonly trigger: ParsedIncidentTrigger,
    input: IncidentWorkflowInput,
  ) {
    const info = wf.workflowInfo();
    this.incidentId = info.workflowId;
    this.occurrence = input.occurrence ?? info.firstExecutionRunId;
    this.historyLimit = input.historyLimit ?? DEFAULT_HISTORY_LIMIT;
    this.snapshot = input.carried?.snapshot;
    this.state = input.carried?.state;
    this.ledgerSeq = input.carried?.ledgerSeq ?? 0;
    this.ackEscalations = input.carried?.ackEscalations ?? 0;
    this.stuckEscalated = input.carried?.stuckEscalated ?? false;
    this.resolveRequested = Boolean(this.state?.resolvedAt || this.state?.resolvedBy);
    this.bufferedAlerts = [...trigger.alerts];
    for (const event of input.carried?.unwrittenLedgerEvents ?? []) this.writeLedger(event);
  }

  now(): string {
    return new Date().toISOString();
  }

  ready(): { state: IncidentState; snapshot: IncidentSnapshot } {
    if (!this.state || !this.snapshot)
      throw new Error('the incident is still opening; try again in a moment');
    return { state: this.state, snapshot: this.snapshot };
  }

  /** The open incident; refuses once it is resolved. */
  open(): { state: IncidentState; snapshot: IncidentSnapshot } {
    const r = this.ready();
    if (r.state.resolvedAt) throw new Error(`incident ${this.incidentId} is already resolved`);
    return r;
  }

  historyTooLong(): boolean {
    const i = wf.workflowInfo();
    return i.continueAsNewSuggested || i.historyLength >= this.historyLimit;
  }

  /** `by`: a person's name, or their identity when they acted through an action (verified or only claimed). */
  record(type: string, text: string, by?: string | Identity): void {
    const s = this.ready().state;
    s.timeline.push(timelineEntry(this.now(), type, text, by));
    if (s.timeline.length > TIMELINE_LIMIT) s.timeline.splice(0, s.timeline.length - TIMELINE_LIMIT);
  }

  toLedger(type: string, data: LedgerEvent['data'] = {}, by?: string | Identity): void {
    const s = this.ready().state;
    const actor = ledgerActor(by);
    const event: LedgerEvent = {
      incidentId: this.incidentId,
      occurrence: this.occurrence,
      eventId: `${this.occurrence}:${++this.ledgerSeq}`,
      type,
      at: this.now(),
      data: {
        severity: s.severity,
        runbook: s.runbookId,
        ...data,
        ...actor.verification,
      },
      ...(actor.by ? { by: actor.by } : {}),
    };
    this.writeLedger(event);
  }

  private writeLedger(event: LedgerEvent): void {
    this.unwritten.set(event.eventId, event);
    // Ledger writes and notifications finish even when the incident is cancelled: they are its trace.
    this.pending.push(
      wf.CancellationScope.nonCancellable(() => ledger.recordIncidentEvent(event)).then(
        () => this.unwritten.delete(event.eventId),
        (error: unknown) => {
          this.record(
            'ledger-failed',
            `could not write "${event.type}" (event ${event.eventId}) to the incident ledger: ${errorMessage(error)}`,
          );
        },
      ),
    );
  }

  /**
   * Waits for background work, including work handlers add meanwhile, for at most `withinMs`. False when
   * time ran out first: the work still pending is abandoned with the run.
   */
  async drain(withinMs: number): Promise<boolean> {
    const deadline = Date.now() + withinMs;
    for (;;) {
      let settled = false;
      void Promise.all(this.pending.splice(0)).then(() => {
        settled = true;
      });
      const finished = await wf.condition(
        () => settled && wf.allHandlersFinished(),
        Math.max(1, deadline - Date.now()),
        { summary: 'finishing ledger writes and notifications' },
      );
      if (!finished) return false;
      if (this.pending.length === 0) return true;
    }
  }

  notify(
    kind: NotificationKind,
    roles: string[],
    text: string,
    extra: { waitingFor?: string; command?: string; step?: string } = {},
  ): void {
    const s = this.ready().state;
    s.pagedRoles = [...new Set([...(s.pagedRoles ?? []), ...roles])];
    const n = ++this.notifySeq;
    // Named by its number and recipients, so two notifications that fail alike are two entries a person can tell apart.
    const which = `notification ${n} (${kind} to ${roles.join(', ') || 'nobody'})`;
    this.pending.push(
      wf.CancellationScope.nonCancellable(() =>
        notifier.notify({
          kind,
          workflowId: this.incidentId,
          title: s.title,
          severity: s.severity,
          roles,
          text,
          ...extra,
          ...(s.drill ? { drill: s.drill } : {}),
          idempotencyKey: `${wf.workflowInfo().runId}/notify/${n}`,
        }),
      )
        .then((r) => {
          if (r.failed > 0)
            this.record(
              'notify-failed',
              `${which}: ${r.failed} of ${r.delivered + r.failed} deliveries failed`,
            );
        })
        .catch((error: unknown) => this.record('notify-failed', `${which} failed: ${errorMessage(error)}`)),
    );
  }

  /** Search attributes and the Temporal UI's details; written only when something a person filters on changed. */
  publish(): void {
    const s = this.ready().state;
    s.awaitingApproval = s.steps.filter((st) => st.status === 'awaiting-approval').map((st) => st.id);
    const attributes = JSON.stringify([s.severity, s.status, s.awaitingApproval]);
    const key = JSON.stringify([attributes, s.waitingFor]);
    if (key === this.published) return;
    this.published = key;
    // Each upsert is a history event: a new "waiting for" alone changes only the details below.
    const unchanged = attributes === this.publishedAttributes;
    this.publishedAttributes = attributes;
    if (!unchanged || !wf.patched(UPSERT_ONLY_CHANGES))
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
      ...s.awaitingApproval.map((id) => `Approve: \`incidentctl approve ${this.incidentId} ${id}\``),
    ];
    wf.setCurrentDetails(lines.join('\n\n'));
  }

  setStatus(status: IncidentStatus, waitingFor: string): void {
    const s = this.ready().state;
    s.status = status;
    s.waitingFor = waitingFor;
    this.publish();
  }

  /** One level up the runbook's escalation chain (approval timeouts, a stuck plan, a person's request). */
  escalate(by: string | Identity, reason: string): void {
    const { state: s, snapshot: snap } = this.ready();
    const chain = snap.runbook.escalation;
    s.escalationLevel = Math.min(s.escalationLevel + 1, chain.length - 1);
    this.escalateTo(chain[s.escalationLevel] as string, by, reason);
  }

  escalateTo(role: string, by: string | Identity, reason: string, kind?: 'acknowledgement'): void {
    const s = this.ready().state;
    this.record('escalated', `escalated to ${role}: ${reason}`, by);
    this.toLedger('escalated', { to: role, reason, ...(kind ? { kind } : {}) }, by);
    this.notify('escalated', [role], `Escalated to ${role}: ${reason}`, { waitingFor: s.waitingFor });
  }

  /** Moves alerts delivered by signals into the incident's state; repeats count as deliveries. */
  takeAlerts(): void {
    const s = this.ready().state;
    for (const alert of this.bufferedAlerts.splice(0)) {
      const known = s.alerts[alert.fingerprint];
      if (known && known.status === alert.status) {
        known.deliveries++;
        known.lastSeen = this.now();
        continue;
      }
      const alertname = alert.labels.alertname ?? 'unnamed';
      s.alerts[alert.fingerprint] = {
        fingerprint: alert.fingerprint,
        alertname,
        status: alert.status,
        firstSeen: known?.firstSeen ?? this.now(),
        lastSeen: this.now(),
        deliveries: (known?.deliveries ?? 0) + 1,
        ...(alert.annotations.summary ? { summary: alert.annotations.summary.slice(0, 300) } : {}),
      };
      this.record(
        `alert-${alert.status}`,
        `${alertname} ${alert.status}${alert.annotations.summary ? `: ${alert.annotations.summary.slice(0, 200)}` : ''}`,
      );
      this.alertVersion++;
    }
  }
}
