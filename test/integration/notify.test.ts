import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { notifyActivities, type NotifyDeps } from '../../src/activities/notify.js';
import type { SlackMessage } from '../../src/activities/notify-message.js';
import type { ActionInput, Notification } from '../../src/domain/activity-contract.js';
import { contactsSchema, type Contacts } from '../../src/domain/contacts.js';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: unknown;
}

/** A local Slack/webhook receiver: records every POST and answers from a per-path list of statuses. */
class Receiver {
  received: Received[] = [];
  answers = new Map<string, number[]>();
  private server: Server | undefined;
  port = 0;

  async start(): Promise<void> {
    if (this.server?.listening) return;
    this.server = createServer((req, res) => {
      let raw = '';
      req.on('data', (chunk: Buffer) => (raw += chunk.toString('utf8')));
      req.on('end', () => {
        const path = req.url ?? '';
        this.received.push({ path, headers: req.headers, body: raw ? JSON.parse(raw) : undefined });
        const status = this.answers.get(path)?.shift() ?? 200;
        res.writeHead(status, { 'content-type': 'text/plain' }).end(status === 200 ? 'ok' : 'invalid_token');
      });
    });
    await new Promise<void>((resolve) => this.server?.listen(this.port, '127.0.0.1', resolve));
    this.port = (this.server.address() as AddressInfo).port;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise((resolve) => this.server?.close(resolve));
  }

  url(path: string): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  to(path: string): Received[] {
    return this.received.filter((r) => r.path === path);
  }
}

const SLACK_PATH = '/services/T0001/B0001/XoXsEcReTpAtH42';
const MANAGER_PATH = '/services/T0001/B0002/AnotherSecret99';
const HOOK_TOKEN = 'hook-token-very-secret-123';
const UI = 'http://127.0.0.1:8233';

const receiver = new Receiver();
let lines: string[];
let env: NodeJS.ProcessEnv;

function contacts(): Contacts {
  return contactsSchema.parse({
    roles: {
      'on-call': { people: ['alice', 'bob'] },
      platform: { people: ['carol', 'alice'] },
      manager: { people: ['frank'] },
      'ai-ml': { people: ['dave'] },
    },
    people: [
      { name: 'alice', targets: [{ type: 'slack', webhookUrlEnv: 'SLACK_ONCALL_URL' }, { type: 'log' }] },
      { name: 'bob', targets: [{ type: 'slack', webhookUrlEnv: 'SLACK_ONCALL_URL' }] },
      {
        name: 'carol',
        targets: [{ type: 'webhook', url: receiver.url('/hook'), tokenEnv: 'HOOK_TOKEN' }],
      },
      { name: 'frank', targets: [{ type: 'slack', webhookUrlEnv: 'SLACK_MANAGER_URL' }] },
      { name: 'dave', targets: [{ type: 'log' }] },
    ],
  });
}

const deps = (over: Partial<NotifyDeps> = {}): NotifyDeps => ({
  contacts: contacts(),
  env,
  temporalUiUrl: UI,
  namespace: 'default',
  logger: (line) => lines.push(line),
  retry: { attempts: 3, backoffMs: 10 },
  timeoutMs: 2_000,
  ...over,
});

const approval: Notification = {
  kind: 'approval-needed',
  workflowId: 'incident-all-channels-down--customer-success-fte',
  title: 'All channels down',
  severity: 'P1',
  roles: ['on-call', 'platform'],
  text: 'Approval needed: Rollout restart of deployment fte-api (approvers: platform, on-call)',
  waitingFor: 'approval of restart-api',
  command: 'incidentctl approve incident-all-channels-down--customer-success-fte restart-api',
};

const secrets = () => [SLACK_PATH, 'XoXsEcReTpAtH42', MANAGER_PATH, 'AnotherSecret99', HOOK_TOKEN];
function expectNoSecrets(text: string) {
  for (const secret of secrets()) expect(text).not.toContain(secret);
}

beforeAll(async () => {
  await receiver.start();
});
afterAll(async () => {
  await receiver.stop();
});
beforeEach(async () => {
  receiver.received = [];
  receiver.answers.clear();
  lines = [];
  env = { SLACK_ONCALL_URL: receiver.url(SLACK_PATH), HOOK_TOKEN };
  await receiver.start();
});

