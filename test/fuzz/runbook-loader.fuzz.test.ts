import { copyFile, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ApplicationFailure } from '@temporalio/common';
import { Document, isMap, parse, stringify, type YAMLMap, type YAMLSeq } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  InvalidFileError,
  MAX_FILE_BYTES,
  loadRunbookDir,
  parseRunbookFile,
  parseYamlFile,
  runbookActivities,
  type FileProblem,
} from '../../src/activities/runbooks.js';
import { lintRunbooks } from '../../src/cli/runbook-lint.js';
import { contactsSchema } from '../../src/domain/contacts.js';
import { contactsFile as projectContacts, runbooksDir as projectRunbooks } from '../helpers/paths.js';

// Generated runbook and contacts files given to every loader entry point: the file parser (parseRunbookFile,
// parseYamlFile), the loadRunbook activity, loadRunbookDir and `incidentctl runbook lint` (lintRunbooks).
// Each file is built either valid or with a defect the generator knows (a field of the wrong type, a
// required field left out, an unknown key, a duplicate id, a condition naming an unknown probe, a huge file,
// odd unicode, YAML aliases, cycles and bombs, non-UTF-8 bytes), so the test can say which files must load
// and which must be refused, and that a refusal names the file and the field.
const RUNS = Number(process.env.FUZZ_RUNS ?? 600);
const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2_147_483_647);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Path = (string | number)[];

/** One generated file and what the loader must make of it. */
interface FileCase {
  what: string;
  content: string | Uint8Array;
  expect: 'valid' | 'invalid' | 'either';
  /** Where the defect is: some problem's path must lead to it or lie inside it ([]: the file as a whole). */
  field?: Path;
  /** For valid files: what the loaded value must show. */
  check?: (value: unknown) => void;
}

let root: string;
let dir: string;
let contactsPath: string;
let runbookPath: string;
let seeds: { name: string; value: Record<string, Json> }[] = [];
let seedContacts: Record<string, Json>;

const CASE_ID = 'fuzz-case';

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'runbook-fuzz-'));
  dir = join(root, 'runbooks');
  await mkdir(dir);
  // The folder the generated runbook joins: the fallback runbook (exactly one is required) and the case.
  await copyFile(join(projectRunbooks, 'triage.yaml'), join(dir, 'triage.yaml'));
  contactsPath = join(root, 'contacts.yaml');
  runbookPath = join(dir, `${CASE_ID}.yaml`);
  seeds = await Promise.all(
    (await readdir(projectRunbooks))
      .filter((n) => n.endsWith('.yaml'))
      .sort()
      .map(async (name) => ({
        name,
        value: parse(await readFile(join(projectRunbooks, name), 'utf8')) as Record<string, Json>,
      })),
  );
  seedContacts = parse(await readFile(projectContacts, 'utf8')) as Record<string, Json>;
});
afterAll(async () => {
  if (root) await rm(root, { recursive: true, force: true });
});

// ---------------------------------------------------------------------------------------------------------
// Values and tree edits
// ---------------------------------------------------------------------------------------------------------

const oddText = fc.oneof(
  fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  fc.string({ unit: 'binary', minLength: 1, maxLength: 40 }),
  fc.constantFrom(
    ' ',
    '\u0000',
    '\u202e',
    '\ufeff',
    '🔥🔥',
    'ǅ',
    '\ud800',
    '\udfff x',
    'a'.repeat(300),
    '${{scope}}',
    '{{finding:x}}',
    '*alias',
    '&anchor',
    '!!binary aGVsbG8=',
    '- item',
    'key: value',
    '"quoted',
    "'",
    '#',
    '---',
    '...',
    '\t\r\n',
    'null',
    'true',
    '0x1F',
    '1e400',
  ),
);
const wellFormed = (s: string) =>
  s.replace(/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, '\ufffd');

/** A value of no type a string, number or boolean field takes (never a number: `eq` takes numbers). */
const notScalar = fc.oneof(
  fc.constant(null),
  fc.constant<Json>([{}]),
  fc.constant<Json>({ 'x-nested': {} }),
  fc.dictionary(fc.string({ maxLength: 5 }), fc.constant<Json>([[1]]), { minKeys: 1, maxKeys: 2 }),
);

const clone = <T>(v: T): T => structuredClone(v);

