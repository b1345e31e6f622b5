import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { format, resolveConfig } from 'prettier';
import { cpus, totalmem } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { benchRoot } from './paths.js';

// What a benchmark reports: its figures, each with the goal beside it, written as JSON under bench/results/
// and gathered into the table of docs/performance.md.

export const figureSchema = z.object({
  /** What was measured, e.g. "receiver rate / raw rate". */
  name: z.string().min(1),
  value: z.number(),
  unit: z.string(),
  /** The goal in words, e.g. ">= 0.8"; empty when the figure is reported without a goal. */
  goal: z.string(),
  /** Whether the goal is met; null for a figure without a goal. */
  met: z.boolean().nullable(),
});
export type Figure = z.infer<typeof figureSchema>;

export const benchResultSchema = z.object({
  benchmark: z.string().regex(/^[a-z0-9-]+$/),
  title: z.string(),
  at: z.iso.datetime(),
  /** The sizes it ran with (N, concurrency, ...). */
  params: z.record(z.string(), z.union([z.number(), z.string(), z.boolean()])),
  figures: z.array(figureSchema).min(1),
  /** What the figures mean, what limited them. */
  notes: z.array(z.string()),
  machine: z.string(),
});
export type BenchResult = z.infer<typeof benchResultSchema>;

export const resultsDir = join(benchRoot, 'results');

export function describeMachine(): string {
  const cpu = cpus();
  return `${cpu.length} × ${cpu[0]?.model ?? 'unknown cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${process.platform}`;
}

/** A figure with a goal of the form "value >= goal" or "value <= goal". */
export function figure(
  name: string,
  value: number,
  unit: string,
  goal?: { atLeast?: number; atMost?: number; text?: string },
): Figure {
  if (!goal) return { name, value, unit, goal: '', met: null };
  const met =
    (goal.atLeast === undefined || value >= goal.atLeast) &&
    (goal.atMost === undefined || value <= goal.atMost);
  const text =
    goal.text ??
    [
      goal.atLeast !== undefined ? `≥ ${goal.atLeast}` : '',
      goal.atMost !== undefined ? `≤ ${goal.atMost}` : '',
    ]
      .filter(Boolean)
      .join(' and ');
  return { name, value, unit, goal: `${text}${unit && !goal.text ? ` ${unit}` : ''}`, met };
}

const round = (v: number) => (Math.abs(v) >= 100 ? Math.round(v) : Math.round(v * 100) / 100);

export function formatResult(result: BenchResult): string {
  const lines = [
    `${result.title} (${Object.entries(result.params)
      .map(([k, v]) => `${k}=${v}`)
      .join(', ')})`,
  ];
  for (const f of result.figures) {
    const verdict = f.met === null ? '' : f.met ? '  met' : '  NOT met';
    lines.push(`  ${f.name}: ${round(f.value)} ${f.unit}${f.goal ? `   goal ${f.goal}${verdict}` : ''}`);
  }
  for (const note of result.notes) lines.push(`  - ${note}`);
  return lines.join('\n');
}

export async function writeResult(result: BenchResult, dir = resultsDir): Promise<string> {
  const parsed = benchResultSchema.parse(result);
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${parsed.benchmark}.json`);
  await writeFile(file, `${JSON.stringify(parsed, null, 2)}\n`);
  return file;
}

export async function readResults(dir = resultsDir): Promise<BenchResult[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  const results: BenchResult[] = [];
  for (const name of names.filter((n) => n.endsWith('.json')).sort()) {
    results.push(benchResultSchema.parse(JSON.parse(await readFile(join(dir, name), 'utf8'))));
  }
  return results;
}

/** The results table of docs/performance.md (between its markers). */
export function renderTable(results: BenchResult[]): string {
  const rows = ['| benchmark | figure | value | goal | met |', '|---|---|---|---|---|'];
  for (const r of results) {
    for (const f of r.figures) {
      const met = f.met === null ? '' : f.met ? 'yes' : '**no**';
      rows.push(`| ${r.benchmark} | ${f.name} | ${round(f.value)} ${f.unit} | ${f.goal} | ${met} |`);
    }
  }
  const runs = results.map(
    (r) =>
      `- \`${r.benchmark}\`: ${r.at}, ${r.machine}; ${Object.entries(r.params)
        .map(([k, v]) => `${k}=${v}`)
        .join(', ')}`,
  );
  const notes = results.flatMap((r) => r.notes.map((n) => `- \`${r.benchmark}\`: ${n}`));
  return [...rows, '', 'Runs:', '', ...runs, '', 'Notes:', '', ...notes].join('\n');
}

export const TABLE_START = '<!-- bench results: written by `npm run bench`, do not edit by hand -->';
export const TABLE_END = '<!-- end of bench results -->';

/** Replaces the table between the markers of docs/performance.md with the results on disk. */
export async function updatePerformanceDoc(file: string, results: BenchResult[]): Promise<void> {
  const doc = await readFile(file, 'utf8');
  const start = doc.indexOf(TABLE_START);
  const end = doc.indexOf(TABLE_END);
  if (start < 0 || end < start) throw new Error(`${file} has no bench results markers`);
  const next = `${doc.slice(0, start + TABLE_START.length)}\n\n${renderTable(results)}\n\n${doc.slice(end)}`;
  // Laid out as the project's format check wants it, so a run leaves the doc ready to commit.
  await writeFile(file, await format(next, { ...(await resolveConfig(file)), filepath: file }));
}
