import { describe, expect, it } from 'vitest';
import { Kafka, logLevel } from 'kafkajs';
import { services, uniqueName } from '../helpers/services.js';

describe('project Kafka broker', () => {
  it('produces, consumes with a consumer group and answers admin calls', async () => {
    const kafka = new Kafka({
      clientId: 'smoke',
      brokers: services().kafkaBrokers,
      logLevel: logLevel.NOTHING,
      connectionTimeout: 3000,
      retry: { retries: 3 },
    });
    const topic = uniqueName('smoke-topic');
    const groupId = uniqueName('smoke-group');
    const admin = kafka.admin();
    const producer = kafka.producer();
    const consumer = kafka.consumer({ groupId });
    await admin.connect();
    try {
      const cluster = await admin.describeCluster();
      expect(cluster.brokers.length).toBe(1);
      await admin.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });

      await producer.connect();
      await producer.send({ topic, messages: ['a', 'b', 'c'].map((value) => ({ key: value, value })) });

      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const seen: string[] = [];
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`consumed only ${seen.join(',')}`)), 30_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            seen.push(message.value?.toString() ?? '');
            if (seen.length === 3) {
              clearTimeout(timer);
              resolve();
            }
          },
        });
      });
      expect(seen.sort()).toEqual(['a', 'b', 'c']);
      await consumer.stop();

      const ends = await admin.fetchTopicOffsets(topic);
      expect(ends.reduce((sum, p) => sum + Number(p.offset), 0)).toBe(3);
      const committed = await admin.fetchOffsets({ groupId, topics: [topic] });
      const total = committed[0]?.partitions.reduce((sum, p) => sum + Math.max(0, Number(p.offset)), 0);
      expect(total).toBe(3);
    } finally {
      await consumer.disconnect();
      await producer.disconnect();
      await admin.disconnect();
    }
  });
});
