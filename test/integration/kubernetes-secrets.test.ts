import { appendFile } from 'node:fs/promises';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { KubernetesActivities } from '../../src/activities/kubernetes.js';
import type { ActionInput, ProbeInput } from '../../src/domain/activity-contract.js';
import { criLine } from '../../src/sandbox/pod-logs.js';
import { startKubeTarget, type KubeTarget } from '../helpers/kube.js';

// A secret value planted where an incident would meet it (pod logs, the Secret itself, an API error) never
// shows in a finding, an action result, a thrown error or anything written to the console. The platform runs
// on the real control plane with fresh random secret values, in a namespace of this file's own.

let t: KubeTarget;
let k8s: KubernetesActivities;
let namespace: string;
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

const secretValue = (key: string): string => {
  const value = t.cluster.secrets[key];
  if (!value) throw new Error(`the platform has no secret ${key}`);
  return value;
};

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
  t = await startKubeTarget();
  namespace = t.namespace;
  k8s = t.activities();
  for (const level of ['log', 'info', 'warn', 'error', 'debug'] as const) {
    vi.spyOn(console, level).mockImplementation((...args: unknown[]) => {
      printed.push(args.map(String).join(' '));
    });
  }
});
afterEach(() => t.proxy.clearFaults());
afterAll(async () => {
  vi.restoreAllMocks();
  await t?.stop();
});

describe('secret values', () => {
  it('are redacted from log lines that carry them', async () => {
    const token = secretValue('TWILIO_AUTH_TOKEN');
    const openAiKey = secretValue('OPENAI_API_KEY');
    // What the message processor's containers print next (kwok serves the workload's log file).
    const lines = [
      `ERROR twilio signature check failed, TWILIO_AUTH_TOKEN=${token}`,
      `ERROR upstream call failed: Authorization: Bearer ${openAiKey}`,
      `ERROR retrying with key ${openAiKey}`,
      `ERROR db connect postgresql://fte:${token}@postgres:5432/fte failed`,
    ];
    await appendFile(
      t.cluster.logs.workloadFile('fte-message-processor'),
      lines.map((l) => criLine(l)).join(''),
    );
    const text = await produced(
      k8s.k8sLogs(probe({ namespace, kind: 'deployment', name: 'fte-message-processor', tail: 10 })),
    );
    expect(text).toContain('twilio signature check failed');
    expect(text).toContain('[REDACTED]');
    expect(text).not.toContain(token);
    expect(text).not.toContain(openAiKey);
  });

  it('never leave the Secret through the key probe', async () => {
    const token = secretValue('TWILIO_AUTH_TOKEN');
    const text = await produced(
      k8s.k8sSecretKey(probe({ namespace, secret: 'fte-secrets', key: 'TWILIO_AUTH_TOKEN' })),
    );
    expect(text).toContain('"status":"ok"');
    expect(text).not.toContain(token);
    expect(text).not.toContain(Buffer.from(token).toString('base64'));
  });

  it('are redacted from API errors that quote them', async () => {
    const token = secretValue('TWILIO_AUTH_TOKEN');
    t.proxy.failRequests(
      { resource: 'secrets' },
      { message: `decrypt failed for TWILIO_AUTH_TOKEN=${token}` },
    );
    const text = await produced(
      k8s.k8sSecretKey(probe({ namespace, secret: 'fte-secrets', key: 'TWILIO_AUTH_TOKEN' })),
    );
    expect(text).toContain('ServerError');
    expect(text).not.toContain(token);

    t.proxy.failRequests({ resource: 'deployments' }, { code: 403, message: `denied: token=${token}` });
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
      expect(everything).not.toContain(secretValue(key));
    }
    // Nor the credentials: the activities' token for the proxy, the ServiceAccount token behind it.
    expect(everything).not.toContain(t.proxy.token);
    expect(everything).not.toContain(t.workerToken);
  });
});
