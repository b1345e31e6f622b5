import Fastify, { type FastifyInstance } from 'fastify';
import type { NativeConnection, State } from '@temporalio/worker';
import proto from '@temporalio/proto';

// The worker's health and readiness for a supervisor (Kubernetes probes, docker HEALTHCHECK). Alive: the
// worker has not failed or stopped. Ready: it runs, and Temporal lists it among the pollers of its task
// queue (workflow and activity tasks) at the last look, which is at most `staleAfterMs` old.

export interface PollerCheck {
  ok: boolean;
  /** Why not, in words (never a credential: the check names the task queue and the gRPC status only). */
  reason?: string;
  at: number;
}

export interface Readiness {
  ready: boolean;
  reason?: string;
}

/** Whether a worker in `state`, whose last poller check is `last`, is ready at `now`. */
export function readiness(
  state: State,
  last: PollerCheck | undefined,
  now: number,
  staleAfterMs: number,
): Readiness {
  if (state !== 'RUNNING') return { ready: false, reason: `the worker is ${state.toLowerCase()}` };
  if (!last) return { ready: false, reason: 'not checked with Temporal yet' };
  if (!last.ok)
    return { ready: false, reason: last.reason ?? 'Temporal does not list this worker as a poller' };
  if (now - last.at > staleAfterMs) {
    return { ready: false, reason: `no answer from Temporal for ${Math.round((now - last.at) / 1000)} s` };
  }
  return { ready: true };
}

/** Whether the worker is alive: anything but failed or stopped (a draining worker finishes its tasks). */
export const alive = (state: State): boolean => state !== 'FAILED' && state !== 'STOPPED';

/** Asks Temporal whether `identity` polls both the workflow and the activity tasks of the queue. */
export function temporalPollerCheck(options: {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  identity: string;
}): () => Promise<PollerCheck> {
  const { TaskQueueType } = proto.temporal.api.enums.v1;
  const polls = async (taskQueueType: proto.temporal.api.enums.v1.TaskQueueType) => {
    const answer = await options.connection.workflowService.describeTaskQueue({
      namespace: options.namespace,
      taskQueue: { name: options.taskQueue },
      taskQueueType,
    });
    return (answer.pollers ?? []).some((p) => p.identity === options.identity);
  };
  return async () => {
    const at = Date.now();
    try {
      const [workflows, activities] = await Promise.all([
        polls(TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
        polls(TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY),
      ]);
      if (workflows && activities) return { ok: true, at };
      const missing = [workflows ? '' : 'workflow', activities ? '' : 'activity']
        .filter(Boolean)
        .join(' and ');
      return {
        ok: false,
        at,
        reason: `Temporal lists no ${missing} poller of ${options.taskQueue} from this worker yet`,
      };
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      return {
        ok: false,
        at,
        reason: `Temporal did not answer (gRPC status ${typeof code === 'number' ? code : 'unknown'})`,
      };
    }
  };
}

export interface WorkerHealthOptions {
  state: () => State;
  check: () => Promise<PollerCheck>;
  checkEveryMs?: number;
  staleAfterMs?: number;
}

/** GET /healthz and /readyz; checks with Temporal in the background, so a probe never waits on it. */
export function workerHealthApp(options: WorkerHealthOptions): FastifyInstance {
  const every = options.checkEveryMs ?? 10_000;
  const stale = options.staleAfterMs ?? 3 * every;
  let last: PollerCheck | undefined;
  let checking = false;
  const look = async () => {
    if (checking) return;
    checking = true;
    try {
      last = await options.check();
    } finally {
      checking = false;
    }
  };
  const timer = setInterval(() => void look(), every);
  timer.unref();
  void look();

  const app = Fastify({ logger: false });
  app.addHook('onClose', async () => clearInterval(timer));
  app.get('/healthz', async (_request, reply) => {
    const state = options.state();
    return alive(state) ? { status: 'ok', state } : reply.code(503).send({ status: 'down', state });
  });
  app.get('/readyz', async (_request, reply) => {
    const state = options.state();
    // A worker that is not ready yet looks again at once, so it turns ready without waiting a whole period.
    if (state === 'RUNNING' && !last?.ok) await look();
    const r = readiness(state, last, Date.now(), stale);
    return r.ready ? { status: 'ready' } : reply.code(503).send({ status: 'not ready', reason: r.reason });
  });
  return app;
}
