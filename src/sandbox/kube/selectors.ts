import { KubeStatusError, type KubeObject } from './objects.js';

type Requirement = (labels: Record<string, string>) => boolean;

/** Splits on commas that are not inside a parenthesised value set. */
function splitTerms(text: string): string[] {
  const terms: string[] = [];
  let depth = 0;
  let current = '';
  for (const ch of text) {
    if (ch === '(') depth++;
    if (ch === ')') depth--;
    if (ch === ',' && depth === 0) {
      terms.push(current);
      current = '';
    } else current += ch;
  }
  terms.push(current);
  return terms.map((t) => t.trim()).filter(Boolean);
}

function parseTerm(term: string): Requirement {
  const set = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(term);
  if (set) {
    const [, key = '', op, list = ''] = set;
    const values = new Set(list.split(',').map((v) => v.trim()));
    return op === 'in'
      ? (labels) => labels[key] !== undefined && values.has(labels[key])
      : (labels) => labels[key] === undefined || !values.has(labels[key]);
  }
  const compare = /^([\w./-]+)\s*(==|=|!=)\s*([\w./-]*)$/.exec(term);
  if (compare) {
    const [, key = '', op, value = ''] = compare;
    return op === '!=' ? (labels) => labels[key] !== value : (labels) => labels[key] === value;
  }
  const exists = /^(!?)([\w./-]+)$/.exec(term);
  if (exists) {
    const [, not, key = ''] = exists;
    return not ? (labels) => labels[key] === undefined : (labels) => labels[key] !== undefined;
  }
  throw new KubeStatusError(
    400,
    'BadRequest',
    `unable to parse requirement: invalid label selector "${term}"`,
  );
}

/** A label selector in the API's text form (`app=x,tier in (a,b),!canary`) as a predicate. */
export function labelSelector(text: string | null): (object: KubeObject) => boolean {
  if (!text) return () => true;
  const requirements = splitTerms(text).map(parseTerm);
  return (object) => requirements.every((r) => r(object.metadata.labels ?? {}));
}

function fieldValue(object: KubeObject, field: string): string | undefined {
  let node: unknown = object;
  for (const part of field.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node === undefined || node === null ? '' : String(node);
}

const FIELDS = new Set(['metadata.name', 'metadata.namespace', 'status.phase', 'spec.nodeName', 'type']);

/** A field selector (`metadata.name=x,status.phase!=Running`) over the fields the simulator indexes. */
export function fieldSelector(text: string | null): (object: KubeObject) => boolean {
  if (!text) return () => true;
  const checks = splitTerms(text).map((term) => {
    const match = /^([\w.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (!match || !FIELDS.has(match[1] ?? '')) {
      throw new KubeStatusError(400, 'BadRequest', `field label not supported: ${term.split(/[=!]/)[0]}`);
    }
    const [, field = '', op, value = ''] = match;
    return (object: KubeObject) => (fieldValue(object, field) === value) !== (op === '!=');
  });
  return (object) => checks.every((check) => check(object));
}

/** The text form of matchLabels, as the API shows it in Scale.status.selector. */
export function selectorText(matchLabels: Record<string, string> | undefined): string {
  return Object.entries(matchLabels ?? {})
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}
