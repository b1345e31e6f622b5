import { execFile } from 'node:child_process';
import { createServer, type Socket } from 'node:net';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import { kafkaActivities, type KafkaDependencies } from '../../src/activities/kafka.js';
import {
  consumeAndCommit,
  createConsumerLag,
  createPlatformTopic,
  produceMessages,
} from '../../src/sandbox/platform-data.js';
import { projectRoot } from '../helpers/paths.js';
import { services, uniqueName } from '../helpers/services.js';
import { freePort } from '../helpers/ports.js';

// The Kafka probes against the suite's real broker; lag is checked against Kafka's own command-line tool.

const run = promisify(execFile);
const probes = (deps: Partial<KafkaDependencies> = {}) =>
  kafkaActivities({ brokers: services().kafkaBrokers, ...deps });
const probeInput = (args: Record<string, unknown> = {}, probeId = 'kafka'): ProbeInput => ({
  incidentId: 'high-agent-latency/test',
  scope: 'test',
  probeId,
  args,
});

interface ToolRow {
  topic: string;
  partition: number;
  lag: number | null;
}

/** `kafka-consumer-groups.sh --describe --group <group>` run from the Kafka jars, parsed by its header. */
async function describeWithKafkaTool(group: string): Promise<ToolRow[]> {
  const { stdout } = await run(
    'java',
    [
      '-cp',
      `${projectRoot}.tools/kafka/libs/*`,
      'org.apache.kafka.tools.consumer.group.ConsumerGroupCommand',
      '--bootstrap-server',
      services().kafkaBrokers[0]!,
      '--describe',
      '--group',
      group,
    ],
    { timeout: 120_000 },
  );
  const lines = stdout.split('\n').map((l) => l.trim().split(/\s+/));
  const header = lines.find((cols) => cols[0] === 'GROUP');
  if (!header) throw new Error(`no table in the tool's output:\n${stdout}`);
  const at = (name: string) => header.indexOf(name);
  return lines
    .filter((cols) => cols[0] === group)
    .map((cols) => ({
      topic: cols[at('TOPIC')]!,
      partition: Number(cols[at('PARTITION')]),
      lag: cols[at('LAG')] === '-' ? null : Number(cols[at('LAG')]),
    }));
}
const toolTotal = (rows: ToolRow[]) => rows.reduce((sum, r) => sum + (r.lag ?? 0), 0);

let topic: string;
let group: string;
beforeAll(async () => {
  topic = uniqueName('fte-messages');
  group = uniqueName('fte-message-processor');
  await createConsumerLag(
    { brokers: services().kafkaBrokers },
    { topic, group, lag: 25, consumed: 7, partitions: 3 },
  );
});

const sockets: Socket[] = [];
const hole = createServer((s) => sockets.push(s));
beforeAll(async () => {
  await new Promise<void>((resolve) => hole.listen(0, '127.0.0.1', resolve));
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => hole.close(resolve));
});
describe('kafkaCluster', () => {
  it('is ok with the brokers and a reachable controller', async () => {
    const f = await probes().kafkaCluster(probeInput());
    expect(f.status).toBe('ok');
    expect(f.metrics).toMatchObject({ brokers: 1, controllerReachable: true });
    expect(f.summary).toMatch(/1 brokers, controller \d+ reachable/);
    const port = services().kafkaBrokers[0]?.split(':')[1];
    expect(f.evidence).toEqual([expect.stringMatching(new RegExp(`^broker \\d+ at .+:${port}$`))]);
  });

  it('is degraded when fewer brokers are up than expected', async () => {
    const f = await probes().kafkaCluster(probeInput({ expectedBrokers: 3 }));
    expect(f.status).toBe('degraded');
    expect(f.summary).toContain('1 of 3 expected brokers are up');
  });

  it('is down, without the SASL password, when no broker listens', async () => {
    const port = await freePort();
    const secret = 'Sasl-Pw-3e3e9a01';
    const f = await probes({
      brokers: [`127.0.0.1:${port}`],
      sasl: { mechanism: 'plain', username: 'ops', password: secret },
    }).kafkaCluster(probeInput());
    expect(f.status).toBe('down');
    expect(f.summary).toMatch(
      new RegExp(
        `^cannot reach Kafka at 127\\.0\\.0\\.1:${port} \\(gave up after [\\d.]+ s\\): .*ECONNREFUSED`,
      ),
    );
    expect(f.metrics.error).toBe('UnavailableError');
    expect(JSON.stringify(f)).not.toContain(secret);
  });

  it('is down, within its own time bound, when the broker accepts connections but never answers', async () => {
    const { port } = hole.address() as { port: number };
    const f = await probes({
      brokers: [`127.0.0.1:${port}`],
      connectionTimeoutMs: 300,
      requestTimeoutMs: 500,
    }).kafkaCluster(probeInput());
    expect(f.status).toBe('down');
    expect(f.summary).toMatch(
      /^cannot reach Kafka at 127\.0\.0\.1:\d+ \(gave up after [\d.]+ s\): Broker not connected/,
    );
    expect(['UnavailableError', 'TimeoutError']).toContain(f.metrics.error);
  });
});