/** A copy with the value at path replaced (undefined: removed); missing maps on the way are created. */
function setAt(root: Json, path: Path, value: Json | undefined): Json {
  const copy = clone(root);
  let parent = copy as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) {
    const next = parent[key];
    if (next === null || typeof next !== 'object') parent[key] = {};
    parent = parent[key] as Record<string | number, Json>;
  }
  const key = path[path.length - 1] as string | number;
  if (value === undefined) delete parent[key];
  else parent[key] = value;
  return copy;
}

/** Every node of a tree with its path; `skip` leaves out whole subtrees (free-form args). */
function nodesOf(value: Json, skip: (path: Path) => boolean, path: Path = []): { path: Path; value: Json }[] {
  if (skip(path)) return [];
  const out = [{ path, value }];
  if (Array.isArray(value)) value.forEach((v, i) => out.push(...nodesOf(v, skip, [...path, i])));
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) out.push(...nodesOf(v, skip, [...path, k]));
  }
  return out;
}

const underArgs = (path: Path) => path.includes('args');
const toYaml = (value: unknown) => stringify(value, { lineWidth: 0 });

// ---------------------------------------------------------------------------------------------------------
// Runbook files
// ---------------------------------------------------------------------------------------------------------

/** A seed runbook made into a valid file named fuzz-case.yaml (its own id, not the fallback). */
function asCase(value: Record<string, Json>): Record<string, Json> {
  const v = clone(value);
  v.id = CASE_ID;
  const match = (v.match ?? {}) as Record<string, Json>;
  match.fallback = false;
  if (!Array.isArray(match.alertnames) || match.alertnames.length === 0) match.alertnames = ['FTEFuzzCase'];
  v.match = match;
  return v;
}

/** Required keys of each kind of object in a runbook, by the path of the object. */
function requiredKeys(path: Path, node: Json): string[] {
  const kind = path.filter((k) => typeof k === 'string').join('.');
  if (path.length === 0) return ['id', 'title', 'match', 'severity', 'team', 'escalation'];
  if (kind === 'severity') return ['default'];
  if (kind === 'probes') return ['id', 'probe'];
  if (kind === 'steps') {
    const high = (node as Record<string, Json>).risk === 'high';
    return ['id', 'title', 'action', 'risk', ...(high ? ['approvers'] : [])];
  }
  if (kind === 'tasks') return ['id', 'title', 'owner'];
  if (kind === 'steps.verify') return ['probes'];
  if (kind === 'match.labels') return ['label', 'value'];
  if (kind === 'severity.raise') return ['when', 'to'];
  return [];
}

const isObject = (v: Json | undefined): v is Record<string, Json> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The runbook's mutations that certainly make it invalid, each with where the problem must be reported. */
/** A file with an unknown key (x-...) added to one of its objects: every schema is strict. */
function unknownKey(
  base: Record<string, Json>,
  objects: { path: Path; value: Json }[],
): fc.Arbitrary<FileCase> {
  return fc
    .tuple(
      fc.constantFrom(...objects),
      fc.string({ maxLength: 12 }).map((s) => `x-${s}`),
      fc.jsonValue({ maxDepth: 2 }),
    )
    .map(([n, key, value]) => ({
      what: `unknown key ${JSON.stringify(key)} in ${n.path.join('.') || '(file)'}`,
      content: toYaml(setAt(base, [...n.path, key], value as Json)),
      expect: 'invalid' as const,
      field: n.path,
    }));
}

