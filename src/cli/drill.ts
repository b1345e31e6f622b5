import type { Findings } from '../domain/findings.js';
import type { IncidentState } from '../domain/incident.js';
import { incidentWorkflowId } from '../domain/incident-key.js';
import type { Severity } from '../domain/severity.js';
import type { ScenarioInfo, ScenarioName } from '../sandbox/scenarios.js';
import type { AlertmanagerWebhook } from '../starters/alertmanager-payload.js';
import { drillWebhook, type DrillAlert, type ReceiverAnswer } from './drill-alert.js';
import { buildDrillReport, clock, type DrillAction, type DrillReport } from './drill-report.js';
import { refused } from './errors.js';
import { clean, span } from './render.js';
import { sandboxUnavailable, type ScenarioList } from './sandbox-control.js';

// `incidentctl drill <scenario>`: rehearses one procedure end to end. It applies the scenario's fault on the
// sandbox, lets the product detect it (the alert the matching Prometheus rule would send, or the monitor
// schedules), follows the incident live, approves the scenario's remedy and completes its manual tasks when
// told who may, tells the sandbox when a vendor recovered, sends the alert's `resolved` once the platform is
// healthy (as Alertmanager would), and reports. Everything outside is reached through DrillIo, so the
// procedure itself runs against fakes in tests.

export interface DrillPlan {
  scenario: ScenarioInfo;
  via: 'alertmanager' | 'monitors';
  /** The namespace (incident scope) the drill targets. */
  scope: string;
  /** False with SANDBOX=off / --no-sandbox: no fault is applied, the target is already broken. */
  sandbox: boolean;
  /** Let the drill incident's notifications reach the contacts (marked DRILL). */
  notify: boolean;
  approveAs?: string;
  completeTasksAs?: string;
  /** Who runs the drill (the note it adds to the timeline). */
  by: string;
  /** Severity label of the drill alert (the runbook's default severity). */
  severity: Severity;
  /** How long after the fault the alert is sent: the `for:` of the Prometheus rule it stands for. */
  alertAfterMs?: number;
  timeoutMs: number;
  /** How often the incident is read; default 1 s. */
  pollMs?: number;
  /** How long the fault must be gone before the alert resolves (a rule's evaluation); default 3 s. */
  settleMs?: number;
  /** How long an escalated incident with nothing left to try is watched before the drill gives up; 10 s. */
  stuckMs?: number;
}

export interface DrillIo {
  /** The sandbox control API; absent without a sandbox. */
  control?: {
    /** Its base URL, for messages. */
    baseUrl: string;
    list(): Promise<ScenarioList>;
    apply(name: ScenarioName): Promise<void>;
    recover(name: ScenarioName): Promise<boolean>;
  };
  /** The Alertmanager receiver; absent with --via monitors. */
  receiver?: {
    ready(): Promise<void>;
    send(payload: AlertmanagerWebhook): Promise<ReceiverAnswer>;
  };
  temporal: {
    /** The latest run of a workflow id; undefined when there is none. */
    execution(workflowId: string): Promise<{ status: string; startTime: Date } | undefined>;
    status(workflowId: string): Promise<IncidentState>;
    approve(workflowId: string, step: string, by: string, reason: string): Promise<string>;
    completeTask(workflowId: string, task: string, by: string): Promise<string>;
    note(workflowId: string, by: string, text: string): Promise<string>;
    /** Resolves true once the run closed, false when `ms` passed first. */
    waitClosed(workflowId: string, ms: number): Promise<boolean>;
    /** Incidents of a scope opened since a moment: workflow id, runbook, drill mark. */
    openedSince(
      scope: string,
      since: Date,
    ): Promise<{ workflowId: string; runbook?: string; drill?: boolean }[]>;
  };
  now(): Date;
  sleep(ms: number): Promise<void>;
  /** One line of live progress (timeline entries, what the drill does). */
  progress(line: string): void;
}

const message = (error: unknown) => (error instanceof Error ? error.message : String(error));

