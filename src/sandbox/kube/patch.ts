import { KubeStatusError, jsonPatchSchema, type JsonPatchOperation } from './objects.js';

type Dict = Record<string, unknown>;

const isDict = (value: unknown): value is Dict =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

/** RFC 7386 JSON merge patch: objects merge, null deletes, anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (!isDict(patch)) return structuredClone(patch);
  const result: Dict = isDict(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) delete result[key];
    else result[key] = mergePatch(result[key], value);
  }
  return result;
}

// Strategic merge patch, the subset kubectl sends: maps merge like a merge patch, `$patch: replace|delete`
// directives, and lists of objects merged by their merge key (containers, env and volumes by name, ports by
// containerPort, volume mounts by mountPath). Lists of plain values are replaced, as the API does for them.
const MERGE_KEYS = ['name', 'containerPort', 'mountPath', 'ip', 'type'];

function mergeKeyOf(items: unknown[]): string | undefined {
  if (items.length === 0 || !items.every(isDict)) return undefined;
  return MERGE_KEYS.find((key) => items.every((item) => (item as Dict)[key] !== undefined));
}

function strategicList(target: unknown, patch: unknown[]): unknown[] {
  const key = mergeKeyOf(patch);
  if (!key || !Array.isArray(target) || !target.every(isDict)) {
    return patch.filter((item) => !(isDict(item) && item.$patch === 'delete')).map((i) => structuredClone(i));
  }
  const result = target.map((item) => structuredClone(item) as Dict);
  for (const item of patch as Dict[]) {
    const index = result.findIndex((existing) => existing[key] === item[key]);
    if (item.$patch === 'delete') {
      if (index >= 0) result.splice(index, 1);
    } else if (index >= 0) {
      result[index] = strategicMergePatch(result[index], item) as Dict;
    } else {
      result.push(strategicMergePatch({}, item) as Dict);
    }
  }
  return result;
}

export function strategicMergePatch(target: unknown, patch: unknown): unknown {
  if (!isDict(patch)) return structuredClone(patch);
  if (patch.$patch === 'delete') return undefined;
  const replace = patch.$patch === 'replace';
  const result: Dict = isDict(target) && !replace ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (key.startsWith('$')) continue;
    if (value === null) delete result[key];
    else if (Array.isArray(value)) result[key] = strategicList(result[key], value);
    else {
      const merged = strategicMergePatch(result[key], value);
      if (merged === undefined) delete result[key];
      else result[key] = merged;
    }
  }
  return result;
}

// RFC 6902 JSON patch with RFC 6901 pointers.

function pointer(path: string): string[] {
  if (path === '') return [];
  if (!path.startsWith('/')) throw invalidPatch(`invalid JSON pointer "${path}"`);
  return path
    .slice(1)
    .split('/')
    .map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
}

function invalidPatch(message: string): KubeStatusError {
  return new KubeStatusError(
    422,
    'Invalid',
    `the server rejected our request due to an error in our request: ${message}`,
  );
}

function parentOf(doc: unknown, path: string[]): { parent: Dict | unknown[]; key: string } {
  let node = doc;
  for (const part of path.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(part)];
    else if (isDict(node)) node = node[part];
    else node = undefined;
    if (node === undefined) throw invalidPatch(`doc is missing path: "/${path.join('/')}"`);
  }
  if (!Array.isArray(node) && !isDict(node)) throw invalidPatch(`doc is missing path: "/${path.join('/')}"`);
  return { parent: node, key: path[path.length - 1] ?? '' };
}

function getAt(doc: unknown, path: string[]): unknown {
  let node = doc;
  for (const part of path) {
    if (Array.isArray(node)) node = node[Number(part)];
    else if (isDict(node)) node = node[part];
    else return undefined;
  }
  return node;
}

function arrayIndex(list: unknown[], key: string, forInsert: boolean): number {
  if (forInsert && key === '-') return list.length;
  const index = Number(key);
  const max = forInsert ? list.length : list.length - 1;
  if (!/^\d+$/.test(key) || index > max) throw invalidPatch(`array index out of bounds: ${key}`);
  return index;
}

function add(doc: unknown, path: string[], value: unknown): unknown {
  if (path.length === 0) return structuredClone(value);
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, structuredClone(value));
  else parent[key] = structuredClone(value);
  return doc;
}

function remove(doc: unknown, path: string[]): unknown {
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
  else {
    if (!(key in parent)) throw invalidPatch(`unable to remove nonexistent key: ${key}`);
    delete parent[key];
  }
  return doc;
}

function applyOperation(doc: unknown, op: JsonPatchOperation): unknown {
  const path = pointer(op.path);
  switch (op.op) {
    case 'add':
      return add(doc, path, op.value);
    case 'remove':
      return remove(doc, path);
    case 'replace':
      if (getAt(doc, path) === undefined)
        throw invalidPatch(`replace operation does not apply: doc is missing key: ${op.path}`);
      return add(remove(doc, path), path, op.value);
    case 'test':
      if (JSON.stringify(getAt(doc, path)) !== JSON.stringify(op.value)) {
        throw invalidPatch(`testing value ${op.path} failed`);
      }
      return doc;
    case 'move': {
      const value = getAt(doc, pointer(op.from));
      if (value === undefined)
        throw invalidPatch(`move operation does not apply: doc is missing from path: ${op.from}`);
      return add(remove(doc, pointer(op.from)), path, value);
    }
    case 'copy': {
      const value = getAt(doc, pointer(op.from));
      if (value === undefined)
        throw invalidPatch(`copy operation does not apply: doc is missing from path: ${op.from}`);
      return add(doc, path, value);
    }
  }
}

export function jsonPatch(target: unknown, operations: unknown): unknown {
  const parsed = jsonPatchSchema.safeParse(operations);
  if (!parsed.success) {
    throw new KubeStatusError(
      400,
      'BadRequest',
      `invalid JSON patch: ${parsed.error.issues[0]?.message ?? 'malformed'}`,
    );
  }
  return parsed.data.reduce<unknown>((doc, op) => applyOperation(doc, op), structuredClone(target));
}

export const PATCH_TYPES = {
  'application/json-patch+json': jsonPatch,
  'application/merge-patch+json': mergePatch,
  'application/strategic-merge-patch+json': strategicMergePatch,
} as const;

/** Applies a patch body by its content type, or answers 415 like the API server for other types. */
export function applyPatch(contentType: string, target: unknown, patch: unknown): unknown {
  const type = contentType.split(';')[0]?.trim().toLowerCase() ?? '';
  if (type in PATCH_TYPES) return PATCH_TYPES[type as keyof typeof PATCH_TYPES](target, patch);
  throw new KubeStatusError(
    415,
    'UnsupportedMediaType',
    `the body of the request was in an unknown format - accepted media types include: ${Object.keys(PATCH_TYPES).join(', ')}`,
  );
}
