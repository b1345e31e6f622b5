import { AutoscalingV2Api, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { Kafka, logLevel } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { PLATFORM_CONSUMER_GROUP, PLATFORM_TOPIC } from '../../src/sandbox/platform-data.js';
import { services } from '../helpers/services.js';
import { useProduct } from './harness.js';

// Seed procedure 4: the agent is slow. Real consumer lag on fte-messages is worked off by scaling the
// processor to five replicas (low risk, done without asking); a slow OpenAI is the AI/ML team's to follow,
// and the incident resolves once the vendor recovers. With the autoscaler already at its ceiling, a scale-out
// alone would be undone at its next sync: the runbook raises the ceiling first (4.R4), then scales.

const runbook = 'high-agent-latency';
const product = useProduct(runbook);

/** The lag of the processor's consumer group, as kafka-consumer-groups.sh --describe would add it up. */
async function lag(): Promise<number> {
  const admin = new Kafka({ brokers: services().kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  try {
    const [ends, committed] = await Promise.all([
      admin.fetchTopicOffsets(PLATFORM_TOPIC),
      admin.fetchOffsets({ groupId: PLATFORM_CONSUMER_GROUP, topics: [PLATFORM_TOPIC] }),
    ]);
    const at = new Map((committed[0]?.partitions ?? []).map((p) => [p.partition, Number(p.offset)]));
    return ends.reduce((n, e) => n + Number(e.high) - Math.max(at.get(e.partition) ?? 0, Number(e.low)), 0);
  } finally {
    await admin.disconnect();
  }
}

describe('agent-latency', () => {
  it('scales the processor to 5 replicas, whose consumers drain the lag, and resolves', async () => {
    const { sandbox } = product();
    await sandbox.apply('agent-latency');
    expect(await lag()).toBeGreaterThanOrEqual(1_000);

    expect(await product().alert('FTEAgentLatencyHigh', 'firing')).toBe(202);
    const scaled = await product().waitFor(
      runbook,
      (s) => s.steps.some((st) => st.id === 'scale-workers' && st.runs === 1),
      'diagnosis and the scale-out',
      120,
    );
    expect(scaled.severity).toBe('P3');
    expect(['degraded', 'down']).toContain(scaled.findings['kafka-lag']?.status);
    expect(scaled.findings['channel-metrics']?.status).toBe('degraded');
    expect(scaled.findings['openai-status']?.status).toBe('ok');

    await expect
      .poll(async () => (await sandbox.cluster.deployment('fte-message-processor')).replicas, {
        timeout: 30_000,
      })
      .toBe(5);
    await expect
      .poll(
        async () => (await sandbox.cluster.podsOf('fte-message-processor')).filter((p) => p.ready).length,
        {
          timeout: 60_000,
        },
      )
      .toBe(5);
    const verified = await product().waitFor(
      runbook,
      (s) => s.status === 'Monitoring',
      'the lag verified as worked off (checked every minute)',
      240,
    );
    expect(verified.steps.find((s) => s.id === 'scale-workers')?.status).toBe('recovered');
    expect(verified.findings['kafka-lag']?.status).toBe('ok');
    expect(await lag()).toBe(0);

    expect(await product().alert('FTEAgentLatencyHigh', 'resolved')).toBe(202);
    const outcome = (await product().handle(runbook).result()) as { postIncidentWorkflowId?: string };
    // P3: no post-incident report is required.
    expect(outcome.postIncidentWorkflowId).toBeUndefined();
  }, 480_000);
});

describe('openai-degraded', () => {
  it('opens the AI/ML task, changes nothing on the platform, and resolves once OpenAI recovers', async () => {
    const { sandbox } = product();
    const processor = await sandbox.cluster.deployment('fte-message-processor');
    await sandbox.apply('openai-degraded');

    expect(await product().alert('FTEAgentLatencyHigh', 'firing')).toBe(202);
    const open = await product().waitFor(
      runbook,
      (s) => s.tasks.some((t) => t.id === 'openai-slow'),
      'diagnosis and the OpenAI task',
      120,
    );
    expect(open.findings['openai-status']?.status).toBe('degraded');
    expect(open.findings['kafka-lag']?.status).toBe('ok');
    expect(open.tasks.find((t) => t.id === 'openai-slow')).toMatchObject({ owner: 'ai-ml', status: 'open' });
    expect(open.steps.every((s) => s.runs === 0)).toBe(true);

    const id = product().incidentId(runbook);
    expect(await product().incidentctl(['task', 'done', id, 'openai-slow', '--as', 'dave'])).toContain(
      'openai-slow',
    );
    expect(await sandbox.scenarios.recover('openai-degraded')).toBe(true);
    expect(await product().alert('FTEAgentLatencyHigh', 'resolved')).toBe(202);
    await product().handle(runbook).result();
    const final = await product().status(runbook);
    expect(final.status).toBe('Resolved');
    expect(final.steps.every((s) => s.runs === 0)).toBe(true);
    expect((await sandbox.cluster.deployment('fte-message-processor')).generation).toBe(processor.generation);
  }, 420_000);
});

describe('agent-latency with the autoscaler at its ceiling', () => {
  it('raises the HPA maximum, then scales the processor, whose consumers drain the lag, and resolves', async () => {
    const { sandbox } = product();
    const processor = 'fte-message-processor';
    const autoscaling = sandbox.cluster.admin.makeApiClient(AutoscalingV2Api);
    const hpa = () =>
      autoscaling.readNamespacedHorizontalPodAutoscaler({ name: processor, namespace: sandbox.namespace });
    // Its own scale-ups are off meanwhile: once the runbook raises the ceiling, the autoscaler could scale
    // out by itself and race the runbook's scale step (then rightly not needed); this test is about the runbook.
    const setLimits = (minReplicas: number, maxReplicas: number, scaleUp: 'Disabled' | null) =>
      autoscaling.patchNamespacedHorizontalPodAutoscaler(
        {
          name: processor,
          namespace: sandbox.namespace,
          body: {
            spec: {
              minReplicas,
              maxReplicas,
              behavior: scaleUp ? { scaleUp: { selectPolicy: scaleUp } } : null,
            },
          },
        },
        setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
      );
    const { minReplicas = 1, maxReplicas } = (await hpa()).spec ?? { maxReplicas: 0 };
    try {
      // Someone capped the autoscaler at two replicas; its controller holds the processor there.
      await setLimits(2, 2, 'Disabled');
      await expect
        .poll(
          async () => {
            const status = (await hpa()).status;
            return [status?.currentReplicas, status?.desiredReplicas];
          },
          { timeout: 90_000, interval: 2_000 },
        )
        .toEqual([2, 2]);
      await sandbox.apply('agent-latency');
      expect(await product().alert('FTEAgentLatencyHigh', 'firing')).toBe(202);

      const raised = await product().waitFor(
        runbook,
        (s) => s.steps.some((st) => st.id === 'raise-hpa-max' && st.runs === 1),
        'diagnosis and the raised ceiling',
        120,
      );
      expect(raised.findings.hpa?.status).toBe('degraded');
      expect(raised.findings.hpa?.summary).toContain('at its maximum');
      await expect.poll(async () => (await hpa()).spec?.maxReplicas, { timeout: 30_000 }).toBe(10);

      const verified = await product().waitFor(
        runbook,
        (s) => s.status === 'Monitoring',
        'the ceiling checked, the scale-out, and the lag verified as worked off',
        420,
      );
      expect(verified.steps.find((s) => s.id === 'raise-hpa-max')).toMatchObject({
        status: 'recovered',
        runs: 1,
      });
      expect(verified.steps.find((s) => s.id === 'scale-workers')).toMatchObject({
        status: 'recovered',
        runs: 1,
      });
      // The autoscaler, now allowed ten, keeps the five the runbook asked for.
      expect((await sandbox.cluster.deployment(processor)).replicas).toBe(5);
      expect(await lag()).toBe(0);

      expect(await product().alert('FTEAgentLatencyHigh', 'resolved')).toBe(202);
      await product().handle(runbook).result();
      expect((await product().status(runbook)).status).toBe('Resolved');
    } finally {
      await setLimits(minReplicas, maxReplicas ?? 5, null);
    }
  }, 600_000);
});
