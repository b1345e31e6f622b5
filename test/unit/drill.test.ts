import { describe, expect, it } from 'vitest';
import { drillOf } from '../../src/domain/alerts.js';
import type { IncidentState, StepState, TaskState } from '../../src/domain/incident.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { scenarioCatalog, scenarioInfo, type ScenarioName } from '../../src/sandbox/scenarios.js';
import {
  alertmanagerWebhookSchema,
  toDomainAlert,
  type AlertmanagerWebhook,
} from '../../src/starters/alertmanager-payload.js';
import { drillLabels, drillWebhook, labelFingerprint, type DrillAlert } from '../../src/cli/drill-alert.js';
import {
  buildDrillReport,
  drillReportSchema,
  judgeDrill,
  renderDrillReport,
  type DrillFacts,
} from '../../src/cli/drill-report.js';
import { runDrill, type DrillIo, type DrillPlan } from '../../src/cli/drill.js';
import { CliError, ExitCode } from '../../src/cli/errors.js';
import type { ReceiverAnswer } from '../../src/cli/drill-alert.js';

const scope = 'customer-success-fte';
const at = (s: number) => new Date(Date.UTC(2026, 10, 27, 3, 0, s)).toISOString();

const drillAlert = (over: Partial<DrillAlert> = {}): DrillAlert => ({
  scenario: 'api-down',
  alertname: 'FTEAllChannelsDown',
  scope,
  severity: 'P1',
  notify: false,
  breaks: 'the fte-api pods crash-loop',
  startsAt: new Date(at(0)),
  ...over,
});

describe('the drill alert', () => {
  it('is the webhook Alertmanager would send, marked as a drill', () => {
    const payload = drillWebhook(drillAlert(), 'firing', new Date(at(1)));
    const parsed = alertmanagerWebhookSchema.parse(payload);
    expect(parsed.status).toBe('firing');
    const [alert] = parsed.alerts.map(toDomainAlert);
    expect(alert?.labels).toEqual({
      alertname: 'FTEAllChannelsDown',
      namespace: scope,
      severity: 'critical',
      drill: 'true',
    });
    expect(alert?.endsAt).toBeUndefined();
    expect(alert?.annotations.summary).toMatch(/^DRILL api-down: /);
    expect(drillOf(parsed.alerts.map(toDomainAlert))).toEqual({ notify: false });
  });

  it('resolves with the same fingerprint and an end time', () => {
    const firing = drillWebhook(drillAlert(), 'firing', new Date(at(1)));
    const resolved = alertmanagerWebhookSchema.parse(
      drillWebhook(drillAlert(), 'resolved', new Date(at(90))),
    );
    expect(resolved.alerts[0]?.fingerprint).toBe(firing.alerts[0]?.fingerprint);
    expect(resolved.alerts[0]?.status).toBe('resolved');
    expect(toDomainAlert(resolved.alerts[0]!).endsAt).toBe(at(90));
  });

  it('carries drill_notify with --notify, and a warning severity below P1', () => {
    const labels = drillLabels(drillAlert({ notify: true, severity: 'P2' }));
    expect(labels).toMatchObject({ drill: 'true', drill_notify: 'true', severity: 'warning' });
    expect(labelFingerprint(labels)).toMatch(/^[0-9a-f]{16}$/);
    expect(labelFingerprint(labels)).not.toBe(labelFingerprint(drillLabels(drillAlert())));
    const alerts = drillWebhook(drillAlert({ notify: true }), 'firing', new Date()).alerts.map((a) =>
      toDomainAlert(alertmanagerWebhookSchema.shape.alerts.element.parse(a)),
    );
    expect(drillOf(alerts)).toEqual({ notify: true });
  });

  it('a real alert in the same delivery keeps the incident unmarked', () => {
    const drill = toDomainAlert(
      alertmanagerWebhookSchema.parse(drillWebhook(drillAlert(), 'firing', new Date())).alerts[0]!,
    );
    const real = {
      ...drill,
      fingerprint: 'real',
      labels: { alertname: 'FTEAllChannelsDown', namespace: scope },
    };
    expect(drillOf([drill, real])).toBeUndefined();
    expect(drillOf([])).toBeUndefined();
  });

  it('every scenario but healthy names the runbook and alert a drill needs', () => {
    for (const s of scenarioCatalog.filter((x) => x.name !== 'healthy')) {
      expect(s.runbook, s.name).toBeTruthy();
      expect(s.alertname, s.name).toMatch(/^FTE/);
    }
  });
});