describe('notify', () => {
  it('sends one Block Kit message per Slack webhook, a webhook with its bearer token and one log line', async () => {
    const result = await notifyActivities(deps()).notify(approval);
    expect(result).toMatchObject({ delivered: 3, failed: 0, failures: [] });

    // alice is on-call and platform, bob shares her Slack channel: one message.
    const slack = receiver.to(SLACK_PATH);
    expect(slack).toHaveLength(1);
    const msg = slack[0]?.body as SlackMessage;
    const link = `${UI}/namespaces/default/workflows/${approval.workflowId}`;
    const header = msg.blocks.find((b) => b.type === 'header');
    expect(header?.text?.text).toBe('P1 · All channels down');
    const fields = msg.blocks
      .flatMap((b) => (b.type === 'section' ? (b.fields ?? []) : []))
      .map((f) => f.text);
    expect(fields).toContain('*Severity*\nP1');
    expect(fields).toContain('*Waiting for*\napproval of restart-api');
    expect(fields).toContain('*For*\nalice, bob');
    const texts = msg.blocks.flatMap((b) => (b.type === 'section' && b.text ? [b.text.text] : []));
    expect(texts).toContain(`*Run:*\n\`\`\`${approval.command}\`\`\``);
    const button = msg.blocks.flatMap((b) => (b.type === 'actions' ? b.elements : []))[0];
    expect(button?.url).toBe(link);
    expect(msg.text).toContain('All channels down');

    const hook = receiver.to('/hook');
    expect(hook).toHaveLength(1);
    expect(hook[0]?.headers.authorization).toBe(`Bearer ${HOOK_TOKEN}`);
    expect(hook[0]?.body).toMatchObject({
      kind: 'approval-needed',
      severity: 'P1',
      workflowId: approval.workflowId,
      command: approval.command,
      link,
      recipients: ['carol'],
    });

    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({ event: 'notification', recipients: ['alice'], link });
    expectNoSecrets(lines.join('\n'));
  });

  it('counts a Slack target whose env variable is missing as failed, naming the variable', async () => {
    const result = await notifyActivities(deps()).notify({ ...approval, roles: ['manager', 'ai-ml'] });
    expect(result.delivered).toBe(1);
    expect(result.failed).toBe(1);
    expect(result.failures[0]).toContain('SLACK_MANAGER_URL is not set');
    expect(lines.some((l) => l.includes('notification-failed') && l.includes('SLACK_MANAGER_URL'))).toBe(
      true,
    );
  });

  it('retries a failing delivery, then counts it as failed without throwing', async () => {
    receiver.answers.set(SLACK_PATH, [500, 500, 500]);
    const result = await notifyActivities(deps()).notify({ ...approval, roles: ['on-call'] });
    expect(receiver.to(SLACK_PATH)).toHaveLength(3);
    expect(result).toMatchObject({ delivered: 1, failed: 1 });
    expect(result.failures[0]).toMatch(
      /Slack \(SLACK_ONCALL_URL\) for alice, bob: .*500.*gave up after 3 attempts/,
    );
    expectNoSecrets(JSON.stringify(result));
    expectNoSecrets(lines.join('\n'));
  });

  it('delivers when a retry succeeds, and does not retry a 4xx answer', async () => {
    receiver.answers.set(SLACK_PATH, [503]);
    const ok = await notifyActivities(deps()).notify({ ...approval, roles: ['on-call'] });
    expect(ok).toMatchObject({ delivered: 2, failed: 0 });
    expect(receiver.to(SLACK_PATH)).toHaveLength(2);

    receiver.received = [];
    receiver.answers.set(SLACK_PATH, [403]);
    const rejected = await notifyActivities(deps()).notify({ ...approval, roles: ['on-call'] });
    expect(receiver.to(SLACK_PATH)).toHaveLength(1);
    expect(rejected.failed).toBe(1);
    expect(rejected.failures[0]).toContain('answered 403');
  });

  it('never throws when the receiver is gone, a token is missing, a role is unknown or contacts fail', async () => {
    await receiver.stop();
    delete env.HOOK_TOKEN;
    const result = await notifyActivities(deps()).notify({
      ...approval,
      roles: ['on-call', 'platform', 'nobody'],
    });
    expect(result.delivered).toBe(1); // the log line
    expect(result.failed).toBe(3);
    expect(result.failures.join('\n')).toContain('refused the connection');
    expect(result.failures.join('\n')).toContain('HOOK_TOKEN (bearer token) is not set');
    expect(result.failures.join('\n')).toContain('role "nobody" is not in the contacts');
    expectNoSecrets(JSON.stringify(result));
    expectNoSecrets(lines.join('\n'));

    const broken = notifyActivities(
      deps({ contacts: () => Promise.reject(new Error('contacts.yaml: password=hunter2hunter2 broken')) }),
    );
    const none = await broken.notify(approval);
    expect(none).toMatchObject({ delivered: 0, failed: 1 });
    expect(JSON.stringify(none)).not.toContain('hunter2hunter2');
  });
});

