import { randomBytes } from 'node:crypto';
import { appendFile, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import pg from 'pg';
import { parse, stringify } from 'yaml';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DefaultLogger, Runtime, type LogEntry } from '@temporalio/worker';
import { createReceiverLogger } from '../../src/starters/receiver.js';
import { criLine } from '../../src/sandbox/pod-logs.js';
import { canary, findLeaks, recordingServer, withDecodedBase64, type Canary } from '../helpers/canaries.js';
import { contactsFile } from '../helpers/paths.js';
import { services } from '../helpers/services.js';
import { startProduct, type Product } from './harness.js';

// Canary secrets: recognisable values planted where the product meets secrets (a Kubernetes Secret, the
// database password, the Slack webhook URL, the paging webhook's token, the receiver's token, pod log lines,
// customers' email addresses and phone numbers in pod logs),
// then full incidents (a WhatsApp outage that reads the Secret, and a database outage) from alert to
// approval, resolution and the post-incident report. None of the values, nor their base64 forms, may appear
// in any workflow history (as `temporal workflow show --output json` prints it, payloads decoded), the
// worker's or the receiver's logs, the notifications sent, or the ledger.

const secret = (name: string): Canary => ({ name, value: canary() });
const planted = {
  twilioToken: secret('Secret fte-secrets TWILIO_AUTH_TOKEN'),
  secretKey: secret('Secret fte-secrets CANARY_API_KEY'),
  dbPassword: secret('database password (worker LEDGER_ and PLATFORM_DATABASE_URL)'),
  slackPath: secret('Slack webhook URL (its secret path)'),
  pagerToken: secret('webhook target token (PAGER_CANARY_TOKEN)'),
  receiverToken: secret('receiver token'),
  logBearer: secret('pod log: Authorization: Bearer'),
  logUrlPassword: secret('pod log: password in a connection URL'),
  logJsonPassword: secret('pod log: "password" in a JSON line'),
  logLibpqPassword: secret('pod log: libpq password='),
  logApiKey: secret('pod log: X-Api-Key header'),
  logSkKey: secret('pod log: sk- API key'),
  logSlackUrl: secret('pod log: Slack webhook URL'),
  customerEmail: { name: "pod log: a customer's email address", value: `${canary()}@customers.example.com` },
  customerPhone: {
    name: "pod log: a customer's WhatsApp number",
    value: `+4915${String(randomBytes(4).readUInt32BE()).padStart(10, '0').slice(0, 9)}`,
  },
};
const dbRole = `canary_${randomBytes(6).toString('hex')}`;

/** What the worker (Temporal runtime, activities, workflows), stdout/stderr and the receiver wrote. */
const workerLog: string[] = [];
const printed: string[] = [];
const receiverLog: string[] = [];

let product: Product;
let dir: string;
let slack: Awaited<ReturnType<typeof recordingServer>>;
let pager: Awaited<ReturnType<typeof recordingServer>>;
let summary = '';
/** Every workflow the incidents ran: incidents and their post-incident reports. */
const workflowIds = new Set<string>();

const adminDb = async <T>(work: (db: pg.Client) => Promise<T>): Promise<T> => {
  const db = new pg.Client({ connectionString: services().postgresUrl });
  await db.connect();
  try {
    return await work(db);
  } finally {
    await db.end();
  }
};

function withCredentials(url: string, user: string, password: string): string {
  const u = new URL(url);
  u.username = user;
  u.password = password;
  return u.toString();
}

