import type { z } from 'zod';
import { DEFAULT_SCOPE } from '../domain/alerts.js';
import type { Findings } from '../domain/findings.js';
import { incidentWorkflowId } from '../domain/incident-key.js';
import type { Runbook } from '../domain/runbook.js';
import { placeholdersIn, renderArgs, type Placeholder } from '../domain/templates.js';
import { gmailActionArgs, gmailProbeArgs } from './gmail.js';
import { httpProbeArgs } from './http.js';
import { kafkaProbeArgs } from './kafka.js';
import { kubernetesActionArgs, kubernetesProbeArgs } from './kubernetes-args.js';
import { notifyActionArgs } from './notify.js';
import { postgresActionArgs, postgresProbeArgs } from './postgres.js';

// The probes and actions a runbook can call, each with the argument schema the activity itself parses with,
// and the check of a runbook's calls against them: unknown names, arguments that the activity would reject.
// test/unit/activity-registry.test.ts proves these tables name exactly the probes and actions the worker serves.

/** Argument schema of every probe the worker registers, by the name runbooks call it. */
export const probeArgSchemas = {
  ...kubernetesProbeArgs,
  ...postgresProbeArgs,
  ...kafkaProbeArgs,
  ...httpProbeArgs,
  ...gmailProbeArgs,
};

/** Argument schema of every action the worker registers, by the name runbooks call it. */
export const actionArgSchemas = {
  ...kubernetesActionArgs,
  ...postgresActionArgs,
  ...gmailActionArgs,
  ...notifyActionArgs,
};

/**
 * What templates render to when a runbook is checked: the default scope (a valid namespace), the incident id
 * an incident of the runbook would get, and for `{{finding:<probe>.<metric>}}` this string, or `1` / `true`
 * where the argument is that one placeholder and expects a number / boolean (a metric keeps its type).
 */
export const CHECK_SCOPE = DEFAULT_SCOPE;
export const CHECK_FINDING = 'finding-value';

/** A problem with a runbook's call of a probe or action; the path is into the runbook, e.g. steps.1.args.replicas. */
export interface RunbookCallProblem {
  path: (string | number)[];
  message: string;
}

type Path = (string | number)[];

const schemaOf = (table: Record<string, z.ZodType>, name: string): z.ZodType | undefined =>
  Object.hasOwn(table, name) ? table[name] : undefined;

/** Every probe and action of the runbook exists, and its arguments, rendered, satisfy its schema. */
export function checkRunbookCalls(runbook: Runbook): RunbookCallProblem[] {
  const problems: RunbookCallProblem[] = [];
  const probeIds = new Set(runbook.probes.map((p) => p.id));
  const incidentId = incidentWorkflowId(runbook.id, CHECK_SCOPE);
  const calls = [
    ...runbook.probes.map((spec, i) => ({
      kind: 'probe' as const,
      name: spec.probe,
      args: spec.args,
      at: ['probes', i],
    })),
    ...runbook.steps.map((spec, i) => ({
      kind: 'action' as const,
      name: spec.action,
      args: spec.args,
      at: ['steps', i],
    })),
  ];
  for (const call of calls) {
    const table = call.kind === 'probe' ? probeArgSchemas : actionArgSchemas;
    const schema = schemaOf(table, call.name);
    if (!schema) {
      problems.push({
        path: [...call.at, call.kind],
        message: unknownName(call.kind, call.name, Object.keys(table)),
      });
    }
    problems.push(
      ...checkArgs(call.name, schema, call.args, [...call.at, 'args'], {
        incidentId,
        probeIds,
        probe: call.kind === 'probe',
      }),
    );
  }
  return problems;
}

interface CallContext {
  incidentId: string;
  probeIds: Set<string>;
  /** Probe arguments cannot use findings: all probes run together before there is any. */
  probe: boolean;
}

