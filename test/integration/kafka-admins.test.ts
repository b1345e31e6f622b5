import { createConnection, createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kafkaActivities, kafkaAdmins } from '../../src/activities/kafka.js';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import { claimKafkaSlot, type KafkaSlot } from '../../src/sandbox/kafka-slot.js';

// The Kafka probes keep their admin clients connected between calls (one connection, not one per call), and
// still say down as soon as Kafka is unreachable and ok once it is back.

const input: ProbeInput = { incidentId: 'all-channels-down/test', scope: 'test', probeId: 'kafka', args: {} };

let slot: KafkaSlot;
let counter: Server;
let accepted = 0;
const sockets: Socket[] = [];

beforeAll(async () => {
  slot = await claimKafkaSlot();
  // Counts the bootstrap connections in front of the slot's proxy (which the broker advertises).
  counter = createServer((client) => {
    accepted++;
    const upstream = createConnection({ host: '127.0.0.1', port: slot.proxy.port });
    sockets.push(client, upstream);
    client.pipe(upstream).pipe(client);
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((resolve) => counter.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => counter?.close(resolve));
  await slot?.stop();
});

describe('the Kafka probes', () => {
  it('keep one connection across calls, say down while Kafka is cut and ok once it is back', async () => {
    const deps = { brokers: [`127.0.0.1:${(counter.address() as AddressInfo).port}`] };
    const admins = kafkaAdmins(deps);
    const { kafkaCluster } = kafkaActivities(deps, admins);
    try {
      for (let i = 0; i < 4; i++) expect((await kafkaCluster(input)).status).toBe('ok');
      expect(accepted).toBe(1);

      await slot.proxy.cut();
      const cut = await kafkaCluster(input);
      expect(cut.status).toBe('down');
      expect(cut.summary).toContain('cannot reach Kafka');

      await slot.proxy.restore();
      expect((await kafkaCluster(input)).status).toBe('ok');
      // Reconnected after the cut, then kept again.
      const reconnected = accepted;
      for (let i = 0; i < 3; i++) expect((await kafkaCluster(input)).status).toBe('ok');
      expect(accepted).toBe(reconnected);
    } finally {
      await admins.close();
    }
    await expect.poll(() => slot.proxy.connections, { timeout: 5000 }).toBe(0);
  }, 60_000);
});
