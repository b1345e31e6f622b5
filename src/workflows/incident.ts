import * as wf from '@temporalio/workflow';
import { incidentTriggerSchema } from '../domain/commands.js';
import { isHealthy, nextStep } from '../domain/plan.js';
import { awaitApproval, stillNeededBeforeActing } from './incident/approval.js';
import { Incident } from './incident/context.js';
import { watchAcknowledgement } from './incident/deadlines.js';
import { runProbes } from './incident/diagnosis.js';
import { registerIncidentHandlers, stepOf } from './incident/handlers.js';
import { openIncident } from './incident/opening.js';
import { runStep } from './incident/remediation.js';
import { closeCancelled, finish, resolveIncident } from './incident/resolution.js';
import type { IncidentOutcome, IncidentWorkflowInput } from './incident/types.js';
import { BOUNDED_DRAIN, DRAIN_MS } from './incident/resolution.js';

export type { IncidentOutcome, IncidentWorkflowInput } from './incident/types.js';

/** While nothing is left to try, how often the incident looks at the platform again. */
const RECHECK_MS = 15 * 60_000;

/**
 * One incident, from the first alert to its resolution: open → diagnose → plan / approve / act / verify →
 * resolve → report. The parts live in ./incident/; this function is the story.
 */
export async function incidentWorkflow(input: IncidentWorkflowInput): Promise<IncidentOutcome> {
  const parsedTrigger = incidentTriggerSchema.safeParse(input.trigger);
  if (!parsedTrigger.success) {
    // Fail the run visibly instead of retrying a workflow task that can never succeed.
    throw wf.ApplicationFailure.nonRetryable(
      `invalid incident trigger: ${parsedTrigger.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
      'InvalidTrigger',
    );
  }
  const inc = new Incident(parsedTrigger.data, input);
  registerIncidentHandlers(inc);

  /** Continues as new with everything the incident knows; only called where the plan loop can resume. */
  async function continueAsNew(): Promise<never> {
    const r = inc.ready();
    if (wf.patched(BOUNDED_DRAIN)) {
      await inc.drain(DRAIN_MS);
    } else {
      await Promise.all(inc.pending.splice(0));
      await wf.condition(wf.allHandlersFinished);
    }
    inc.takeAlerts();
    return wf.continueAsNew<typeof incidentWorkflow>({
      trigger: { ...inc.trigger, alerts: [] },
      historyLimit: inc.historyLimit,
      ...(input.occurrence ? { occurrence: input.occurrence } : {}),
      carried: {
        state: r.state,
        snapshot: r.snapshot,
        ledgerSeq: inc.ledgerSeq,
        ackEscalations: inc.ackEscalations,
        stuckEscalated: inc.stuckEscalated,
        ...(inc.unwritten.size ? { unwrittenLedgerEvents: [...inc.unwritten.values()] } : {}),
      },
    });
  }

  // The incident's work runs in its own scope so that a person's `cancel` can stop it the way a Temporal
  // cancel request does; either way the incident closes with a trace (closeCancelled).
  const work = new wf.CancellationScope();
  inc.cancelWork = () => work.cancel();
  let outcome: IncidentOutcome;
  try {
    outcome = await work.run(() => handleIncident(inc, continueAsNew));
  } catch (error) {
    if (!wf.isCancellation(error) || !inc.state) throw error;
    const cancelled = await wf.CancellationScope.nonCancellable(() => closeCancelled(inc));
    // A Temporal cancel request closes the run as cancelled; a person's `cancel` completes it.
    if (!inc.cancelRequest) throw error;
    outcome = cancelled;
  }
  return finish(inc, input, outcome);
}

/** Open (or resume after continue-as-new), then plan, approve, act and verify until resolved. */
async function handleIncident(inc: Incident, continueAsNew: () => Promise<never>): Promise<IncidentOutcome> {
  if (!inc.state || !inc.snapshot) {
    await openIncident(inc);
  } else {
    inc.takeAlerts();
    inc.publish();
  }

  const { state: s, snapshot } = inc.ready();
  const rb = snapshot.runbook;
  void watchAcknowledgement(inc).catch((error: unknown) => {
    if (!wf.isCancellation(error))
      inc.record('deadline-failed', `acknowledgement watcher stopped: ${String(error)}`);
  });
  while (!inc.resolveRequested) {
    const spec = nextStep(
      rb,
      s.findings,
      Object.fromEntries(s.steps.map((st) => [st.id, { runs: st.runs, rejected: st.status === 'rejected' }])),
    );
    if (spec) {
      inc.stuckEscalated = false;
      const st = stepOf(inc, spec.id).st;
      if (
        spec.risk === 'high' &&
        st.status !== 'approved' &&
        !(await awaitApproval(inc, spec, st, continueAsNew))
      )
        continue;
      if (inc.resolveRequested) break;
      if (spec.risk === 'high' && !(await stillNeededBeforeActing(inc, spec, st))) continue;
      await runStep(inc, spec, st);
      continue;
    }
    const healthy = isHealthy(rb, s.findings);
    const alerts = Object.values(s.alerts);
    const alertsSettled = !rb.resolve.alertsResolved || alerts.every((a) => a.status === 'resolved');
    const recovered = s.steps.some((st) => st.status === 'recovered');
    if (healthy && alertsSettled && (recovered || alerts.length > 0)) {
      inc.resolveRequested = true;
      s.resolvedBy = 'system';
      s.resolutionSummary ??= recovered ? 'recovered after remediation' : 'recovered; alerts resolved';
      break;
    }
    const attempted = s.steps.some((st) => st.runs > 0 || st.status === 'rejected');
    if (healthy) {
      inc.setStatus('Monitoring', 'alerts to resolve, or a person to resolve the incident');
    } else if (attempted) {
      if (!inc.stuckEscalated) {
        inc.stuckEscalated = true;
        inc.setStatus('Escalated', 'a person: no runbook step is left to try');
        inc.escalate('system', 'the runbook has no step left to try and the platform is not healthy');
        inc.notify('stuck', [s.team], `No automated step left for ${s.title}; a person must act`, {
          waitingFor: s.waitingFor,
        });
      }
    } else {
      inc.setStatus(
        'Investigating',
        s.tasks.some((t) => t.status === 'open') ? 'a person: open manual tasks' : 'a person to investigate',
      );
    }
    const seen = inc.alertVersion;
    await wf.condition(
      () => inc.resolveRequested || inc.alertVersion !== seen || inc.historyTooLong(),
      RECHECK_MS,
      { summary: 'waiting for people or alerts' },
    );
    if (!inc.resolveRequested && inc.historyTooLong()) await continueAsNew();
    if (!inc.resolveRequested)
      await runProbes(inc, undefined, inc.alertVersion !== seen ? 'new alerts' : 'periodic re-check');
  }

  return resolveIncident(inc);
}