beforeAll(async () => {
  // The worker runs in this process: its runtime logs (core, workflows' and activities' loggers) come here.
  Runtime.install({
    logger: new DefaultLogger('DEBUG', (entry: LogEntry) => {
      workerLog.push(
        `${entry.level} ${entry.message} ${JSON.stringify(entry.meta ?? {}, (_, v: unknown) =>
          typeof v === 'bigint' ? v.toString() : v,
        )}`,
      );
    }),
  });
  for (const stream of [process.stdout, process.stderr]) {
    vi.spyOn(stream, 'write').mockImplementation(((chunk: unknown) => {
      printed.push(String(chunk));
      return true;
    }) as typeof stream.write);
  }
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      printed.push(args.map(String).join(' '));
    });
  }

  dir = await mkdtemp(join(tmpdir(), 'canary-'));
  // Slack and the pager answer their first request with an error that quotes what they were sent (as a
  // proxy or a misconfigured endpoint does), then accept everything.
  slack = await recordingServer((req, n) =>
    n === 0 ? { status: 404, body: `no_service: ${req.method} ${req.url}` } : { status: 200, body: 'ok' },
  );
  pager = await recordingServer((req, n) =>
    n === 0
      ? { status: 401, body: `bad credentials: ${String(req.headers.authorization)}` }
      : { status: 204 },
  );
  // Everyone is reached on Slack, the pager webhook and the log.
  const contacts = parse(await readFile(contactsFile, 'utf8')) as { people: { targets: unknown[] }[] };
  for (const person of contacts.people) {
    person.targets = [
      { type: 'slack', webhookUrlEnv: 'SLACK_CANARY_WEBHOOK_URL' },
      { type: 'webhook', url: `${pager.url}/page`, tokenEnv: 'PAGER_CANARY_TOKEN' },
      { type: 'log' },
    ];
  }
  const contactsPath = join(dir, 'contacts.yaml');
  await writeFile(contactsPath, stringify(contacts));

  // The worker reaches both databases as a role whose password is a canary.
  await adminDb((db) =>
    db.query(`CREATE ROLE ${dbRole} LOGIN SUPERUSER PASSWORD '${planted.dbPassword.value}'`),
  );

  product = await startProduct({
    receiverToken: planted.receiverToken.value,
    receiverLogger: createReceiverLogger(
      'debug',
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          receiverLog.push(chunk.toString('utf8'));
          done();
        },
      }),
    ),
    extraWorkerEnv: (env) => ({
      LEDGER_DATABASE_URL: withCredentials(env.LEDGER_DATABASE_URL, dbRole, planted.dbPassword.value),
      PLATFORM_DATABASE_URL: withCredentials(env.PLATFORM_DATABASE_URL, dbRole, planted.dbPassword.value),
      CONTACTS_FILE: contactsPath,
      SLACK_CANARY_WEBHOOK_URL: `${slack.url}/services/T0CANARY/B0CANARY/${planted.slackPath.value}`,
      PAGER_CANARY_TOKEN: planted.pagerToken.value,
    }),
  });

  // The platform's Secret holds canaries: the key the WhatsApp runbook checks, and one more.
  const { core, namespace } = product.sandbox.cluster;
  const current = await core.readNamespacedSecret({ name: 'fte-secrets', namespace });
  const b64 = (v: string) => Buffer.from(v, 'utf8').toString('base64');
  await core.replaceNamespacedSecret({
    name: 'fte-secrets',
    namespace,
    body: {
      ...current,
      data: {
        ...current.data,
        TWILIO_AUTH_TOKEN: b64(planted.twilioToken.value),
        CANARY_API_KEY: b64(planted.secretKey.value),
      },
    },
  });
}, 240_000);

afterAll(async () => {
  for (const id of workflowIds) {
    await product?.env.client.workflow
      .getHandle(id)
      .terminate('canary test done')
      .catch(() => {});
  }
  await product?.stop();
  await adminDb((db) => db.query(`DROP ROLE IF EXISTS ${dbRole}`)).catch((error: unknown) => {
    printed.push(`could not drop role ${dbRole}: ${String(error)}`);
  });
  await slack?.close();
  await pager?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  vi.restoreAllMocks();
  if (summary) console.info(summary);
});

/** What the platform's containers print next, in the forms secrets usually take in logs. */
const canaryLines = (): string[] => [
  `ERROR twilio: signature check failed, TWILIO_AUTH_TOKEN=${planted.twilioToken.value}`,
  `ERROR upstream call failed: Authorization: Bearer ${planted.logBearer.value}`,
  `WARN db connect postgresql://fte:${planted.logUrlPassword.value}@postgres:5432/fte failed`,
  `ERROR config {"user": "fte", "password": "${planted.logJsonPassword.value}"}`,
  `ERROR libpq: host=postgres user=fte password=${planted.logLibpqPassword.value} dbname=fte`,
  `ERROR request had X-Api-Key: ${planted.logApiKey.value}`,
  `ERROR openai: key sk-${planted.logSkKey.value} was rejected`,
  `ERROR posting to https://hooks.slack.com/services/T000/B000/${planted.logSlackUrl.value} failed`,
  `ERROR psql -h postgres failed with PGPASSWORD=${planted.dbPassword.value}`,
  `ERROR gmail: reply to ${planted.customerEmail.value} could not be sent`,
  `ERROR whatsapp: message from whatsapp:${planted.customerPhone.value} dropped`,
];

