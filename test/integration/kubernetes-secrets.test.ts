import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  kubernetesActivities,
  loadKubeConfig,
  type KubernetesActivities,
} from '../../src/activities/kubernetes.js';
import type { ActionInput, ProbeInput } from '../../src/domain/activity-contract.js';
import { KubeSimulator } from '../../src/sandbox/kube/index.js';

// A secret value planted where an incident would meet it (pod logs, the Secret itself, an API error) never
// shows in a finding, an action result, a thrown error or anything written to the console.

const namespace = 'customer-success-fte';
let sim: KubeSimulator;
let k8s: KubernetesActivities;
const printed: string[] = [];
const outputs: string[] = [];

const probe = (args: Record<string, unknown>): ProbeInput => ({
  incidentId: 'inc-s',
  scope: namespace,
  probeId: 'p',
  args,
});
const action = (args: Record<string, unknown>): ActionInput => ({
  incidentId: 'inc-s',
  scope: namespace,
  stepId: 's',
  idempotencyKey: 'inc-s/s/1',
  args,
});

/** Everything an activity produced: its answer, or its error with every field of it. */
async function produced(work: Promise<unknown>): Promise<string> {
  const text = await work.then(
    (value) => JSON.stringify(value),
    (error: unknown) => {
      const e = error as Error & { type?: string; details?: unknown; cause?: unknown };
      return JSON.stringify({
        message: e.message,
        type: e.type,
        details: e.details,
        cause: String(e.cause),
        stack: e.stack,
      });
    },
  );
  outputs.push(text);
  return text;
}

beforeAll(async () => {
  sim = await new KubeSimulator().start();
  k8s = kubernetesActivities({ kubeConfig: loadKubeConfig(sim.kubeconfigPath), requestTimeoutMs: 10_000 });
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      printed.push(args.map(String).join(' '));
    });
  }
});
afterEach(() => sim.clearFaults());
afterAll(async () => {
  vi.restoreAllMocks();
  await sim.stop();
});

describe('secret values', () => {
  it('are redacted from log lines that carry them', async () => {
    const token = sim.secretValue('TWILIO_AUTH_TOKEN');
    const openAiKey = sim.secretValue('OPENAI_API_KEY');
    sim.appendLogs('fte-message-processor', [
      `ERROR twilio signature check failed, TWILIO_AUTH_TOKEN=${token}`,
      `ERROR upstream call failed: Authorization: Bearer ${openAiKey}`,
      `ERROR retrying with key ${openAiKey}`,
      `ERROR db connect postgresql://fte:${token}@postgres:5432/fte failed`,
    ]);
    const text = await produced(
      k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-message-processor', tail: 10 })),
    );
    expect(text).toContain('twilio signature check failed');
    expect(text).toContain('[REDACTED]');
    expect(text).not.toContain(token);
    expect(text).not.toContain(openAiKey);
  });

  it('never leave the Secret through the key probe', async () => {
    const token = sim.secretValue('TWILIO_AUTH_TOKEN');
    const text = await produced(
      k8s.k8sSecretKey(probe({ namespace, secret: 'fte-secrets', key: 'TWILIO_AUTH_TOKEN' })),
    );
    expect(text).toContain('"status":"ok"');
    expect(text).not.toContain(token);
    expect(text).not.toContain(Buffer.from(token).toString('base64'));
  });

  it('are redacted from API errors that quote them', async () => {
    const token = sim.secretValue('TWILIO_AUTH_TOKEN');
    sim.failRequests({ resource: 'secrets' }, { message: `decrypt failed for TWILIO_AUTH_TOKEN=${token}` });
    const text = await produced(
      k8s.k8sSecretKey(probe({ namespace, secret: 'fte-secrets', key: 'TWILIO_AUTH_TOKEN' })),
    );
    expect(text).toContain('ServerError');
    expect(text).not.toContain(token);

    sim.failRequests({ resource: 'deployments' }, { code: 403, message: `denied: token=${token}` });
    const denied = await produced(
      k8s.rolloutRestart(action({ namespace, kind: 'deployment', name: 'fte-api' })),
    );
    expect(denied).toContain('ForbiddenError');
    expect(denied).not.toContain(token);
  });

  it('do not appear in anything the activities printed or returned', () => {
    expect(outputs.length).toBeGreaterThanOrEqual(4);
    const everything = [...printed, ...outputs].join('\n');
    for (const key of ['TWILIO_AUTH_TOKEN', 'OPENAI_API_KEY', 'GMAIL_CLIENT_SECRET', 'TWILIO_ACCOUNT_SID']) {
      expect(everything).not.toContain(sim.secretValue(key));
    }
    expect(everything).not.toContain(sim.token);
  });
});