// ---- the verdict ---------------------------------------------------------------------------------------

function step(id: string, over: Partial<StepState> = {}): StepState {
  return {
    id,
    title: id,
    action: 'rolloutRestart',
    risk: 'high',
    approvers: [],
    status: 'idle',
    runs: 0,
    ...over,
  };
}
function task(id: string, over: Partial<TaskState> = {}): TaskState {
  return { id, title: id, owner: 'ai-ml', status: 'open', ...over };
}

function incident(runbookId: string, over: Partial<IncidentState> = {}): IncidentState {
  return {
    incidentId: incidentWorkflowId(runbookId, scope),
    title: runbookId,
    runbookId,
    runbookHash: 'abc123abc123abc',
    scope,
    source: 'alertmanager',
    severity: 'P1',
    team: 'platform',
    status: 'Investigating',
    openedAt: at(2),
    newFailureMode: false,
    escalationLevel: 0,
    alerts: {},
    findings: {},
    steps: [],
    tasks: [],
    awaitingApproval: [],
    waitingFor: 'diagnosis',
    timeline: [],
    rejectedAttempts: 0,
    drill: { notify: false },
    ...over,
  };
}

const resolved = (over: Partial<IncidentState> = {}): Partial<IncidentState> => ({
  status: 'Resolved',
  resolvedAt: at(62),
  resolvedBy: 'system',
  resolutionSummary: 'recovered after remediation',
  timeToResolveMs: 60_000,
  ...over,
});

function facts(
  name: ScenarioName,
  state: IncidentState | undefined,
  over: Partial<DrillFacts> = {},
): DrillFacts {
  return {
    scenario: scenarioInfo(name),
    via: 'alertmanager',
    scope,
    sandbox: true,
    notify: false,
    faultAt: at(0),
    ...(state ? { incidentId: state.incidentId, state } : {}),
    otherRunbooks: [],
    timedOut: false,
    actions: [],
    warnings: [],
    ...over,
  };
}

