import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { Client } from '@temporalio/client';
import { incidentWorkflowId, postIncidentWorkflowId } from '../src/domain/incident-key.js';
import { REPORT_DUE_MS, type PostIncidentInput } from '../src/domain/post-incident.js';
import { writeWorkflowBundle } from '../src/workflow-bundle.js';
import type { postIncidentWorkflow } from '../src/workflows/post-incident.js';
import { postIncidentStatusQuery } from '../src/workflows/api.js';
import {
  IncidentRunbook,
  IncidentSeverity,
  IncidentTeam,
  ReportDueAt,
  ReportStatus,
} from '../src/workflows/search-attributes.js';
import { startWorkerProcess, type WorkerProcess } from '../test/helpers/worker-process.js';
import { percentile, perSecond, timedPool } from './lib/measure.js';
import { cpuPercentOver, memory, mib } from './lib/process-stats.js';
import { startBenchProduct } from './lib/product.js';
import { figure, type Figure } from './lib/result.js';
import { runAlone, type Benchmark, type BenchContext } from './lib/runner.js';
import { metricSum, scrapeMetrics } from './lib/worker-metrics.js';

// Issue #12: many post-incident reports wait for days, all on one worker. The reports are started as the
// incident starts them (src/workflows/incident/resolution.ts: same id scheme, input and search attributes,
// resolved now), on one worker run as its own process, as production runs it, so its RSS and CPU are its own.

const sizes = {
  full: { reports: 10_000, startConcurrency: 50, queryConcurrency: 20, settleMs: 10_000, idleMs: 30_000 },
  // A cache bound below the number of reports, so the small run evicts as the full one does.
  small: {
    reports: 50,
    startConcurrency: 10,
    queryConcurrency: 10,
    settleMs: 1_000,
    idleMs: 3_000,
    cache: 20,
  },
} as const;

/**
 * The worker's Deployment (deploy/kubernetes/base/worker.yaml) limits it to 1 GiB, and Node sizes its heap from
 * that limit: a quarter of it for the old generation. The same heap here, on a host with far more memory,
 * so the worker sizes its cache and collects garbage as it does in its pod.
 */
const DEPLOYMENT_HEAP = '--max-old-space-size=256';

const RUNBOOKS = ['all-channels-down', 'database-connection-failures', 'gmail-channel-down'] as const;

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });

/** One report in this many is of an incident resolved over a day ago: overdue from its first task. */
const OVERDUE_EVERY = 10;
const isOverdue = (i: number) => i % OVERDUE_EVERY === OVERDUE_EVERY - 1;

const report = (i: number, now: Date, taskQueue: string) => {
  const resolvedAt = isOverdue(i) ? new Date(now.getTime() - REPORT_DUE_MS - 3_600_000) : now;
  const runbookId = RUNBOOKS[i % RUNBOOKS.length] ?? 'all-channels-down';
  const incidentId = incidentWorkflowId(runbookId, `${taskQueue}-${i}`);
  const openedAt = new Date(resolvedAt.getTime() - 3_600_000).toISOString();
  const input: PostIncidentInput = {
    incidentId,
    occurrence: `bench-occurrence-${i}`,
    title: `benchmark incident ${i}`,
    severity: i % 2 === 0 ? 'P1' : 'P2',
    runbookId,
    team: 'support-engineering',
    resolvedAt: resolvedAt.toISOString(),
    reportOwner: 'alice',
    runbookUpdateRequired: i % 5 === 0,
  };
  return { workflowId: postIncidentWorkflowId(incidentId, openedAt), input };
};

/** Every page of a list query (as the UI and `incidentctl` read them), and the count query. */
async function timeListQuery(client: Client, query: string) {
  const listed: number[] = [];
  const counted: number[] = [];
  let matches = 0;
  let count = 0;
  for (let run = 0; run < 3; run++) {
    let started = performance.now();
    matches = 0;
    for await (const _ of client.workflow.list({ query, pageSize: 1000 })) matches++;
    listed.push(performance.now() - started);
    started = performance.now();
    count = (await client.workflow.count(query)).count;
    counted.push(performance.now() - started);
  }
  return { matches, count, listMs: percentile(listed, 50), countMs: percentile(counted, 50) };
}

