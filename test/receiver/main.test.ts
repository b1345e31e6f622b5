import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { afterEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/paths.js';
import { devServerEnv, services, uniqueName } from '../helpers/services.js';
import { amAlert, amPayload, post, terminateRunning } from './harness.js';

const TOKEN = 'main-test-token-0123456789abcdef';
const children: ChildProcessWithoutNullStreams[] = [];

function startReceiver(env: Record<string, string>) {
  const child = spawn(`${projectRoot}node_modules/.bin/tsx`, ['src/starters/receiver.ts'], {
    cwd: projectRoot,
    env: { PATH: process.env.PATH ?? '', ...env },
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = once(child, 'exit').then(([code]) => code as number | null);
  /** Resolves with the URL once the server logs that it listens. */
  const listening = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /"msg":"Server listening at (http:\/\/127\.0\.0\.1:\d+)"/.exec(stdout);
      if (m) resolve(m[1] as string);
    });
    void exited.then((code) => reject(new Error(`receiver exited (${code}) before listening:\n${stderr}`)));
  });
  listening.catch(() => undefined); // only the tests that wait for it care
  return { child, exited, listening, output: () => stdout + stderr };
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill('SIGKILL');
});

describe('the receiver process (tsx src/starters/receiver.ts)', () => {
  it('refuses to start without a token, naming the variable', async () => {
    const r = startReceiver({});
    expect(await r.exited).toBe(2);
    expect(r.output()).toContain('RECEIVER_TOKEN: the receiver refuses to start without a token');
  });

  it('serves with the environment configuration and shuts down cleanly on SIGTERM', async () => {
    const taskQueue = uniqueName('receiver-main');
    const r = startReceiver({
      RECEIVER_TOKEN: TOKEN,
      RECEIVER_PORT: '0',
      TEMPORAL_ADDRESS: services().temporalAddress,
      TEMPORAL_TASK_QUEUE: taskQueue,
    });
    const url = await r.listening;
    try {
      expect((await fetch(`${url}/readyz`)).status).toBe(200);
      const ns = uniqueName('ns');
      const res = await post(
        `${url}/webhooks/alertmanager`,
        amPayload([amAlert('X', 'fp', ns)]),
        `Bearer ${TOKEN}`,
      );
      expect(res.status).toBe(202);
      expect(res.body.incidents).toEqual([expect.objectContaining({ runbookId: 'triage', scope: ns })]);

      r.child.kill('SIGTERM');
      expect(await r.exited).toBe(0);
      expect(r.output()).toContain('"msg":"shutting down"');
      expect(r.output()).not.toContain(TOKEN);
    } finally {
      const env = await devServerEnv();
      await terminateRunning(env.client, taskQueue);
      await env.teardown();
    }
  });
});