describe('kafkaConsumerLag', () => {
  it("gives the same total lag as Kafka's own consumer-groups tool", async () => {
    const f = await probes().kafkaConsumerLag(probeInput({ group, threshold: 1000 }, 'kafka-lag'));
    const tool = await describeWithKafkaTool(group);
    expect(tool).toHaveLength(3);
    expect(f.metrics.totalLag).toBe(toolTotal(tool));
    expect(f.metrics.totalLag).toBe(25);
    for (const row of tool) {
      expect(f.evidence).toContainEqual(
        expect.stringMatching(new RegExp(`^${topic}\\[${row.partition}\\] .* lag ${row.lag}$`)),
      );
    }
    expect(f.status).toBe('ok');
    expect(f.metrics).toMatchObject({ partitions: 3, members: 0, state: 'Empty', threshold: 1000 });
  });

  it('is degraded over the threshold and down over ten times the threshold', async () => {
    const degraded = await probes().kafkaConsumerLag(probeInput({ group, threshold: 10 }, 'kafka-lag'));
    expect(degraded.status).toBe('degraded');
    expect(degraded.summary).toMatch(/total lag 25 over 3 partitions \(threshold 10, down above 100/);
    const down = await probes().kafkaConsumerLag(probeInput({ group, threshold: 2 }, 'kafka-lag'));
    expect(down.status).toBe('down');
  });

  it('follows the group as it catches up, still agreeing with the tool', async () => {
    const catchUp = uniqueName('fte-message-processor');
    const t = await createPlatformTopic(
      { brokers: services().kafkaBrokers },
      { topic: uniqueName('fte-messages'), partitions: 2 },
    );
    await produceMessages({ brokers: services().kafkaBrokers }, t, 40);
    await consumeAndCommit({ brokers: services().kafkaBrokers }, { topic: t, group: catchUp, count: 10 });
    let f = await probes().kafkaConsumerLag(probeInput({ group: catchUp, threshold: 20 }, 'kafka-lag'));
    expect([f.metrics.totalLag, f.status]).toEqual([30, 'degraded']);

    await consumeAndCommit({ brokers: services().kafkaBrokers }, { topic: t, group: catchUp, count: 25 });
    f = await probes().kafkaConsumerLag(probeInput({ group: catchUp, threshold: 20, topic: t }, 'kafka-lag'));
    expect([f.metrics.totalLag, f.status]).toEqual([5, 'ok']);
    expect(f.metrics.totalLag).toBe(toolTotal(await describeWithKafkaTool(catchUp)));
  });

  it('is unknown for a group that does not exist', async () => {
    const f = await probes().kafkaConsumerLag(
      probeInput({ group: uniqueName('no-such-group'), threshold: 10 }),
    );
    expect(f.status).toBe('unknown');
    expect(f.summary).toMatch(/consumer group no-such-group-\w+ does not exist/);
  });

  it('is unknown, with a clear message, when Kafka cannot be reached', async () => {
    const port = await freePort();
    const f = await probes({ brokers: [`127.0.0.1:${port}`] }).kafkaConsumerLag(
      probeInput({ group, threshold: 10 }),
    );
    expect(f.status).toBe('unknown');
    expect(f.summary).toMatch(
      new RegExp(
        `cannot read the lag of consumer group ${group} from Kafka at 127\\.0\\.0\\.1:${port}: .*ECONNREFUSED`,
      ),
    );
  });

  it('rejects arguments without a group or threshold', async () => {
    const error = await probes()
      .kafkaConsumerLag(probeInput({ threshold: 'high' }))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ type: 'BadRequestError', nonRetryable: true });
    expect((error as Error).message).toMatch(/group: .*threshold: /);
  });
});