function checkArgs(
  activity: string,
  schema: z.ZodType | undefined,
  args: Record<string, unknown>,
  at: Path,
  call: CallContext,
): RunbookCallProblem[] {
  const problems: RunbookCallProblem[] = [];
  const placeholders = placeholdersIn(args);
  /** Argument values whose template cannot render; the schema check leaves them out. */
  const broken: Path[] = [];
  const fail = (path: Path, message: string) => {
    problems.push({ path: [...at, ...path], message });
    if (!broken.some((b) => samePath(b, path))) broken.push(path);
  };
  const values = new Map<string, string | number | boolean>();
  for (const p of placeholders) {
    if (p.kind !== 'finding' || !p.ref) continue;
    const dot = p.ref.indexOf('.');
    const probeId = p.ref.slice(0, dot);
    if (call.probe) {
      fail(
        p.path,
        `${p.raw}: probe arguments cannot use findings (all probes run before any finding exists)`,
      );
    } else if (dot <= 0) {
      fail(p.path, `${p.raw}: a finding is named {{finding:<probe id>.<metric>}}`);
    } else if (!call.probeIds.has(probeId)) {
      fail(p.path, `${p.raw} refers to probe "${probeId}", which this runbook does not have`);
    } else {
      values.set(p.ref, CHECK_FINDING);
    }
  }
  const context = (): { incidentId: string; scope: string; findings: Findings } => {
    const findings: Findings = {};
    for (const [ref, value] of values) {
      const dot = ref.indexOf('.');
      const probe = ref.slice(0, dot);
      findings[probe] ??= { probe, status: 'ok', summary: '', metrics: {}, evidence: [], at: '' };
      findings[probe].metrics[ref.slice(dot + 1)] = value;
    }
    return { incidentId: call.incidentId, scope: CHECK_SCOPE, findings };
  };
  // Each value with a placeholder on its own, so that every template problem is named with its path.
  for (const path of uniquePaths(placeholders)) {
    if (broken.some((b) => samePath(b, path))) continue;
    try {
      renderArgs({ value: valueAt(args, path) }, context());
    } catch (error) {
      fail(path, error instanceof Error ? error.message : String(error));
    }
  }
  if (!schema) return problems;

  for (;;) {
    const ctx = context();
    const rendered = renderArgs(withoutBroken(args, broken), ctx);
    const result = schema.safeParse(rendered);
    if (result.success) return problems;
    // A finding that is a whole value keeps the metric's type: give it the type the argument expects.
    let retyped = false;
    for (const issue of result.error.issues) {
      if (issue.code !== 'invalid_type') continue;
      const expected = String(issue.expected);
      const typed =
        expected === 'number' || expected === 'int' ? 1 : expected === 'boolean' ? true : undefined;
      const p = placeholders.find(
        (x) => x.whole && x.ref && values.get(x.ref) === CHECK_FINDING && samePath(x.path, issue.path),
      );
      if (p?.ref && typed !== undefined) {
        values.set(p.ref, typed);
        retyped = true;
      }
    }
    if (retyped) continue;
    for (const issue of result.error.issues) {
      const path = issue.path.map((k) => (typeof k === 'number' ? k : String(k)));
      if (broken.some((b) => startsWith(path, b))) continue;
      if (issue.code === 'unrecognized_keys') {
        const known = path.length === 0 ? keysOf(schema) : [];
        for (const key of issue.keys) {
          const near = closest(key, known);
          const hint = near
            ? ` (did you mean "${near}"?)`
            : known.length > 0
              ? ` (it takes ${known.join(', ')})`
              : '';
          problems.push({
            path: [...at, ...path, key],
            message: `${activity} has no argument "${key}"${hint}`,
          });
        }
        continue;
      }
      const raw = valueAt(args, path);
      const from =
        typeof raw === 'string' && placeholders.some((p) => samePath(p.path, path))
          ? ` (from ${JSON.stringify(raw)}, checked as ${JSON.stringify(valueAt(rendered, path))})`
          : '';
      problems.push({ path: [...at, ...path], message: `${issue.message}${from}` });
    }
    return problems;
  }
}

function unknownName(kind: 'probe' | 'action', name: string, known: string[]): string {
  const near = closest(name, known);
  return near
    ? `unknown ${kind} "${name}" (did you mean "${near}"?)`
    : `unknown ${kind} "${name}"; the worker's ${kind}s are ${known.join(', ')}`;
}

/** The known name a typo most likely meant: the same but for case, or at most two edits away. */
function closest(name: string, known: string[]): string | undefined {
  let best: { name: string; distance: number } | undefined;
  for (const candidate of known) {
    const distance =
      candidate.toLowerCase() === name.toLowerCase()
        ? 0
        : editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (distance <= 2 && (!best || distance < best.distance)) best = { name: candidate, distance };
  }
  return best?.name;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] ?? 0) + 1,
        (current[j - 1] ?? 0) + 1,
        (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** The keys an object schema takes (a refined object keeps its shape). */
function keysOf(schema: z.ZodType): string[] {
  const shape = (schema as { shape?: unknown }).shape;
  return shape && typeof shape === 'object' ? Object.keys(shape) : [];
}

function uniquePaths(placeholders: Placeholder[]): Path[] {
  const paths: Path[] = [];
  for (const p of placeholders) if (!paths.some((q) => samePath(q, p.path))) paths.push(p.path);
  return paths;
}

const samePath = (a: readonly PropertyKey[], b: readonly PropertyKey[]) =>
  a.length === b.length && a.every((k, i) => String(k) === String(b[i]));

const startsWith = (path: readonly PropertyKey[], prefix: readonly PropertyKey[]) =>
  prefix.length <= path.length && prefix.every((k, i) => String(k) === String(path[i]));

function valueAt(value: unknown, path: readonly PropertyKey[]): unknown {
  let current = value;
  for (const key of path) {
    if (current === null || typeof current !== 'object') return undefined;
    current = (current as Record<PropertyKey, unknown>)[key];
  }
  return current;
}

/** A copy of the arguments with the values that cannot render replaced by an empty string. */
function withoutBroken(args: Record<string, unknown>, broken: Path[]): Record<string, unknown> {
  if (broken.length === 0) return args;
  const copy = structuredClone(args);
  for (const path of broken) {
    const parent = valueAt(copy, path.slice(0, -1));
    const last = path[path.length - 1];
    if (parent && typeof parent === 'object' && last !== undefined) {
      (parent as Record<PropertyKey, unknown>)[last] = '';
    }
  }
  return copy;
}