function runbookDefects(base: Record<string, Json>): fc.Arbitrary<FileCase>[] {
  const nodes = nodesOf(base, underArgs);
  const out: fc.Arbitrary<FileCase>[] = [];
  const leaves = nodes.filter((n) => n.path.length > 0 && (n.value === null || typeof n.value !== 'object'));
  const typed = leaves.filter((n) => n.path[n.path.length - 1] !== 'eq');
  if (typed.length > 0) {
    out.push(
      fc.tuple(fc.constantFrom(...typed), notScalar).map(([n, value]) => ({
        what: `${n.path.join('.')} of the wrong type`,
        content: toYaml(setAt(base, n.path, value)),
        expect: 'invalid' as const,
        field: n.path,
      })),
    );
    const numbersOrFlags = typed.filter((n) => typeof n.value !== 'string');
    if (numbersOrFlags.length > 0) {
      out.push(
        fc.tuple(fc.constantFrom(...numbersOrFlags), oddText).map(([n, value]) => ({
          what: `${n.path.join('.')} given a string`,
          content: toYaml(setAt(base, n.path, value)),
          expect: 'invalid' as const,
          field: n.path,
        })),
      );
    }
  }
  const missing = nodes.flatMap((n) =>
    isObject(n.value)
      ? requiredKeys(n.path, n.value)
          .filter((k) => k in (n.value as object))
          .map((k) => [...n.path, k])
      : [],
  );
  if (missing.length > 0) {
    out.push(
      fc.constantFrom(...missing).map((path) => ({
        what: `${path.join('.')} left out`,
        content: toYaml(setAt(base, path, undefined)),
        expect: 'invalid' as const,
        field: path,
      })),
    );
  }
  const objects = nodes.filter((n) => isObject(n.value));
  out.push(unknownKey(base, objects));
  for (const list of ['probes', 'steps', 'tasks'] as const) {
    const items = base[list];
    if (Array.isArray(items) && items.length >= 2) {
      out.push(
        fc
          .tuple(fc.nat(items.length - 1), fc.nat(items.length - 1))
          .filter(([i, j]) => i !== j)
          .map(([i, j]) => ({
            what: `duplicate ${list} id`,
            content: toYaml(setAt(base, [list, j, 'id'], (items[i] as Record<string, Json>).id ?? null)),
            expect: 'invalid' as const,
            // The later of the two is the duplicate.
            field: [list, Math.max(i, j), 'id'],
          })),
      );
    }
  }
  const probeRefs = nodes.filter(
    (n) =>
      (n.path[n.path.length - 1] === 'finding' && n.path.includes('when')) ||
      (n.path.includes('verify') && n.path[n.path.length - 2] === 'probes'),
  );
  if (probeRefs.length > 0) {
    out.push(
      fc
        .tuple(fc.constantFrom(...probeRefs), fc.stringMatching(/^[a-z][a-z0-9-]{0,12}$/))
        .map(([n, name]) => ({
          what: `${n.path.join('.')} names an unknown probe`,
          content: toYaml(setAt(base, n.path, `nope-${name}`)),
          expect: 'invalid' as const,
          field: n.path,
        })),
    );
  }
  return out;
}

/** Files that hold a valid runbook, written in other ways: odd unicode text, JSON, CRLF, a BOM, comments. */
function validRunbooks(base: Record<string, Json>): fc.Arbitrary<FileCase> {
  return fc
    .record({
      title: fc.option(oddText.filter((t) => t.length > 0)),
      summary: fc.option(oddText),
      form: fc.constantFrom('yaml', 'json', 'crlf', 'bom', 'comments', 'flow'),
      stepTitle: fc.option(oddText.filter((t) => t.length > 0)),
    })
    .map(({ title, summary, form, stepTitle }) => {
      const v = asCase(base);
      if (title !== null) v.title = title;
      if (summary !== null) v.summary = summary;
      const steps = v.steps;
      if (stepTitle !== null && Array.isArray(steps) && isObject(steps[0])) steps[0].title = stepTitle;
      let text =
        form === 'json'
          ? JSON.stringify(v, null, 1)
          : form === 'flow'
            ? stringify(v, { collectionStyle: 'flow', lineWidth: 0 })
            : toYaml(v);
      if (form === 'crlf') text = text.replace(/\n/g, '\r\n');
      if (form === 'bom') text = `\ufeff${text}`;
      // Comment lines before top-level keys (never inside a block scalar, which is indented).
      if (form === 'comments') text = `# generated\n${text.replace(/\n(?=[a-z])/g, '\n# a comment\n')}`;
      return {
        what: `a valid runbook (${form})`,
        content: text,
        expect: 'valid' as const,
        check: (loaded: unknown) => {
          const rb = loaded as { id: string; title: string; summary?: string; steps: { title: string }[] };
          expect(rb.id).toBe(CASE_ID);
          expect(wellFormed(rb.title)).toBe(wellFormed(v.title as string));
          if (typeof v.summary === 'string') expect(wellFormed(rb.summary ?? '')).toBe(wellFormed(v.summary));
          if (Array.isArray(steps) && isObject(steps[0]))
            expect(wellFormed(rb.steps[0]?.title ?? '')).toBe(wellFormed(steps[0].title as string));
        },
      };
    });
}

