import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WorkflowNotFoundError } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type { FastifyInstance } from 'fastify';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { createReceiverLogger } from '../../src/starters/receiver.js';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import {
  amAlert,
  amPayload,
  basic,
  bearer,
  listeningReceiver,
  post,
  sample,
  scrape,
  terminateRunning,
  TOKEN,
  type Answer,
} from './harness.js';

// No worker: nothing here may start a workflow, and describe proves none was started.
let env: TestWorkflowEnvironment;
let app: FastifyInstance;
let url: string;
let taskQueue: string;
const logLines: string[] = [];
const BODY_LIMIT = 16 * 1024;

beforeAll(async () => {
  env = await devServerEnv();
  taskQueue = uniqueName('receiver-rejects');
  const logger = createReceiverLogger('debug', { write: (line: string) => void logLines.push(line) });
  ({ app, url } = await listeningReceiver(env.client, taskQueue, { bodyLimit: BODY_LIMIT, logger }));
});
afterAll(async () => {
  await app?.close();
  if (env) await terminateRunning(env.client, taskQueue);
  await env?.teardown();
});

const webhook = () => `${url}/webhooks/alertmanager`;
const rejected = (text: string, reason: string) =>
  sample(text, 'incident_receiver_requests_rejected_total', { reason }) ?? NaN;

async function noIncident(runbook: string, scope: string): Promise<void> {
  const handle = env.client.workflow.getHandle(incidentWorkflowId(runbook, scope));
  await expect(handle.describe()).rejects.toBeInstanceOf(WorkflowNotFoundError);
}

describe('requests the receiver refuses', () => {
  it('answers 400/400/400/413/401/401/401 with reasons, starts nothing, and counts each by reason', async () => {
    const ns = uniqueName('ns');
    const good = amPayload([amAlert('FTEAllChannelsDown', 'fp-bad', ns)]);
    const before = await scrape(url);

    const malformed = await post(webhook(), '{"version": "4", "alerts": [');
    const wrongVersion = await post(webhook(), { ...good, version: '3' });
    const { receiver: _dropped, ...noReceiver } = good;
    const missingFields = await post(webhook(), {
      ...noReceiver,
      alerts: [{ ...amAlert('FTEAllChannelsDown', 'x', ns), fingerprint: undefined, startsAt: 'yesterday' }],
    });
    const huge = amAlert('FTEAllChannelsDown', 'fp-huge', ns);
    huge.annotations.description = 'x'.repeat(BODY_LIMIT * 2);
    const oversize = await post(webhook(), amPayload([huge]));
    const anonymous = await post(webhook(), good, null);
    const wrongBearer = await post(webhook(), good, bearer('not-the-token-at-all-123'));
    const wrongBasic = await post(webhook(), good, basic('alertmanager', 'not-the-token-at-all-123'));

    const codes = [malformed, wrongVersion, missingFields, oversize, anonymous, wrongBearer, wrongBasic].map(
      (a: Answer) => a.status,
    );
    expect(codes).toEqual([400, 400, 400, 413, 401, 401, 401]);
    expect(JSON.stringify(malformed.body.problems)).toMatch(/JSON/i);
    expect(wrongVersion.body.problems).toEqual([
      expect.stringMatching(/^version: unsupported webhook payload version/),
    ]);
    expect(missingFields.body.problems).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^receiver: /),
        expect.stringMatching(/^alerts\.0\.fingerprint: /),
        expect.stringMatching(/^alerts\.0\.startsAt: expected an RFC 3339 timestamp/),
      ]),
    );
    expect(oversize.body.error).toBe(`request body is larger than ${BODY_LIMIT} bytes`);
    for (const a of [anonymous, wrongBearer, wrongBasic]) {
      expect(a.headers.get('www-authenticate')).toMatch(/Bearer realm="incident-receiver".*Basic realm=/);
    }
    expect(anonymous.body.error).toBe('authentication required');
    expect(wrongBearer.body.error).toBe('invalid credentials');

    await noIncident('all-channels-down', ns);
    const after = await scrape(url);
    expect(rejected(after, 'malformed') - rejected(before, 'malformed')).toBe(3);
    expect(rejected(after, 'oversize') - rejected(before, 'oversize')).toBe(1);
    expect(rejected(after, 'auth') - rejected(before, 'auth')).toBe(3);
    expect(sample(after, 'incident_receiver_alerts_received_total', { status: 'firing' })).toBe(
      sample(before, 'incident_receiver_alerts_received_total', { status: 'firing' }),
    );
  });

  it('refuses bodies that are not a JSON object, and declarations without credentials', async () => {
    const ns = uniqueName('ns');
    const text = await post(webhook(), 'alertname=Foo', bearer(), 'text/plain');
    const form = await post(webhook(), 'alertname=Foo', bearer(), 'application/x-www-form-urlencoded');
    const declare = await post(`${url}/incidents`, { runbook: 'triage', scope: ns, by: 'mallory' }, null);

    expect([text.status, form.status, declare.status]).toEqual([400, 415, 401]);
    expect(text.body.problems).toEqual([expect.stringMatching(/expected object/)]);
    await noIncident('triage', ns);
  });

  it('never writes the token or the Authorization header to its log', async () => {
    const ns = uniqueName('ns');
    // Right credentials but a bad body, so the request is logged all the way to its 400.
    await post(webhook(), { version: '4' }, bearer());
    await post(webhook(), { version: '4' }, basic('am', TOKEN));
    await post(webhook(), amPayload([amAlert('X', 'fp', ns)]), bearer(`${TOKEN}-wrong`));

    const log = logLines.join('');
    expect(log).toContain('Alertmanager payload refused');
    expect(log).toContain('request refused: authentication');
    expect(log).not.toContain(TOKEN);
    expect(log).not.toContain(Buffer.from(`am:${TOKEN}`).toString('base64'));
    expect(log.toLowerCase()).not.toContain('bearer ');
  });
});
