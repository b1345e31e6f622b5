import { execFile } from 'node:child_process';
import { readdir, readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { projectRoot } from '../helpers/paths.js';

// deploy/prometheus checked by the tools its users run (promtool and amtool from Debian's packages, installed
// project-local by scripts/prometheus-tools.sh), and against the project: the platform alerts are exactly the
// ones the runbooks match, every alert has a unit test that makes it fire, the orchestrator's alerts use the
// receiver's real metrics, and the Alertmanager example reaches the receiver the way it authenticates.

const run = promisify(execFile);
const dir = `${projectRoot}deploy/prometheus/`;
let promtool = '';
let amtool = '';

const tool = async (name: string) =>
  (
    await run('bash', [`${projectRoot}scripts/prometheus-tools.sh`, 'path', name], { timeout: 300_000 })
  ).stdout.trim();
const yamlFiles = async (sub: string, suffix: string) =>
  (await readdir(`${dir}${sub}`)).filter((f) => f.endsWith(suffix)).map((f) => `${dir}${sub}${f}`);

interface RuleFile {
  groups: { name: string; rules: { alert?: string; record?: string; expr: string }[] }[];
}
interface RuleTests {
  tests: { alert_rule_test?: { alertname: string; exp_alerts: unknown[] }[] }[];
}

beforeAll(async () => {
  promtool = await tool('promtool');
  amtool = await tool('amtool');
}, 600_000);

describe('deploy/prometheus', () => {
  it('promtool checks the rules and their unit tests pass', async () => {
    const rules = await yamlFiles('', '.rules.yml');
    expect(rules.length).toBe(2);
    const checked = await run(promtool, ['check', 'rules', ...rules]);
    expect(checked.stdout).toMatch(/SUCCESS: 7 rules found/);
    const tests = await yamlFiles('tests/', '.test.yml');
    const tested = await run(promtool, ['test', 'rules', ...tests], { cwd: `${dir}tests` });
    expect(tested.stdout.match(/SUCCESS/g)).toHaveLength(tests.length);
  }, 120_000);

  it('alerts on exactly the names the runbooks match, and every alert fires in a unit test', async () => {
    const files = await yamlFiles('', '.rules.yml');
    const groups = (
      await Promise.all(files.map(async (f) => parse(await readFile(f, 'utf8')) as RuleFile))
    ).flatMap((r) => r.groups);
    const alertsOf = (group: string) =>
      groups
        .filter((g) => g.name === group)
        .flatMap((g) => g.rules)
        .flatMap((r) => (r.alert ? [r.alert] : []));

    const runbookAlerts: string[] = [];
    for (const file of await readdir(`${projectRoot}runbooks`)) {
      const runbook = parse(await readFile(`${projectRoot}runbooks/${file}`, 'utf8')) as {
        match?: { alertnames?: string[] };
      };
      runbookAlerts.push(...(runbook.match?.alertnames ?? []));
    }
    expect(alertsOf('fte-platform').sort()).toEqual(runbookAlerts.sort());

    const firing = new Set<string>();
    for (const f of await yamlFiles('tests/', '.test.yml')) {
      const t = parse(await readFile(f, 'utf8')) as RuleTests;
      for (const test of t.tests)
        for (const a of test.alert_rule_test ?? []) if (a.exp_alerts.length > 0) firing.add(a.alertname);
    }
    for (const alert of [...alertsOf('fte-platform'), ...alertsOf('fte-incident-response')])
      expect(firing.has(alert), `a unit test makes ${alert} fire`).toBe(true);

    // The orchestrator's alerts read metrics the receiver exports.
    const receiverMetrics = await readFile(`${projectRoot}src/starters/receiver-metrics.ts`, 'utf8');
    const used = groups
      .filter((g) => g.name === 'fte-incident-response')
      .flatMap((g) => g.rules)
      .flatMap((r) => [...r.expr.matchAll(/\b(incident_[a-z_]+)\b/g)].map((m) => m[1] as string));
    expect(used.length).toBeGreaterThan(0);
    for (const metric of used) expect(receiverMetrics, metric).toContain(`name: '${metric}'`);
  });

  it('amtool accepts the Alertmanager example, which reaches the receiver with its bearer token', async () => {
    const file = `${dir}alertmanager.example.yml`;
    const checked = await run(amtool, ['check-config', file]);
    expect(checked.stdout).toMatch(/SUCCESS/);
    const config = parse(await readFile(file, 'utf8')) as {
      route: { receiver: string };
      receivers: {
        name: string;
        webhook_configs?: {
          url: string;
          send_resolved: boolean;
          http_config?: { authorization?: { type: string; credentials_file?: string } };
        }[];
      }[];
    };
    const hook = config.receivers.find((r) => r.name === config.route.receiver)?.webhook_configs?.[0];
    expect(new URL(hook?.url ?? '').pathname).toBe('/webhooks/alertmanager');
    expect(new URL(hook?.url ?? '').port).toBe('8088');
    expect(hook?.send_resolved).toBe(true);
    expect(hook?.http_config?.authorization?.type).toBe('Bearer');
    expect(hook?.http_config?.authorization?.credentials_file).toMatch(/RECEIVER_TOKEN$/);
  });
});
