import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ApplicationFailure } from '@temporalio/activity';
import { isMap, isSeq, LineCounter, parseDocument, type Node } from 'yaml';
import type { z } from 'zod';
import type { LoadedRunbook } from '../domain/activity-contract.js';
import { contactsSchema, type Contacts } from '../domain/contacts.js';
import { rolesOf, runbookSchema, type Runbook } from '../domain/runbook.js';
import { checkRunbookCalls } from './runbook-calls.js';

export interface FileProblem {
  file: string;
  line?: number;
  path: string;
  message: string;
}

export class InvalidFileError extends Error {
  override name = 'InvalidFileError';
  constructor(readonly problems: FileProblem[]) {
    super(problems.map(formatProblem).join('\n'));
  }
}

export function formatProblem(p: FileProblem): string {
  return `${p.file}${p.line ? `:${p.line}` : ''}: ${p.path || '(file)'}: ${p.message}`;
}

/** The YAML node at a zod issue path, to point the reader at the line. */
function lineOf(
  doc: ReturnType<typeof parseDocument>,
  counter: LineCounter,
  path: PropertyKey[],
): number | undefined {
  let node: unknown = doc.contents;
  let line: number | undefined;
  for (const key of path) {
    if (isMap(node)) node = node.get(String(key), true);
    else if (isSeq(node)) node = node.get(Number(key), true);
    else break;
    const range = (node as Node | undefined)?.range;
    if (range) line = counter.linePos(range[0]).line;
  }
  return line ?? (doc.contents?.range ? counter.linePos(doc.contents.range[0]).line : undefined);
}

/** Runbooks and the contacts file are a few KiB; anything this big is a mistake (and would not fit in a workflow's history). */
export const MAX_FILE_BYTES = 512 * 1024;
/** How many alias expansions yaml allows in one file (its default): enough for sharing, not for a YAML bomb. */
const MAX_ALIAS_COUNT = 100;
/** Nesting deeper than this is no runbook; checked before anything walks the value recursively. */
const MAX_DEPTH = 64;
const utf8 = new TextDecoder('utf-8', { fatal: true });

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error)).split('\n')[0];

/**
 * What a YAML file may hold: JSON's data (maps with string keys, lists, strings, finite numbers, booleans,
 * null), no cycles (an alias inside its own anchor) and no deeper than MAX_DEPTH. YAML 1.1 tags (`!!binary`,
 * `!!timestamp`, `!!set`, `!!omap`) and `.inf`/`.nan` give values that do not survive the trip into a
 * workflow's history unchanged; a cycle would make every later walk of the value recurse forever.
 */
function plainDataProblem(value: unknown): { path: PropertyKey[]; message: string } | undefined {
  const ancestors = new Set<object>();
  const walk = (v: unknown, path: PropertyKey[]): { path: PropertyKey[]; message: string } | undefined => {
    if (v === null || typeof v === 'string' || typeof v === 'boolean') return undefined;
    if (typeof v === 'number') {
      return Number.isFinite(v)
        ? undefined
        : { path, message: `${String(v)} is not a number a runbook can use` };
    }
    if (typeof v !== 'object') return { path, message: `a ${typeof v} value is not allowed here` };
    if (path.length > MAX_DEPTH) return { path, message: `nested deeper than ${MAX_DEPTH} levels` };
    if (ancestors.has(v))
      return { path, message: 'YAML: an alias refers to a node that contains it (a cycle)' };
    const proto = Object.getPrototypeOf(v) as unknown;
    if (!Array.isArray(v) && proto !== Object.prototype && proto !== null) {
      const kind = (v as { constructor?: { name?: string } }).constructor?.name ?? 'special';
      return {
        path,
        message: `a ${kind} value (a YAML 1.1 tag) is not allowed: use plain maps, lists and scalars`,
      };
    }
    ancestors.add(v);
    try {
      const entries: [PropertyKey, unknown][] = Array.isArray(v)
        ? v.map((item, i) => [i, item])
        : Object.entries(v);
      for (const [key, item] of entries) {
        const problem = walk(item, [...path, key]);
        if (problem) return problem;
      }
    } finally {
      ancestors.delete(v);
    }
    return undefined;
  };
  return walk(value, []);
}

/** A further check of a file's parsed value; paths are into the file, as zod's are. */
export type ValueCheck<T> = (value: T) => { path: PropertyKey[]; message: string }[];

/**
 * Reads and validates one YAML file, with the schema and then with `check` (if given); every problem names
 * the file, the line and the path.
 */