describe('the drill verdict', () => {
  it('passes when the incident resolved by itself after the remedy verified recovery', () => {
    const state = incident('all-channels-down', {
      ...resolved(),
      steps: [
        step('restart-postgres'),
        step('restart-api', { status: 'recovered', runs: 1, approvedBy: 'alice', result: 'restarted' }),
      ],
      postIncidentWorkflowId: 'post-incident-all-channels-down--customer-success-fte--20261127T030002Z',
      findings: {
        'api-health': {
          probe: 'api-health',
          status: 'ok',
          summary: 'fine',
          metrics: {},
          evidence: [],
          at: at(60),
        },
      },
    });
    const report = buildDrillReport(
      facts('api-down', state, {
        diagnosis: {
          'api-health': {
            probe: 'api-health',
            status: 'down',
            summary: '503',
            metrics: {},
            evidence: [],
            at: at(3),
          },
        },
      }),
    );
    expect(drillReportSchema.parse(report)).toEqual(report);
    expect(report).toMatchObject({
      outcome: 'passed',
      passed: true,
      exitCode: 0,
      marked: true,
      runbook: { expected: 'all-channels-down', actual: 'all-channels-down', others: [] },
      times: { detectMs: 2_000, resolveMs: 60_000, totalMs: 62_000, acknowledgeMs: null },
      postIncidentWorkflowId: 'post-incident-all-channels-down--customer-success-fte--20261127T030002Z',
    });
    expect(report.steps.find((s) => s.id === 'restart-api')).toMatchObject({
      expected: true,
      approvedBy: 'alice',
      effect: 'restarted',
    });
    expect(report.findings.diagnosis).toEqual([{ probe: 'api-health', status: 'down', summary: '503' }]);
    const text = renderDrillReport(report);
    expect(text).toContain('PASSED');
    expect(text).toContain('restart-api  recovered  runs 1  (the remedy)  approved by alice');
    expect(text).toMatch(/detect\s+2s/);
    expect(text).toContain('nobody acknowledged');
  });

  it('fails with its own exit code when another runbook answered', () => {
    const report = buildDrillReport(facts('api-down', incident('triage')));
    expect(report).toMatchObject({ outcome: 'wrong-runbook', exitCode: ExitCode.drillWrongRunbook });
    expect(report.reasons[0]).toContain('expects all-channels-down');
    const none = judgeDrill(facts('api-down', undefined, { otherRunbooks: ['triage'] }));
    expect(none.outcome).toBe('wrong-runbook');
  });

  it('does not pass a resolution by hand, or one without the remedy', () => {
    const byHand = judgeDrill(
      facts(
        'api-down',
        incident('all-channels-down', {
          ...resolved({ resolvedBy: 'bob' }),
          steps: [step('restart-api', { status: 'recovered', runs: 1 })],
        }),
      ),
    );
    expect(byHand.outcome).toBe('not-resolved');
    expect(byHand.reasons[0]).toContain('by hand by bob');
    const noRemedy = judgeDrill(
      facts(
        'api-down',
        incident('all-channels-down', {
          ...resolved(),
          steps: [step('restart-api', { status: 'not-recovered', runs: 1 })],
        }),
      ),
    );
    expect(noRemedy).toMatchObject({ outcome: 'not-resolved' });
    expect(noRemedy.reasons[0]).toContain('restart-api not-recovered after 1 run(s)');
  });

  it('for a vendor or review scenario, the remedy ran and the tasks are done', () => {
    const ok = judgeDrill(
      facts(
        'escalation-spike',
        incident('high-escalation-rate', {
          ...resolved(),
          steps: [step('inform-human-team', { status: 'not-recovered', runs: 1, risk: 'low' })],
          tasks: [task('review-reasons', { status: 'done', doneBy: 'erin' }), task('tune-rules')],
        }),
      ),
    );
    expect(ok).toEqual({ outcome: 'passed', reasons: [] });
    const undone = judgeDrill(facts('twilio-outage', incident('whatsapp-channel-down', { ...resolved() })));
    expect(undone.outcome).toBe('not-resolved');
    expect(undone.reasons).toEqual(['manual task(s) not done: twilio-outage']);
    const report = buildDrillReport(
      facts('twilio-outage', incident('whatsapp-channel-down', { ...resolved() })),
    );
    expect(report.tasks).toEqual([
      { id: 'twilio-outage', title: '', status: 'not-opened', doneBy: null, expected: true },
    ]);
  });

  it('tells a timeout from a stuck incident', () => {
    const open = incident('all-channels-down', {
      status: 'AwaitingApproval',
      waitingFor: 'approval of restart-api',
    });
    expect(buildDrillReport(facts('api-down', open, { timedOut: true }))).toMatchObject({
      outcome: 'timeout',
      exitCode: ExitCode.drillTimeout,
    });
    expect(buildDrillReport(facts('api-down', open, { stuck: 'escalated, nothing left' }))).toMatchObject({
      outcome: 'not-resolved',
      exitCode: ExitCode.drillNotResolved,
      reasons: ['escalated, nothing left'],
    });
    expect(buildDrillReport(facts('api-down', undefined, { timedOut: true }))).toMatchObject({
      outcome: 'timeout',
      incidentId: null,
      reasons: ['no incident of all-channels-down opened before the timeout'],
    });
  });
});

// ---- the procedure, against fakes -----------------------------------------------------------------------

/**
 * A scripted sandbox, receiver and incident: the fault is repaired by the scenario's remedy step, vendor
 * scenarios by `recover`, and the incident resolves once the platform is healthy and the alert resolved.
 */
class FakeWorld {
  now = Date.parse(at(0));
  active = new Set<string>();
  sent: AlertmanagerWebhook[] = [];
  calls: string[] = [];
  progress: string[] = [];
  state: IncidentState | undefined;
  open = false;
  approveRefusal: string | undefined;

  constructor(
    readonly name: ScenarioName,
    readonly build: (world: FakeWorld) => IncidentState,
    readonly onApprove: (world: FakeWorld, step: string) => void = () => {},
    readonly opensAs?: string,
  ) {}

  clock = () => new Date(this.now);

  record(type: string, text: string, by = 'system') {
    this.state?.timeline.push({ at: new Date(this.now).toISOString(), type, text, by });
  }

