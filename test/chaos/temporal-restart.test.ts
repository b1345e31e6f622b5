import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/paths.js';
import { uniqueName } from '../helpers/services.js';
import { useChaos } from './chaos.js';
import { ALERT, approve, breakPlatform, finish, postgres, runbook } from './incident.js';
import { freePortTriple } from '../helpers/ports.js';

// The Temporal dev server stops in the middle of an incident and starts again on the same data (its SQLite
// file), as after a restart or a crash of the server: the worker process and the receiver carry on by
// themselves, the receiver answers 503 while Temporal is away (Alertmanager re-delivers), and the incident
// opened before the outage completes. The server is this file's own: other files use the suite's meanwhile.

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

const dataDir = `.data/temporal-chaos-test/${uniqueName('run')}`;
let port = 0;
const temporal = async (command: 'start' | 'stop') => {
  await run('bash', [`${projectRoot}scripts/temporal.sh`, command], {
    cwd: projectRoot,
    env: { ...process.env, TEMPORAL_PORT: String(port), TEMPORAL_UI: 'off', TEMPORAL_DATA_DIR: dataDir },
    timeout: 120_000,
  });
};

// Registered before the product's hooks: the server is up before the product connects, and stopped after it.
beforeAll(async () => {
  port = await freePortTriple();
  await temporal('start');
}, 180_000);
afterAll(async () => {
  if (port) await temporal('stop');
  await rm(`${projectRoot}${dataDir}`, { recursive: true, force: true });
}, 120_000);

const chaos = useChaos(runbook, () => ({ temporalAddress: `127.0.0.1:${port}` }));

describe('the Temporal dev server restarts in the middle of an incident', () => {
  it('the receiver answers 503 meanwhile, and the worker, the receiver and the incident carry on', async () => {
    const c = chaos();
    const p = c.product;
    const worker = c.worker;
    const before = await breakPlatform(c, postgres);
    expect(await c.alert(ALERT, 'chaos-outage-1', 'firing')).toBe(202);
    await p.waitFor(runbook, (s) => s.awaitingApproval.includes(postgres.step), 'the approval request', 150);

    await temporal('stop');
    // What Alertmanager sends meanwhile is refused with 503 (and re-delivered), not lost.
    expect(await c.alert(ALERT, 'chaos-outage-2', 'firing')).toBe(503);
    const ready = await fetch(p.receiverUrl.replace('/webhooks/alertmanager', '/readyz'));
    expect(ready.status).toBe(503);
    // Some seconds without Temporal: the worker keeps trying, it does not exit.
    await sleep(8_000);
    await temporal('start');

    const answers = await c.alertUntilAccepted(ALERT, 'chaos-outage-2', 'firing', 90);
    expect(answers.at(-1)).toBe(202);
    const ready2 = await fetch(p.receiverUrl.replace('/webhooks/alertmanager', '/readyz'));
    expect(ready2.status).toBe(200);

    // The same worker process takes up the incident again.
    await p.waitFor(runbook, (s) => s.alerts['chaos-outage-2'] !== undefined, 'the re-delivered alert', 120);
    expect(await approve(c, postgres.step)).toContain(postgres.step);

    // Again while the step is verified: the verification's timer fires once the server is back.
    await p.waitFor(runbook, (s) => s.status === 'Verifying', 'the verification', 120);
    await temporal('stop');
    await sleep(5_000);
    await temporal('start');
    await finish(c, postgres, before, {
      'chaos-outage-1': { status: 'resolved', deliveries: 2 },
      'chaos-outage-2': { status: 'resolved', deliveries: 2 },
    });
    expect(c.worker).toBe(worker);
    expect(worker.running).toBe(true);
  }, 420_000);
});
