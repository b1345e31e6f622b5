// The layout of the recorded histories (README.md): one folder per release, each with its history files
// and a manifest, index.json, that says what every file is. record.ts writes a release; the replay test
// (test/workflows/replay.test.ts) finds every manifest under test/histories/ and replays every history.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';

/** test/histories/, with a trailing slash. */
export const historiesDir = fileURLToPath(new URL('.', import.meta.url));
export const MANIFEST_FILE = 'index.json';

/** A release folder's name: a date, optionally with a suffix for a second release that day (2026-11-30b). */
export const releaseNamePattern = /^\d{4}-\d{2}-\d{2}[a-z0-9.-]*$/;

const historyEntrySchema = z.strictObject({
  /** The history file, beside the manifest. */
  file: z.string().regex(/^[a-z0-9][a-z0-9.-]*\.json$/),
  /** The workflow type of its first event. */
  workflowType: z.string().min(1),
  /** The workflow id it ran under: replay must use it (child workflow ids are derived from it). */
  workflowId: z.string().min(1),
  /** The run it is, when known (a workflow id has several runs after continue-as-new or cron). */
  runId: z.string().min(1).optional(),
  /** The scenario that produced it (record.ts), when recorded by it. */
  scenario: z.string().min(1).optional(),
  /** What the history covers: the paths through the workflow code that replay exercises. */
  covers: z.string().min(1),
  /** Events in the history and the file's size and sha256: the file is never edited after it is recorded. */
  events: z.number().int().positive(),
  bytes: z.number().int().positive(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type HistoryEntry = z.infer<typeof historyEntrySchema>;

const manifestSchema = z.strictObject({
  /** The folder's name. */
  release: z.string().regex(releaseNamePattern),
  /** The code the histories were recorded from (a commit, and whether the working tree differed from it). */
  recordedFrom: z.string().min(1),
  /** When record.ts wrote the folder (absent for histories recorded before it existed). */
  recordedAt: z.string().optional(),
  note: z.string().optional(),
  histories: z.array(historyEntrySchema).min(1),
});
export type ReleaseManifest = z.infer<typeof manifestSchema>;

export interface Release {
  /** Absolute path of the release folder, with a trailing slash. */
  dir: string;
  /** The folder relative to test/histories/, e.g. `2026-11-30`. */
  name: string;
  manifest: ReleaseManifest;
}

/** sha256 of a file's bytes, hex. */
export function sha256(bytes: Buffer | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Every release under `root` (any depth): each folder that holds an index.json. Sorted by name. */
export async function findReleases(root = historiesDir): Promise<Release[]> {
  const releases: Release[] = [];
  async function walk(dir: string): Promise<void> {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (entry.name === 'node_modules' || entry.name.startsWith('.')) continue;
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name === MANIFEST_FILE) {
        const raw: unknown = JSON.parse(await readFile(path, 'utf8'));
        const parsed = manifestSchema.safeParse(raw);
        if (!parsed.success) {
          const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
          throw new Error(`${relative(root, path)} is not a valid manifest: ${problems}`);
        }
        releases.push({ dir: `${dir}/`, name: relative(root, dir), manifest: parsed.data });
      }
    }
  }
  await walk(root.replace(/\/$/, ''));
  return releases.sort((a, b) => a.name.localeCompare(b.name));
}

/** The part of a recorded history the replay test looks at before replaying it. */
export interface HistoryJson {
  events: {
    eventType?: string;
    workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } };
  }[];
}

/** The event types that close a run: a recorded history ends with one of them. */
export const CLOSING_EVENTS = [
  'EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED',
  'EVENT_TYPE_WORKFLOW_EXECUTION_FAILED',
  'EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED',
  'EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED',
  'EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT',
  'EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW',
];