  resolveIfHealthy() {
    const s = this.state;
    if (!s || s.resolvedAt) return;
    const alertsResolved = Object.values(s.alerts).every((a) => a.status === 'resolved');
    if (!this.active.has(this.name) && alertsResolved) {
      Object.assign(s, resolved({ resolvedAt: new Date(this.now).toISOString() }));
      s.postIncidentWorkflowId = `post-${s.incidentId}--x`;
      this.record('resolved', 'resolved after 1m');
    }
  }

  io(): DrillIo {
    const info = scenarioInfo(this.name);
    return {
      control: {
        baseUrl: 'http://sandbox.test',
        list: async () => ({
          scenarios: scenarioCatalog.map((s) => ({ ...s, active: this.active.has(s.name) })),
          active: [...this.active] as ScenarioName[],
          kubernetes: 'ready',
        }),
        apply: async (n) => {
          this.calls.push(`apply ${n}`);
          this.active.add(n);
        },
        recover: async (n) => {
          this.calls.push(`recover ${n}`);
          return this.active.delete(n);
        },
      },
      receiver: {
        ready: async () => {},
        send: async (payload): Promise<ReceiverAnswer> => {
          this.sent.push(payload);
          const runbookId = this.opensAs ?? (info.runbook as string);
          const workflowId = incidentWorkflowId(runbookId, scope);
          const a = payload.alerts[0]!;
          if (payload.status === 'firing' && !this.open) {
            this.open = true;
            this.state = this.build(this);
            this.state.runbookId = runbookId;
          }
          if (this.state) {
            this.state.alerts[a.fingerprint] = {
              fingerprint: a.fingerprint,
              alertname: a.labels.alertname ?? '',
              status: a.status,
              firstSeen: at(0),
              lastSeen: at(0),
              deliveries: 1,
            };
            this.resolveIfHealthy();
          }
          return {
            status: 'accepted',
            alerts: 1,
            incidents: [{ workflowId, runbookId, scope, alerts: 1, delivered: true }],
          };
        },
      },
      temporal: {
        execution: async () =>
          this.open
            ? { status: this.state?.resolvedAt ? 'COMPLETED' : 'RUNNING', startTime: new Date(at(0)) }
            : undefined,
        status: async () => {
          if (!this.state) throw new Error('not found');
          return structuredClone(this.state);
        },
        approve: async (_id, stepId, by) => {
          this.calls.push(`approve ${stepId} ${by}`);
          if (this.approveRefusal) throw new CliError(ExitCode.refused, this.approveRefusal);
          const st = this.state?.steps.find((x) => x.id === stepId);
          if (st) {
            st.status = 'approved';
            st.approvedBy = by;
          }
          this.state!.awaitingApproval = this.state!.awaitingApproval.filter((x) => x !== stepId);
          this.onApprove(this, stepId);
          return `approved step ${stepId}; it runs now`;
        },
        completeTask: async (_id, taskId, by) => {
          this.calls.push(`task ${taskId} ${by}`);
          const t = this.state?.tasks.find((x) => x.id === taskId);
          if (t) Object.assign(t, { status: 'done', doneBy: by });
          return `task ${taskId} done`;
        },
        note: async (_id, by, text) => {
          this.calls.push(`note ${by}`);
          this.record('note', text, by);
          return 'note added';
        },
        waitClosed: async () => true,
        openedSince: async () => [],
      },
      now: this.clock,
      sleep: async (ms) => {
        this.now += ms;
        this.resolveIfHealthy();
      },
      progress: (line) => this.progress.push(line),
    };
  }
}

const plan = (name: ScenarioName, over: Partial<DrillPlan> = {}): DrillPlan => ({
  scenario: scenarioInfo(name),
  via: 'alertmanager',
  scope,
  sandbox: true,
  notify: false,
  approveAs: 'alice',
  completeTasksAs: 'erin',
  by: 'tester',
  severity: 'P1',
  timeoutMs: 15 * 60_000,
  ...over,
});

