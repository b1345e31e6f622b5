import { describe, expect, it } from 'vitest';
import { ConfigError } from '../../src/config.js';
import { defaultMaxCachedWorkflows, loadWorkerCacheSize } from '../../src/worker.js';

const MiB = 2 ** 20;

describe('the worker cache bound', () => {
  it('fits about 2 MB a cached workflow into the heap, at most 150', () => {
    // The SDK's default counts 600 a GiB: 2,395 workflows (5 GB) on a large host, 144 in a 448 MiB heap.
    expect(defaultMaxCachedWorkflows(4288 * MiB)).toBe(150);
    expect(defaultMaxCachedWorkflows(704 * MiB)).toBe(150); // --max-old-space-size=512
    expect(defaultMaxCachedWorkflows(448 * MiB)).toBe(59); // --max-old-space-size=256: 1 GiB container
    expect(defaultMaxCachedWorkflows(200 * MiB)).toBe(2);
    expect(loadWorkerCacheSize({})).toBe(defaultMaxCachedWorkflows());
    expect(loadWorkerCacheSize({ WORKER_MAX_CACHED_WORKFLOWS: '' })).toBe(defaultMaxCachedWorkflows());
  });

  it('takes WORKER_MAX_CACHED_WORKFLOWS, 0 turning the cache off, and names it when it is not a bound', () => {
    expect(loadWorkerCacheSize({ WORKER_MAX_CACHED_WORKFLOWS: '1000' })).toBe(1000);
    expect(loadWorkerCacheSize({ WORKER_MAX_CACHED_WORKFLOWS: '0' })).toBe(0);
    for (const bad of ['-1', 'many', '2.5']) {
      expect(() => loadWorkerCacheSize({ WORKER_MAX_CACHED_WORKFLOWS: bad })).toThrow(ConfigError);
      expect(() => loadWorkerCacheSize({ WORKER_MAX_CACHED_WORKFLOWS: bad })).toThrow(
        /WORKER_MAX_CACHED_WORKFLOWS/,
      );
    }
  });
});
