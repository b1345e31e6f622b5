import * as wf from '@temporalio/workflow';
import { formatDuration } from '../../domain/duration.js';
import { responseTimeMs } from '../../domain/severity.js';
import type { Incident } from './context.js';

/** Escalates each time the severity's response time passes without an acknowledgement. */
export async function watchAcknowledgement(inc: Incident): Promise<void> {
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