/** A YAML text with a node marked by a placeholder string replaced by raw YAML (tags, aliases). */
function withRaw(value: Json, path: Path, raw: string, prefix = ''): string {
  const marker = 'RAW_PLACEHOLDER_7f3a';
  return prefix + toYaml(setAt(value, path, marker)).replace(marker, raw);
}

/** Files the YAML layer itself must refuse, or that are no runbook at all. */
function yamlDefects(base: Record<string, Json>): fc.Arbitrary<FileCase>[] {
  const valid = asCase(base);
  const text = toYaml(valid);
  return [
    // A "billion laughs" file of modest size: each level repeats the one below `width` times.
    fc
      .record({ width: fc.integer({ min: 2, max: 10 }), levels: fc.integer({ min: 2, max: 9 }) })
      .filter(({ width, levels }) => width ** levels <= 2_000_000)
      .map(({ width, levels }) => {
        const lines = [`x-bomb-0: &b0 [${Array(width).fill('"lol"').join(', ')}]`];
        for (let l = 1; l < levels; l++) {
          lines.push(
            `x-bomb-${l}: &b${l} [${Array(width)
              .fill(`*b${l - 1}`)
              .join(', ')}]`,
          );
        }
        return {
          what: `an alias bomb ${width}^${levels}`,
          content: `${text}${lines.join('\n')}\n`,
          expect: 'invalid' as const,
        };
      }),
    // An alias inside its own anchor: a cycle (in free-form args, or in place of a field).
    fc.constantFrom('args', 'summary', 'top').map((where) => {
      const doc = new Document(valid);
      if (where === 'args') {
        if (!doc.hasIn(['probes', 0, 'args'])) doc.setIn(['probes', 0, 'args'], doc.createNode({}));
        const args = doc.getIn(['probes', 0, 'args'], true) as YAMLMap;
        args.set('loop', doc.createAlias(args, 'loop'));
      } else if (where === 'summary') {
        const node = doc.createNode(['x']) as YAMLSeq;
        doc.set('summary', node);
        node.add(doc.createAlias(node, 's'));
      } else if (isMap(doc.contents)) {
        doc.contents.set('x-self', doc.createAlias(doc.contents, 'self'));
      }
      return {
        what: `a cyclic alias (${where})`,
        content: doc.toString({ lineWidth: 0 }),
        expect: 'invalid' as const,
        field: where === 'args' ? ['probes', 0, 'args'] : where === 'summary' ? ['summary'] : ['x-self'],
      };
    }),
    fc.integer({ min: 1, max: 400 }).map((depth) => ({
      what: `args nested ${depth} deep`,
      content: withRaw(valid, ['probes', 0, 'args', 'deep'], `${'['.repeat(depth)}${']'.repeat(depth)}`),
      expect: 'invalid' as const,
      field: ['probes', 0, 'args'],
    })),
    fc
      .constantFrom('*undefined', '*', '&a', '!!binary aGVsbG8=', '!!timestamp 2001-12-14', '!!set {a, b}')
      .map((raw) => ({
        what: `a title of ${raw} in YAML 1.1`,
        content: withRaw(valid, ['title'], raw, '%YAML 1.1\n---\n'),
        expect: 'invalid' as const,
        field: raw.startsWith('!!') ? ['title'] : raw.startsWith('*') ? [] : undefined,
      })),
    fc.constantFrom('.inf', '-.inf', '.nan', '.NaN').map((raw) => ({
      what: `${raw} in args`,
      content: withRaw(valid, ['probes', 0, 'args', 'tail'], raw),
      expect: 'invalid' as const,
      field: ['probes', 0, 'args'],
    })),
    // Bytes that are not UTF-8, anywhere in an otherwise valid file.
    fc
      .tuple(
        fc.nat(),
        fc.constantFrom(
          [0xff],
          [0xfe, 0xff],
          [0xc3, 0x28],
          [0xed, 0xa0, 0x80],
          [0xe2, 0x82],
          [0xf8, 0x88, 0x80],
        ),
      )
      .map(([at, bad]) => {
        const bytes = Buffer.from(text, 'utf8');
        const i = at % (bytes.length + 1);
        return {
          what: `bytes ${bad.map((b) => b.toString(16)).join(' ')} at ${i}`,
          content: Buffer.concat([bytes.subarray(0, i), Buffer.from(bad), bytes.subarray(i)]),
          expect: 'invalid' as const,
          field: [],
        };
      }),
    fc.constant({
      what: 'two documents',
      content: `${text}---\n${text}`,
      expect: 'invalid' as const,
      field: [],
    }),
    // Huge: past the loader's size limit (refused as a whole), and a big but allowed summary (loads).
    fc.integer({ min: MAX_FILE_BYTES + 1, max: MAX_FILE_BYTES * 3 }).map((n) => ({
      what: `a ${n}-character summary`,
      content: toYaml({ ...valid, summary: 'x'.repeat(n) }),
      expect: 'invalid' as const,
      field: [],
    })),
    fc.integer({ min: 10_000, max: MAX_FILE_BYTES - 20_000 }).map((n) => ({
      what: `a ${n}-character summary`,
      content: toYaml({ ...valid, summary: '🔥'.repeat(Math.floor(n / 4)) }),
      expect: 'valid' as const,
    })),
    fc.nat().map((at) => ({
      what: `cut at ${at % text.length}`,
      content: text.slice(0, at % text.length),
      expect: 'either' as const,
    })),
    fc.jsonValue({ maxDepth: 4 }).map((v) => ({
      what: 'a random YAML document',
      content: toYaml(v),
      expect: 'invalid' as const,
    })),
    fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 300 })).map((s) => ({
      what: 'random text',
      content: s,
      expect: 'invalid' as const,
    })),
    fc.uint8Array({ maxLength: 300 }).map((bytes) => ({
      what: 'random bytes',
      content: bytes,
      expect: 'either' as const,
    })),
  ];
}