/** Before breaking anything: the sandbox is up and healthy, the receiver answers, no incident is in the way. */
async function preflight(plan: DrillPlan, io: DrillIo, incidentId: string | undefined): Promise<void> {
  const name = plan.scenario.name;
  if (io.control) {
    const list = await io.control.list();
    if (list.kubernetes !== 'ready') {
      throw sandboxUnavailable(
        'the sandbox’s Kubernetes control plane is still starting (a first make start builds it: .data/kube-build.log);' +
          ' run the drill once GET /scenarios says kubernetes "ready"',
      );
    }
    if (list.active.length > 0) {
      throw refused(
        `the sandbox already has ${list.active.join(', ')} in force: a drill starts from a healthy platform` +
          ` (curl -X POST ${io.control.baseUrl}/scenarios/healthy clears every fault)`,
      );
    }
    if (!list.scenarios.some((s) => s.name === name)) {
      throw refused(`the sandbox does not offer scenario ${name}`);
    }
  }
  await io.receiver?.ready();
  if (!incidentId) return;
  const run = await io.temporal.execution(incidentId);
  if (run?.status !== 'RUNNING') return;
  const state = await io.temporal.status(incidentId);
  // A drill that just passed leaves its incident resolved and about to close: wait for that.
  if (state.resolvedAt && (await io.temporal.waitClosed(incidentId, 60_000))) return;
  throw refused(
    `incident ${incidentId} is open (${state.status}${state.drill ? ', a drill' : ''}): a drill needs an incident of its own;` +
      ` finish that one first (incidentctl show ${incidentId})`,
  );
}

