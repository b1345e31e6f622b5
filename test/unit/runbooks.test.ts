import { mkdtemp, readFile, writeFile, cp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InvalidFileError, loadRunbookDir, runbookActivities } from '../../src/activities/runbooks.js';
import { matchRunbook } from '../../src/domain/alerts.js';
import { contactsFile, projectRoot, runbooksDir } from '../helpers/paths.js';

async function problemsOf(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidFileError);
  return (error as InvalidFileError).message;
}

async function copyOfRunbooks(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'runbooks-'));
  await cp(runbooksDir, dir, { recursive: true });
  return dir;
}

describe('the runbook files', () => {
  it('are all valid, one per seed procedure plus triage', async () => {
    const { runbooks } = await loadRunbookDir(runbooksDir, contactsFile);
    expect(runbooks.map((r) => r.runbook.id).sort()).toEqual([
      'all-channels-down',
      'database-connection-failures',
      'gmail-channel-down',
      'high-agent-latency',
      'high-escalation-rate',
      'triage',
      'whatsapp-channel-down',
    ]);
  });

  it('route each seed alert to its runbook and anything else to triage', async () => {
    const runbooks = (await loadRunbookDir(runbooksDir, contactsFile)).runbooks.map((r) => r.runbook);
    const route = (alertname: string) =>
      matchRunbook(runbooks, { alertname, namespace: 'customer-success-fte' })?.id;
    expect(route('FTEAllChannelsDown')).toBe('all-channels-down');
    expect(route('FTEWhatsAppChannelDown')).toBe('whatsapp-channel-down');
    expect(route('FTEGmailChannelDown')).toBe('gmail-channel-down');
    expect(route('FTEAgentLatencyHigh')).toBe('high-agent-latency');
    expect(route('FTEEscalationRateHigh')).toBe('high-escalation-rate');
    expect(route('FTEDatabaseConnectionFailures')).toBe('database-connection-failures');
    expect(route('SomethingNobodyWroteDown')).toBe('triage');
  });

  it('carry out every diagnosis and resolution line of the seed runbook', async () => {
    const seed = await readFile(`${projectRoot}docs/seed-runbook.md`, 'utf8');
    // Seed items: comment lines of each procedure's diagnosis block (D) and numbered resolution lines (R).
    const items: string[] = [];
    for (const section of seed.split(/^### /m).slice(1)) {
      const n = /^(\d)\./.exec(section)?.[1];
      if (!n) continue;
      const diagnosis = /\*\*Diagnosis\*\*:\s*```bash\n([\s\S]*?)```/.exec(section)?.[1] ?? '';
      diagnosis
        .split('\n')
        .filter((l) => l.startsWith('# '))
        .forEach((_, i) => items.push(`${n}.D${i + 1}`));
      const resolution = /\*\*Resolution\*\*:\n([\s\S]*?)(\n\n|$)/.exec(section)?.[1] ?? '';
      resolution
        .split('\n')
        .filter((l) => /^\d+\. /.test(l))
        .forEach((_, i) => items.push(`${n}.R${i + 1}`));
    }
    expect(items.length).toBeGreaterThan(35);
    const { runbooks } = await loadRunbookDir(runbooksDir, contactsFile);
    const covered = new Set(
      runbooks.flatMap(({ runbook }) =>
        [...runbook.probes, ...runbook.steps, ...runbook.tasks].flatMap((element) => element.seed ?? []),
      ),
    );
    expect(items.filter((item) => !covered.has(item))).toEqual([]);
    const mapping = await readFile(`${projectRoot}docs/runbooks.md`, 'utf8');
    expect(items.filter((item) => !mapping.includes(`| ${item} |`))).toEqual([]);
  });
});

describe('runbook validation', () => {
  async function problemAfterEdit(runbook: string, from: string, to: string): Promise<string> {
    const dir = await copyOfRunbooks();
    const file = join(dir, `${runbook}.yaml`);
    const text = await readFile(file, 'utf8');
    expect(text).toContain(from);
    await writeFile(file, text.replace(from, to));
    return problemsOf(loadRunbookDir(dir, contactsFile));
  }

  it('names the file, line and path of each problem', async () => {
    expect(await problemAfterEdit('gmail-channel-down', 'risk: low', 'risk: medium')).toMatch(
      /gmail-channel-down\.yaml:28: steps\.0\.risk: .*"low"/,
    );
    expect(
      await problemAfterEdit('gmail-channel-down', 'probes: [gmail-watch], within', 'probes: [nope], within'),
    ).toMatch(/gmail-channel-down\.yaml:29: steps\.0\.verify\.probes\.0: unknown probe "nope"/);
    expect(
      await problemAfterEdit(
        'high-escalation-rate',
        'finding: escalation-rate, status: ok',
        'finding: ghost, status: ok',
      ),
    ).toMatch(/high-escalation-rate\.yaml:\d+: resolve\.when: refers to probe "ghost"/);
  });

  it('reports YAML syntax errors with their line', async () => {
    expect(await problemAfterEdit('triage', 'title: Unrecognised alert', 'title: [unclosed')).toMatch(
      /triage\.yaml:\d+: \(file\): YAML:/,
    );
  });

  it('rejects roles that the contacts file does not define', async () => {
    expect(await problemAfterEdit('high-escalation-rate', 'team: ai-ml', 'team: wizards')).toContain(
      'high-escalation-rate.yaml: (file): role "wizards" is not defined',
    );
  });

  it('loads one runbook for an incident with a content hash that changes with the file', async () => {
    const dir = await copyOfRunbooks();
    const { loadRunbook } = runbookActivities({ runbooksDir: dir, contactsFile });
    const before = await loadRunbook({ runbookId: 'triage' });
    expect(before.runbook.id).toBe('triage');
    expect(before.runbookHash).toMatch(/^[0-9a-f]{64}$/);
    await writeFile(
      join(dir, 'triage.yaml'),
      (await readFile(join(dir, 'triage.yaml'), 'utf8')) + '\n# edited\n',
    );
    expect((await loadRunbook({ runbookId: 'triage' })).runbookHash).not.toBe(before.runbookHash);
    await expect(loadRunbook({ runbookId: 'no-such-runbook' })).rejects.toThrow(
      /no runbook "no-such-runbook"/,
    );
    await expect(loadRunbook({ runbookId: '../config/contacts' })).rejects.toThrow(/not a runbook id/);
  });
});