const runbookCase = (): fc.Arbitrary<FileCase> =>
  fc.constantFrom(...seeds).chain(({ value }) => {
    const base = asCase(value);
    return fc.oneof(
      { arbitrary: validRunbooks(value), weight: 3 },
      { arbitrary: fc.oneof(...runbookDefects(base)), weight: 6 },
      { arbitrary: fc.oneof(...yamlDefects(value)), weight: 4 },
    );
  });

// ---------------------------------------------------------------------------------------------------------
// Contacts files
// ---------------------------------------------------------------------------------------------------------

/** The project's contacts plus Slack and webhook targets, so every kind of target is mutated too. */
function contactsBase(): Record<string, Json> {
  const c = clone(seedContacts);
  const people = c.people as Record<string, Json>[];
  if (people[0]) {
    people[0].targets = [
      { type: 'slack', webhookUrlEnv: 'SLACK_ONCALL_WEBHOOK' },
      { type: 'webhook', url: 'https://pager.example.test/hooks/fte', tokenEnv: 'PAGER_TOKEN' },
      { type: 'log' },
    ];
  }
  return c;
}

function contactsDefects(base: Record<string, Json>): fc.Arbitrary<FileCase>[] {
  const nodes = nodesOf(base, () => false);
  const leaves = nodes.filter((n) => n.path.length > 0 && (n.value === null || typeof n.value !== 'object'));
  const people = base.people as Record<string, Json>[];
  const roles = base.roles as Record<string, Record<string, Json>>;
  const roleNames = Object.keys(roles);
  const required: Path[] = [
    ['roles'],
    ['people'],
    ...people.map((_, i) => ['people', i, 'name']),
    ...roleNames.map((r) => ['roles', r, 'people']),
    ...nodes
      .filter((n) => n.path.includes('targets') && isObject(n.value))
      .flatMap((n) => {
        const t = n.value as Record<string, Json>;
        return [[...n.path, 'type'], ...(t.type === 'slack' ? [[...n.path, 'webhookUrlEnv']] : [])];
      }),
  ];
  // Objects with a fixed set of keys (the roles map itself takes any role name).
  const objects = nodes.filter((n) => isObject(n.value) && n.path.join('.') !== 'roles');
  return [
    fc.tuple(fc.constantFrom(...leaves), notScalar).map(([n, value]) => ({
      what: `${n.path.join('.')} of the wrong type`,
      content: toYaml(setAt(base, n.path, value)),
      expect: 'invalid' as const,
      field: n.path,
    })),
    fc.constantFrom(...required).map((path) => ({
      what: `${path.join('.')} left out`,
      content: toYaml(setAt(base, path, undefined)),
      expect: 'invalid' as const,
      field: path,
    })),
    unknownKey(base, objects),
    fc
      .tuple(fc.nat(people.length - 1), fc.nat(people.length - 1))
      .filter(([i, j]) => i !== j)
      .map(([i, j]) => ({
        what: 'a person listed twice',
        content: toYaml(setAt(base, ['people', j, 'name'], people[i]?.name ?? null)),
        expect: 'invalid' as const,
        field: ['people', Math.max(i, j), 'name'],
      })),
    fc
      .tuple(fc.constantFrom(...roleNames), fc.stringMatching(/^[a-z][a-z0-9]{0,8}$/))
      .map(([role, name]) => ({
        what: `role ${role} names an unknown person`,
        content: toYaml(setAt(base, ['roles', role, 'people', 0], `nobody-${name}`)),
        expect: 'invalid' as const,
        field: ['roles', role, 'people', 0],
      })),
    fc.constantFrom<Path>(['roles', roleNames[0] ?? 'on-call', 'people'], ['people']).map((path) => ({
      what: `${path.join('.')} empty`,
      content: toYaml(setAt(base, path, [])),
      expect: 'invalid' as const,
      field: path,
    })),
    fc
      .tuple(
        fc.constantFrom<Path>(
          ['people', 0, 'targets', 0, 'webhookUrlEnv'],
          ['people', 0, 'targets', 1, 'url'],
        ),
        fc.oneof(oddText, fc.constantFrom('lower_case', 'https://hooks.slack.com/services/T0/B0/x', '')),
      )
      .filter(([path, v]) => !(path.includes('url') && URL.canParse(v)))
      .map(([path, value]) => ({
        what: `${path.join('.')} = ${JSON.stringify(value).slice(0, 40)}`,
        content: toYaml(setAt(base, path, value)),
        expect: 'invalid' as const,
        field: path,
      })),
    fc.tuple(fc.option(oddText), fc.option(oddText)).map(([displayName, description]) => {
      let v: Json = base;
      if (displayName !== null) v = setAt(v, ['people', 1, 'displayName'], displayName);
      if (description !== null)
        v = setAt(v, ['roles', roleNames[0] ?? 'on-call', 'description'], description);
      return {
        what: 'valid contacts with odd text',
        content: toYaml(v),
        expect: 'valid' as const,
        check: (loaded: unknown) => {
          const c = loaded as { people: { displayName?: string }[] };
          if (displayName !== null)
            expect(wellFormed(c.people[1]?.displayName ?? '')).toBe(wellFormed(displayName));
        },
      };
    }),
    fc.nat().map((at) => ({
      what: 'bytes that are not UTF-8',
      content: (() => {
        const bytes = Buffer.from(toYaml(base));
        const i = at % (bytes.length + 1);
        return Buffer.concat([bytes.subarray(0, i), Buffer.from([0xc0, 0xaf]), bytes.subarray(i)]);
      })(),
      expect: 'invalid' as const,
      field: [],
    })),
    fc.jsonValue({ maxDepth: 3 }).map((v) => ({
      what: 'a random YAML document',
      content: toYaml(v),
      expect: 'invalid' as const,
    })),
  ];
}

