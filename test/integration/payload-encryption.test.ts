import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { Worker } from '@temporalio/worker';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCodecServer } from '../../src/codec-server.js';
import {
  dataConverterFor,
  EncryptionCodec,
  ENCRYPTED_ENCODING,
  newPayloadKeyEntry,
  parsePayloadKeys,
} from '../../src/payload-codec.js';
import { signalIncident } from '../../src/starters/deliver.js';
import { workflowTraceSinks } from '../../src/tracing.js';
import { incidentActions, incidentStatusQuery } from '../../src/workflows/api.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { devServerEnv, uniqueName } from '../helpers/services.js';
import { alert, productBundle, until } from '../helpers/workflows.js';

// With PAYLOAD_KEYS set, every payload of an incident is AES-GCM encrypted before it reaches Temporal: its
// history, read by anyone with namespace access but without the key, holds none of what people wrote.
const keys = parsePayloadKeys(newPayloadKeyEntry('2026-12'));
const canary = `canary-note-${randomBytes(12).toString('hex')}`;
let env: TestWorkflowEnvironment;
let worker: Worker;
let running: Promise<void>;
let taskQueue: string;
let keyHolder: Client;

beforeAll(async () => {
  env = await devServerEnv();
  taskQueue = uniqueName('encrypted');
  const dataConverter = dataConverterFor(keys);
  const platform = new FakePlatform();
  platform.status = { postgres: 'down' };
  worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: 'default',
    taskQueue,
    workflowBundle: await productBundle(),
    activities: platform.activities(),
    sinks: workflowTraceSinks(undefined),
    ...(dataConverter ? { dataConverter } : {}),
  });
  running = worker.run();
  keyHolder = new Client({
    connection: env.connection,
    namespace: 'default',
    ...(dataConverter ? { dataConverter } : {}),
  });
});
afterAll(async () => {
  worker?.shutdown();
  await running;
  await env?.teardown();
});

const text = (payloads: Payload[]) =>
  payloads.map((p) => Buffer.from(p.data ?? new Uint8Array()).toString()).join('\n');

describe('encrypted payloads', () => {
  let workflowId = '';
  let historyPayloads: Payload[] = [];

  it('an incident runs as ever for those with the key, and its history holds no plaintext without it', async () => {
    const handle = await signalIncident(
      { client: keyHolder, taskQueue },
      { runbookId: 'all-channels-down', scope: uniqueName('enc'), source: 'alertmanager' },
      [alert('FTEAllChannelsDown', uniqueName('fp'))],
    );
    workflowId = handle.workflowId;
    await until(
      () => handle.query(incidentStatusQuery),
      (s) => s.awaitingApproval.length > 0,
      'approval wait',
    );
    await handle.executeUpdate(incidentActions.addNote.update, { args: [{ by: 'carol', text: canary }] });
    const s = await handle.query(incidentStatusQuery);
    expect(s.timeline.some((t) => t.text === canary)).toBe(true);

    const history = await env.client.workflow.getHandle(workflowId).fetchHistory();
    const raw = JSON.stringify(history);
    expect(raw).not.toContain(canary);
    expect(raw).not.toContain(Buffer.from(canary).toString('base64'));
    historyPayloads = (history.events ?? []).flatMap((e) => [
      ...(e.workflowExecutionStartedEventAttributes?.input?.payloads ?? []),
      ...(e.workflowExecutionUpdateAcceptedEventAttributes?.acceptedRequest?.input?.args?.payloads ?? []),
      ...(e.activityTaskScheduledEventAttributes?.input?.payloads ?? []),
      ...(e.activityTaskCompletedEventAttributes?.result?.payloads ?? []),
    ]) as Payload[];
    expect(historyPayloads.length).toBeGreaterThan(5);
    for (const p of historyPayloads) {
      expect(Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString()).toBe(ENCRYPTED_ENCODING);
    }
    // Decrypted with the key, the same history has the note's text.
    expect(text(await new EncryptionCodec(keys).decode(historyPayloads))).toContain(canary);
    await handle.terminate('test over');
  });

  it('the codec endpoint decrypts for the Temporal UI, only for its origin and with its token', async () => {
    const token = `codec-token-${randomBytes(8).toString('hex')}`;
    const app = createCodecServer({ keys, corsOrigins: ['http://127.0.0.1:8233'], token });
    await app.listen({ host: '127.0.0.1', port: 0 });
    const url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      const body = JSON.stringify({
        payloads: historyPayloads.map((p) => ({
          metadata: Object.fromEntries(
            Object.entries(p.metadata ?? {}).map(([k, v]) => [k, Buffer.from(v).toString('base64')]),
          ),
          data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
        })),
      });
      const headers = { 'content-type': 'application/json', 'x-namespace': 'default' };
      expect((await fetch(`${url}/decode`, { method: 'POST', headers, body })).status).toBe(401);
      const res = await fetch(`${url}/decode`, {
        method: 'POST',
        headers: { ...headers, authorization: `Bearer ${token}`, origin: 'http://127.0.0.1:8233' },
        body,
      });
      expect(res.status).toBe(200);
      expect(res.headers.get('access-control-allow-origin')).toBe('http://127.0.0.1:8233');
      const decoded = (await res.json()) as { payloads: { data: string }[] };
      expect(decoded.payloads.map((p) => Buffer.from(p.data, 'base64').toString()).join('\n')).toContain(
        canary,
      );
      const preflight = await fetch(`${url}/decode`, {
        method: 'OPTIONS',
        headers: { origin: 'https://elsewhere.example', 'access-control-request-method': 'POST' },
      });
      expect(preflight.headers.get('access-control-allow-origin')).toBeNull();
    } finally {
      await app.close();
    }
  });
});

describe('key rotation', () => {
  it('encrypts with the first key and decrypts with any listed; a payload of a dropped key says which', async () => {
    const old = newPayloadKeyEntry('old');
    const current = newPayloadKeyEntry('new');
    const [sealed] = await new EncryptionCodec(parsePayloadKeys(old)).encode([
      {
        metadata: { encoding: new TextEncoder().encode('json/plain') },
        data: new TextEncoder().encode('"x"'),
      },
    ]);
    const rotated = new EncryptionCodec(parsePayloadKeys(`${current}\n${old}`));
    expect(text(await rotated.decode([sealed as Payload]))).toBe('"x"');
    const [resealed] = await rotated.encode([{ metadata: {}, data: new TextEncoder().encode('"y"') }]);
    expect(Buffer.from(resealed?.metadata?.['encryption-key-id'] ?? new Uint8Array()).toString()).toBe('new');
    await expect(new EncryptionCodec(parsePayloadKeys(current)).decode([sealed as Payload])).rejects.toThrow(
      'payload encrypted with key "old", which PAYLOAD_KEYS does not hold',
    );
  });

  it('refuses a malformed key list without quoting the keys', () => {
    const entry = newPayloadKeyEntry('a');
    expect(() => parsePayloadKeys(`${entry},${entry}`)).toThrow('key id "a" is listed twice');
    expect(() => parsePayloadKeys('b=c2hvcnQ=')).toThrow('key "b" is 5 bytes, not 32');
    expect(() => parsePayloadKeys('no equals sign here')).toThrow(/entry 1 is not id=base64$/);
  });
});
