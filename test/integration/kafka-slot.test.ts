import { createServer, type AddressInfo, type Server } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { Kafka, logLevel, type Admin, type Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import { describeKafkaError, kafkaActivities } from '../../src/activities/kafka.js';
import {
  claimKafkaSlot,
  KAFKA_SANDBOX_DEFAULTS,
  kafkaSlotLayout,
  KafkaSlotsTakenError,
  type KafkaSlot,
} from '../../src/sandbox/kafka-slot.js';
import { TcpProxy } from '../../src/sandbox/tcp-proxy.js';
import { services, uniqueName } from '../helpers/services.js';

// Kafka through a sandbox slot of the suite's broker (scripts/kafka.sh): the broker advertises the slot's
// proxy, so every connection of the slot's clients goes through it, and cutting it cuts them off alone.

/** Small timeouts and no retries: a refused connection fails at once. */
const kafka = (brokers: string[]) =>
  new Kafka({
    clientId: 'kafka-slot-test',
    brokers,
    connectionTimeout: 500,
    requestTimeout: 3000,
    retry: { retries: 0 },
    logLevel: logLevel.NOTHING,
  });

const slots: KafkaSlot[] = [];
const admins: Admin[] = [];
const producers: Producer[] = [];

async function claim(options: Parameters<typeof claimKafkaSlot>[0] = {}) {
  const slot = await claimKafkaSlot(options);
  slots.push(slot);
  return slot;
}
async function admin(brokers: string[]) {
  const a = kafka(brokers).admin();
  admins.push(a);
  await a.connect();
  return a;
}
/** The message chain of a kafkajs error, causes included. */
const reason = (error: unknown) => describeKafkaError(error).message;
const probeInput: ProbeInput = { incidentId: 'kafka-down/test', scope: 'test', probeId: 'kafka', args: {} };

let topic: string;
beforeAll(async () => {
  topic = uniqueName('kafka-slot');
  const a = await admin(services().kafkaBrokers);
  await a.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
});
afterEach(async () => {
  await Promise.all(producers.splice(0).map((p) => p.disconnect().catch(() => {})));
  await Promise.all(admins.splice(0).map((a) => a.disconnect().catch(() => {})));
  await Promise.all(slots.splice(0).map((s) => s.stop()));
});
afterAll(async () => {
  const a = await admin(services().kafkaBrokers);
  await a.deleteTopics({ topics: [topic] }).catch(() => {});
  await a.disconnect();
});

describe('claimKafkaSlot', () => {
  it("hands out the slot's proxy, which the broker advertises for the slot", async () => {
    const slot = await claim();
    const { listenerPortBase, proxyPortBase, slots: count } = kafkaSlotLayout();
    expect(slot.slot).toBeGreaterThanOrEqual(1);
    expect(slot.slot).toBeLessThanOrEqual(count);
    expect(slot.proxy.port).toBe(proxyPortBase + slot.slot);
    expect(slot.listener).toEqual({ host: '127.0.0.1', port: listenerPortBase + slot.slot });
    expect(slot.brokers).toEqual([`127.0.0.1:${slot.proxy.port}`]);

    const a = await admin(slot.brokers);
    const cluster = await a.describeCluster();
    expect(cluster.brokers).toHaveLength(1);
    expect(cluster.brokers[0]).toMatchObject({ host: '127.0.0.1', port: slot.proxy.port });
    expect(slot.proxy.connections).toBeGreaterThanOrEqual(1);
    await a.disconnect();
    for (let i = 0; slot.proxy.connections > 0 && i < 100; i++) await sleep(20);
    expect(slot.proxy.connections).toBe(0);
    // Everyone else still sees the ordinary listener.
    const other = await (await admin(services().kafkaBrokers)).describeCluster();
    expect(other.brokers[0]?.port).toBe(Number(services().kafkaBrokers[0]?.split(':')[1]));
  });

  it('when cut, Kafka is unreachable for the slot: no new client connects, a producer cannot send; restored, both work', async () => {
    const slot = await claim();
    const producer = kafka(slot.brokers).producer({ allowAutoTopicCreation: false });
    producers.push(producer);
    await producer.connect();
    await producer.send({ topic, messages: [{ value: 'before' }] });

    await slot.proxy.cut();
    const started = Date.now();
    const refused = await kafka(slot.brokers)
      .admin()
      .connect()
      .then(
        () => new Error('connected through a cut slot'),
        (e: unknown) => e,
      );
    expect(reason(refused)).toMatch(/ECONNREFUSED/);
    const failed = await producer.send({ topic, messages: [{ value: 'while cut' }] }).then(
      () => new Error('sent through a cut slot'),
      (e: unknown) => e,
    );
    expect(reason(failed)).toMatch(/ECONNREFUSED|ECONNRESET/);
    expect(Date.now() - started).toBeLessThan(15_000);
    // The worker's probe sees Kafka down; the shared listener keeps serving everyone else.
    const probe = kafkaActivities({
      brokers: slot.brokers,
      connectionTimeoutMs: 500,
      requestTimeoutMs: 1000,
    });
    const down = await probe.kafkaCluster(probeInput);
    expect(down.status).toBe('down');
    expect(down.summary).toContain('ECONNREFUSED');
    await expect((await admin(services().kafkaBrokers)).describeCluster()).resolves.toBeTruthy();

    await slot.proxy.restore();
    const cluster = await (await admin(slot.brokers)).describeCluster();
    expect(cluster.brokers[0]?.port).toBe(slot.proxy.port);
    await producer.send({ topic, messages: [{ value: 'after' }] });
    expect((await probe.kafkaCluster(probeInput)).status).toBe('ok');
  });

  it('gives concurrent claims distinct slots, each advertised as its own proxy, and frees a slot on stop', async () => {
    const [a, b] = [await claim(), await claim()];
    expect(a.slot).not.toBe(b.slot);
    expect(a.proxy.port).not.toBe(b.proxy.port);
    for (const s of [a, b]) {
      const cluster = await (await admin(s.brokers)).describeCluster();
      expect(cluster.brokers[0]?.port).toBe(s.proxy.port);
    }
    const port = a.proxy.port;
    const target = { host: '127.0.0.1', port: 1 };
    const takeover = () => TcpProxy.start({ target, listen: { port }, claimPort: true });
    // Held while cut too: no other sandbox takes the slot of one whose Kafka is down.
    await a.proxy.cut();
    await expect(takeover()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    await a.stop();
    const after = await takeover();
    await after.stop();
  });
});

describe('claimKafkaSlot without a free or a served slot', () => {
  const servers: Server[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
  });
  async function listening(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    servers.push(server);
    return (server.address() as AddressInfo).port;
  }
  async function freePort(): Promise<number> {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    await new Promise((resolve) => server.close(resolve));
    return port;
  }

  it('says so when every slot is taken', async () => {
    const taken = await listening();
    const claimed = claimKafkaSlot({ proxyPortBase: taken - 1, listenerPortBase: taken + 100, slots: 1 });
    await expect(claimed).rejects.toThrow(KafkaSlotsTakenError);
    await expect(claimed).rejects.toThrow(/all 1 Kafka sandbox slots are taken/);
  });

  it('says the broker needs a restart when it has no listener for the slot, and frees the slot', async () => {
    const proxyPort = await freePort();
    const closed = await freePort();
    const options = { proxyPortBase: proxyPort - 1, listenerPortBase: closed - 1, slots: 1 };
    await expect(claimKafkaSlot(options)).rejects.toThrow(
      new RegExp(
        `no sandbox listener for slot 1 at 127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\).*scripts/kafka\\.sh stop && scripts/kafka\\.sh start`,
      ),
    );
    const slot = await claim({ ...options, verify: false });
    expect(slot.proxy.port).toBe(proxyPort);
  });
});

describe('kafkaSlotLayout', () => {
  it('has the defaults of scripts/kafka.sh, and reads the same variables', () => {
    expect(kafkaSlotLayout({})).toEqual({ listenerPortBase: 19100, proxyPortBase: 19110, slots: 4 });
    expect(kafkaSlotLayout({})).toEqual(KAFKA_SANDBOX_DEFAULTS);
    expect(
      kafkaSlotLayout({
        KAFKA_SANDBOX_PORT_BASE: '20000',
        KAFKA_SANDBOX_PROXY_PORT_BASE: '20010',
        KAFKA_SANDBOX_SLOTS: '8',
      }),
    ).toEqual({ listenerPortBase: 20000, proxyPortBase: 20010, slots: 8 });
    expect(() => kafkaSlotLayout({ KAFKA_SANDBOX_SLOTS: 'many' })).toThrow(
      /KAFKA_SANDBOX_SLOTS must be a number/,
    );
    expect(() => kafkaSlotLayout({ KAFKA_SANDBOX_SLOTS: '0' })).toThrow(/at least 1/);
    expect(() => kafkaSlotLayout({ KAFKA_SANDBOX_PROXY_PORT_BASE: '19102' })).toThrow(/overlap/);
    expect(() => kafkaSlotLayout({ KAFKA_SANDBOX_PORT_BASE: '65534' })).toThrow(/out of range/);
  });
});