const contactsCase = (): fc.Arbitrary<FileCase> => {
  const base = contactsBase();
  return fc.oneof(
    {
      arbitrary: fc.constant<FileCase>({ what: 'valid contacts', content: toYaml(base), expect: 'valid' }),
      weight: 1,
    },
    { arbitrary: fc.oneof(...contactsDefects(base)), weight: 4 },
  );
};

// ---------------------------------------------------------------------------------------------------------
// What the loader must say
// ---------------------------------------------------------------------------------------------------------

const samePrefix = (a: Path, b: Path) => a.every((k, i) => String(k) === String(b[i]));
const pathOf = (p: FileProblem): Path => (p.path === '' ? [] : p.path.split('.'));

/** A refusal names the file, says something, and points at the field (or around it) where there is one. */
function expectRefusal(error: unknown, file: string, c: FileCase): void {
  if (!(error instanceof InvalidFileError)) {
    throw new Error(`${c.what}: refused with ${String(error)} instead of an InvalidFileError`, {
      cause: error,
    });
  }
  expect(error.problems.length).toBeGreaterThan(0);
  expect(error.message).toContain(file);
  for (const p of error.problems) {
    expect(p.file).toBe(file);
    expect(p.message.trim().length).toBeGreaterThan(0);
    expect(p.message).not.toMatch(/\n\s+at .+:\d+:\d+/);
  }
  if (c.field) {
    const field = c.field;
    // [] is the file as a whole (a problem without a field); otherwise a problem is at the field, inside it,
    // or at an object around it (a union such as a condition, or the object an unknown key is in).
    const related = error.problems.some((p) => {
      const at = pathOf(p);
      return field.length === 0
        ? at.length === 0
        : at.length > 0 && (samePrefix(at, field) || samePrefix(field, at));
    });
    if (!related) {
      throw new Error(
        `${c.what}: no problem names ${field.join('.') || '(the file)'}: ${error.message.slice(0, 500)}`,
      );
    }
  }
}

