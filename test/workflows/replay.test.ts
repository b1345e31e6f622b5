import { readdir, readFile } from 'node:fs/promises';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  bundleWorkflowCode,
  DefaultLogger,
  Runtime,
  Worker,
  type WorkflowBundleWithSourceMap,
} from '@temporalio/worker';
import { DeterminismViolationError } from '@temporalio/workflow';
import * as productWorkflows from '../../src/workflows/index.js';
import { productBundle } from '../helpers/workflows.js';
import { workflowTraceSinks } from '../../src/tracing.js';
import {
  CLOSING_EVENTS,
  findReleases,
  historiesDir,
  MANIFEST_FILE,
  sha256,
  type HistoryEntry,
  type HistoryJson,
} from '../histories/manifest.js';

// Histories recorded from the workflows as they ran, one folder per release (test/histories/README.md).
// Replaying every one against the bundle the worker runs fails when a change to workflow code would break
// incidents, reports or monitor runs that are already running. The replay guard below shows that this test
// really replays them: the same histories against a deliberately incompatible bundle must fail.

const releases = await findReleases();
const recorded = releases.flatMap((release) =>
  release.manifest.histories.map((entry) => ({ release, entry, path: `${release.dir}${entry.file}` })),
);

async function readHistory(path: string): Promise<{ bytes: Buffer; history: HistoryJson }> {
  const bytes = await readFile(path);
  return { bytes, history: JSON.parse(bytes.toString('utf8')) as HistoryJson };
}

const eventTypes = (history: HistoryJson) => history.events.map((e) => e.eventType ?? '');

// The product's bundle has the tracing interceptors; their sink is registered as a worker registers it.
const sinks = workflowTraceSinks(undefined);

/** Every recorded history, replayed on one replay worker with `bundle`: the error of each, or undefined. */
async function replayAll(bundle: { code: string }): Promise<Map<string, Error | undefined>> {
  const histories = await Promise.all(
    recorded.map(async ({ entry, path }) => ({
      workflowId: entry.workflowId,
      history: (await readHistory(path)).history,
    })),
  );
  const results = new Map<string, Error | undefined>();
  let i = 0;
  for await (const result of Worker.runReplayHistories({ workflowBundle: bundle, sinks }, histories)) {
    results.set(`${recorded[i]?.release.name}/${recorded[i]?.entry.file}`, result.error as Error | undefined);
    i++;
  }
  return results;
}

const quiet = { trace() {}, debug() {}, info() {}, warn() {}, error() {}, log() {} };
const fixtureBundle = (name: string) =>
  bundleWorkflowCode({ workflowsPath: `${historiesDir}fixtures/${name}`, logger: quiet });

let bundle: WorkflowBundleWithSourceMap;
beforeAll(async () => {
  // A replay worker per history, and the guard's replays fail on purpose: their log lines would drown the
  // report. A failed replay's error is in the failed test.
  Runtime.install({
    logger: new DefaultLogger('WARN'),
    telemetryOptions: { logging: { filter: { core: 'ERROR', other: 'ERROR' } } },
  });
  bundle = await productBundle();
});

describe('recorded histories', () => {
  it('are kept per release, and every workflow the worker serves has some', () => {
    expect(releases.map((r) => r.name)).toContain('2026-11-27');
    const types = new Set(recorded.map((r) => r.entry.workflowType));
    for (const name of Object.keys(productWorkflows)) expect(types, `a recorded ${name}`).toContain(name);
  });

  for (const release of releases) {
    it(`${release.name}: the manifest lists every history file, each unchanged since it was recorded`, async () => {
      expect(release.manifest.release).toBe(release.name.split('/').pop());
      const files = (await readdir(release.dir)).filter((f) => f.endsWith('.json') && f !== MANIFEST_FILE);
      expect(files.sort()).toEqual(release.manifest.histories.map((h: HistoryEntry) => h.file).sort());
      for (const h of release.manifest.histories) {
        const { bytes, history } = await readHistory(`${release.dir}${h.file}`);
        expect({
          file: h.file,
          bytes: bytes.length,
          sha256: sha256(bytes),
          events: history.events.length,
        }).toEqual({ file: h.file, bytes: h.bytes, sha256: h.sha256, events: h.events });
      }
    });
  }
});

describe('replay of recorded histories against the current workflow code', () => {
  for (const { release, entry, path } of recorded) {
    it(`${release.name}/${entry.file} replays against the current ${entry.workflowType}`, async () => {
      const { history } = await readHistory(path);
      const types = eventTypes(history);
      expect(history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe(
        entry.workflowType,
      );
      // Non-trivial: a closed run with several workflow tasks and at least one command they issued.
      expect(types.length).toBeGreaterThanOrEqual(10);
      expect(types.filter((t) => t === 'EVENT_TYPE_WORKFLOW_TASK_COMPLETED').length).toBeGreaterThanOrEqual(
        2,
      );
      expect(types.some((t) => /ACTIVITY_TASK_SCHEDULED|TIMER_STARTED|MARKER_RECORDED/.test(t))).toBe(true);
      expect(CLOSING_EVENTS).toContain(types.at(-1));
      await expect(
        Worker.runReplayHistory({ workflowBundle: bundle, sinks }, history, entry.workflowId),
      ).resolves.toBeUndefined();
    });
  }
});

describe('the replay guard', () => {
  it('a change that adds a command without patched() fails to replay every recorded history', async () => {
    // fixtures/incompatible-workflows.ts: the product's workflows, each starting with an unguarded timer.
    const incompatible = await fixtureBundle('incompatible-workflows.ts');
    // Through the very call the replay tests above make...
    const [first] = recorded;
    if (!first) throw new Error('no recorded history');
    const { history } = await readHistory(first.path);
    await expect(
      Worker.runReplayHistory({ workflowBundle: incompatible, sinks }, history, first.entry.workflowId),
    ).rejects.toBeInstanceOf(DeterminismViolationError);
    // ...and for every recorded history.
    const results = await replayAll(incompatible);
    expect(results.size).toBe(recorded.length);
    for (const [name, error] of results) {
      expect(error, `${name} must not replay against an incompatible change`).toBeInstanceOf(
        DeterminismViolationError,
      );
    }
  }, 120_000);

  it('the same change behind patched() replays every recorded history', async () => {
    const results = await replayAll(await fixtureBundle('patched-workflows.ts'));
    expect(results.size).toBe(recorded.length);
    for (const [name, error] of results) expect(error, name).toBeUndefined();
  }, 120_000);
});