export async function runDrill(plan: DrillPlan, io: DrillIo): Promise<DrillReport> {
  const { scenario } = plan;
  const name = scenario.name;
  const pollMs = plan.pollMs ?? 1_000;
  const settleMs = plan.settleMs ?? 3_000;
  const stuckMs = plan.stuckMs ?? 10_000;
  const started = io.now().getTime();
  const deadline = started + plan.timeoutMs;
  const expectedId = scenario.runbook ? incidentWorkflowId(scenario.runbook, plan.scope) : undefined;
  const actions: DrillAction[] = [];
  const warnings: string[] = [];
  const act = (action: string, detail: string) => {
    const at = io.now().toISOString();
    actions.push({ at, action, detail });
    io.progress(`${clock(at)}  drill: ${action}: ${detail}`);
  };
  const warnedAbout = new Set<string>();
  const warn = (text: string) => {
    if (warnedAbout.has(text)) return;
    warnedAbout.add(text);
    warnings.push(text);
    io.progress(`${clock(io.now().toISOString())}  drill: warning: ${text}`);
  };
  const timeLeft = () => deadline - io.now().getTime();

  await preflight(plan, io, expectedId);

  // ---- the fault ---------------------------------------------------------------------------------------
  if (io.control) {
    await io.control.apply(name);
    act('applied', `scenario ${name}: ${scenario.breaks}`);
  } else {
    act('no fault applied', `no sandbox: ${plan.scope} must already be broken the way ${name} breaks it`);
  }
  const faultAt = io.now();

  // ---- detection ---------------------------------------------------------------------------------------
  const alert: DrillAlert | undefined =
    plan.via === 'alertmanager' && scenario.alertname
      ? {
          scenario: name,
          alertname: scenario.alertname,
          scope: plan.scope,
          severity: plan.severity,
          notify: plan.notify,
          breaks: scenario.breaks,
          startsAt: faultAt,
        }
      : undefined;
  let incidentId: string | undefined;
  const otherRunbooks = new Set<string>();
  let timedOut = false;

  if (alert && io.receiver) {
    const wait = Math.min(plan.alertAfterMs ?? 0, Math.max(0, timeLeft()));
    if (wait > 0) {
      io.progress(
        `${clock(io.now().toISOString())}  drill: the rule for ${alert.alertname} fires after ${span(wait)} (its for:); waiting`,
      );
      await io.sleep(wait);
    }
    const answer = await io.receiver.send(drillWebhook(alert, 'firing', io.now()));
    const mine = answer.incidents.find((i) => i.runbookId === scenario.runbook) ?? answer.incidents[0];
    for (const i of answer.incidents) if (i.runbookId !== scenario.runbook) otherRunbooks.add(i.runbookId);
    incidentId = mine?.workflowId;
    act(
      'sent alert',
      `${alert.alertname} firing (drill="true"${plan.notify ? ', drill_notify="true"' : ''}) to the receiver: ${
        answer.incidents.map((i) => `${i.workflowId} (runbook ${i.runbookId})`).join(', ') || 'no incident'
      }`,
    );
  } else if (expectedId) {
    io.progress(`${clock(io.now().toISOString())}  drill: waiting for the monitors to open ${expectedId}`);
    let polls = 0;
    while (!incidentId) {
      if (timeLeft() <= 0) {
        timedOut = true;
        break;
      }
      const run = await io.temporal.execution(expectedId).catch(() => undefined);
      if (run && run.startTime.getTime() >= faultAt.getTime() - 2_000) {
        incidentId = expectedId;
        break;
      }
      if (polls++ % 5 === 0) {
        const opened = await io.temporal.openedSince(plan.scope, faultAt).catch(() => []);
        for (const o of opened) if (o.runbook && o.runbook !== scenario.runbook) otherRunbooks.add(o.runbook);
      }
      await io.sleep(pollMs * 2);
    }
    if (incidentId) act('detected', `the monitors opened ${incidentId}`);
  }

  // ---- following the incident --------------------------------------------------------------------------
  let state: IncidentState | undefined;
  let diagnosis: Findings | undefined;
  let stuck: string | undefined;
  const seen = new Set<string>();
  const printNew = (s: IncidentState) => {
    for (const e of s.timeline) {
      const key = `${e.at}|${e.type}|${e.by}|${e.text}`;
      if (seen.has(key)) continue;
      seen.add(key);
      io.progress(
        `${clock(e.at)}  ${e.type}${e.by && e.by !== 'system' ? ` (${clean(e.by)})` : ''}: ${clean(e.text).slice(0, 300)}`,
      );
    }
  };

  const read = async (id: string): Promise<IncidentState | undefined> => {
    try {
      return await io.temporal.status(id);
    } catch (error) {
      warn(`could not read ${id}: ${message(error)}`);
      return undefined;
    }
  };

  if (incidentId) {
    while (!state && timeLeft() > 0) {
      state = await read(incidentId);
      if (!state) await io.sleep(pollMs);
    }
    if (state && scenario.runbook && state.runbookId !== scenario.runbook) {
      printNew(state);
      act('stopped', `the incident runs runbook ${state.runbookId}, not ${scenario.runbook}`);
    } else if (state) {
      const id = incidentId;
      if (!state.drill) {
        warn(
          plan.via === 'monitors'
            ? 'the monitors opened an unmarked incident (they cannot tell a drill from a fault): its notifications went out as for a real one'
            : 'the incident is not marked as a drill: something opened it before the drill alert (a monitor?), so its notifications went out as for a real one',
        );
      }
      await io.temporal
        .note(
          id,
          plan.by,
          `DRILL ${name} (incidentctl drill via ${plan.via}${plan.sandbox ? '' : ', no sandbox'}): ${scenario.breaks}`,
        )
        .catch((error: unknown) => warn(`could not add the drill note: ${message(error)}`));

      const tried = new Set<string>();
      const told = new Set<string>();
      let recoverTold = false;
      let resolvedSent = false;
      let scenarioActive = io.control !== undefined;
      let inactiveSince: number | undefined;
      let stuckSince: number | undefined;
      for (;;) {
        if (timeLeft() <= 0) {
          timedOut = true;
          break;
        }
        const s = await read(id);
        if (!s) {
          await io.sleep(pollMs);
          continue;
        }
        state = s;
        printNew(s);
        if (!diagnosis && Object.keys(s.findings).length > 0) diagnosis = structuredClone(s.findings);
        if (s.resolvedAt) break;
        const now = () => io.now().getTime();

        for (const step of s.awaitingApproval) {
          const remedy = scenario.steps.includes(step);
          if (remedy && plan.approveAs) {
            if (tried.has(`approve:${step}`)) continue;
            tried.add(`approve:${step}`);
            try {
              const verdict = await io.temporal.approve(id, step, plan.approveAs, `drill ${name}`);
              act('approved', `${step} as ${plan.approveAs}: ${verdict}`);
            } catch (error) {
              warn(`approving ${step} as ${plan.approveAs} was refused: ${message(error)}`);
            }
          } else if (!told.has(`approve:${step}`)) {
            told.add(`approve:${step}`);
            io.progress(
              `${clock(io.now().toISOString())}  drill: step ${step} waits for a person${
                remedy ? ' (no --approve-as)' : ` (not the remedy of ${name}; the drill leaves it alone)`
              }: incidentctl approve ${id} ${step}`,
            );
          }
        }

        for (const task of s.tasks.filter((t) => t.status === 'open')) {
          const ours = scenario.tasks.includes(task.id);
          if (ours && plan.completeTasksAs) {
            if (tried.has(`task:${task.id}`)) continue;
            tried.add(`task:${task.id}`);
            try {
              const verdict = await io.temporal.completeTask(id, task.id, plan.completeTasksAs);
              act('completed task', `${task.id} as ${plan.completeTasksAs}: ${verdict}`);
            } catch (error) {
              warn(`completing task ${task.id} as ${plan.completeTasksAs} was refused: ${message(error)}`);
            }
          } else if (ours && !told.has(`task:${task.id}`)) {
            told.add(`task:${task.id}`);
            io.progress(
              `${clock(io.now().toISOString())}  drill: manual task ${task.id} waits for a person (no --complete-tasks-as): incidentctl task done ${id} ${task.id}`,
            );
          }
        }

        // The vendor or the review recovers once the people did their part.
        if (
          io.control &&
          scenario.recoversWhenTold &&
          !recoverTold &&
          scenario.tasks.length > 0 &&
          scenario.tasks.every((t) => s.tasks.find((x) => x.id === t)?.status === 'done')
        ) {
          recoverTold = true;
          const recovered = await io.control.recover(name);
          act(
            'upstream recovered',
            recovered
              ? `told the sandbox that ${name} is over (its manual tasks are done)`
              : `${name} was no longer in force`,
          );
        }

        if (io.control) {
          try {
            scenarioActive = (await io.control.list()).active.includes(name);
          } catch (error) {
            warn(message(error));
          }
          if (scenarioActive) inactiveSince = undefined;
          else inactiveSince ??= now();
        }

        // As Alertmanager would once the rule stops firing: the sandbox no longer has the fault, or (without
        // a sandbox) the incident itself sees the platform healthy.
        if (alert && io.receiver && !resolvedSent) {
          const healthy = io.control
            ? inactiveSince !== undefined && now() - inactiveSince >= settleMs
            : s.status === 'Monitoring';
          if (healthy) {
            resolvedSent = true;
            try {
              await io.receiver.send(drillWebhook(alert, 'resolved', io.now()));
              act(
                'sent alert',
                `${alert.alertname} resolved: ${io.control ? `the sandbox no longer has ${name} in force` : 'the incident sees the platform healthy'}`,
              );
            } catch (error) {
              resolvedSent = false;
              warn(`could not send the resolved alert: ${message(error)}`);
            }
          }
        }

        // Escalated with nothing left to try while the fault is still there: it will not resolve by itself.
        const waitsForPeople = s.tasks.some((t) => t.status === 'open' && scenario.tasks.includes(t.id));
        if (io.control && s.status === 'Escalated' && scenarioActive && !waitsForPeople) {
          stuckSince ??= now();
          if (now() - stuckSince >= stuckMs) {
            stuck = `the incident escalated with nothing left to try while ${name} is still in force (waiting for ${s.waitingFor})`;
            act('stopped', stuck);
            break;
          }
        } else {
          stuckSince = undefined;
        }
        await io.sleep(pollMs);
      }

      if (state?.resolvedAt) {
        // The incident closes once its last notifications and the report workflow are started.
        const closed = await io.temporal.waitClosed(id, Math.max(10_000, Math.min(60_000, timeLeft())));
        if (!closed) warn(`${id} resolved but had not closed a minute later`);
        const final = await read(id);
        if (final) {
          printNew(final);
          state = final;
        }
      }
    }
  }

  // Whatever else the fault opened in the scope (a monitor's incident of another runbook, say) is left to
  // people; say so, since it may be unmarked and stands in the way of the next drill of that runbook.
  const others = await io.temporal.openedSince(plan.scope, faultAt).catch(() => []);
  for (const o of others) {
    if (o.workflowId === incidentId) continue;
    if (o.runbook) otherRunbooks.add(o.runbook);
    warn(
      `${o.workflowId} also opened during the drill${o.drill ? ' (a drill)' : ' (not marked as a drill: its notifications went out)'}; it is left to people (incidentctl show ${o.workflowId})`,
    );
  }

  return buildDrillReport({
    scenario,
    via: plan.via,
    scope: plan.scope,
    sandbox: plan.sandbox,
    notify: plan.notify,
    faultAt: faultAt.toISOString(),
    ...(incidentId ? { incidentId } : {}),
    ...(state ? { state } : {}),
    ...(diagnosis ? { diagnosis } : {}),
    otherRunbooks: [...otherRunbooks],
    timedOut,
    ...(stuck ? { stuck } : {}),
    actions,
    warnings,
  });
}
