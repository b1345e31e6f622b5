import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CliHarness } from './harness.js';
import type { ReportRow } from '../../src/cli/visibility.js';
import type { PostIncidentState } from '../../src/domain/post-incident.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';

// The post-incident commands on the report workflow of a resolved P1 incident (dev server, fake activities).
const h = new CliHarness();
beforeAll(async () => {
  h.platform.status = { postgres: 'down' };
  await h.start();
});
afterAll(() => h.stop());

const reports = (stdout: string) => JSON.parse(stdout) as ReportRow[];

async function postState(postId: string): Promise<PostIncidentState> {
  const r = await h.cli('show', postId, '--json');
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as PostIncidentState;
}

describe('post-incident report of a resolved P1 incident', () => {
  it('report submit, followup add/done and runbook-updated complete it; list --reports tracks it', async () => {
    const scope = h.scope();
    const id = incidentWorkflowId('all-channels-down', scope);
    expect((await h.cli('declare', 'all-channels-down', '--scope', scope)).code).toBe(0);
    await h.until(id, (s) => s.status === 'AwaitingApproval', 'approval wait');

    // Before resolution there is nothing to report on.
    const early = await h.cli('report', 'submit', id, '--root-cause', 'disk full');
    expect(early.code).toBe(1);
    expect(early.stderr).toContain(`incident ${id} has no post-incident workflow yet`);

    expect((await h.cli('ack', id, '--as', 'bob')).code).toBe(0);
    const resolved = await h.cli('resolve', id, '--summary', 'disk cleaned', '--new-failure-mode');
    expect(resolved.code).toBe(0);
    const incident = await h.until(
      id,
      (s) => s.postIncidentWorkflowId !== undefined,
      'the post-incident workflow',
    );
    const postId = incident.postIncidentWorkflowId as string;
    expect(postId.startsWith(`post-${id}--`)).toBe(true);

    const pending = await h.poll(
      ['list', '--reports', '--json', '--runbook', 'all-channels-down'],
      (r) => reports(r.stdout).some((x) => x.workflowId === postId),
      'the report in list --reports',
    );
    const row = reports(pending.stdout).find((x) => x.workflowId === postId);
    expect(row).toMatchObject({ severity: 'P1', reportStatus: 'Pending', overdue: false });
    expect(Date.parse(row?.reportDueAt ?? '') - Date.parse(incident.resolvedAt ?? '')).toBe(24 * 3_600_000);
    const overdue = await h.cli('list', '--reports', '--overdue', '--json');
    expect(overdue.code).toBe(0);
    expect(reports(overdue.stdout).map((x) => x.workflowId)).not.toContain(postId);
    const table = await h.cli('list', '--reports');
    expect(table.stdout.split('\n').find((l) => l.startsWith(postId))).toMatch(
      /P1\s+Pending\s+\d{4}-\d\d-\d\d \d\d:\d\dZ \(in 2\dh\d\dm\)\s+all-channels-down/,
    );

    const badDue = await h.cli(
      'followup',
      'add',
      postId,
      '--title',
      'alerting on disk',
      '--owner',
      'carol',
      '--due',
      'tomorrow',
    );
    expect(badDue.code).toBe(2);
    expect(badDue.stderr).toContain('--due:');
    const added = await h.cli(
      'followup',
      'add',
      postId,
      '--title',
      'alert on disk usage',
      '--owner',
      'carol',
      '--due',
      '2099-01-01T00:00:00Z',
    );
    expect(added).toMatchObject({ code: 0, stdout: `${postId}: follow-up FU-1 added\n` });

    // The incident (here by shorthand) leads to its report.
    const submitted = await h.cli(
      'report',
      'submit',
      `all-channels-down/${scope}`,
      '--root-cause',
      'the data disk filled up',
      '--link',
      'https://wiki.example/pir/1',
    );
    expect(submitted).toMatchObject({ code: 0, stdout: `${postId}: report submitted\n` });
    const twice = await h.cli('report', 'submit', postId, '--root-cause', 'again');
    expect(twice.code).toBe(1);
    expect(twice.stderr).toContain('the report was already submitted by alice');

    const shown = await h.cli('show', postId);
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain('Report Submitted for P1 All channels down');
    expect(shown.stdout).toContain('report owner bob');
    expect(shown.stdout).toContain('root cause: the data disk filled up');
    expect(shown.stdout).toContain('runbook update: required (new failure mode)');
    expect(shown.stdout).toMatch(/\[ \] FU-1 {2}alert on disk usage {2}\(owner carol, due 2099-01-01 00:00Z/);
    expect(shown.stdout).toContain(`incidentctl followup done ${postId} FU-1`);
    expect(shown.stdout).toContain(`incidentctl report runbook-updated ${postId} --ref`);

    const unknownFollowUp = await h.cli('followup', 'done', postId, 'FU-9');
    expect(unknownFollowUp.code).toBe(1);
    expect(unknownFollowUp.stderr).toContain('unknown follow-up "FU-9" (known: FU-1)');
    const done = await h.cli('followup', 'done', postId, 'FU-1', '--as', 'carol');
    expect(done).toMatchObject({ code: 0, stdout: `${postId}: follow-up FU-1 done\n` });
    expect((await postState(postId)).completedAt).toBeUndefined();

    const updated = await h.cli('report', 'runbook-updated', id, '--ref', 'PR #42');
    expect(updated).toMatchObject({ code: 0, stdout: `${postId}: runbook update recorded\n` });
    await expect.poll(() => h.executionStatus(postId)).toBe('COMPLETED');
    const final = await postState(postId);
    expect(final).toMatchObject({
      reportStatus: 'Submitted',
      report: { by: 'alice', rootCause: 'the data disk filled up', link: 'https://wiki.example/pir/1' },
      followUps: [{ id: 'FU-1', status: 'done', doneBy: 'carol' }],
      runbookUpdate: { by: 'alice', ref: 'PR #42' },
    });

    const closed = await h.cli('followup', 'add', postId, '--title', 'one more', '--owner', 'carol');
    expect(closed.code).toBe(1);
    expect(closed.stderr).toContain(`post-incident workflow ${postId} is closed (completed)`);
    await h.poll(
      ['list', '--reports', '--all', '--json', '--runbook', 'all-channels-down'],
      (r) =>
        reports(r.stdout).some(
          (x) => x.workflowId === postId && x.reportStatus === 'Submitted' && x.execution === 'COMPLETED',
        ),
      'the completed report in list --reports --all',
    );
  });

  it('report submit without follow-ups stays open and says so; --no-follow-ups closes it', async () => {
    const scope = h.scope();
    const id = incidentWorkflowId('all-channels-down', scope);
    expect((await h.cli('declare', 'all-channels-down', '--scope', scope)).code).toBe(0);
    await h.until(id, (s) => s.status === 'AwaitingApproval', 'approval wait');
    expect((await h.cli('resolve', id, '--as', 'alice')).code).toBe(0);
    const incident = await h.until(
      id,
      (s) => s.postIncidentWorkflowId !== undefined,
      'the post-incident workflow',
    );
    const postId = incident.postIncidentWorkflowId as string;

    const submitted = await h.cli('report', 'submit', postId, '--root-cause', 'an operator typo');
    expect(submitted).toMatchObject({ code: 0, stdout: `${postId}: report submitted\n` });
    const shown = await h.cli('show', postId);
    expect(shown.stdout).toContain(
      'waiting for: a follow-up, or the report saying that none is needed (noFollowUps)',
    );
    expect(shown.stdout).toContain(`incidentctl report submit ${postId} --root-cause "…" --no-follow-ups`);
    expect(await h.executionStatus(postId)).toBe('RUNNING');

    const stated = await h.cli('report', 'submit', id, '--root-cause', 'an operator typo', '--no-follow-ups');
    expect(stated).toMatchObject({ code: 0, stdout: `${postId}: report amended: no follow-up is needed\n` });
    await expect.poll(() => h.executionStatus(postId)).toBe('COMPLETED');
    const final = await postState(postId);
    expect(final.report).toMatchObject({ by: 'alice', rootCause: 'an operator typo', noFollowUps: true });
    expect(final.missing).toEqual([]);
  });

  it('a P3 incident has no report; an unknown post-incident id exits 3; a bad link exits 2', async () => {
    const scope = h.scope();
    const id = incidentWorkflowId('triage', scope);
    expect((await h.cli('declare', 'triage', '--scope', scope)).code).toBe(0);
    await h.until(id, (s) => s.tasks.length > 0, 'triage incident');
    expect((await h.cli('resolve', id)).code).toBe(0);
    await expect.poll(() => h.executionStatus(id)).toBe('COMPLETED');
    const none = await h.cli('report', 'submit', id, '--root-cause', 'noise');
    expect(none.code).toBe(1);
    expect(none.stderr).toContain('only resolved P1/P2 incidents get one (this one is P3)');

    const unknown = await h.cli(
      'followup',
      'done',
      `post-incident-all-channels-down--${scope}--20990101T000000Z`,
      'FU-1',
    );
    expect(unknown.code).toBe(3);
    const unknownIncident = await h.cli(
      'report',
      'submit',
      `all-channels-down/${scope}`,
      '--root-cause',
      'x',
    );
    expect(unknownIncident.code).toBe(3);
    const badLink = await h.cli(
      'report',
      'submit',
      'post-incident-x--y--z',
      '--root-cause',
      'x',
      '--link',
      'not a url',
    );
    expect(badLink.code).toBe(2);
    expect(badLink.stderr).toContain('--link:');
  });
});
