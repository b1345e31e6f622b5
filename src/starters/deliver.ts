import {
  WorkflowExecutionAlreadyStartedError,
  WorkflowNotFoundError,
  type Client,
  type WorkflowHandleWithSignaledRunId,
} from '@temporalio/client';
import { drillOf, matchRunbook, scopeOf, type Alert } from '../domain/alerts.js';
import type { IncidentTrigger } from '../domain/commands.js';
import { incidentWorkflowId } from '../domain/incident-key.js';
import { notAllowedNamespace } from '../domain/namespaces.js';
import type { Runbook } from '../domain/runbook.js';
import type { Severity } from '../domain/severity.js';
import { alertsSignal, IncidentDrill, TASK_QUEUE } from '../workflows/api.js';
import type { incidentWorkflow } from '../workflows/incident.js';

export interface Delivery {
  workflowId: string;
  runbookId: string;
  scope: string;
  alerts: number;
  /** False when only resolved alerts came for an incident that is no longer open: nothing to tell. */
  delivered: boolean;
  /**
   * The run signalWithStart signalled (a run that was already open, or the one it started); absent for
   * resolved alerts, which are only ever signalled to a run that is open.
   */
  runId?: string;
}

export interface StartOptions {
  client: Client;
  taskQueue?: string;
  /** Namespaces incidents act in (ACTION_NAMESPACES): alerts for another go to the fallback runbook. */
  actionNamespaces?: readonly string[];
}

type MatchableRunbook = Pick<Runbook, 'id' | 'title' | 'match'>;

/**
 * Routes alerts to runbooks (the fallback runbook when none matches) and delivers each group to the incident
 * of (runbook, scope) with signalWithStart: the first delivery opens the incident, later and concurrent ones
 * join it. Resolved alerts are delivered to an open incident and dropped when it is already closed.
 */
export async function deliverAlerts(
  options: StartOptions,
  runbooks: MatchableRunbook[],
  alerts: Alert[],
  source: IncidentTrigger['source'],
): Promise<Delivery[]> {
  const groups = new Map<
    string,
    { runbook: MatchableRunbook; scope: string; alerts: Alert[]; title: string; blocked: boolean }
  >();
  for (const alert of alerts) {
    const scope = scopeOf(alert.labels);
    const refusal = options.actionNamespaces && notAllowedNamespace(options.actionNamespaces, scope);
    // Off the allowlist: a triage incident (the fallback runbook, which has no actions) whose title says why.
    const runbook = refusal ? runbooks.find((r) => r.match.fallback) : matchRunbook(runbooks, alert.labels);
    if (!runbook) throw new Error('no runbook matches and no fallback runbook exists');
    const key = incidentWorkflowId(runbook.id, scope);
    const title = refusal
      ? `${alert.labels.alertname ?? 'alert'}: no runbook action runs here, ${refusal}`.slice(0, 300)
      : runbook.title;
    const group = groups.get(key) ?? { runbook, scope, alerts: [], title, blocked: Boolean(refusal) };
    group.alerts.push(alert);
    groups.set(key, group);
  }
  return Promise.all(
    [...groups.entries()].map(async ([workflowId, g]): Promise<Delivery> => {
      const result = { workflowId, runbookId: g.runbook.id, scope: g.scope, alerts: g.alerts.length };
      if (g.alerts.every((a) => a.status === 'resolved')) {
        // A late "resolved" must not open a new incident (and page people) for one that is already closed.
        try {
          await options.client.workflow.getHandle(workflowId).signal(alertsSignal, { alerts: g.alerts });
          return { ...result, delivered: true };
        } catch (error) {
          if (error instanceof WorkflowNotFoundError) return { ...result, delivered: false };
          throw error;
        }
      }
      // Drill alerts (label drill="true", sent by `incidentctl drill`) open a drill incident; they join an
      // incident that is already open as it is.
      const drill = drillOf(g.alerts);
      const handle = await signalIncident(
        options,
        {
          runbookId: g.runbook.id,
          scope: g.scope,
          source,
          ...(drill ? { drill } : {}),
          ...(g.blocked ? { title: g.title } : {}),
        },
        g.alerts,
        g.title,
      );
      return { ...result, delivered: true, runId: handle.signaledRunId };
    }),
  );
}

/**
 * Opens or joins the incident of a trigger's (runbook, scope); the one place incidents are started. A drill
 * trigger also sets the IncidentDrill search attribute at start (it is ignored when the incident was open).
 */
export async function signalIncident(
  { client, taskQueue = TASK_QUEUE }: StartOptions,
  trigger: IncidentTrigger,
  alerts: Alert[],
  title?: string,
): Promise<WorkflowHandleWithSignaledRunId<typeof incidentWorkflow>> {
  const workflowId = incidentWorkflowId(trigger.runbookId, trigger.scope);
  const severity: Severity | undefined = trigger.severity;
  const signalWithStart = () =>
    client.workflow.signalWithStart<typeof incidentWorkflow, [{ alerts: Alert[] }]>('incidentWorkflow', {
      taskQueue,
      workflowId,
      args: [{ trigger: { ...trigger, alerts: [] } }],
      signal: alertsSignal,
      signalArgs: [{ alerts }],
      staticSummary: `${trigger.drill ? 'DRILL ' : ''}${severity ? `${severity} ` : ''}${title ?? trigger.title ?? trigger.runbookId} (${trigger.scope})`,
      staticDetails: `${trigger.drill ? `**DRILL** (a rehearsal; notifications ${trigger.drill.notify ? 'are sent' : 'are only logged'}). ` : ''}Runbook \`${trigger.runbookId}\`, scope \`${trigger.scope}\`, opened from ${trigger.source}${
        trigger.declaredBy ? ` by ${trigger.declaredBy}` : ''
      }.`,
      ...(trigger.drill ? { typedSearchAttributes: [{ key: IncidentDrill, value: true }] } : {}),
    });
  // Concurrent first deliveries race to start the run: the loser's start failed and signalled nothing, and the
  // run it lost to is open now, so the same call signals it. (Temporal's server retries this itself; its
  // time-skipping test server does not.)
  for (let attempt = 1; ; attempt++) {
    try {
      return await signalWithStart();
    } catch (error) {
      if (!(error instanceof WorkflowExecutionAlreadyStartedError) || attempt >= START_RACE_ATTEMPTS)
        throw error;
    }
  }
}

const START_RACE_ATTEMPTS = 3;