export async function parseYamlFile<S extends z.ZodType>(
  file: string,
  schema: S,
  check?: ValueCheck<z.output<S>>,
): Promise<{ value: z.output<S>; text: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new InvalidFileError([{ file, path: '', message: `cannot read the file (${code})` }]);
  }
  if (bytes.length > MAX_FILE_BYTES) {
    throw new InvalidFileError([
      { file, path: '', message: `the file has ${bytes.length} bytes; at most ${MAX_FILE_BYTES} are read` },
    ]);
  }
  let text: string;
  try {
    text = utf8.decode(bytes);
  } catch {
    throw new InvalidFileError([{ file, path: '', message: 'the file is not UTF-8 text' }]);
  }
  const counter = new LineCounter();
  // logLevel error: yaml's warnings (e.g. a map used as a key) would go to the process's warning channel.
  const doc = parseDocument(text, { lineCounter: counter, prettyErrors: true, logLevel: 'error' });
  if (doc.errors.length > 0) {
    throw new InvalidFileError(
      doc.errors.map((e) => ({
        file,
        line: e.linePos?.[0]?.line,
        path: '',
        message: `YAML: ${e.message.split('\n')[0]}`,
      })),
    );
  }
  let data: unknown;
  try {
    // Aliases are expanded here: yaml refuses an expansion past maxAliasCount (a "billion laughs" file).
    data = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (error) {
    throw new InvalidFileError([
      { file, line: lineOf(doc, counter, []), path: '', message: `YAML: ${errorText(error)}` },
    ]);
  }
  const shape = plainDataProblem(data);
  if (shape) {
    throw new InvalidFileError([
      { file, line: lineOf(doc, counter, shape.path), path: shape.path.join('.'), message: shape.message },
    ]);
  }
  const result = schema.safeParse(data);
  if (!result.success) {
    throw new InvalidFileError(
      result.error.issues.map((issue) => ({
        file,
        line: lineOf(doc, counter, issue.path),
        path: issue.path.join('.'),
        message: issue.message,
      })),
    );
  }
  const problems = check?.(result.data) ?? [];
  if (problems.length > 0) {
    throw new InvalidFileError(
      problems.map((p) => ({
        file,
        line: lineOf(doc, counter, p.path),
        path: p.path.map(String).join('.'),
        message: p.message,
      })),
    );
  }
  return { value: result.data, text };
}

/** A runbook file: the runbook schema, then its probes and actions against the worker's (runbook-calls.ts). */
export function parseRunbookFile(file: string): Promise<{ value: Runbook; text: string }> {
  return parseYamlFile(file, runbookSchema, checkRunbookCalls);
}

export interface RunbookFile {
  file: string;
  runbook: Runbook;
  hash: string;
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** Every runbook in a folder, or all the problems found across its files and the contacts file. */
export async function loadRunbookDir(
  dir: string,
  contactsFile: string,
): Promise<{ runbooks: RunbookFile[]; contacts: Contacts }> {
  const problems: FileProblem[] = [];
  let contacts: Contacts | undefined;
  try {
    contacts = (await parseYamlFile(contactsFile, contactsSchema)).value;
  } catch (error) {
    if (!(error instanceof InvalidFileError)) throw error;
    problems.push(...error.problems);
  }
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => /\.ya?ml$/.test(n)).sort();
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new InvalidFileError([
      ...problems,
      { file: dir, path: '', message: `cannot read the runbook folder (${code})` },
    ]);
  }
  const runbooks: RunbookFile[] = [];
  for (const name of names) {
    const file = join(dir, name);
    try {
      const { value, text } = await parseRunbookFile(file);
      if (basename(name).replace(/\.ya?ml$/, '') !== value.id) {
        problems.push({ file, path: 'id', message: `id "${value.id}" differs from the file name` });
      }
      const clash = runbooks.find((r) => r.runbook.id === value.id);
      if (clash)
        problems.push({ file, path: 'id', message: `id "${value.id}" is also used by ${clash.file}` });
      for (const role of contacts ? rolesOf(value) : []) {
        if (!contacts?.roles[role])
          problems.push({ file, path: '', message: `role "${role}" is not defined in ${contactsFile}` });
      }
      runbooks.push({ file, runbook: value, hash: sha256(text) });
    } catch (error) {
      if (!(error instanceof InvalidFileError)) throw error;
      problems.push(...error.problems);
    }
  }
  const fallbacks = runbooks.filter((r) => r.runbook.match.fallback);
  if (runbooks.length > 0 && fallbacks.length !== 1) {
    problems.push({
      file: dir,
      path: '',
      message: `exactly one runbook must be the fallback (match.fallback: true); found ${fallbacks.length}`,
    });
  }
  if (problems.length > 0 || !contacts) throw new InvalidFileError(problems);
  return { runbooks, contacts };
}

export interface RunbookSource {
  runbooksDir: string;
  contactsFile: string;
}

/**
 * The activity that gives a new incident its runbook snapshot (content hash included) and the contacts.
 * It reads only the runbook asked for, so one broken file never stops an unrelated incident.
 */
export function runbookActivities(source: RunbookSource) {
  return {
    async loadRunbook({ runbookId }: { runbookId: string }): Promise<LoadedRunbook> {
      // Bounded: a longer id names no file (ENAMETOOLONG), which is "no such runbook", not a broken one.
      if (!/^[a-z0-9][a-z0-9-]{0,199}$/.test(runbookId)) {
        throw ApplicationFailure.nonRetryable(`"${runbookId}" is not a runbook id`, 'NotFoundError');
      }
      const file = join(source.runbooksDir, `${runbookId}.yaml`);
      try {
        const [{ value: runbook, text }, { value: contacts }] = await Promise.all([
          parseRunbookFile(file),
          parseYamlFile(source.contactsFile, contactsSchema),
        ]);
        const missing = rolesOf(runbook).filter((role) => !contacts.roles[role]);
        if (missing.length > 0) {
          throw new InvalidFileError([
            { file, path: '', message: `roles not in the contacts file: ${missing.join(', ')}` },
          ]);
        }
        return { runbook, runbookHash: sha256(text), contacts };
      } catch (error) {
        if (!(error instanceof InvalidFileError)) throw error;
        const notFound = error.problems.some((p) => p.file === file && p.message.includes('ENOENT'));
        throw ApplicationFailure.nonRetryable(
          notFound ? `no runbook "${runbookId}" in ${source.runbooksDir}` : error.message,
          notFound ? 'NotFoundError' : 'InvalidRunbookError',
        );
      }
    },
  };
}
