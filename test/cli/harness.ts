import { execFile } from 'node:child_process';
import { createServer, type AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import type { Worker } from '@temporalio/worker';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerEnv, services, uniqueName } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { productWorker } from '../helpers/workflows.js';
import { projectRoot } from '../helpers/paths.js';
import { runIncidentctl, type CliDeps } from '../../src/cli/incidentctl.js';
import type { IncidentState } from '../../src/domain/incident.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

export const bin = `${projectRoot}bin/incidentctl.js`;

/** A port nothing listens on: bound once by us, then released. */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * The product workflows on the shared dev server with a FakePlatform worker on this file's own task queue,
 * and incidentctl run in-process (`cli`) or as the real executable (`bin`) against them.
 */
export class CliHarness {
  env!: TestWorkflowEnvironment;
  platform = new FakePlatform();
  taskQueue = '';
  private worker!: Worker;
  private running!: Promise<void>;

  async start(): Promise<void> {
    this.env = await devServerEnv();
    const { worker, taskQueue } = await productWorker(this.env, this.platform.activities());
    this.worker = worker;
    this.taskQueue = taskQueue;
    this.running = worker.run();
  }

  /** Closes every workflow this file opened (they all ran on its task queue), then stops the worker. */
  async stop(): Promise<void> {
    if (!this.env) return;
    const open = this.env.client.workflow.list({
      query: `TaskQueue = '${this.taskQueue}' AND ExecutionStatus = 'Running'`,
    });
    for await (const w of open) {
      await this.env.client.workflow
        .getHandle(w.workflowId)
        .terminate('test over')
        .catch(() => undefined);
    }
    this.worker?.shutdown();
    await this.running;
    await this.env.teardown();
  }

  /** A scope (namespace) nobody else uses, so workflow ids never collide across tests and runs. */
  scope(): string {
    return uniqueName('ictl');
  }

  get cliEnv(): NodeJS.ProcessEnv {
    const { temporalAddress, temporalNamespace } = services();
    return {
      PATH: process.env.PATH,
      TEMPORAL_ADDRESS: temporalAddress,
      TEMPORAL_NAMESPACE: temporalNamespace,
      TEMPORAL_TASK_QUEUE: this.taskQueue,
    };
  }

  /** incidentctl in this process, with the test's client and captured output. */
  cli(...args: string[]): Promise<CliResult> {
    return this.cliWith({}, ...args);
  }

  /** Like cli, with extra environment variables or shorter waits for a worker. */
  async cliWith(
    o: { env?: NodeJS.ProcessEnv; workerDeadlinesMs?: CliDeps['workerDeadlinesMs'] },
    ...args: string[]
  ): Promise<CliResult> {
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runIncidentctl(args, {
      stdout,
      stderr,
      env: { ...this.cliEnv, ...o.env },
      ...(o.workerDeadlinesMs ? { workerDeadlinesMs: o.workerDeadlinesMs } : {}),
      // Before start (e.g. `keys init`, which needs no server), incidentctl connects on its own if it must.
      ...(this.env ? { client: this.env.client } : {}),
      defaultUser: 'alice',
    });
    return { code, stdout: stdout.text, stderr: stderr.text };
  }

  /** The real executable in a child process (argument array, no shell). */
  bin(args: string[], env: NodeJS.ProcessEnv = this.cliEnv): Promise<CliResult> {
    return runBin(args, env);
  }

  /**
   * Declares an all-channels-down incident in a fresh scope and waits until it asks for approval of
   * restart-postgres (the fakes must report postgres down); returns its id.
   */
  async waitingIncident(): Promise<string> {
    const scope = this.scope();
    const declared = await this.cli('declare', 'all-channels-down', '--scope', scope);
    if (declared.code !== 0) throw new Error(`declare failed: ${declared.stderr}`);
    const id = incidentWorkflowId('all-channels-down', scope);
    await this.until(id, (s) => s.awaitingApproval.includes('restart-postgres'), 'approval wait');
    return id;
  }

  /** Polls `show --json` until the incident's state satisfies the predicate. */
  async until(
    id: string,
    predicate: (s: IncidentState) => boolean,
    what: string,
    tries = 150,
  ): Promise<IncidentState> {
    let last: CliResult | undefined;
    for (let i = 0; i < tries; i++) {
      last = await this.cli('show', id, '--json');
      if (last.code === 0) {
        const state = JSON.parse(last.stdout) as IncidentState;
        if (predicate(state)) return state;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
      `timed out waiting for ${what}; last: ${last?.code} ${last?.stdout.slice(0, 2000)} ${last?.stderr}`,
    );
  }

  /** Polls a command until its output satisfies the predicate (visibility is eventually consistent). */
  async poll(
    args: string[],
    predicate: (r: CliResult) => boolean,
    what: string,
    tries = 100,
  ): Promise<CliResult> {
    let last: CliResult | undefined;
    for (let i = 0; i < tries; i++) {
      last = await this.cli(...args);
      if (predicate(last)) return last;
      await new Promise((r) => setTimeout(r, 200));
    }
    throw new Error(
      `timed out waiting for ${what}; last: ${last?.code} ${last?.stdout.slice(0, 2000)} ${last?.stderr}`,
    );
  }

  async executionStatus(workflowId: string): Promise<string> {
    return (await this.env.client.workflow.getHandle(workflowId).describe()).status.name;
  }
}

export function runBin(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [bin, ...args],
      { env, cwd: projectRoot, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}
