import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bin, CliHarness, closedPort, runBin } from './harness.js';
import { runbooksDir } from '../helpers/paths.js';
import { services } from '../helpers/services.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import type { IncidentState } from '../../src/domain/incident.js';

// The real executable (node bin/incidentctl.js, argument arrays, no shell), as an operator runs it.
const h = new CliHarness();
let tmp = '';
beforeAll(async () => {
  h.platform.status = { postgres: 'down' };
  tmp = await mkdtemp(join(tmpdir(), 'incidentctl-'));
  await h.start();
});
afterAll(async () => {
  await h.stop();
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

const plainEnv = () => ({ PATH: process.env.PATH });

describe('the incidentctl executable', () => {
  it('is executable, prints its usage and exits 2 on an unknown command', async () => {
    expect((await stat(bin)).mode & 0o111).not.toBe(0);
    const help = await runBin(['--help'], plainEnv());
    expect(help.code).toBe(0);
    for (const command of [
      'declare',
      'list',
      'show',
      'ack',
      'approve',
      'reject',
      'resolve',
      'escalate',
      'note',
      'task',
      'report',
      'followup',
      'runbook',
      'schedules',
    ]) {
      expect(help.stdout).toMatch(new RegExp(`^  ${command}\\b`, 'm'));
    }
    const unknown = await runBin(['frobnicate'], plainEnv());
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain("unknown command 'frobnicate'");
  });

  it('runbook lint: exit 0 on the project runbooks, 1 with file:line on a broken copy', async () => {
    const good = await runBin(['runbook', 'lint'], plainEnv());
    expect(good.code).toBe(0);
    expect(good.stdout).toMatch(/^ok: 7 runbooks \(all-channels-down, /);

    const broken = join(tmp, 'runbooks');
    await cp(runbooksDir, broken, { recursive: true });
    const file = join(broken, 'all-channels-down.yaml');
    const lines = (await readFile(file, 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.trim() === 'risk: high');
    lines[at] = (lines[at] as string).replace('risk: high', 'risk: extreme');
    await writeFile(file, lines.join('\n'));

    const bad = await runBin(['runbook', 'lint', broken], plainEnv());
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${file}:${at + 1}: steps.0.risk:`);
    expect(bad.stderr).toContain('1 problem(s)');
  });

  it('exits 4 quickly with the address when Temporal is unreachable, without a stack trace unless --debug', async () => {
    const port = await closedPort();
    const env = { ...plainEnv(), TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
    const r = await runBin(['list'], env);
    expect(r.code).toBe(4);
    expect(r.stderr).toBe(
      `incidentctl: cannot reach Temporal at 127.0.0.1:${port} within 5s (set TEMPORAL_ADDRESS or --address; is the server running?)\n`,
    );
    const debug = await runBin(['show', 'triage', '--debug', '--connect-timeout', '1'], env);
    expect(debug.code).toBe(4);
    expect(debug.stderr).toMatch(/\n\s+at /);
  });

  it('declares, shows, refuses and approves against the dev server', async () => {
    const scope = h.scope();
    const id = incidentWorkflowId('all-channels-down', scope);
    const declared = await h.bin(['declare', 'all-channels-down', '--scope', scope, '--as', 'erin']);
    expect(declared.stderr).toBe('');
    expect(declared.code).toBe(0);
    await h.until(id, (s) => s.awaitingApproval.includes('restart-postgres'), 'approval wait');

    const shown = await h.bin(['show', id, '--json']);
    expect(shown.code).toBe(0);
    const state = JSON.parse(shown.stdout) as IncidentState;
    expect(state.timeline[0]).toMatchObject({ type: 'opened', by: 'erin' });

    const refused = await h.bin(['approve', id, 'restart-postgres', '--as', 'dave']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('dave may not decide step "restart-postgres"');
    expect(refused.stderr).not.toMatch(/\n\s+at /);

    const approved = await h.bin([
      '--as',
      'alice',
      'approve',
      `all-channels-down/${scope}`,
      'restart-postgres',
    ]);
    expect(approved).toMatchObject({
      code: 0,
      stdout: `${id}: approved step restart-postgres; it runs now\n`,
    });

    const unknown = await h.bin(['ack', `incident-all-channels-down--${h.scope()}`]);
    expect(unknown.code).toBe(3);
    const usage = await h.bin(['reject', id, 'restart-postgres']);
    expect(usage.code).toBe(2);
    expect((await h.bin(['resolve', id])).code).toBe(0);
  });

  it('the plain temporal CLI equivalents in docs/cli.md reach the workflow as Update and as Signal', async () => {
    const scope = h.scope();
    const id = incidentWorkflowId('triage', scope);
    expect((await h.cli('declare', 'triage', '--scope', scope)).code).toBe(0);
    await h.until(id, (s) => s.tasks.length > 0, 'the incident is open');
    const { temporalCli, temporalAddress } = services();
    const temporal = (args: string[]) =>
      new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
        execFile(
          temporalCli,
          [...args, '--address', temporalAddress],
          { timeout: 30_000 },
          (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
        );
      });
    const update = await temporal([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      id,
      '--name',
      'addNote',
      '--input',
      '{"by":"alice","text":"via update"}',
    ]);
    expect(update.stderr).toBe('');
    expect(update.stdout).toContain('note added');
    const refused = await temporal([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      id,
      '--name',
      'completeTask',
      '--input',
      '{"task":"nope","by":"bob"}',
    ]);
    expect(refused.code).toBe(1);
    expect(`${refused.stdout}${refused.stderr}`).toContain('unknown task "nope"');
    const signal = await temporal([
      'workflow',
      'signal',
      '--workflow-id',
      id,
      '--name',
      'completeTask',
      '--input',
      '{"task":"investigate","by":"bob"}',
    ]);
    expect(signal.code).toBe(0);
    const s = await h.until(id, (x) => x.tasks[0]?.status === 'done', 'the task done by signal');
    expect(s.tasks[0]?.doneBy).toBe('bob');
    expect(s.timeline).toContainEqual(
      expect.objectContaining({ type: 'note', text: 'via update', by: 'alice' }),
    );
    expect((await h.cli('resolve', id)).code).toBe(0);
  });
});
