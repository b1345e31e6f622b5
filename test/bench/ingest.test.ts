import { describe, expect, it } from 'vitest';
import { loadBenchmark, runBenchmark } from '../../bench/lib/runner.js';
import type { BenchResult } from '../../bench/lib/result.js';
import { services } from '../helpers/services.js';

const value = (result: BenchResult, name: string) => result.figures.find((f) => f.name === name)?.value;

describe('bench ingest (small)', () => {
  it('opens one incident per distinct alert through the receiver, none lost or duplicated', async () => {
    const result = await runBenchmark(await loadBenchmark('ingest'), {
      services: services(),
      small: true,
      log: () => {},
    });
    const n = result.params.N as number;
    expect(value(result, 'alerts refused (not 202)')).toBe(0);
    expect(value(result, 'lost alerts')).toBe(0);
    expect(value(result, 'alerts delivered more than once')).toBe(0);
    expect(value(result, 'alerts the incident did not count exactly once')).toBe(0);
    expect(value(result, 'duplicate incidents')).toBe(0);
    expect(value(result, 'incidents')).toBe(n);
  }, 300_000);
});
