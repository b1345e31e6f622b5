import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHarness, closedPort } from './harness.js';
import { uniqueName } from '../helpers/services.js';
import type { IncidentRow } from '../../src/cli/visibility.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';

// incidentctl in-process against the product workflows on the dev server (activities faked). The database
// is down for every incident of this file, so an all-channels-down incident waits for approval of
// restart-postgres (approvers: platform or on-call).
const h = new CliHarness();
beforeAll(async () => {
  h.platform.status = { postgres: 'down' };
  h.platform.metrics = { pods: { 'uid/postgres-0': 'uid-1' } };
  await h.start();
});
afterAll(() => h.stop());

const rows = (stdout: string) => JSON.parse(stdout) as IncidentRow[];

describe('declare and list', () => {
  it('declares an incident that list then shows, filtered by runbook, severity and status', async () => {
    const scope = h.scope();
    const id = incidentWorkflowId('all-channels-down', scope);
    const declared = await h.cli(
      'declare',
      'all-channels-down',
      '--scope',
      scope,
      '--title',
      'DB down (drill)',
    );
    expect(declared).toMatchObject({ code: 0, stderr: '' });
    expect(declared.stdout).toContain(`declared ${id}`);

    const listed = await h.poll(
      ['list', '--json', '--runbook', 'all-channels-down'],
      (r) => rows(r.stdout).some((x) => x.workflowId === id && x.status === 'AwaitingApproval'),
      'the incident in the list',
    );
    expect(rows(listed.stdout).find((x) => x.workflowId === id)).toMatchObject({
      severity: 'P1',
      status: 'AwaitingApproval',
      runbook: 'all-channels-down',
      awaitingApproval: ['restart-postgres'],
      execution: 'RUNNING',
    });

    const table = await h.cli('list', '--status', 'awaitingapproval');
    expect(table.code).toBe(0);
    expect(table.stdout.split('\n')[0]).toMatch(/^ID\s+SEV\s+STATUS\s+RUNBOOK\s+AWAITING APPROVAL\s+OPENED$/);
    const line = table.stdout.split('\n').find((l) => l.startsWith(id));
    expect(line).toMatch(
      /P1\s+AwaitingApproval\s+all-channels-down\s+restart-postgres\s+\d{4}-\d\d-\d\d \d\d:\d\dZ/,
    );

    for (const filter of [
      ['--severity', 'P3'],
      ['--status', 'Investigating'],
      ['--runbook', 'triage'],
    ]) {
      const other = await h.cli('list', '--json', ...filter);
      expect(other.code).toBe(0);
      expect(rows(other.stdout).map((r) => r.workflowId)).not.toContain(id);
    }

    const again = await h.cli('declare', 'all-channels-down', '--scope', scope);
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`${id} was already open`);

    await h.cli('resolve', id, '--summary', 'drill over');
    await h.poll(
      ['list', '--json', '--all', '--runbook', 'all-channels-down'],
      (r) => rows(r.stdout).some((x) => x.workflowId === id && x.status === 'Resolved'),
      'the resolved incident in list --all',
    );
    const open = await h.cli('list', '--json', '--open', '--runbook', 'all-channels-down');
    expect(rows(open.stdout).map((r) => r.workflowId)).not.toContain(id);
  });

  it('refuses an unknown runbook, a bad scope and bad filters with exit code 2', async () => {
    const unknown = await h.cli('declare', 'no-such-runbook', '--scope', h.scope());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown runbook "no-such-runbook" \(known: all-channels-down, /);
    expect(unknown.stdout).toBe('');

    const scope = await h.cli('declare', 'triage', '--scope', 'Not A Namespace');
    expect(scope.code).toBe(2);
    expect(scope.stderr).toContain('is not a Kubernetes namespace name');

    const severity = await h.cli('declare', 'triage', '--severity', 'P9');
    expect(severity.code).toBe(2);
    expect(severity.stderr).toContain('P9');

    const filter = await h.cli('list', '--status', 'Sleeping');
    expect(filter.code).toBe(2);
    expect(filter.stderr).toContain('--status is one of Investigating, AwaitingApproval');

    const both = await h.cli('list', '--open', '--all');
    expect(both.code).toBe(2);
    expect(both.stderr).toContain('--open and --all exclude each other');
  });
});

