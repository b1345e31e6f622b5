import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { writeWorkflowBundle } from '../../src/workflow-bundle.js';
import { projectRoot } from './paths.js';

// The worker as a process of its own, started the way production starts it: `node` running src/worker.ts
// (through tsx's loader, as `make start` does; the container runs the compiled dist/worker.js the same way),
// configured only by its environment, with a prebuilt workflow bundle (WORKFLOW_BUNDLE, as production
// workers run `npm run build`'s bundle). One node process, so a SIGKILL reaches the worker itself: the
// tsx CLI (`tsx src/worker.ts`) would run it as a child of its own, which a SIGKILL of the CLI leaves running.

export interface WorkerProcessOptions {
  /** The worker's settings (Temporal, task queue, the platform it protects): see src/activities/index.ts. */
  env: Record<string, string>;
  /** stdout and stderr are appended here, so a failing test can say what the worker said. */
  logFile: string;
  /** A built copy of the product (`npm run build`'s dist/ in it) whose compiled dist/worker.js runs instead. */
  compiledIn?: string;
}

export interface WorkerProcess {
  readonly pid: number;
  readonly logFile: string;
  /** False once the process has exited. */
  readonly running: boolean;
  /** Resolves when the process has exited, with how it ended. */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /**
   * Waits until it polls its task queue: the server lists a poller with this process's identity
   * (`<pid>@<host>`, the SDK's default) on the workflow and the activity task queue.
   */
  polling(connection: Connection, namespace: string, seconds?: number): Promise<void>;
  /** Sends the signal (SIGKILL by default: no shutdown, no goodbye to the server) and waits for the exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** SIGSTOP: the process holds its connections and the tasks the server hands it, and does nothing. */
  freeze(): void;
  /** The last lines it wrote (for failure messages). */
  output(lines?: number): Promise<string>;
}

/** Values of this environment that must not leak into the worker's (test runner settings, other settings). */
const inherited = (env: NodeJS.ProcessEnv): Record<string, string> => {
  const clean: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) continue;
    if (/^(VITEST|TEMPORAL_|NODE_OPTIONS$|WORKFLOW_BUNDLE$)/.test(key)) continue;
    clean[key] = value;
  }
  return clean;
};

/**
 * Writes the workflow bundle once (webpack takes seconds on two cores), as `npm run build:workflows` does;
 * pass its path as WORKFLOW_BUNDLE so each (re)started worker begins polling at once.
 */
export async function prebuiltWorkflowBundle(dir: string): Promise<string> {
  const { file } = await writeWorkflowBundle(join(dir, 'workflows.bundle.js'));
  return file;
}

export function startWorkerProcess(options: WorkerProcessOptions): WorkerProcess {
  const fd = openSync(options.logFile, 'a');
  let child;
  try {
    const args = options.compiledIn ? ['dist/worker.js'] : ['--import', 'tsx', 'src/worker.ts'];
    child = spawn(process.execPath, args, {
      cwd: options.compiledIn ?? projectRoot,
      env: { ...inherited(process.env), ...options.env },
      stdio: ['ignore', fd, fd],
    });
  } finally {
    closeSync(fd);
  }
  const pid = child.pid;
  if (pid === undefined) throw new Error('the worker process did not start');
  const started = child;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    started.once('exit', (code, signal) => resolve({ code, signal }));
    started.once('error', () => resolve({ code: null, signal: null }));
  });
  let done = false;
  void exited.then(() => {
    done = true;
  });
  const output = async (lines = 60) => {
    const text = await readFile(options.logFile, 'utf8').catch(() => '');
    return text.split('\n').slice(-lines).join('\n');
  };
  const identity = `${pid}@${hostname()}`;

  return {
    pid,
    logFile: options.logFile,
    get running() {
      return !done;
    },
    exited,
    async polling(connection, namespace, seconds = 90) {
      const taskQueue = options.env.TEMPORAL_TASK_QUEUE;
      if (!taskQueue) throw new Error('the worker environment names no TEMPORAL_TASK_QUEUE');
      const { TaskQueueType } = proto.temporal.api.enums.v1;
      const deadline = Date.now() + seconds * 1000;
      const polls = async (taskQueueType: proto.temporal.api.enums.v1.TaskQueueType) => {
        const answer = await connection.workflowService.describeTaskQueue({
          namespace,
          taskQueue: { name: taskQueue },
          taskQueueType,
        });
        return (answer.pollers ?? []).some((p) => p.identity === identity);
      };
      for (;;) {
        if (done) {
          const how = await exited;
          throw new Error(
            `the worker process exited (code ${how.code}, signal ${how.signal}) before it polled; it said:\n${await output()}`,
          );
        }
        const ready = await Promise.all([
          polls(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
          polls(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
        ]).then(
          (both) => both.every(Boolean),
          () => false,
        );
        if (ready) return;
        if (Date.now() > deadline) {
          throw new Error(
            `the worker process (pid ${pid}) does not poll ${taskQueue} after ${seconds}s; it said:\n${await output()}`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    },
    async kill(signal = 'SIGKILL') {
      if (!done) child.kill(signal);
      await exited;
    },
    freeze() {
      if (!done) child.kill('SIGSTOP');
    },
    output,
  };
}
