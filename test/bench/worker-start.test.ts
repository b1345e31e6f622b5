import { expect, it } from 'vitest';
import { loadBenchmark, runBenchmark } from '../../bench/lib/runner.js';
import { services } from '../helpers/services.js';

// The benchmark's small run: one worker process start of each kind, polled; no time asserted.

const value = (figures: { name: string; value: number }[], name: string) =>
  figures.find((f) => f.name === name)?.value;

it('starts the worker with a prebuilt bundle and bundling at start, and reports both', async () => {
  const result = await runBenchmark(await loadBenchmark('worker-start'), {
    services: services(),
    small: true,
    log: () => {},
  });
  expect(value(result.figures, 'worker starts polled')).toBe(2);
  expect(value(result.figures, 'start → polling, prebuilt bundle (median)')).toBeGreaterThan(0);
  expect(value(result.figures, 'start → polling, bundled at start (median)')).toBeGreaterThan(0);
}, 300_000);
