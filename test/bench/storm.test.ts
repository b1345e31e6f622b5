import { describe, expect, it } from 'vitest';
import { loadBenchmark, runBenchmark } from '../../bench/lib/runner.js';
import type { BenchResult } from '../../bench/lib/result.js';
import { services } from '../helpers/services.js';

const value = (result: BenchResult, name: string) => result.figures.find((f) => f.name === name)?.value;

describe('bench storm (small)', () => {
  it('keeps one incident that counts every re-delivery once, without diagnosing again', async () => {
    const result = await runBenchmark(await loadBenchmark('storm'), {
      services: services(),
      small: true,
      log: () => {},
    });
    const m = result.params.M as number;
    expect(value(result, 'deliveries refused (not 202)')).toBe(0);
    expect(value(result, 'incidents')).toBe(1);
    expect(value(result, 'deliveries counted by the incident')).toBe(m);
    expect(value(result, 'deliveries counted as deduplicated (receiver metric)')).toBe(m);
    expect(value(result, 'diagnoses run during the storm')).toBe(0);
    expect(result.figures.find((f) => f.name === 'history events per delivery')?.met).toBe(true);
  }, 300_000);
});
