import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { Client, Connection } from '@temporalio/client';
import type { FastifyInstance } from 'fastify';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { services, uniqueName } from '../helpers/services.js';
import { until } from '../helpers/workflows.js';
import {
  amAlert,
  amPayload,
  listeningReceiver,
  post,
  sample,
  scrape,
  startHarness,
  type Harness,
} from './harness.js';

// The receiver's own Temporal client, so that the calls counted are the receiver's alone.
let h: Harness;
let connection: Connection;
let client: Client;
let receiver: { app: FastifyInstance; url: string };
beforeAll(async () => {
  h = await startHarness();
  connection = await Connection.connect({ address: services().temporalAddress });
  client = new Client({ connection, namespace: services().temporalNamespace });
  receiver = await listeningReceiver(client, h.taskQueue);
});
afterAll(async () => {
  await receiver?.app.close();
  await connection?.close();
  await h?.close();
});

describe('the receiver hot path', () => {
  it('delivers with one signalWithStart per incident and no other Temporal call, and still counts deduplication', async () => {
    const ns = uniqueName('ns');
    const webhook = `${receiver.url}/webhooks/alertmanager`;
    const payload = amPayload([
      amAlert('FTEEscalationRateHigh', 'fp-h1', ns),
      amAlert('FTEEscalationRateHigh', 'fp-h2', ns),
    ]);
    const service = client.workflowService;
    const signalWithStart = vi.spyOn(service, 'signalWithStartWorkflowExecution');
    const describeCalls = vi.spyOn(service, 'describeWorkflowExecution');
    const dedup = async () =>
      sample(await scrape(receiver.url), 'incident_receiver_alerts_deduplicated_total') ?? NaN;
    const before = await dedup();

    expect((await post(webhook, payload)).status).toBe(202);
    const handle = h.env.client.workflow.getHandle(incidentWorkflowId('high-escalation-rate', ns));
    await until(
      () => handle.query(incidentStatusQuery),
      (s) => Object.keys(s.alerts).length === 2,
      'incident open',
      300,
    );
    const afterFirst = await dedup();
    for (let i = 0; i < 3; i++) expect((await post(webhook, payload)).status).toBe(202);
    const afterRepeats = await dedup();
    const calls = {
      signalWithStart: signalWithStart.mock.calls.length,
      describe: describeCalls.mock.calls.length,
    };
    signalWithStart.mockRestore();
    describeCalls.mockRestore();

    expect(calls).toEqual({ signalWithStart: 4, describe: 0 });
    expect(afterFirst - before).toBe(0);
    expect(afterRepeats - afterFirst).toBe(6);
    const s = await handle.query(incidentStatusQuery);
    expect(s.alerts['fp-h1']?.deliveries).toBe(4);
  });
});