/** Appends the canary lines to every log the sandbox's pods print (the healthy ones and the broken pods'). */
async function plantLogLines(): Promise<void> {
  const logs = product.sandbox.cluster.logs;
  const pods = join(logs.dir, 'pods');
  const files = [
    ...(await readdir(logs.dir)).filter((f) => f.endsWith('.log')).map((f) => join(logs.dir, f)),
    ...(await readdir(pods).catch(() => [])).map((f) => join(pods, f)),
  ];
  const text = canaryLines()
    .map((l) => criLine(l, new Date(), 'stderr'))
    .join('');
  for (const file of files) await appendFile(file, text);
}

async function resolveAndKeep(runbook: string, alertname: string): Promise<void> {
  expect(await product.alert(alertname, 'resolved')).toBe(202);
  const outcome = (await product.handle(runbook).result()) as { postIncidentWorkflowId?: string };
  expect(outcome.postIncidentWorkflowId).toBeDefined();
  workflowIds.add(outcome.postIncidentWorkflowId as string);
  await product.pendingReport(outcome.postIncidentWorkflowId);
}

describe('canary secrets', () => {
  it('a WhatsApp outage: the Secret is checked, the processor restarted on approval, the incident resolved', async () => {
    const runbook = 'whatsapp-channel-down';
    const alertname = 'FTEWhatsAppChannelDown';
    workflowIds.add(product.incidentId(runbook));
    await product.sandbox.apply('whatsapp-down');
    await plantLogLines();

    expect(await product.alert(alertname, 'firing')).toBe(202);
    // The same alert with basic auth (Alertmanager's other way), and one with a token that is almost right.
    const send = (authorization: string) =>
      fetch(product.receiverUrl, {
        method: 'POST',
        headers: { authorization, 'content-type': 'application/json' },
        body: JSON.stringify({ version: '4', status: 'firing', alerts: [] }),
      }).then((r) => r.status);
    expect(
      await send(`Basic ${Buffer.from(`alertmanager:${planted.receiverToken.value}`).toString('base64')}`),
    ).not.toBe(401);
    expect(await send(`Bearer ${planted.receiverToken.value}x`)).toBe(401);

    const waiting = await product.waitFor(
      runbook,
      (s) => s.awaitingApproval.includes('restart-processor'),
      'diagnosis and the approval request',
      120,
    );
    // The Secret was read (the key is set) and the canary log lines were read, redacted.
    expect(waiting.findings['twilio-secret']?.status).toBe('ok');
    expect(JSON.stringify(waiting.findings['processor-logs'])).toContain('[REDACTED]');

    expect(
      await product.incidentctl([
        'approve',
        product.incidentId(runbook),
        'restart-processor',
        '--as',
        'erin',
      ]),
    ).toContain('approved step restart-processor');
    await product.waitFor(runbook, (s) => s.status === 'Monitoring', 'the restart and its verification', 240);
    await resolveAndKeep(runbook, alertname);
  }, 480_000);

  it('a database outage: the platform database is unreachable, postgres restarted on approval, resolved', async () => {
    const runbook = 'all-channels-down';
    const alertname = 'FTEAllChannelsDown';
    workflowIds.add(product.incidentId(runbook));
    await product.sandbox.apply('healthy');
    await product.sandbox.apply('postgres-down');
    await plantLogLines();

    expect(await product.alert(alertname, 'firing')).toBe(202);
    const waiting = await product.waitFor(
      runbook,
      (s) => s.awaitingApproval.includes('restart-postgres'),
      'diagnosis and the approval request',
      120,
    );
    expect(waiting.findings.postgres?.status).toBe('down');
    expect(JSON.stringify(waiting.findings['postgres-logs'])).toContain('[REDACTED]');
    const answer = await product.temporal([
      'workflow',
      'update',
      'execute',
      '--workflow-id',
      product.incidentId(runbook),
      '--name',
      'approve',
      '--input',
      JSON.stringify({ step: 'restart-postgres', by: 'carol' }),
    ]);
    expect(answer).toContain('restart-postgres');
    await product.waitFor(runbook, (s) => s.status === 'Monitoring', 'the restart and its verification', 240);
    await resolveAndKeep(runbook, alertname);
  }, 480_000);

  it('no canary appears in the histories, the logs, the notifications or the ledger', async () => {
    const sources: Record<string, string> = {};

    // Every run of every workflow, as the temporal CLI prints it.
    for (const id of workflowIds) {
      const runIds = new Set<string>([(await product.env.client.workflow.getHandle(id).describe()).runId]);
      for await (const run of product.env.client.workflow.list({ query: `WorkflowId = "${id}"` })) {
        runIds.add(run.runId);
      }
      for (const runId of runIds) {
        const json = await product.temporal([
          'workflow',
          'show',
          '--workflow-id',
          id,
          '--run-id',
          runId,
          '--output',
          'json',
        ]);
        sources[`history ${id} ${runId}`] = withDecodedBase64(json);
      }
      // What people see: the workflow's description (search attributes, the UI's details) and incidentctl.
      sources[`describe ${id}`] = withDecodedBase64(
        await product.temporal(['workflow', 'describe', '--workflow-id', id, '--output', 'json']),
      );
      sources[`incidentctl show ${id}`] = await product.incidentctl(['show', id, '--timeline', '0']);
    }
    expect(Object.keys(sources).filter((k) => k.startsWith('history')).length).toBeGreaterThanOrEqual(4);
    const histories = Object.values(sources).join('\n');
    // The histories are the real thing: the approval, the Secret check, the notifications' results.
    expect(histories).toContain('restart-processor');
    expect(histories).toContain('twilio-secret');
    expect(histories).toContain('notify');

    sources['worker log (Temporal runtime)'] = workerLog.join('\n');
    sources['worker stdout, stderr and console'] = printed.join('\n');
    sources['receiver log'] = receiverLog.join('\n');
    expect(workerLog.length).toBeGreaterThan(0);
    expect(printed.join('\n')).toContain('notification');
    expect(receiverLog.join('\n')).toContain('"msg"');

    sources['Slack messages'] = slack.received.map((r) => `${r.method} ${r.body}`).join('\n');
    sources['webhook messages'] = pager.received.map((r) => `${r.method} ${r.url} ${r.body}`).join('\n');
    expect(slack.received.length).toBeGreaterThanOrEqual(4);
    expect(pager.received.length).toBeGreaterThanOrEqual(4);
    // The targets were reached with their secrets (they are where the secrets belong).
    expect(slack.received[0]?.url).toContain(planted.slackPath.value);
    expect(pager.received[0]?.headers.authorization).toBe(`Bearer ${planted.pagerToken.value}`);

    const ledger = new pg.Client({ connectionString: product.sandbox.env.LEDGER_DATABASE_URL });
    await ledger.connect();
    try {
      // The worker wrote the ledger as the canary role (its migrations made the tables).
      const owner = await ledger.query<{ tableowner: string }>(
        "SELECT tableowner FROM pg_tables WHERE tablename = 'incident_events'",
      );
      expect(owner.rows[0]?.tableowner).toBe(dbRole);
      for (const table of ['incidents', 'incident_events', 'action_runs']) {
        const { rows } = await ledger.query(`SELECT * FROM ${table}`);
        sources[`ledger ${table}`] = JSON.stringify(rows);
        if (table !== 'action_runs') expect(rows.length).toBeGreaterThan(0);
      }
    } finally {
      await ledger.end();
    }

    // The planted canaries, the sandbox's other secret values and the worker's own credentials.
    const cluster = product.sandbox.cluster;
    const canaries: Canary[] = [
      ...Object.values(planted),
      ...Object.entries(cluster.secrets)
        .filter(([key]) => key !== 'TWILIO_AUTH_TOKEN')
        .map(([key, value]) => ({ name: `Secret fte-secrets ${key}`, value })),
      { name: 'the worker’s Kubernetes token (kubeconfig)', value: product.sandbox.kubeProxy.token },
      { name: 'fte-api admin token', value: product.sandbox.env.FTE_API_ADMIN_TOKEN },
    ];
    const leaks = findLeaks(canaries, sources);
    const scanned = Object.values(sources).reduce((n, t) => n + t.length, 0);
    summary = `canary secrets: ${canaries.length} values searched in ${Object.keys(sources).length} sources (${scanned} characters)`;
    expect(
      leaks.map((l) => `${l.canary} (${l.form}) in ${l.source}: …${l.context}…`),
      'canary values found',
    ).toEqual([]);
  }, 240_000);
});
