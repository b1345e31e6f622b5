import type { Findings } from './findings.js';

export interface TemplateContext {
  incidentId: string;
  scope: string;
  findings: Findings;
}

const placeholder = /\{\{\s*([a-zA-Z]+)(?::([^}\s]+))?\s*\}\}/g;
const wholePlaceholder = /^\{\{\s*([a-zA-Z]+)(?::([^}\s]+))?\s*\}\}$/;

/**
 * Fills `{{scope}}`, `{{incidentId}}` and `{{finding:<probe>.<metric>}}` in runbook arguments. A string that is
 * one placeholder keeps the value's type; an unknown placeholder or a missing metric is an error, so an
 * action never runs with a half-filled argument.
 */
export function renderArgs(args: Record<string, unknown>, ctx: TemplateContext): Record<string, unknown> {
  const lookup = (kind: string, ref: string | undefined, raw: string): unknown => {
    if (kind === 'scope') return ctx.scope;
    if (kind === 'incidentId') return ctx.incidentId;
    if (kind === 'finding' && ref) {
      const dot = ref.indexOf('.');
      const probe = dot > 0 ? ref.slice(0, dot) : ref;
      const finding = ctx.findings[probe];
      const value = dot > 0 ? finding?.metrics[ref.slice(dot + 1)] : undefined;
      if (value === undefined)
        throw new Error(`argument ${raw} has no value: ${whyMissing(probe, ref, finding)}`);
      return value;
    }
    throw new Error(`unknown placeholder ${raw}`);
  };
  const render = (value: unknown): unknown => {
    if (typeof value === 'string') {
      const whole = wholePlaceholder.exec(value);
      if (whole) return lookup(whole[1] as string, whole[2], value);
      return value.replace(placeholder, (raw, kind: string, ref?: string) => String(lookup(kind, ref, raw)));
    }
    if (Array.isArray(value)) return value.map(render);
    if (value && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, render(v)]));
    }
    return value;
  };
  return render(args) as Record<string, unknown>;
}

/** Why a finding's metric is missing, in words a person can act on: the probe could not answer, and what it said. */
function whyMissing(probe: string, ref: string, finding: Findings[string] | undefined): string {
  if (!finding) return `there is no ${probe} finding`;
  // Summaries are bounded (boundFinding) before they reach workflow state.
  if (finding.status === 'unknown') return `the ${probe} probe could not answer (${finding.summary})`;
  return `the ${probe} finding (${finding.status}) has no metric ${ref.slice(probe.length + 1) || '(none named)'}`;
}

/** One placeholder in runbook arguments: where it is, and whether it is the whole value (which keeps its type). */
export interface Placeholder {
  path: (string | number)[];
  raw: string;
  kind: string;
  ref?: string;
  whole: boolean;
}

/** Every placeholder in runbook arguments, with its path (e.g. `['pod']`), for checking a runbook before it runs. */
export function placeholdersIn(value: unknown, path: (string | number)[] = []): Placeholder[] {
  if (typeof value === 'string') {
    const whole = wholePlaceholder.test(value);
    return [...value.matchAll(placeholder)].map(([raw, kind, ref]) => ({
      path,
      raw,
      kind: kind as string,
      ...(ref !== undefined ? { ref } : {}),
      whole,
    }));
  }
  if (Array.isArray(value)) return value.flatMap((v, i) => placeholdersIn(v, [...path, i]));
  if (value && typeof value === 'object') {
    return Object.entries(value).flatMap(([k, v]) => placeholdersIn(v, [...path, k]));
  }
  return [];
}
