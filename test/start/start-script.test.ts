import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/paths.js';

// `make start` (scripts/start.sh) as a person runs it, with each documented setting, on ports of its own so
// it can run beside the suite (it reuses the suite's PostgreSQL, Kafka and control plane, which are running).
const PORTS = {
  TEMPORAL_PORT: '27233',
  TEMPORAL_UI_PORT: '28233',
  RECEIVER_PORT: '28088',
  SANDBOX_CONTROL_PORT: '28090',
  SANDBOX_KUBE_PROXY_PORT: '28091',
  FTE_API_SIM_PORT: '28000',
};

interface Started {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
  dataDir: string;
}

const running: Started[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) {
    if (s.child.exitCode === null) s.child.kill('SIGTERM');
    await Promise.race([s.exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (s.child.exitCode === null && s.child.pid) process.kill(-s.child.pid, 'SIGKILL');
    // Whatever a failed run left behind would hold the ports of the next one.
    for (const pid of await processesOf(s.dataDir)) process.kill(pid, 'SIGKILL');
    await rm(s.dataDir, { recursive: true, force: true });
  }
});

/** Processes started by one make start run: they carry its START_DATA_DIR in their environment. */
async function processesOf(dataDir: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const environ = await readFile(`/proc/${entry}/environ`, 'utf8').catch(() => '');
    if (environ.split('\0').includes(`START_DATA_DIR=${dataDir}`)) pids.push(Number(entry));
  }
  return pids;
}

async function start(settings: Record<string, string>): Promise<Started> {
  const dataDir = await mkdtemp(join(tmpdir(), 'make-start-'));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...PORTS,
    START_DATA_DIR: dataDir,
    TEMPORAL_DATA_DIR: join(dataDir, 'temporal'),
    ...settings,
  };
  const child = spawn('bash', ['scripts/start.sh'], { cwd: projectRoot, env, detached: true });
  let text = '';
  child.stdout.on('data', (b: Buffer) => (text += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (text += b.toString('utf8')));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const s = { child, output: () => text, exited, dataDir };
  running.push(s);
  return s;
}

async function waitForOutput(s: Started, pattern: RegExp, seconds = 240): Promise<void> {
  for (let i = 0; i < seconds * 4; i++) {
    if (pattern.test(s.output())) return;
    if (s.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(
    `make start never printed ${pattern} (exit ${s.child.exitCode}); it printed:\n${s.output()}`,
  );
}

const count = (s: Started, pattern: RegExp) => (s.output().match(new RegExp(pattern, 'g')) ?? []).length;

async function pidOf(s: Started, name: string): Promise<number> {
  return Number((await readFile(join(s.dataDir, 'run', `${name}.pid`), 'utf8')).trim());
}

async function newPid(s: Started, name: string, old: number): Promise<number> {
  for (let i = 0; i < 240; i++) {
    const pid = await pidOf(s, name).catch(() => old);
    if (pid !== old) return pid;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`the ${name} was not restarted; make start printed:\n${s.output()}`);
}

const listening = (port: string) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(Number(port), '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

async function ready(): Promise<number> {
  for (let i = 0; i < 120; i++) {
    const res = await fetch(`http://127.0.0.1:${PORTS.RECEIVER_PORT}/readyz`).catch(() => undefined);
    if (res) return res.status;
    await new Promise((r) => setTimeout(r, 500));
  }
  return 0;
}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('make start', () => {
  it('with RECEIVER_TOKEN set: runs, restarts a crashed worker and receiver, gives up only on repeated crashes', async () => {
    const s = await start({ RECEIVER_TOKEN: 'a-token-from-the-environment-0123' });
    await waitForOutput(s, /Press Ctrl-C to stop\./);
    expect(s.output()).toContain('token: the RECEIVER_TOKEN you set');
    expect(s.output()).not.toContain('a-token-from-the-environment-0123');
    expect(s.output()).toMatch(/is the current version/);
    expect(await ready()).toBe(200);

    // The worker is killed: make start says so, starts a new one, and keeps running.
    const worker = await pidOf(s, 'worker');
    process.kill(worker, 'SIGKILL');
    const worker2 = await newPid(s, 'worker', worker);
    expect(s.output()).toMatch(/the worker exited \(status 137\); restarting it in 1s/);
    await waitForOutput(s, /worker: polling task queue[\s\S]*worker: polling task queue/);
    expect(s.child.exitCode).toBeNull();

    // The receiver too.
    const receiver = await pidOf(s, 'receiver');
    process.kill(receiver, 'SIGKILL');
    await newPid(s, 'receiver', receiver);
    expect(s.output()).toMatch(/the receiver exited \(status 137\); restarting it/);
    expect(await ready()).toBe(200);

    // A worker that keeps dying: after five exits within two minutes everything stops, and says why.
    let pid = worker2;
    while (count(s, /the worker exited/) < 4) {
      process.kill(pid, 'SIGKILL');
      pid = await newPid(s, 'worker', pid);
    }
    process.kill(pid, 'SIGKILL');
    expect(await s.exited).toBe(1);
    expect(s.output()).toMatch(/the worker exited 5 times within 2 minutes .*; giving up/);
    expect(s.output()).toMatch(/make start: stopping: a process kept crashing/);
    expect(await listening(PORTS.RECEIVER_PORT)).toBe(false);
    expect(alive(await pidOf(s, 'receiver'))).toBe(false);
    expect(await processesOf(s.dataDir)).toEqual([]);
  }, 600_000);

  it('with RECEIVER_TOKEN_FILE and TEMPORAL_WORKER_VERSIONING=false: runs unversioned; Ctrl-C stops it cleanly', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'token-'));
    const tokenFile = join(dir, 'token');
    await writeFile(tokenFile, 'a-token-from-a-file-0123456789\n', { mode: 0o600 });
    try {
      const s = await start({ RECEIVER_TOKEN_FILE: tokenFile, TEMPORAL_WORKER_VERSIONING: 'false' });
      await waitForOutput(s, /Press Ctrl-C to stop\./);
      expect(s.output()).toContain(`token: in ${tokenFile}`);
      expect(s.output()).toContain('unversioned (TEMPORAL_WORKER_VERSIONING=false)');
      expect(await ready()).toBe(200);
      const worker = await pidOf(s, 'worker');
      process.kill(-(s.child.pid as number), 'SIGINT');
      expect(await s.exited).toBe(0);
      expect(s.output()).toContain('stopped; data kept');
      expect(alive(worker)).toBe(false);
      expect(await listening(PORTS.RECEIVER_PORT)).toBe(false);
      expect(await listening(PORTS.TEMPORAL_PORT)).toBe(false);
      expect(await processesOf(s.dataDir)).toEqual([]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }, 600_000);

  it('with SANDBOX=off and no platform settings: stops at once and names what is missing', async () => {
    const s = await start({ SANDBOX: 'off' });
    expect(await s.exited).toBe(1);
    expect(s.output()).toMatch(/Invalid configuration/);
    expect(s.output()).toMatch(/the worker's configuration is invalid \(message above\); not restarting it/);
    expect(s.output()).toMatch(/make start: stopping: fix the configuration named above and start again/);
    expect(count(s, /the worker exited/)).toBe(0);
  }, 600_000);
});
