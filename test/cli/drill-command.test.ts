import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runIncidentctl } from '../../src/cli/incidentctl.js';
import { ExitCode } from '../../src/cli/errors.js';
import { scenarioCatalog } from '../../src/sandbox/scenarios.js';
import { closedPort } from './harness.js';

// `incidentctl drill` refuses what it must refuse before it breaks anything or reaches Temporal.

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

async function drill(args: string[], env: NodeJS.ProcessEnv = {}) {
  const stdout = new Capture();
  const stderr = new Capture();
  const code = await runIncidentctl(['drill', ...args], {
    stdout,
    stderr,
    // Nothing listens there: a drill that got as far as Temporal would fail with 4, not the code expected.
    env: { PATH: process.env.PATH, TEMPORAL_ADDRESS: '127.0.0.1:1', RECEIVER_TOKEN: 'x'.repeat(24), ...env },
    defaultUser: 'tester',
  });
  return { code, stdout: stdout.text, stderr: stderr.text };
}

/** A control API that answers GET /scenarios with a body the test chooses. */
let control: Server;
let controlUrl = '';
let answer: unknown;
beforeAll(async () => {
  control = createServer((req, res) => {
    res.writeHead(req.method === 'GET' ? 200 : 500, { 'content-type': 'application/json' });
    res.end(JSON.stringify(req.method === 'GET' ? answer : { error: 'no' }));
  });
  await new Promise<void>((resolve) => control.listen(0, '127.0.0.1', resolve));
  controlUrl = `http://127.0.0.1:${(control.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => control.close(resolve));
});

const list = (over: Record<string, unknown>) => ({
  scenarios: scenarioCatalog.map((s) => ({ ...s, active: false })),
  active: [],
  kubernetes: 'ready',
  ...over,
});

describe('incidentctl drill refuses', () => {
  it('an unknown scenario and healthy', async () => {
    const unknown = await drill(['disk-full']);
    expect(unknown.code).toBe(ExitCode.usage);
    expect(unknown.stderr).toContain('unknown scenario "disk-full" (scenarios: api-down, postgres-down');
    const healthy = await drill(['healthy']);
    expect(healthy.code).toBe(ExitCode.usage);
    expect(healthy.stderr).toContain('healthy is not a drill');
  });

  it('a real namespace unless it is explicitly allowed', async () => {
    const off = await drill(['api-down'], { SANDBOX: 'off' });
    expect(off.code).toBe(ExitCode.usage);
    expect(off.stderr).toContain(
      'no sandbox (SANDBOX=off): the drill would act on the real namespace customer-success-fte; it runs only with --allow-namespace customer-success-fte',
    );
    const other = await drill([
      'api-down',
      '--no-sandbox',
      '--scope',
      'staging',
      '--allow-namespace',
      'prod',
    ]);
    expect(other.code).toBe(ExitCode.usage);
    expect(other.stderr).toContain('--allow-namespace staging');
  });

  it('--via monitors without --notify, and a bad --timeout', async () => {
    const monitors = await drill(['api-down', '--via', 'monitors', '--sandbox', controlUrl]);
    expect(monitors.code).toBe(ExitCode.usage);
    expect(monitors.stderr).toContain('add --notify');
    const timeout = await drill(['api-down', '--timeout', 'soon', '--sandbox', controlUrl]);
    expect(timeout.code).toBe(ExitCode.usage);
    expect(timeout.stderr).toContain('--timeout "soon" must be a duration');
  });

  it('with its own exit code when the sandbox does not answer or is not ready', async () => {
    const port = await closedPort();
    const down = await drill(['api-down', '--sandbox', `http://127.0.0.1:${port}`]);
    expect(down.code).toBe(ExitCode.sandboxUnavailable);
    expect(down.stderr).toContain(`the sandbox control API at http://127.0.0.1:${port} did not answer`);

    answer = { unexpected: true };
    const odd = await drill(['api-down', '--sandbox', controlUrl]);
    expect(odd.code).toBe(ExitCode.sandboxUnavailable);
    expect(odd.stderr).toContain('answered GET /scenarios with something unexpected');

    answer = list({ kubernetes: 'starting' });
    const starting = await drill([
      'api-down',
      '--sandbox',
      controlUrl,
      '--receiver',
      `http://127.0.0.1:${port}/x`,
    ]);
    expect(starting.code).toBe(ExitCode.sandboxUnavailable);
    expect(starting.stderr).toContain('control plane is still starting');
  });

  it('a sandbox with a fault already in force', async () => {
    answer = list({ active: ['kafka-down'] });
    const busy = await drill(['api-down', '--sandbox', controlUrl]);
    expect(busy.code).toBe(ExitCode.refused);
    expect(busy.stderr).toContain(`already has kafka-down in force`);
    expect(busy.stderr).toContain(`curl -X POST ${controlUrl}/scenarios/healthy`);
  });

  it('when the receiver does not answer, before breaking anything', async () => {
    answer = list({});
    const port = await closedPort();
    const r = await drill([
      'api-down',
      '--sandbox',
      controlUrl,
      '--receiver',
      `http://127.0.0.1:${port}/webhooks/alertmanager`,
    ]);
    expect(r.code).toBe(ExitCode.unreachable);
    expect(r.stderr).toContain(
      `the Alertmanager receiver at http://127.0.0.1:${port}/webhooks/alertmanager did not answer`,
    );
  });
});