describe('show', () => {
  it('renders what the incident waits for and the exact commands to act, or the whole state as JSON', async () => {
    const id = await h.waitingIncident();
    const shown = await h.cli('show', id);
    expect(shown.code).toBe(0);
    const out = shown.stdout;
    expect(out).toContain('P1 AwaitingApproval: All channels down');
    expect(out).toContain(
      'waiting for: approval of "Restart the postgres pod and wait for recovery" by platform or on-call',
    );
    expect(out).toContain(`incidentctl approve ${id} restart-postgres`);
    expect(out).toContain(`incidentctl reject ${id} restart-postgres --reason`);
    expect(out).toContain(`incidentctl ack ${id}`);
    expect(out).toMatch(/Findings:\n(.*\n)* {2}postgres {2}down {2}postgres is down/);
    expect(out).toMatch(
      /Steps:\n {2}restart-postgres {2}awaiting-approval {2}\(restartStatefulSetPod; needs approval by platform or on-call/,
    );
    expect(out).toMatch(/Timeline:\n(.*\n)*.*opened \(alice\): P1 incident opened from declared/);

    // The <runbook>/<scope> shorthand names the same incident.
    const scope = id.split('--')[1] as string;
    const json = await h.cli('show', `all-channels-down/${scope}`, '--json');
    expect(json.code).toBe(0);
    const state = JSON.parse(json.stdout);
    expect(state).toMatchObject({
      incidentId: id,
      status: 'AwaitingApproval',
      source: 'declared',
      awaitingApproval: ['restart-postgres'],
    });
    expect(state.findings.postgres.status).toBe('down');
    await h.cli('resolve', id);
  });

  it('exits 3 for an unknown incident and 2 for something that is not an incident reference', async () => {
    const unknown = await h.cli('show', `incident-all-channels-down--${h.scope()}`);
    expect(unknown.code).toBe(3);
    expect(unknown.stderr).toMatch(/unknown incident "incident-all-channels-down--ictl-[0-9a-f]+"/);
    const shorthand = await h.cli('ack', `triage/${h.scope()}`);
    expect(shorthand.code).toBe(3);
    const bad = await h.cli('show', 'Not/An/Incident');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('is neither a workflow id');
  });
});

describe('human actions', () => {
  it('acknowledges once; a second acknowledgement is refused with the reason', async () => {
    const id = await h.waitingIncident();
    const ack = await h.cli('ack', id, '--as', 'bob');
    expect(ack).toMatchObject({ code: 0, stdout: `${id}: acknowledged ${id}\n` });
    const again = await h.cli('ack', id);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/refused: already acknowledged by bob at /);
    expect((await h.until(id, () => true, 'state')).acknowledgedBy).toBe('bob');
    await h.cli('resolve', id);
  });

  it('approve: a person without the role, an unknown step and an idle step are refused; an approver runs the step once', async () => {
    const id = await h.waitingIncident();
    const actedFor = () =>
      h.platform.actionCalls.filter((c) => c.name === 'restartStatefulSetPod' && c.input.incidentId === id);

    const dave = await h.cli('approve', id, 'restart-postgres', '--as', 'dave');
    expect(dave.code).toBe(1);
    expect(dave.stderr).toContain(
      'dave may not decide step "restart-postgres": it needs one of [platform, on-call], and dave has roles [ai-ml]',
    );
    const unknownStep = await h.cli('approve', id, 'restart-nothing');
    expect(unknownStep.code).toBe(1);
    expect(unknownStep.stderr).toContain(
      'unknown step "restart-nothing" (steps of all-channels-down: restart-postgres, restart-kafka, restart-api)',
    );
    const idle = await h.cli('approve', id, 'restart-kafka');
    expect(idle.code).toBe(1);
    expect(idle.stderr).toContain('step "restart-kafka" is not waiting for approval (it is idle)');
    expect(actedFor()).toEqual([]);

    const ok = await h.cli('approve', id, 'restart-postgres', '--as', 'carol', '--reason', 'DBA agrees');
    expect(ok).toMatchObject({ code: 0, stdout: `${id}: approved step restart-postgres; it runs now\n` });
    const state = await h.until(
      id,
      (s) => s.steps[0]?.runs === 1 && s.steps[0].status !== 'running',
      'the step ran',
    );
    expect(state.steps[0]).toMatchObject({
      approvedBy: 'carol',
      reason: 'DBA agrees',
      result: 'restartStatefulSetPod done',
    });
    expect(new Set(actedFor().map((c) => c.input.idempotencyKey)).size).toBe(1);

    const twice = await h.cli('approve', id, 'restart-postgres', '--as', 'alice');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toMatch(
      /step "restart-postgres" is not waiting for approval \(it is (verifying|not-recovered|running)\)/,
    );
    expect(new Set(actedFor().map((c) => c.input.idempotencyKey)).size).toBe(1);
    await h.cli('resolve', id);
  });

  it('reject needs a reason (checked locally) and keeps it; the step never runs', async () => {
    const id = await h.waitingIncident();
    const missing = await h.cli('reject', id, 'restart-postgres');
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("required option '--reason <text>' not specified");
    const blank = await h.cli('reject', id, 'restart-postgres', '--reason', '   ');
    expect(blank.code).toBe(2);
    expect(blank.stderr).toContain('invalid arguments: --reason: reason must not be empty');

    const rejected = await h.cli(
      'reject',
      id,
      'restart-postgres',
      '--as',
      'carol',
      '--reason',
      'a DBA is on it',
    );
    expect(rejected).toMatchObject({
      code: 0,
      stdout: `${id}: rejected step restart-postgres; it will not run\n`,
    });
    const s = await h.until(id, (x) => x.steps[0]?.status === 'rejected', 'rejection');
    expect(s.steps[0]).toMatchObject({ rejectedBy: 'carol', reason: 'a DBA is on it', runs: 0 });
    expect(h.platform.actionCalls.filter((c) => c.input.incidentId === id)).toEqual([]);
    await h.cli('resolve', id);
  });

  it('escalate, note and resolve; a resolved incident takes no more actions but still shows', async () => {
    const id = await h.waitingIncident();
    const noReason = await h.cli('escalate', id);
    expect(noReason.code).toBe(2);
    const escalated = await h.cli('escalate', id, '--reason', 'need a DBA');
    expect(escalated).toMatchObject({ code: 0, stdout: `${id}: escalated to platform\n` });

    const note = await h.cli('note', id, 'checked', 'the', 'dashboards');
    expect(note).toMatchObject({ code: 0, stdout: `${id}: note added\n` });

    const resolved = await h.cli('resolve', id, '--summary', 'restarted by hand', '--as', 'carol');
    expect(resolved).toMatchObject({ code: 0, stdout: `${id}: resolving ${id}\n` });
    const s = await h.until(id, (x) => x.status === 'Resolved', 'resolution');
    expect(s).toMatchObject({
      escalationLevel: 1,
      resolvedBy: 'carol',
      resolutionSummary: 'restarted by hand',
    });
    expect(s.timeline).toContainEqual(
      expect.objectContaining({ type: 'note', text: 'checked the dashboards', by: 'alice' }),
    );
    expect(s.timeline).toContainEqual(
      expect.objectContaining({ type: 'escalated', text: 'escalated to platform: need a DBA', by: 'alice' }),
    );

    await expect.poll(() => h.executionStatus(id)).toBe('COMPLETED');
    const late = await h.cli('note', id, 'too late');
    expect(late.code).toBe(1);
    expect(late.stderr).toContain(`incident ${id} is closed (completed): it takes no more actions`);
    const shown = await h.cli('show', id);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('resolved by carol at ');
    expect(shown.stdout).toContain(`incidentctl show post-${id}--`);
  });

  it('an action repeated with the id it was sent with is applied once', async () => {
    const id = await h.waitingIncident();
    const first = await h.cli('note', id, 'paged the DBA', '--update-id', 'retry-test-0001');
    const repeat = await h.cli('note', id, 'paged the DBA', '--update-id', 'retry-test-0001');
    const other = await h.cli('note', id, 'paged the DBA');
    for (const r of [first, repeat, other])
      expect(r).toMatchObject({ code: 0, stdout: `${id}: note added\n` });
    const s = await h.until(
      id,
      (x) => x.timeline.filter((t) => t.type === 'note').length >= 2,
      'the notes in the timeline',
    );
    expect(s.timeline.filter((t) => t.type === 'note' && t.text === 'paged the DBA')).toHaveLength(2);
    const bad = await h.cli('note', id, 'x', '--update-id', 'no spaces allowed');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--update-id takes 8 to 100 letters');
    await h.cli('resolve', id);
  });

  it('task done marks a manual task; an unknown or finished task is refused', async () => {
    const scope = h.scope();
    expect((await h.cli('declare', 'triage', '--scope', scope)).code).toBe(0);
    const id = incidentWorkflowId('triage', scope);
    await h.until(id, (s) => s.tasks.some((t) => t.id === 'investigate'), 'the manual task');
    expect((await h.cli('show', id)).stdout).toContain(`incidentctl task done ${id} investigate`);

    const unknown = await h.cli('task', 'done', id, 'nope');
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('unknown task "nope" (open tasks: investigate)');
    const done = await h.cli('task', 'done', id, 'investigate', '--as', 'bob');
    expect(done).toMatchObject({ code: 0, stdout: `${id}: task investigate done\n` });
    const again = await h.cli('task', 'done', id, 'investigate');
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('task "investigate" was already done by bob');
    expect((await h.cli('show', id)).stdout).toMatch(/\[x\] investigate .*\(done by bob /);
    await h.cli('resolve', id);
  });
});

describe('connection problems', () => {
  it('exits 4 with the address when Temporal is unreachable', async () => {
    const port = await closedPort();
    const r = await h.cli('list', '--address', `127.0.0.1:${port}`, '--connect-timeout', '1');
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      `incidentctl: cannot reach Temporal at 127.0.0.1:${port} within 1s (set TEMPORAL_ADDRESS or --address; is the server running?)\n`,
    );
    const badAddress = await h.cli('list', '--address', 'not an address');
    expect(badAddress.code).toBe(2);
    expect(badAddress.stderr).toContain('TEMPORAL_ADDRESS: expected host:port');
  });

  it('exits 4 and names the task queue when no worker answers a query or an update', async () => {
    const queue = uniqueName('no-worker');
    const scope = h.scope();
    const id = incidentWorkflowId('triage', scope);
    const declared = await h.cliWith(
      { env: { TEMPORAL_TASK_QUEUE: queue } },
      'declare',
      'triage',
      '--scope',
      scope,
    );
    expect(declared.code).toBe(0);
    try {
      const fast = { workerDeadlinesMs: { query: 1000, update: 1000 } };
      const show = await h.cliWith(fast, 'show', id);
      expect(show.code, show.stderr).toBe(4);
      expect(show.stderr).toContain(
        `no answer from ${id} within 1s: is a worker polling task queue "${queue}"`,
      );
      const ack = await h.cliWith(fast, 'ack', id);
      expect(ack.code).toBe(4);
      expect(ack.stderr).toContain('the action may still be applied once a worker runs');
      expect(ack.stderr).toMatch(/to repeat it without acting twice, add --update-id [0-9a-f-]{36}\n$/);
    } finally {
      await h.env.client.workflow.getHandle(id).terminate('test over');
    }
  });

  it('exits 2 for an unknown namespace', async () => {
    const r = await h.cli('list', '--namespace', 'no-such-namespace');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('namespace "no-such-namespace" does not exist');
  });
});