async function waitFor(what: string, ms: number, done: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await done())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms / 1000}s waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}

async function run({ services, small, log }: BenchContext) {
  const size = small ? sizes.small : sizes.full;
  const figures: Figure[] = [];
  const notes: string[] = [];
  const product = await startBenchProduct(services);
  const dir = await mkdtemp(join(tmpdir(), 'bench-open-reports-'));
  let worker: WorkerProcess | undefined;
  const ids: string[] = [];
  try {
    const { client, taskQueue } = product;
    const { file: bundle } = await writeWorkflowBundle(join(dir, 'workflows.bundle.js'));
    const metricsAddress = `127.0.0.1:${await freePort()}`;
    worker = startWorkerProcess({
      env: {
        ...product.workerEnv,
        WORKFLOW_BUNDLE: bundle,
        TEMPORAL_METRICS_ADDRESS: metricsAddress,
        LOG_LEVEL: 'info',
        NODE_OPTIONS: DEPLOYMENT_HEAP,
        ...('cache' in size ? { WORKER_MAX_CACHED_WORKFLOWS: String(size.cache) } : {}),
      },
      logFile: join(dir, 'worker.log'),
    });
    await worker.polling(product.connection, 'default');
    const pid = worker.pid;
    const logged = /caches up to (\d+) workflows/.exec(await readFile(worker.logFile, 'utf8'));
    const cacheBound = Number(logged?.[1] ?? Number.NaN);
    const metrics = () => scrapeMetrics(`http://${metricsAddress}/metrics`);
    const cacheSize = async () => metricSum(await metrics(), /^temporal_sticky_cache_size$/);
    const tasksDone = async () =>
      metricSum(await metrics(), /^temporal_workflow_task_execution_latency(_seconds)?_count$/);
    const tasksBefore = await tasksDone();
    log(`open-reports: worker pid ${pid} polls ${taskQueue}; starting ${size.reports} reports`);

    const now = new Date();
    const overdueReports = Array.from({ length: size.reports }, (_, i) => i).filter(isOverdue).length;
    const startMs = await timedPool(size.reports, size.startConcurrency, async (i) => {
      const { workflowId, input } = report(i, now, taskQueue);
      const resolvedAt = new Date(input.resolvedAt);
      await client.workflow.start<typeof postIncidentWorkflow>('postIncidentWorkflow', {
        taskQueue,
        workflowId,
        typedSearchAttributes: [
          { key: IncidentSeverity, value: input.severity },
          { key: IncidentRunbook, value: input.runbookId },
          { key: IncidentTeam, value: input.team },
          { key: ReportStatus, value: 'Pending' },
          { key: ReportDueAt, value: new Date(resolvedAt.getTime() + REPORT_DUE_MS) },
        ],
        args: [input],
      });
      ids.push(workflowId);
    });
    figures.push(
      figure('reports started', ids.length, '', { atLeast: size.reports, text: `${size.reports}` }),
    );
    figures.push(figure('start rate', perSecond(ids.length, startMs), 'workflows/s'));
    log(`open-reports: started ${ids.length} in ${Math.round(startMs)} ms`);

    // Each report's first workflow task publishes its status and arms its timer; then it waits for 12 h.
    const firstTasksFrom = performance.now();
    await waitFor(`the first workflow task of ${size.reports} reports`, 600_000, async () => {
      return (await tasksDone()) - tasksBefore >= size.reports;
    });
    const scope = `TaskQueue="${taskQueue}"`;
    // The overdue ones have published their new status (and notified the manager) once this count is right.
    await waitFor(`${overdueReports} reports overdue`, 600_000, async () => {
      const { count } = await client.workflow.count(`${scope} AND ReportStatus="Overdue"`);
      return count >= overdueReports;
    });
    figures.push(figure('first tasks done after the last start', performance.now() - firstTasksFrom, 'ms'));
    await new Promise((resolve) => setTimeout(resolve, size.settleMs));
    const idleCpu = await cpuPercentOver(pid, size.idleMs);
    const idle = await memory(pid);
    const cachedIdle = await cacheSize();
    figures.push(figure('worker idle CPU', idleCpu, '% of a core', { atMost: 2 }));
    figures.push(figure('worker RSS, all waiting', mib(idle.rssBytes), 'MiB', { atMost: 1024 }));
    figures.push(figure('workflows in the worker cache, all waiting', cachedIdle, ''));
    notes.push(
      `idle CPU: utime+stime of the worker process (/proc/<pid>/stat) over ${size.idleMs / 1000} s, ` +
        `${size.settleMs / 1000} s after every report ran its first workflow task`,
    );

    const overdue = await timeListQuery(client, 'ReportStatus="Overdue"');
    const pending = await timeListQuery(client, 'ReportStatus="Pending"');
    const ours = await client.workflow.count(`${scope} AND ReportStatus="Pending"`);
    figures.push(figure('Overdue list query, all pages', overdue.listMs, 'ms', { atMost: 1000 }));
    figures.push(figure('Overdue count query', overdue.countMs, 'ms', { atMost: 1000 }));
    figures.push(figure('Overdue reports listed', overdue.matches, ''));
    figures.push(figure('Pending list query, all pages', pending.listMs, 'ms', { atMost: 1000 }));
    figures.push(figure('Pending count query', pending.countMs, 'ms', { atMost: 1000 }));
    figures.push(figure('Pending reports listed', pending.matches, ''));
    figures.push(figure('Pending reports of this run counted', ours.count, ''));
    figures.push(figure('Overdue reports of this run', overdueReports, ''));
    notes.push(
      'list queries: median of 3, `client.workflow.list` through every page (1,000 a page) and ' +
        '`client.workflow.count`, on the whole namespace as the manager filters it',
      `one report in ${OVERDUE_EVERY} is of an incident resolved 25 h before the run, so it is Overdue from its ` +
        'first workflow task (with its ledger event and notifications); the rest are Pending, due in 24 h',
    );

    // A status query of each report (as `incidentctl` reads one): a report no longer cached is replayed into
    // the cache, so this fills the cache up to its bound: the most memory the waiting reports can take.
    const queryMs = await timedPool(ids.length, size.queryConcurrency, async (i) => {
      const id = ids[i];
      if (id) await client.workflow.getHandle(id).query(postIncidentStatusQuery);
    });
    const queried = await memory(pid);
    figures.push(figure('status query rate, every report', perSecond(ids.length, queryMs), 'queries/s'));
    figures.push(
      figure('worker RSS after every report was queried', mib(queried.rssBytes), 'MiB', { atMost: 1024 }),
    );
    figures.push(figure('worker peak RSS', mib(queried.peakRssBytes), 'MiB', { atMost: 1024 }));
    figures.push(figure('workflows in the worker cache after the queries', await cacheSize(), ''));
    figures.push(figure('worker alive', worker.running ? 1 : 0, '', { atLeast: 1, text: 'yes' }));
    return {
      params: {
        reports: size.reports,
        startConcurrency: size.startConcurrency,
        idleSeconds: size.idleMs / 1000,
        maxCachedWorkflows: cacheBound,
        workerNodeOptions: DEPLOYMENT_HEAP,
      },
      figures,
      notes,
    };
  } finally {
    // Terminated, so the next benchmark's list queries and the server's timers do not carry them.
    await timedPool(ids.length, 50, async (i) => {
      const id = ids[i];
      if (id)
        await product.client.workflow
          .getHandle(id)
          .terminate('open-reports benchmark done')
          .catch(() => {});
    });
    await worker?.kill('SIGTERM');
    await product.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

export const benchmark: Benchmark = {
  name: 'open-reports',
  title: 'Open reports: waiting post-incident workflows on one worker',
  run,
};

await runAlone(import.meta.url, 'open-reports');
