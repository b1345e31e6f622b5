import { execFile } from 'node:child_process';
import { cp, mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { promisify } from 'node:util';
import { writeWorkflowBundle } from '../src/workflow-bundle.js';
import { prebuiltWorkflowBundle, startWorkerProcess } from '../test/helpers/worker-process.js';
import { percentile } from './lib/measure.js';
import { projectRoot } from './lib/paths.js';
import { startBenchProduct, uniqueName, type BenchProduct } from './lib/product.js';
import { figure } from './lib/result.js';
import { runAlone, type Benchmark } from './lib/runner.js';

// Worker process start → the server lists it as a poller of its workflow and activity task queues, the
// worker started as `make start` starts it (`node --import tsx src/worker.ts`, the sandbox's platform in
// its environment): with a prebuilt workflow bundle (WORKFLOW_BUNDLE, `npm run build:workflows`) and with
// the bundle built at start. Starts alternate between the two, each on a task queue of its own.

type Mode = 'prebuilt' | 'bundled at start' | 'compiled';

/** The compiled product as the image lays it out (dist/ with its prebuilt bundle), its modules linked. */
async function compiledProduct(dir: string): Promise<string> {
  const image = join(dir, 'image');
  await promisify(execFile)(
    `${projectRoot}node_modules/.bin/tsc`,
    ['-p', 'tsconfig.build.json', '--outDir', `${image}/dist`],
    { cwd: projectRoot },
  );
  await writeWorkflowBundle(`${image}/dist/workflows.bundle.js`);
  for (const part of ['package.json', 'runbooks', 'config', 'migrations'])
    await cp(`${projectRoot}${part}`, `${image}/${part}`, { recursive: true });
  await symlink(`${projectRoot}node_modules`, `${image}/node_modules`, 'dir');
  return image;
}

async function timeStart(
  product: BenchProduct,
  dir: string,
  mode: Mode,
  built: { bundle: string; image?: string },
  i: number,
) {
  const env: Record<string, string> = {
    ...product.workerEnv,
    TEMPORAL_TASK_QUEUE: uniqueName('worker-start'),
    LOG_LEVEL: 'warn',
    ...(mode === 'prebuilt' ? { WORKFLOW_BUNDLE: built.bundle } : {}),
  };
  const started = performance.now();
  const worker = startWorkerProcess({
    env,
    logFile: join(dir, `worker-${i}.log`),
    ...(mode === 'compiled' && built.image ? { compiledIn: built.image } : {}),
  });
  try {
    await worker.polling(product.connection, 'default', 180);
    return performance.now() - started;
  } finally {
    await worker.kill('SIGTERM');
  }
}

export const benchmark: Benchmark = {
  name: 'worker-start',
  title: 'Worker start: process start → polling, prebuilt workflow bundle vs bundled at start',
  async run({ services, small, log }) {
    const starts = small ? 1 : 5;
    const dir = await mkdtemp(join(tmpdir(), 'worker-start-'));
    const product = await startBenchProduct(services);
    try {
      // The compiled product takes a TypeScript build of its own (a minute on two cores): full size only.
      const built = {
        bundle: await prebuiltWorkflowBundle(dir),
        ...(small ? {} : { image: await compiledProduct(dir) }),
      };
      const modes: Mode[] = small
        ? ['prebuilt', 'bundled at start']
        : ['prebuilt', 'bundled at start', 'compiled'];
      const times: Record<Mode, number[]> = { prebuilt: [], 'bundled at start': [], compiled: [] };
      let n = 0;
      for (let i = 0; i < starts; i++) {
        for (const mode of modes) times[mode].push(await timeStart(product, dir, mode, built, n++));
        log(
          `  ${i + 1}/${starts}: ${modes.map((m) => `${m} ${Math.round(times[m].at(-1) ?? 0)} ms`).join(', ')}`,
        );
      }
      const prebuilt = percentile(times.prebuilt, 50);
      const bundled = percentile(times['bundled at start'], 50);
      const compiled = small
        ? []
        : [figure('start → polling, compiled dist/ (median)', percentile(times.compiled, 50), 'ms')];
      return {
        params: { starts },
        figures: [
          figure(
            'worker starts polled',
            modes.reduce((n, m) => n + times[m].length, 0),
            'starts',
            {
              atLeast: starts * modes.length,
            },
          ),
          figure('start → polling, prebuilt bundle (median)', prebuilt, 'ms'),
          figure('start → polling, bundled at start (median)', bundled, 'ms'),
          figure('bundled at start / prebuilt', bundled / prebuilt, '×'),
          ...compiled,
        ],
        notes: [
          `${starts} starts of each, alternating, as \`node --import tsx src/worker.ts\` with the sandbox's platform in the environment; measured from spawn to the first describeTaskQueue (every 200 ms) that lists the process (pid@host) as a poller of both the workflow and the activity task queue`,
          `prebuilt: WORKFLOW_BUNDLE names a bundle written once beforehand (npm run build:workflows); bundled at start: the worker runs webpack on src/workflows before it polls; all: ${modes.map((m) => `${m} ${times[m].map(Math.round).join(', ')} ms`).join('; ')}`,
          small
            ? 'the compiled dist/ is left out of the small run (its TypeScript build takes a minute)'
            : 'compiled: `node dist/worker.js` in a copy laid out as the image is (tsc -p tsconfig.build.json, dist/workflows.bundle.js, runbooks, config, migrations; node_modules linked), no tsx',
        ],
      };
    } finally {
      await product.stop();
      await rm(dir, { recursive: true, force: true });
    }
  },
};

await runAlone(import.meta.url, 'worker-start');
