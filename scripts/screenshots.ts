// Takes the screenshots of docs/managers.md from the live product (run by scripts/screenshots.sh).
//
// 1. Uses the `make start` whose Temporal UI answers at TEMPORAL_UI_URL, or starts one in the background
//    (stopped again at the end).
// 2. Puts the product into the states worth showing with its own commands only: `incidentctl drill` without
//    --approve-as (an incident that waits for approval, as in a game day), then `incidentctl ack` and
//    `incidentctl approve` as the people would, so the drill resolves and opens its post-incident report,
//    and `incidentctl followup add` on that report.
// 3. Drives headless Chromium (playwright-core) through the Temporal UI: the workflow list with each view
//    of docs/managers.md (read from the doc's ```query blocks), saving each as a saved view, an incident's
//    and a report's pages, and writes docs/images/managers/*.png.
//
// Every browser request that is not to loopback is aborted; the product only talks to loopback too.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { Client, Connection } from '@temporalio/client';
import { clientConnectionOptions, loadTemporalSettings } from '../src/temporal.js';
import { AwaitingApproval } from '../src/workflows/search-attributes.js';
import { docQueries, forThisWeek, type DocQuery } from './managers-views.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const doc = join(root, 'docs/managers.md');
const outDir = join(root, 'docs/images/managers');
const dataDir = process.env.START_DATA_DIR ?? join(root, '.data');
const uiUrl = new URL(process.env.TEMPORAL_UI_URL ?? 'http://127.0.0.1:8233');
const sandboxUrl = new URL(process.env.SANDBOX_CONTROL_URL ?? 'http://127.0.0.1:8090');
const namespace = process.env.TEMPORAL_NAMESPACE ?? 'default';
const chromiumPath = process.env.CHROMIUM ?? '/usr/bin/chromium';
/** The drill that provides the incident: api-down (runbook all-channels-down, P1, step restart-api). */
const scenario = process.env.SCREENSHOT_SCENARIO ?? 'api-down';
const viewport = { width: 1280, height: 800 };
const loopback = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);
// Flags this machine's Chromium needs; without the background-networking ones it tries the internet.
const chromiumArgs = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const log = (msg: string) => console.log(`screenshots: ${msg}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

for (const u of [uiUrl, sandboxUrl]) {
  if (!loopback.has(u.hostname)) {
    console.error(`screenshots: ${u.href} is not on loopback; this script only talks to a local make start`);
    process.exit(2);
  }
}

async function answers(url: URL): Promise<boolean> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    return res.ok;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------- make start

let startProcess: ChildProcess | undefined;

async function ensureProduct(): Promise<void> {
  const ui = await answers(new URL('/api/v1/settings', uiUrl));
  const sandbox = await answers(new URL('/scenarios', sandboxUrl));
  if (ui && sandbox) {
    log(`using the running make start (Temporal UI ${uiUrl.origin})`);
    return;
  }
  if (ui) {
    throw new Error(
      `a Temporal UI answers at ${uiUrl.origin} but no sandbox at ${sandboxUrl.origin}: the pictures need ` +
        'the whole product of make start (stop that server, or start make start)',
    );
  }
  const logFile = join(dataDir, 'screenshots-start.log');
  mkdirSync(dataDir, { recursive: true });
  log(`starting make start in the background (log: ${logFile})`);
  const out = createWriteStream(logFile);
  startProcess = spawn('bash', ['scripts/start.sh'], {
    cwd: root,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  startProcess.stdout?.pipe(out);
  startProcess.stderr?.pipe(out);
  let exited = false;
  startProcess.once('exit', () => (exited = true));
  // A first start builds the Kubernetes control plane in the background; the drill waits for it below.
  const deadline = Date.now() + 10 * 60_000;
  while (Date.now() < deadline) {
    if (exited) throw new Error(`make start exited; see ${logFile}`);
    if (readFileSync(logFile, 'utf8').includes('Press Ctrl-C to stop.')) return;
    await sleep(1_000);
  }
  throw new Error(`make start was not ready within 10 minutes; see ${logFile}`);
}

async function stopProduct(): Promise<void> {
  const p = startProcess;
  if (!p?.pid || p.exitCode !== null) return;
  log('stopping the make start this script started');
  const exited = new Promise((r) => p.once('exit', r));
  p.kill('SIGTERM'); // scripts/start.sh stops everything it started and keeps the data
  await Promise.race([exited, sleep(60_000)]);
}

// ------------------------------------------------------------------------------------- product commands

function incidentctl(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/incidentctl.js', ...args], { cwd: root });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.once('error', reject);
    p.once('exit', (code) => resolve({ code: code ?? 1, stdout, stderr }));
  });
}

async function mustIncidentctl(args: string[]): Promise<string> {
  const r = await incidentctl(args);
  if (r.code !== 0)
    throw new Error(`incidentctl ${args.join(' ')} failed (${r.code}): ${r.stderr}${r.stdout}`);
  log(`incidentctl ${args.join(' ')}: ${r.stdout.trim().split('\n').pop() ?? ''}`);
  return r.stdout;
}

interface Drill {
  process: ChildProcess;
  done: Promise<{ code: number; report: { outcome?: string; postIncidentWorkflowId?: string | null } }>;
  stderr: () => string;
}

/** `incidentctl drill <scenario> --json` without --approve-as: the step waits for a person. */
function startDrill(): Drill {
  const args = ['bin/incidentctl.js', 'drill', scenario, '--complete-tasks-as', 'erin', '--json'];
  const p = spawn(process.execPath, args, { cwd: root });
  let stdout = '';
  let stderr = '';
  p.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number; report: Record<string, never> }>((resolve) =>
    p.once('exit', (code) => {
      let report = {};
      try {
        report = JSON.parse(stdout) as Record<string, never>;
      } catch {
        // no report: the drill refused to start
      }
      resolve({ code: code ?? 1, report });
    }),
  );
  return { process: p, done, stderr: () => stderr };
}

async function waitFor<T>(what: string, timeoutMs: number, fn: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(1_000);
  }
}

// ----------------------------------------------------------------------------------------------- browser

async function launch(): Promise<{ context: BrowserContext; page: Page; profile: string }> {
  const profile = mkdtempSync(join(tmpdir(), 'screenshots-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: chromiumPath,
    headless: true,
    args: chromiumArgs,
    viewport,
    deviceScaleFactor: 1,
    colorScheme: 'light',
    locale: 'en-US',
    timezoneId: 'UTC',
  });
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.protocol === 'data:' || u.protocol === 'blob:' || loopback.has(u.hostname)) return route.continue();
    return route.abort('blockedbyclient');
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(30_000);
  return { context, page, profile };
}

const listUrl = (query: string) =>
  new URL(`/namespaces/${namespace}/workflows?query=${encodeURIComponent(query)}`, uiUrl).href;
const workflowUrl = (id: string, tab = '') =>
  new URL(`/namespaces/${namespace}/workflows/${encodeURIComponent(id)}${tab}`, uiUrl).href;
const file = (name: string) => join(outDir, name);
const slug = (name: string) =>
  name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '');

/** Opens the list with a query and waits until it shows as many workflows as the server counts. */
async function openList(page: Page, client: Client, query: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    const { count } = await client.workflow.count(query);
    await page.goto(listUrl(query));
    const heading = page.locator('h1').filter({ hasText: /\d+\s+Workflows?/ });
    await heading.waitFor();
    await page.waitForLoadState('networkidle');
    const shown = Number(/(\d+)/.exec((await heading.textContent()) ?? '')?.[1]);
    if (shown === count && (count === 0 || (await page.locator('table tbody tr').count()) > 0)) return count;
    if (attempt >= 5)
      throw new Error(`the UI shows ${shown} workflows for ${query}, the server counts ${count}`);
    await sleep(2_000);
  }
}

/** The Temporal UI keeps saved views in the browser (localStorage): "Save as New", a name, Save. */
async function saveView(page: Page, name: string, shootModal?: string): Promise<void> {
  await page.getByTestId('create-view-button').click();
  await page.getByTestId('workflow-save-view-modal-input').fill(name);
  if (shootModal) {
    await page.getByRole('button', { name: 'Save', exact: true }).and(page.locator(':enabled')).waitFor();
    await page.waitForTimeout(300);
    await page.screenshot({ path: file(shootModal) });
  }
  await page.getByRole('button', { name: 'Save', exact: true }).click();
  await page.getByTestId('saved-views-button').filter({ hasText: name }).waitFor();
}

/** Columns of the list: the contract's search attributes first, then the workflow id and start. */
async function configureColumns(page: Page): Promise<void> {
  await page.getByTestId('workflows-summary-table-configuration-button').click();
  for (const col of ['Workflow ID', 'Run ID', 'Type', 'Start', 'End']) {
    const remove = page.getByRole('button', { name: `Remove ${col} column` });
    if (await remove.count()) await remove.click();
  }
  for (const col of [
    'IncidentSeverity',
    'IncidentStatus',
    'AwaitingApproval',
    'ReportStatus',
    'ReportDueAt',
    'Workflow ID',
    'Start',
  ]) {
    await page.getByRole('button', { name: `Add ${col} column` }).click();
  }
  await page.screenshot({ path: file('configure-columns.png') });
  await page.getByRole('button', { name: 'Close Workflows Table configuration' }).click();
}

/** A tab of the workflow's current run: user-metadata (summary and current details) or query. */
async function openTab(
  page: Page,
  client: Client,
  id: string,
  tab: 'user-metadata' | 'query',
): Promise<void> {
  const { runId } = await client.workflow.getHandle(id).describe();
  await page.goto(workflowUrl(id, `/${runId}/${tab}`)); // the page polls: it never goes network-idle
}

async function shootDetails(
  page: Page,
  client: Client,
  id: string,
  expect: string,
  name: string,
): Promise<void> {
  await openTab(page, client, id, 'user-metadata');
  await page.getByText('Current Details').waitFor();
  // The UI renders the summary and details as markdown, each in an iframe of its own.
  await waitFor(`"${expect}" in the details`, 30_000, async () => {
    for (const frame of page.frames()) {
      if (frame === page.mainFrame()) continue;
      const text = await frame
        .locator('body')
        .innerText()
        .catch(() => '');
      if (text.includes(expect)) return true;
    }
    return undefined;
  });
  await page.waitForTimeout(500);
  await page.screenshot({ path: file(name) });
}

async function shootStatusQuery(page: Page, client: Client, id: string, name: string): Promise<void> {
  await openTab(page, client, id, 'query');
  await page.getByRole('button', { name: 'Run Query' }).click();
  await page.getByText('incidentId').filter({ visible: true }).first().waitFor();
  await page.waitForTimeout(1_000); // the Run Query button spins a moment longer
  await page.screenshot({ path: file(name) });
}

// ------------------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const views = docQueries(await readFile(doc, 'utf8')).filter((v): v is DocQuery & { name: string } =>
    Boolean(v.name),
  );
  const view = (pattern: RegExp) => {
    const v = views.find((x) => pattern.test(x.query));
    if (!v) throw new Error(`docs/managers.md has no saved view whose query matches ${pattern}`);
    return v;
  };
  const awaiting = view(/IncidentStatus\s*=\s*"AwaitingApproval"/);
  const pending = view(/ReportStatus\s*=\s*"Pending"/);
  const overdue = view(/ReportStatus\s*=\s*"Overdue"/);
  const p1 = view(/IncidentSeverity\s*=\s*"P1"/);
  mkdirSync(outDir, { recursive: true });

  await ensureProduct();
  const settings = await loadTemporalSettings();
  const connection = await Connection.connect(clientConnectionOptions(settings));
  const client = new Client({ connection, namespace });
  const { context, page, profile } = await launch();
  let drill: Drill | undefined;
  try {
    await page.goto(listUrl(''));
    const collapse = page.locator('[title="Collapse Navigation"]');
    if (await collapse.count()) await collapse.click(); // tried for a wider table; this UI shows it again on the next page
    await configureColumns(page);

    // An incident that waits for approval: a drill nobody approves for (a game day's start).
    let incidentId = '';
    let step = '';
    const drillDeadline = Date.now() + 25 * 60_000;
    for (;;) {
      log(`incidentctl drill ${scenario} --complete-tasks-as erin (nobody approves yet)`);
      drill = startDrill();
      const d = drill;
      const found = await Promise.race([
        waitFor('an incident awaiting approval', 5 * 60_000, async () => {
          for await (const w of client.workflow.list({
            query:
              'WorkflowType="incidentWorkflow" AND ExecutionStatus="Running" AND IncidentDrill=true AND IncidentStatus="AwaitingApproval"',
          })) {
            return { id: w.workflowId, step: w.typedSearchAttributes.get(AwaitingApproval)?.[0] ?? '' };
          }
          return undefined;
        }),
        d.done.then(() => undefined),
      ]);
      if (found) {
        incidentId = found.id;
        step = found.step;
        break;
      }
      const out = d.stderr();
      // A first make start builds the control plane in the background; the drill refuses until it is up.
      if (/control plane/i.test(out) && Date.now() < drillDeadline) {
        log('the sandbox waits for its Kubernetes control plane; trying again in 30 s');
        await sleep(30_000);
        continue;
      }
      throw new Error(`the drill ended before an incident waited for approval:\n${out}`);
    }
    log(`${incidentId} waits for approval of ${step}`);

    await openList(page, client, awaiting.query);
    await saveView(page, awaiting.name);
    await page.screenshot({ path: file(`${slug(awaiting.name)}.png`) });
    await shootDetails(page, client, incidentId, 'AwaitingApproval', 'incident-details.png');
    await shootStatusQuery(page, client, incidentId, 'incident-status-query.png');

    // The people: someone acknowledges, an approver approves; the drill then resolves by itself.
    await mustIncidentctl(['ack', incidentId, '--as', 'bob']);
    await mustIncidentctl(['approve', incidentId, step, '--as', 'alice']);
    log('waiting for the drill to resolve the incident and open its report');
    const result = await Promise.race([drill.done, sleep(15 * 60_000).then(() => undefined)]);
    if (!result) throw new Error(`the drill did not end within 15 minutes:\n${drill.stderr()}`);
    const reportId = result.report.postIncidentWorkflowId;
    if (result.code !== 0 || !reportId) {
      throw new Error(`the drill ended with ${result.code} and no report:\n${drill.stderr()}`);
    }
    log(`drill: ${result.report.outcome ?? 'done'}; report ${reportId}`);
    await mustIncidentctl([
      'followup',
      'add',
      reportId,
      '--title',
      'Alert on crash-looping fte-api pods',
      '--owner',
      'carol',
      '--as',
      'bob',
    ]);

    await openList(page, client, pending.query);
    await saveView(page, pending.name);
    await page.screenshot({ path: file(`${slug(pending.name)}.png`) });
    await shootDetails(page, client, reportId, 'Open follow-ups', 'report-details.png');

    await openList(page, client, overdue.query);
    await saveView(page, overdue.name);
    await page.screenshot({ path: file(`${slug(overdue.name)}.png`) });

    const p1Query = forThisWeek(p1.query, new Date());
    await openList(page, client, p1Query);
    await saveView(page, p1.name, 'save-view.png');
    await page.screenshot({ path: file(`${slug(p1.name)}.png`) });

    await page.getByTestId('saved-views-button').click();
    await page.getByPlaceholder('Search views').waitFor();
    await page.waitForTimeout(800); // the menu fades in
    await page.screenshot({ path: file('saved-views.png') });
    await page.keyboard.press('Escape');

    // The views are stored as typed: check that the browser kept every query unchanged.
    const stored = await page.evaluate(() => localStorage.getItem('saved-workflow-queries'));
    const saved = (JSON.parse(stored ?? '{}') as Record<string, { name: string; query: string }[]>)[
      namespace
    ];
    for (const v of [awaiting, pending, overdue, { ...p1, query: p1Query }]) {
      const s = saved?.find((x) => x.name === v.name);
      if (s?.query !== v.query)
        throw new Error(`saved view ${v.name}: stored ${s?.query}, expected ${v.query}`);
    }
    log(`wrote ${outDir}`);
  } finally {
    if (drill && drill.process.exitCode === null) {
      drill.process.kill('SIGINT');
      console.error(
        'screenshots: the drill was stopped early; the fault may still be in force and its incident open:\n' +
          `  npx incidentctl list; approve its step (npx incidentctl approve …) or run\n` +
          `  curl -X POST ${sandboxUrl.origin}/scenarios/healthy, then npx incidentctl resolve … --summary "…"`,
      );
    }
    await context.close();
    rmSync(profile, { recursive: true, force: true });
    await connection.close();
  }
}

try {
  await main();
} catch (error) {
  console.error(`screenshots: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopProduct();
}