describe('schedules apply', () => {
  it('creates the monitor schedules on the configured task queue, updates them when repeated', async () => {
    const prefix = `${h.scope()}-`;
    const ids = ['monitor-health', 'monitor-kafka-lag', 'gmail-watch-renewal'].map((id) => `${prefix}${id}`);
    try {
      const first = await h.cli('schedules', 'apply', '--paused', '--id-prefix', prefix);
      expect(first.stderr).toBe('');
      expect(first.code).toBe(0);
      expect(first.stdout).toBe(
        [
          `created schedule ${ids[0]} (healthMonitorWorkflow, scope customer-success-fte)`,
          `created schedule ${ids[1]} (kafkaLagMonitorWorkflow, scope customer-success-fte)`,
          `created schedule ${ids[2]} (gmailWatchRenewalWorkflow, scope customer-success-fte)`,
          '',
        ].join('\n'),
      );
      const health = await h.env.client.schedule.getHandle(ids[0] as string).describe();
      expect(health.state.paused).toBe(true);
      expect(health.action).toMatchObject({ type: 'startWorkflow', taskQueue: h.taskQueue });

      const again = await h.cli('schedules', 'apply', '--id-prefix', prefix);
      expect(again.code).toBe(0);
      expect(again.stdout.split('\n').filter(Boolean)).toEqual(
        ids.map((id) => expect.stringMatching(new RegExp(`^updated schedule ${id} `))),
      );
    } finally {
      for (const id of ids) {
        await h.env.client.schedule
          .getHandle(id)
          .delete()
          .catch(() => undefined);
      }
    }
  });

  it('exits 2 and names the variable when the monitor configuration is invalid', async () => {
    const r = await h.cliWith(
      { env: { MONITOR_CHANNEL_ERROR_RATE: 'lots' } },
      'schedules',
      'apply',
      '--id-prefix',
      'never-',
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('MONITOR_CHANNEL_ERROR_RATE: expected a number');
  });
});
