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

  it('rejects a probe or action name that the worker does not register', async () => {
    expect(
      await problemAfterEdit('all-channels-down', 'probe: k8sPods, args', 'probe: k8sPod, args'),
    ).toMatch(
      /all-channels-down\.yaml:13: probes\.0\.probe: unknown probe "k8sPod" \(did you mean "k8sPods"\?\)/,
    );
    expect(
      await problemAfterEdit('whatsapp-channel-down', 'action: rolloutRestart', 'action: rolloutRestrat'),
    ).toMatch(
      /whatsapp-channel-down\.yaml:39: steps\.0\.action: unknown action "rolloutRestrat" \(did you mean "rolloutRestart"\?\)/,
    );
    expect(await problemAfterEdit('triage', 'probe: k8sPods', 'probe: kubectlGetPods')).toMatch(
      /triage\.yaml:\d+: probes\.0\.probe: unknown probe "kubectlGetPods"; the worker's probes are k8sPods, .*gmailWatch/,
    );
  });

  it("checks arguments against the activity's own schema", async () => {
    expect(await problemAfterEdit('high-agent-latency', 'replicas: 5 }', "replicas: '5' }")).toMatch(
      /high-agent-latency\.yaml:45: steps\.1\.args\.replicas: Invalid input: expected number, received string/,
    );
    // Schemas are strict: a misspelt optional argument is not silently ignored.
    expect(
      await problemAfterEdit('gmail-channel-down', 'tail: 50, filter: gmail', 'tial: 50, filter: gmail'),
    ).toMatch(
      /gmail-channel-down\.yaml:17: probes\.1\.args\.tial: k8sLogs has no argument "tial" \(did you mean "tail"\?\)/,
    );
    expect(
      await problemAfterEdit('high-agent-latency', 'replicas: 5 }', 'replicas: 5, force: true }'),
    ).toMatch(
      /high-agent-latency\.yaml:45: steps\.1\.args\.force: scaleDeployment has no argument "force" \(it takes namespace, name, replicas\)/,
    );
  });

  it('checks arguments after rendering their templates with placeholder values', async () => {
    expect(
      await problemAfterEdit(
        'high-agent-latency',
        "args: { namespace: '{{scope}}', name: fte-message-processor, replicas: 5 }",
        "args: { namespace: '{{scope}}_staging', name: fte-message-processor, replicas: 5 }",
      ),
    ).toMatch(
      /high-agent-latency\.yaml:45: steps\.1\.args\.namespace: must be a Kubernetes name .* \(from "\{\{scope\}\}_staging", checked as "customer-success-fte_staging"\)/,
    );
    expect(await problemAfterEdit('high-agent-latency', 'replicas: 5 }', "replicas: '{{scope}}' }")).toMatch(
      /high-agent-latency\.yaml:45: steps\.1\.args\.replicas: Invalid input: expected number, received string \(from "\{\{scope\}\}"/,
    );
    expect(
      await problemAfterEdit('high-agent-latency', 'replicas: 5 }', "replicas: '{{replicas}}' }"),
    ).toMatch(/high-agent-latency\.yaml:45: steps\.1\.args\.replicas: unknown placeholder \{\{replicas\}\}/);
    expect(
      await problemAfterEdit(
        'all-channels-down',
        '{{finding:pods.uid/kafka-0}}',
        '{{finding:pod.uid/kafka-0}}',
      ),
    ).toMatch(
      /all-channels-down\.yaml:58: steps\.1\.args\.expectUid: \{\{finding:pod\.uid\/kafka-0\}\} refers to probe "pod", which this runbook does not have/,
    );
    expect(
      await problemAfterEdit(
        'high-agent-latency',
        "args: { namespace: '{{scope}}', name: fte-message-processor } }",
        "args: { namespace: '{{scope}}', name: '{{finding:kafka-lag.group}}' } }",
      ),
    ).toMatch(/high-agent-latency\.yaml:25: probes\.4\.args\.name: .*probe arguments cannot use findings/);
  });

  it('gives a finding that is a whole argument the type the argument expects (metrics keep their type)', async () => {
    const dir = await copyOfRunbooks();
    const file = join(dir, 'high-agent-latency.yaml');
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('maxReplicas: 10 }', "maxReplicas: '{{finding:hpa.maxReplicas}}' }"));
    const { runbooks } = await loadRunbookDir(dir, contactsFile);
    expect(runbooks.find((r) => r.runbook.id === 'high-agent-latency')?.runbook.steps[0]?.args).toEqual({
      namespace: '{{scope}}',
      name: 'fte-message-processor',
      maxReplicas: '{{finding:hpa.maxReplicas}}',
    });
  });

  it('refuses to start an incident with a runbook whose calls are wrong (the workflow opens it as triage)', async () => {
    const dir = await copyOfRunbooks();
    const file = join(dir, 'high-agent-latency.yaml');
    await writeFile(file, (await readFile(file, 'utf8')).replace('replicas: 5 }', "replicas: '5' }"));
    const { loadRunbook } = runbookActivities({ runbooksDir: dir, contactsFile });
    await expect(loadRunbook({ runbookId: 'high-agent-latency' })).rejects.toMatchObject({
      type: 'InvalidRunbookError',
      message: expect.stringMatching(/high-agent-latency\.yaml:45: steps\.1\.args\.replicas: /),
    });
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