describe('notifyTeam', () => {
  const input = (idempotencyKey: string, args: Record<string, unknown>): ActionInput => ({
    incidentId: 'incident-high-escalation-rate--customer-success-fte',
    scope: 'customer-success-fte',
    stepId: 'inform-human-team',
    idempotencyKey,
    args,
  });
  const args = {
    roles: ['on-call', 'platform'],
    message: 'Escalation rate is high: expect more conversations',
  };

  it('tells the roles once per idempotency key', async () => {
    const acts = notifyActivities(deps());
    const first = await acts.notifyTeam(input('k1', args));
    expect(first.changed).toBe(true);
    expect(first.summary).toContain('alice, bob, carol');
    expect(receiver.to(SLACK_PATH)).toHaveLength(1);
    const msg = receiver.to(SLACK_PATH)[0]?.body as SlackMessage;
    expect(JSON.stringify(msg.blocks)).toContain('expect more conversations');
    expect(JSON.stringify(msg.blocks)).toContain(
      `${UI}/namespaces/default/workflows/incident-high-escalation-rate--customer-success-fte`,
    );

    const again = await acts.notifyTeam(input('k1', args));
    expect(again.changed).toBe(false);
    expect(receiver.to(SLACK_PATH)).toHaveLength(1);
  });

  it('rejects unknown roles and bad arguments as bad requests', async () => {
    const acts = notifyActivities(deps());
    await expect(acts.notifyTeam(input('k2', { ...args, roles: ['ghosts'] }))).rejects.toMatchObject({
      type: 'BadRequestError',
      nonRetryable: true,
    });
    await expect(acts.notifyTeam(input('k3', { roles: [] }))).rejects.toMatchObject({
      type: 'BadRequestError',
    });
    expect(receiver.received).toHaveLength(0);
  });

  it('fails retryably when no message got through, without leaking the webhook URL', async () => {
    env.SLACK_MANAGER_URL = receiver.url(MANAGER_PATH);
    await receiver.stop();
    const acts = notifyActivities(deps());
    const attempt = acts.notifyTeam(input('k4', { roles: ['manager'], message: 'hello' }));
    await expect(attempt).rejects.toMatchObject({ type: 'UnavailableError', nonRetryable: false });
    const error = await attempt.catch((e: Error) => e);
    expectNoSecrets(String((error as Error).message));
  });

  it('a retried notification (same idempotency key) delivers only what was not delivered before', async () => {
    const note: Notification = { ...approval, idempotencyKey: 'run-1/notify/7' };
    receiver.answers.set('/hook', [500, 500, 500]);
    const first = await notifyActivities(deps()).notify(note);
    const activities = notifyActivities(deps());
    receiver.received = [];
    receiver.answers.set('/hook', [500, 500, 500]);
    const once = await activities.notify(note);
    expect(once).toMatchObject({ delivered: 2, failed: 1 });
    expect(receiver.to(SLACK_PATH)).toHaveLength(1);
    expect(receiver.to('/hook')[0]?.headers['idempotency-key']).toBe('run-1/notify/7');
    // The activity is retried (a timeout, say): Slack and the log already have it; the webhook gets it now.
    receiver.received = [];
    lines = [];
    const again = await activities.notify(note);
    expect(again).toMatchObject({ delivered: 3, failed: 0 });
    expect(receiver.to(SLACK_PATH)).toHaveLength(0);
    expect(lines).toHaveLength(0);
    expect(receiver.to('/hook')).toHaveLength(1);
    expect(receiver.to('/hook')[0]?.body).toMatchObject({ idempotencyKey: 'run-1/notify/7' });
    // A different notification with the same text is a new one: delivered again.
    receiver.received = [];
    await activities.notify({ ...note, idempotencyKey: 'run-1/notify/8' });
    expect(receiver.to(SLACK_PATH)).toHaveLength(1);
    expect(first.failed).toBe(1);
  });
});
