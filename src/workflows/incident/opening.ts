import type { LoadedRunbook } from '../../domain/activity-contract.js';
import { effectiveSeverity } from '../../domain/plan.js';
import { errorMessage, runbooks } from './activities.js';
import { lastResortTriage } from './last-resort.js';
import type { Incident } from './context.js';
import { runProbes } from './diagnosis.js';

const FALLBACK_RUNBOOK = 'triage';

/** Loads the runbook and contacts, opens the incident, tells people, and runs the first diagnosis. */
export async function openIncident(inc: Incident): Promise<void> {
  const trigger = inc.trigger;
  let loaded: LoadedRunbook;
  let loadProblem: string | undefined;
  try {
    loaded = await runbooks().loadRunbook({ runbookId: trigger.runbookId });
  } catch (error) {
    // A missing or broken runbook must not lose the incident: it opens as triage and says why, and when even
    // triage cannot be loaded, as the triage built into the workflow.
    loadProblem = `runbook "${trigger.runbookId}" could not be loaded (${errorMessage(error)})`;
    try {
      if (trigger.runbookId === FALLBACK_RUNBOOK) throw error;
      loaded = await runbooks().loadRunbook({ runbookId: FALLBACK_RUNBOOK });
      loadProblem += `; opened as ${FALLBACK_RUNBOOK}`;
    } catch (fallbackError) {
      if (fallbackError !== error)
        loadProblem += `; nor could ${FALLBACK_RUNBOOK} (${errorMessage(fallbackError)})`;
      loadProblem += '; opened with the built-in triage';
      loaded = lastResortTriage();
    }
  }
  inc.snapshot = { runbook: loaded.runbook, runbookHash: loaded.runbookHash, contacts: loaded.contacts };
  const rb = loaded.runbook;
  inc.state = {
    incidentId: inc.incidentId,
    title: trigger.title ?? rb.title,
    runbookId: rb.id,
    runbookHash: loaded.runbookHash,
    scope: trigger.scope,
    source: trigger.source,
    severity: trigger.severity ? effectiveSeverity(rb, {}, trigger.severity) : rb.severity.default,
    team: rb.team,
    status: 'Investigating',
    openedAt: inc.now(),
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
  inc.takeAlerts();
  const s = inc.state;
  const opener = trigger.declaredBy ?? trigger.source;
  if (loadProblem) inc.record('runbook-problem', loadProblem);
  inc.record(
    'opened',
    `${s.severity} incident opened from ${trigger.source} (runbook ${rb.id}@${loaded.runbookHash.slice(0, 12)})`,
    opener,
  );
  if (s.drill) {
    inc.record(
      'drill',
      `this is a drill: notifications ${s.drill.notify ? 'are marked DRILL and sent' : 'are marked DRILL and only logged, not sent'}`,
    );
  }
  inc.toLedger(
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
  inc.publish();
  const roles = [...new Set([rb.team, ...(s.severity === 'P3' ? [] : ['on-call'])])];
  inc.notify('opened', roles, `${s.severity} ${s.title}: incident opened`, {
    command: `incidentctl ack ${inc.incidentId}`,
  });
  for (const apply of inc.earlySignals.splice(0)) apply();
  await runProbes(inc, undefined, 'initial diagnosis');
}
