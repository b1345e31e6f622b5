import * as wf from '@temporalio/workflow';
import { formatDuration } from '../../domain/duration.js';
import { responseTimeMs } from '../../domain/severity.js';
import type { Incident } from './context.js';

/** Version marker: incidents opened before it keep the deadline they armed at open and one shared level. */
export const ACK_DEADLINE_FOLLOWS_SEVERITY = 'ack-deadline-follows-severity';

/**
 * Escalates each time the severity's response time passes without an acknowledgement, counted from the
 * moment the incident opened (its first alert). The deadline is re-armed when the severity changes, and each
 * level reaches a role of the runbook's chain (on-call, the runbook's team, the manager) not yet paged.
 */
export async function watchAcknowledgement(inc: Incident): Promise<void> {
  if (!wf.patched(ACK_DEADLINE_FOLLOWS_SEVERITY)) return watchAcknowledgementV1(inc);
  const { state: s, snapshot: snap } = inc.ready();
  const openedAt = Date.parse(s.openedAt);
  const done = () => Boolean(s.acknowledgedAt || s.resolvedAt || inc.resolveRequested);
  for (;;) {
    const level = s.ackLevel ?? 0;
    const role = snap.runbook.escalation.find((r) => !(s.pagedRoles ?? []).includes(r));
    if (done() || !role) return;
    const severity = s.severity;
    const after = (level + 1) * responseTimeMs[severity];
    const remaining = openedAt + after - Date.now();
    if (remaining > 0) {
      await wf.condition(() => done() || s.severity !== severity, remaining, {
        summary: `acknowledgement deadline (${severity})`,
      });
      // Acknowledged, resolved, or re-armed for a new severity: look again.
      if (done() || s.severity !== severity || Date.now() < openedAt + after) continue;
    }
    s.ackLevel = level + 1;
    inc.escalateTo(
      role,
      'system',
      `not acknowledged within ${formatDuration(after)} (${severity})`,
      'acknowledgement',
    );
  }
}

/** The watcher incidents opened before ACK_DEADLINE_FOLLOWS_SEVERITY run (kept for replay). */
async function watchAcknowledgementV1(inc: Incident): Promise<void> {
  const { snapshot: snap } = inc.ready();
  const openedAt = Date.parse(inc.ready().state.openedAt);
  while (inc.ackEscalations < snap.runbook.escalation.length - 1) {
    const s = inc.ready().state;
    const due = openedAt + (inc.ackEscalations + 1) * responseTimeMs[s.severity];
    const done = () => Boolean(s.acknowledgedAt || s.resolvedAt || inc.resolveRequested);
    if (done()) return;
    const remaining = due - Date.now();
    if (remaining > 0 && (await wf.condition(done, remaining, { summary: 'acknowledgement deadline' })))
      return;
    inc.ackEscalations++;
    inc.escalate(
      'system',
      `not acknowledged within ${formatDuration(inc.ackEscalations * responseTimeMs[s.severity])} (${s.severity})`,
    );
  }
}
