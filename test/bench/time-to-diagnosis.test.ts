import { expect, it } from 'vitest';
import { loadBenchmark, runBenchmark } from '../../bench/lib/runner.js';
import { services } from '../helpers/services.js';

// The benchmark's small run: the same code paths, no time asserted.

const value = (figures: { name: string; value: number }[], name: string) =>
  figures.find((f) => f.name === name)?.value;

it('diagnoses every incident of the small run and reports p50 and p99', async () => {
  const result = await runBenchmark(await loadBenchmark('time-to-diagnosis'), {
    services: services(),
    small: true,
    log: () => {},
  });
  expect(value(result.figures, 'incidents diagnosed')).toBe(3);
  expect(value(result.figures, 'probes run per diagnosis (mean)')).toBeGreaterThanOrEqual(4);
  expect(value(result.figures, 'time to diagnosis p50')).toBeGreaterThan(0);
  expect(value(result.figures, 'time to diagnosis p99')).toBeGreaterThan(0);
}, 240_000);
