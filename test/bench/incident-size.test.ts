import { expect, it } from 'vitest';
import { loadBenchmark, runBenchmark } from '../../bench/lib/runner.js';
import { services } from '../helpers/services.js';

// The benchmark's small run: a full P1 and a short storm on the time-skipping server; sizes, no time.

const value = (figures: { name: string; value: number }[], name: string) =>
  figures.find((f) => f.name === name)?.value;

it('runs a full P1 and a storm that continues as new, and reports their sizes', async () => {
  const result = await runBenchmark(await loadBenchmark('incident-size'), {
    services: services(),
    small: true,
    log: () => {},
  });
  expect(value(result.figures, 'P1: approved steps recovered')).toBe(3);
  expect(value(result.figures, 'P1: escalations')).toBe(2);
  expect(value(result.figures, 'P1: history events')).toBeGreaterThan(0);
  expect(value(result.figures, 'P1: history size')).toBeGreaterThan(0);
  expect(value(result.figures, 'storm: deliveries counted')).toBe(300);
  expect(value(result.figures, 'storm: runs (continued as new)')).toBeGreaterThanOrEqual(2);
  expect(value(result.figures, 'storm: max events per run')).toBeGreaterThan(0);
  expect(value(result.figures, 'storm: max history per run')).toBeGreaterThan(0);
}, 300_000);