async function outcome<T>(work: Promise<T>): Promise<{ ok: true; value: T } | { ok: false; error: unknown }> {
  return work.then(
    (value) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
}

function judge(
  result: { ok: true; value: unknown } | { ok: false; error: unknown },
  file: string,
  c: FileCase,
): void {
  if (result.ok) {
    if (c.expect === 'invalid') throw new Error(`${c.what}: loaded, but it is not a valid file`);
    c.check?.(result.value);
  } else {
    if (c.expect === 'valid') {
      throw new Error(
        `${c.what}: refused a valid file: ${String((result.error as Error).message).slice(0, 500)}`,
      );
    }
    expectRefusal(result.error, file, c);
  }
}

const ms = () => performance.now();
const SLOW_MS = 5_000;

describe('the runbook loader under generated files', () => {
  const counts: Record<string, number> = {};

  it(`loads valid files and refuses ${RUNS} generated ones clearly, naming the file and field`, async () => {
    const activities = runbookActivities({ runbooksDir: dir, contactsFile: contactsPath });
    const printed: string[] = [];
    const out = {
      log: (...a: unknown[]) => printed.push(a.map(String).join(' ')),
      error: (...a: unknown[]) => printed.push(a.map(String).join(' ')),
    } as unknown as Console;
    const pair = fc
      .oneof(
        {
          arbitrary: fc.record({
            runbook: runbookCase(),
            contacts: fc.constant<FileCase | undefined>(undefined),
          }),
          weight: 3,
        },
        {
          arbitrary: fc.record({
            runbook: fc.constant<FileCase | undefined>(undefined),
            contacts: contactsCase(),
          }),
          weight: 2,
        },
        { arbitrary: fc.record({ runbook: runbookCase(), contacts: contactsCase() }), weight: 1 },
      )
      // Counterexamples print as what was generated and the start of each file, not the whole files.
      .map((p) =>
        Object.assign(p, {
          [fc.toStringMethod]: () =>
            [p.runbook, p.contacts]
              .filter((c): c is FileCase => c !== undefined)
              .map(
                (c) =>
                  `${c.what} (${c.expect}): ${JSON.stringify(Buffer.from(c.content).toString('utf8').slice(0, 300))}`,
              )
              .join(' / '),
        }),
      );
    const validContacts: FileCase = {
      what: 'valid contacts',
      content: toYaml(contactsBase()),
      expect: 'valid',
    };
    await fc.assert(
      fc.asyncProperty(pair, fc.context(), async (generated, ctx) => {
        const rb: FileCase = generated.runbook ?? {
          what: 'a valid runbook',
          content: toYaml(asCase(seeds[0]?.value ?? {})),
          expect: 'valid',
        };
        const contacts = generated.contacts ?? validContacts;
        for (const key of [`runbook ${rb.expect}`, `contacts ${contacts.expect}`])
          counts[key] = (counts[key] ?? 0) + 1;
        ctx.log(`${rb.what} / ${contacts.what}`);
        await writeFile(runbookPath, rb.content);
        await writeFile(contactsPath, contacts.content);
        const started = ms();

        // The file parsers.
        judge(await outcome(parseRunbookFile(runbookPath).then((r) => r.value)), runbookPath, rb);
        judge(
          await outcome(parseYamlFile(contactsPath, contactsSchema).then((r) => r.value)),
          contactsPath,
          contacts,
        );

        const bothValid = rb.expect === 'valid' && contacts.expect === 'valid';
        const someInvalid = rb.expect === 'invalid' || contacts.expect === 'invalid';
        const invalidFiles = [
          ...(rb.expect !== 'valid' ? [runbookPath] : []),
          ...(contacts.expect !== 'valid' ? [contactsPath] : []),
        ];

        // The activity a new incident calls: a snapshot that survives the trip into history, or a
        // non-retryable failure that names the file.
        const loaded = await outcome(activities.loadRunbook({ runbookId: CASE_ID }));
        if (loaded.ok) {
          if (someInvalid) throw new Error(`loadRunbook loaded ${rb.what} / ${contacts.what}`);
          expect(JSON.parse(JSON.stringify(loaded.value))).toEqual(loaded.value);
          rb.check?.(loaded.value.runbook);
        } else {
          if (bothValid) throw new Error(`loadRunbook refused valid files: ${String(loaded.error)}`);
          const e = loaded.error;
          if (!(e instanceof ApplicationFailure))
            throw new Error(`loadRunbook threw ${String(e)}`, { cause: e });
          expect(e.nonRetryable).toBe(true);
          expect(e.type).toBe('InvalidRunbookError');
          expect(invalidFiles.some((f) => e.message.includes(f))).toBe(true);
        }

        // The whole folder (the receiver's and `incidentctl runbook lint`'s way in).
        const all = await outcome(loadRunbookDir(dir, contactsPath));
        if (all.ok) {
          if (someInvalid) throw new Error(`loadRunbookDir loaded ${rb.what} / ${contacts.what}`);
          expect(all.value.runbooks.map((r) => r.runbook.id)).toContain(CASE_ID);
        } else {
          if (bothValid) throw new Error(`loadRunbookDir refused valid files: ${String(all.error)}`);
          if (!(all.error instanceof InvalidFileError)) throw all.error;
          const named = new Set(all.error.problems.map((p) => p.file));
          if (rb.expect === 'invalid') expect(named).toContain(runbookPath);
          if (contacts.expect === 'invalid') expect(named).toContain(contactsPath);
        }
        printed.length = 0;
        const code = await lintRunbooks(dir, contactsPath, out);
        expect(code).toBe(bothValid ? 0 : someInvalid ? 1 : code);
        if (code === 1) expect(invalidFiles.some((f) => printed.join('\n').includes(f))).toBe(true);

        const took = ms() - started;
        if (took > SLOW_MS) throw new Error(`${rb.what} / ${contacts.what} took ${Math.round(took)} ms`);
      }),
      { numRuns: RUNS, seed },
    );
    console.log(`runbook loader fuzz (seed ${seed}):`, counts);
  }, 300_000);

  it('refuses runbook ids that are no file of the folder, without reading outside it', async () => {
    const activities = runbookActivities({ runbooksDir: dir, contactsFile: projectContacts });
    await writeFile(runbookPath, toYaml(asCase(seeds[0]?.value ?? {})));
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          oddText,
          fc.constantFrom(
            '../contacts',
            '..',
            '.',
            '',
            '/etc/passwd',
            'triage/../triage',
            'TRIAGE',
            'triage.yaml',
          ),
          fc
            .stringMatching(/^[a-z0-9][a-z0-9-]{0,30}$/)
            .filter((id) => !seeds.some((s) => s.value.id === id)),
        ),
        async (runbookId) => {
          fc.pre(runbookId !== CASE_ID);
          const result = await outcome(activities.loadRunbook({ runbookId }));
          expect(result.ok).toBe(false);
          const e = (result as { error: unknown }).error;
          expect(e).toBeInstanceOf(ApplicationFailure);
          expect((e as ApplicationFailure).type).toBe('NotFoundError');
          expect((e as ApplicationFailure).nonRetryable).toBe(true);
          expect((e as ApplicationFailure).message.length).toBeGreaterThan(0);
        },
      ),
      { numRuns: 300, seed },
    );
    // And every runbook of the project loads through the same activity.
    const project = runbookActivities({ runbooksDir: projectRunbooks, contactsFile: projectContacts });
    for (const { value } of seeds) {
      await expect(project.loadRunbook({ runbookId: value.id as string })).resolves.toMatchObject({
        runbook: { id: value.id },
      });
    }
  });
});
