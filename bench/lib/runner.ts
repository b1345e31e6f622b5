import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { projectRoot } from './paths.js';
import {
  describeMachine,
  formatResult,
  readResults,
  updatePerformanceDoc,
  writeResult,
  type BenchResult,
} from './result.js';
import { startBenchServices, type BenchServices } from './services.js';

export interface BenchContext {
  services: BenchServices;
  /** A small run (the test suite's): the same code paths with sizes that take seconds. */
  small: boolean;
  log: (line: string) => void;
}

export type BenchOutcome = Pick<BenchResult, 'params' | 'figures' | 'notes'>;

export interface Benchmark {
  /** File name under bench/ and the result's name, e.g. "ingest". */
  name: string;
  title: string;
  run(context: BenchContext): Promise<BenchOutcome>;
}

/** The benchmarks `npm run bench` runs, in this order (bench/<name>.ts, each exporting `benchmark`). */
export const BENCHMARKS = [
  'ingest',
  'storm',
  'time-to-diagnosis',
  'open-reports',
  'incident-size',
  'worker-start',
] as const;

export async function loadBenchmark(name: string): Promise<Benchmark> {
  const module = (await import(pathToFileURL(join(projectRoot, 'bench', `${name}.ts`)).href)) as {
    benchmark?: Benchmark;
  };
  if (!module.benchmark) throw new Error(`bench/${name}.ts exports no benchmark`);
  return module.benchmark;
}

export async function runBenchmark(benchmark: Benchmark, context: BenchContext): Promise<BenchResult> {
  const outcome = await benchmark.run(context);
  return {
    benchmark: benchmark.name,
    title: benchmark.title,
    at: new Date().toISOString(),
    machine: describeMachine(),
    ...outcome,
  };
}

/**
 * `npm run bench [-- name ...] [--small] [--keep-server]`: runs the benchmarks one after another on a fresh
 * dev server of their own, prints each figure beside its goal, writes bench/results/<name>.json and the
 * table of docs/performance.md.
 */
export async function main(argv: string[]): Promise<number> {
  const small = argv.includes('--small');
  const names = argv.filter((a) => !a.startsWith('--'));
  const unknown = names.filter((n) => !(BENCHMARKS as readonly string[]).includes(n));
  if (unknown.length > 0) {
    console.error(`unknown benchmark(s): ${unknown.join(', ')}; known: ${BENCHMARKS.join(', ')}`);
    return 2;
  }
  const log = (line: string) => console.log(line);
  log(
    'bench: starting services (PostgreSQL, Kafka, control plane, a fresh Temporal dev server on its own port)',
  );
  const services = await startBenchServices({ fresh: !argv.includes('--keep-server') });
  let failed = 0;
  for (const name of names.length > 0 ? names : BENCHMARKS) {
    const benchmark = await loadBenchmark(name);
    log(`\nbench: ${benchmark.title}`);
    try {
      const result = await runBenchmark(benchmark, { services, small, log });
      log(formatResult(result));
      if (!small) log(`bench: wrote ${await writeResult(result)}`);
    } catch (error) {
      failed++;
      console.error(
        `bench: ${name} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
      );
    }
  }
  if (!small) {
    await updatePerformanceDoc(join(projectRoot, 'docs', 'performance.md'), await readResults());
    log('\nbench: updated docs/performance.md');
  }
  return failed > 0 ? 1 : 0;
}

/** For bench/<name>.ts run alone: `npx tsx bench/<name>.ts [--small] [--keep-server]`. */
export async function runAlone(importMetaUrl: string, name: string): Promise<void> {
  if (!process.argv[1] || importMetaUrl !== pathToFileURL(process.argv[1]).href) return;
  // Not awaited: main() imports this very module (loadBenchmark), which must finish evaluating first, or the
  // import waits for the module's top-level await and the process ends with nothing left to run.
  void main([name, ...process.argv.slice(2).filter((a) => a.startsWith('--'))]).then((code) => {
    process.exitCode = code;
  });
}
