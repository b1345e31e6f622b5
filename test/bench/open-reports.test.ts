import { describe, expect, it } from 'vitest';
import { loadBenchmark, runBenchmark } from '../../bench/lib/runner.js';
import { services } from '../helpers/services.js';

// The small run of bench/open-reports.ts against the suite's services: it keeps the benchmark working and
// checks what it did, not how fast (no time, RSS or CPU threshold: the machine is shared).

describe('bench/open-reports (small)', () => {
  it('starts every report on one worker process, lists them and keeps the worker alive', async () => {
    const result = await runBenchmark(await loadBenchmark('open-reports'), {
      services: services(),
      small: true,
      log: () => {},
    });
    const value = (name: string) => {
      const found = result.figures.find((f) => f.name === name);
      if (!found) throw new Error(`no figure "${name}" in ${result.figures.map((f) => f.name).join(', ')}`);
      return found.value;
    };
    const reports = Number(result.params.reports);
    expect(reports).toBe(50);
    expect(value('reports started')).toBe(reports);
    // One in ten is of an incident resolved over a day ago: the manager's Overdue list shows it.
    const overdue = value('Overdue reports of this run');
    expect(overdue).toBe(5);
    expect(value('Overdue reports listed')).toBeGreaterThanOrEqual(overdue);
    expect(value('Pending reports of this run counted')).toBe(reports - overdue);
    expect(value('Pending reports listed')).toBeGreaterThanOrEqual(reports - overdue);
    expect(value('worker alive')).toBe(1);
    // The worker process keeps no more reports in memory than WORKER_MAX_CACHED_WORKFLOWS says.
    expect(result.params.maxCachedWorkflows).toBe(20);
    expect(value('workflows in the worker cache, all waiting')).toBeLessThanOrEqual(20);
    expect(value('workflows in the worker cache after the queries')).toBeLessThanOrEqual(20);
    expect(value('worker RSS, all waiting')).toBeGreaterThan(0);
    for (const f of result.figures) expect(Number.isFinite(f.value), f.name).toBe(true);
  }, 300_000);
});
