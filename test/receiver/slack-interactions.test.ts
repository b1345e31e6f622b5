import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { newKeyPair, parsePrivateKey } from '../../src/action-signing.js';
import { contactsSchema } from '../../src/domain/contacts.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { contactsFile } from '../helpers/paths.js';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { alert, raise, until } from '../helpers/workflows.js';
import { listeningReceiver, sample, startHarness, type Harness } from './harness.js';

// Slack's interactivity requests, signed exactly as Slack signs them (HMAC-SHA256 of "v0:<timestamp>:<body>"
// with the app's signing secret), clicking the Approve and Reject buttons of an approval message.
const SECRET = 'slack-signing-secret-0123456789abcdef';
const signer = newKeyPair();
const CAROL = 'U0CAROL001';

/** The project's contacts, carol with a Slack id, the receiver's key as signer `slack`, and a strict policy. */
function contacts(): string {
  const c = parse(readFileSync(contactsFile, 'utf8')) as Record<string, unknown> & {
    people: { name: string; slackUserId?: string }[];
  };
  for (const p of c.people) if (p.name === 'carol') p.slackUserId = CAROL;
  c.signers = [{ name: 'slack', publicKey: signer.publicKey }];
  c.policy = { unverified: { allow: ['acknowledge', 'addNote'], decideSteps: 'none' } };
  const file = join(mkdtempSync(join(tmpdir(), 'slack-contacts-')), 'contacts.yaml');
  writeFileSync(file, stringify(c));
  return file;
}

/** Stands in for Slack's response_url: records what the receiver posts back. */
const answers: { url: string; body: Record<string, unknown> }[] = [];
let slack: Server;
let responseBase: string;
let h: Harness;
const file = contacts();

beforeAll(async () => {
  slack = createServer((req: IncomingMessage, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      answers.push({ url: req.url ?? '', body: JSON.parse(body) as Record<string, unknown> });
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((resolve) => slack.listen(0, '127.0.0.1', resolve));
  responseBase = `http://127.0.0.1:${(slack.address() as AddressInfo).port}/actions/`;
  h = await startHarness(
    {
      slack: {
        signingSecret: SECRET,
        signerKey: parsePrivateKey(signer.privateKeyPem, 'signer'),
        responseUrlPrefix: responseBase,
        contacts: async () => contactsSchema.parse(parse(readFileSync(file, 'utf8'))),
      },
    },
    (platform) => {
      platform.contactsFile = file;
      platform.status = { postgres: 'down' };
    },
  );
});
afterAll(async () => {
  await h?.close();
  await new Promise((resolve) => slack?.close(resolve));
});

/** A click as Slack posts it: form-encoded `payload`, signed; `at` and `secret` can be made wrong. */
async function click(
  o: { user: string; action: 'incident-approve' | 'incident-reject'; workflowId: string; step: string },
  sign: { at?: number; secret?: string; omit?: boolean } = {},
) {
  const responseUrl = `${responseBase}${uniqueName('r')}`;
  const payload = {
    type: 'block_actions',
    user: { id: o.user, username: 'someone', team_id: 'T0TEAM0001' },
    api_app_id: 'A0APP00001',
    container: { type: 'message', message_ts: '1764000000.000100' },
    response_url: responseUrl,
    actions: [
      {
        type: 'button',
        action_id: o.action,
        block_id: 'b1',
        value: JSON.stringify({ workflowId: o.workflowId, step: o.step }),
        action_ts: '1764000001.000200',
      },
    ],
  };
  const body = `payload=${encodeURIComponent(JSON.stringify(payload))}`;
  const ts = String(Math.floor((sign.at ?? Date.now()) / 1000));
  const signature = `v0=${createHmac('sha256', sign.secret ?? SECRET)
    .update(`v0:${ts}:${body}`)
    .digest('hex')}`;
  const res = await fetch(`${h.url}/slack/interactions`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(sign.omit ? {} : { 'x-slack-request-timestamp': ts, 'x-slack-signature': signature }),
    },
    body,
  });
  return { status: res.status, responseUrl };
}

/** What the receiver posted to one click's response_url. */
const answered = async (responseUrl: string) => {
  const mine = () => answers.filter((a) => responseUrl.endsWith(a.url));
  await until(
    async () => mine().length,
    (n) => n > 0,
    'an answer on the response_url',
  );
  return mine();
};