function apiDownWorld(): FakeWorld {
  return new FakeWorld(
    'api-down',
    (w) =>
      incident('all-channels-down', {
        openedAt: new Date(w.now).toISOString(),
        status: 'AwaitingApproval',
        awaitingApproval: ['restart-api'],
        steps: [step('restart-postgres'), step('restart-api', { status: 'awaiting-approval' })],
        findings: {
          'api-health': {
            probe: 'api-health',
            status: 'down',
            summary: '503',
            metrics: {},
            evidence: [],
            at: at(1),
          },
        },
        timeline: [{ at: at(1), type: 'opened', text: 'P1 incident opened', by: 'alertmanager' }],
      }),
    (w, stepId) => {
      // The restart repairs the fault; verification then sees it.
      const st = w.state!.steps.find((x) => x.id === stepId)!;
      Object.assign(st, { status: 'recovered', runs: 1, result: 'rollout restart of deployment fte-api' });
      w.state!.status = 'Monitoring';
      w.active.delete('api-down');
      w.record('step-verified', 'recovered after "Rollout restart of deployment fte-api"');
    },
  );
}

describe('runDrill', () => {
  it('breaks, alerts, approves the remedy, resolves the alert once healthy, and passes', async () => {
    const world = apiDownWorld();
    const report = await runDrill(plan('api-down'), world.io());
    expect(report.outcome).toBe('passed');
    expect(world.calls).toEqual(['apply api-down', 'note tester', 'approve restart-api alice']);
    expect(world.sent.map((p) => p.status)).toEqual(['firing', 'resolved']);
    expect(world.sent[0]?.alerts[0]?.labels).toMatchObject({ drill: 'true', namespace: scope });
    expect(report.actions.map((a) => a.action)).toEqual(['applied', 'sent alert', 'approved', 'sent alert']);
    expect(report.findings.diagnosis[0]).toMatchObject({ probe: 'api-health', status: 'down' });
    expect(report.postIncidentWorkflowId).toBe(`post-${incidentWorkflowId('all-channels-down', scope)}--x`);
    // The timeline, live: each entry once.
    expect(world.progress.filter((l) => l.includes('step-verified'))).toHaveLength(1);
    expect(world.progress.some((l) => l.includes('opened (alertmanager): P1 incident opened'))).toBe(true);
  });

  it('leaves approval to a person without --approve-as, and times out', async () => {
    const world = apiDownWorld();
    const report = await runDrill(plan('api-down', { approveAs: undefined, timeoutMs: 60_000 }), world.io());
    expect(report).toMatchObject({ outcome: 'timeout', exitCode: ExitCode.drillTimeout });
    expect(world.calls).not.toContain('approve restart-api alice');
    expect(
      world.progress.filter((l) => l.includes('restart-api waits for a person (no --approve-as)')),
    ).toHaveLength(1);
    expect(world.sent.map((p) => p.status)).toEqual(['firing']);
  });

  it('never approves a step that is not the scenario’s remedy', async () => {
    const world = apiDownWorld();
    const build = world.build;
    const odd = new FakeWorld('api-down', (w) => {
      const s = build(w);
      s.awaitingApproval = ['restart-postgres'];
      s.steps = [step('restart-postgres', { status: 'awaiting-approval' }), step('restart-api')];
      return s;
    });
    const report = await runDrill(plan('api-down', { timeoutMs: 30_000 }), odd.io());
    expect(odd.calls.filter((c) => c.startsWith('approve'))).toEqual([]);
    expect(
      odd.progress.some((l) => l.includes('restart-postgres waits for a person (not the remedy of api-down')),
    ).toBe(true);
    expect(report.outcome).toBe('timeout');
  });

  it('completes the review task, tells the sandbox upstream recovered, and the incident resolves by itself', async () => {
    const world = new FakeWorld('escalation-spike', (w) =>
      incident('high-escalation-rate', {
        openedAt: new Date(w.now).toISOString(),
        status: 'Escalated',
        waitingFor: 'a person: no runbook step is left to try',
        steps: [
          step('inform-human-team', {
            risk: 'low',
            status: 'not-recovered',
            runs: 1,
            result: 'drill: logged, not sent',
          }),
        ],
        tasks: [task('review-reasons'), task('tune-rules')],
      }),
    );
    const report = await runDrill(plan('escalation-spike', { severity: 'P2' }), world.io());
    expect(report.outcome).toBe('passed');
    expect(world.calls).toEqual([
      'apply escalation-spike',
      'note tester',
      'task review-reasons erin',
      'recover escalation-spike',
    ]);
    expect(world.sent.map((p) => p.status)).toEqual(['firing', 'resolved']);
    expect(report.tasks.find((t) => t.id === 'tune-rules')).toMatchObject({
      status: 'open',
      expected: false,
    });
  });

  it('stops early when the incident escalated with nothing left while the fault is in force', async () => {
    const world = new FakeWorld('api-down', (w) =>
      incident('all-channels-down', {
        openedAt: new Date(w.now).toISOString(),
        status: 'Escalated',
        waitingFor: 'a person: no runbook step is left to try',
        steps: [step('restart-api', { status: 'failed', runs: 1, error: 'forbidden' })],
      }),
    );
    const report = await runDrill(plan('api-down'), world.io());
    expect(report).toMatchObject({ outcome: 'not-resolved', exitCode: ExitCode.drillNotResolved });
    expect(report.reasons[0]).toContain(
      'escalated with nothing left to try while api-down is still in force',
    );
    expect(world.now - Date.parse(at(0))).toBeLessThan(60_000);
  });

  it('reports the wrong runbook at once', async () => {
    const world = new FakeWorld(
      'api-down',
      (w) => incident('triage', { openedAt: new Date(w.now).toISOString() }),
      undefined,
      'triage',
    );
    const report = await runDrill(plan('api-down'), world.io());
    expect(report).toMatchObject({
      outcome: 'wrong-runbook',
      exitCode: ExitCode.drillWrongRunbook,
      runbook: { expected: 'all-channels-down', actual: 'triage', others: [] },
    });
  });

  it('waits for the rule’s for: before alerting, and names what else the fault opened', async () => {
    const world = apiDownWorld();
    const io = world.io();
    const monitorIncident = incidentWorkflowId('triage', scope);
    io.temporal.openedSince = async () => [
      {
        workflowId: incidentWorkflowId('all-channels-down', scope),
        runbook: 'all-channels-down',
        drill: true,
      },
      { workflowId: monitorIncident, runbook: 'triage', drill: false },
    ];
    const report = await runDrill(plan('api-down', { alertAfterMs: 75_000 }), io);
    expect(report.outcome).toBe('passed');
    expect(report.times.detectMs).toBe(75_000);
    expect(world.progress.some((l) => l.includes('fires after 1m (its for:); waiting'))).toBe(true);
    expect(report.runbook.others).toEqual(['triage']);
    expect(report.warnings).toEqual([
      `${monitorIncident} also opened during the drill (not marked as a drill: its notifications went out); it is left to people (incidentctl show ${monitorIncident})`,
    ]);
  });

  it('records a refused approval and keeps waiting for a person', async () => {
    const world = apiDownWorld();
    world.approveRefusal = 'refused: mallory may not decide step "restart-api"';
    const report = await runDrill(plan('api-down', { approveAs: 'mallory', timeoutMs: 20_000 }), world.io());
    expect(report.outcome).toBe('timeout');
    expect(report.warnings).toEqual([
      'approving restart-api as mallory was refused: refused: mallory may not decide step "restart-api"',
    ]);
    expect(world.calls.filter((c) => c.startsWith('approve'))).toHaveLength(1);
  });

  it('refuses to start on a sandbox with a fault in force, or with the incident already open', async () => {
    const world = apiDownWorld();
    world.active.add('kafka-down');
    await expect(runDrill(plan('api-down'), world.io())).rejects.toMatchObject({
      exitCode: ExitCode.refused,
      message: expect.stringContaining('already has kafka-down in force'),
    });
    expect(world.calls).toEqual([]);

    const busy = apiDownWorld();
    busy.open = true;
    busy.state = busy.build(busy);
    const io = busy.io();
    io.temporal.waitClosed = async () => false;
    await expect(runDrill(plan('api-down'), io)).rejects.toMatchObject({
      exitCode: ExitCode.refused,
      message: expect.stringContaining('a drill needs an incident of its own'),
    });
    expect(busy.calls).toEqual([]);
  });

  it('without a sandbox applies nothing and resolves the alert when the incident sees the platform healthy', async () => {
    const world = apiDownWorld();
    const io = world.io();
    delete io.control;
    world.active.add('api-down'); // the person broke staging; the remedy repairs it
    const report = await runDrill(plan('api-down', { sandbox: false }), io);
    expect(report.outcome).toBe('passed');
    expect(world.calls).not.toContain('apply api-down');
    expect(report.actions[0]).toMatchObject({ action: 'no fault applied' });
    expect(report.target.sandbox).toBe(false);
  });
});