async function waitingIncident() {
  // A scope of its own: each test decides a step of its own incident.
  const handle = await raise(
    h.env,
    h.taskQueue,
    'all-channels-down',
    [alert('FTEAllChannelsDown', uniqueName('fp'))],
    { scope: uniqueName('slack') },
  );
  await until(
    () => handle.query(incidentStatusQuery),
    (s) => s.awaitingApproval.includes('restart-postgres'),
    'approval wait',
  );
  return handle;
}

describe('POST /slack/interactions', () => {
  it('refuses forged, stale and unsigned requests before reading them', async () => {
    const handle = await waitingIncident();
    const target = {
      user: CAROL,
      action: 'incident-approve' as const,
      workflowId: handle.workflowId,
      step: 'restart-postgres',
    };
    expect((await click(target, { secret: 'not-the-signing-secret-0000' })).status).toBe(401);
    expect((await click(target, { at: Date.now() - 6 * 60_000 })).status).toBe(401);
    expect((await click(target, { omit: true })).status).toBe(401);
    expect(answers).toEqual([]);
    const metrics = await (await fetch(`${h.url}/metrics`)).text();
    expect(
      sample(metrics, 'incident_receiver_requests_rejected_total', { reason: 'auth' }),
    ).toBeGreaterThanOrEqual(3);
    expect(
      (await handle.query(incidentStatusQuery)).steps.find((s) => s.id === 'restart-postgres')?.status,
    ).toBe('awaiting-approval');
  });

  it('tells a Slack user who is in no contacts entry that they may not, and changes nothing', async () => {
    const handle = await waitingIncident();
    const r = await click({
      user: 'U0NOBODY99',
      action: 'incident-approve',
      workflowId: handle.workflowId,
      step: 'restart-postgres',
    });
    expect(r.status).toBe(200);
    const [answer] = await answered(r.responseUrl);
    expect(answer?.body).toMatchObject({ response_type: 'ephemeral', replace_original: false });
    expect(String(answer?.body.text)).toContain('U0NOBODY99 is not anyone in the contacts file');
    expect(
      (await handle.query(incidentStatusQuery)).steps.find((s) => s.id === 'restart-postgres')?.status,
    ).toBe('awaiting-approval');
  });

  it('approves as the contacts file’s person, verified via Slack, and replaces the message with the outcome', async () => {
    const handle = await waitingIncident();
    const r = await click({
      user: CAROL,
      action: 'incident-approve',
      workflowId: handle.workflowId,
      step: 'restart-postgres',
    });
    expect(r.status).toBe(200);
    const [answer] = await answered(r.responseUrl);
    expect(answer?.body).toMatchObject({ replace_original: true });
    expect(String(answer?.body.text)).toMatch(
      /^carol \(verified via Slack\): approved step restart-postgres/,
    );
    const s = await until(
      () => handle.query(incidentStatusQuery),
      (x) => x.timeline.some((t) => t.type === 'step-approved'),
      'approval recorded',
    );
    expect(s.timeline.find((t) => t.type === 'step-approved')).toMatchObject({
      by: 'carol',
      verified: true,
      via: 'slack',
    });
  });

  it('rejects too, and says so when the step no longer waits', async () => {
    const handle = await waitingIncident();
    const target = {
      user: CAROL,
      action: 'incident-reject' as const,
      workflowId: handle.workflowId,
      step: 'restart-postgres',
    };
    const first = await click(target);
    expect(String((await answered(first.responseUrl))[0]?.body.text)).toMatch(
      /rejected step restart-postgres/,
    );
    const again = await click(target);
    const [late] = await answered(again.responseUrl);
    expect(late?.body).toMatchObject({ response_type: 'ephemeral' });
    expect(String(late?.body.text)).toMatch(/reject of restart-postgres refused: .*not waiting for approval/);
  });
});

it('answers 404 when the receiver has no Slack signing secret', async () => {
  const env = await devServerEnv();
  const { app, url } = await listeningReceiver(env.client, uniqueName('no-slack'));
  try {
    const res = await fetch(`${url}/slack/interactions`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: 'payload=%7B%7D',
    });
    expect(res.status).toBe(404);
  } finally {
    await app.close();
    await env.teardown();
  }
});
