import type { KubeObject } from './objects.js';

export type WatchEventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export interface StoreEvent {
  type: WatchEventType;
  resource: string;
  namespace: string;
  object: KubeObject;
  resourceVersion: number;
}

const HISTORY = 2000;

const keyOf = (resource: string, namespace: string, name: string) => `${resource}/${namespace}/${name}`;

/**
 * The simulator's etcd: objects by resource, namespace and name, one resource version counter for all,
 * and a short history of changes so that a watch can resume from a resource version.
 * Everything handed out is a copy; callers change objects only through put and remove.
 */
export class ObjectStore {
  #objects = new Map<string, KubeObject>();
  #version = 1000;
  #history: StoreEvent[] = [];
  #listeners = new Set<(event: StoreEvent) => void>();

  get resourceVersion(): string {
    return String(this.#version);
  }

  get(resource: string, namespace: string, name: string): KubeObject | undefined {
    const found = this.#objects.get(keyOf(resource, namespace, name));
    return found && structuredClone(found);
  }

  /** Objects of a resource, in one namespace or (namespace undefined) in all of them, ordered by name. */
  list(resource: string, namespace?: string): KubeObject[] {
    const prefix = namespace === undefined ? `${resource}/` : `${resource}/${namespace}/`;
    return [...this.#objects.entries()]
      .filter(([key]) => key.startsWith(prefix))
      .map(([, value]) => structuredClone(value))
      .sort(
        (a, b) =>
          (a.metadata.namespace ?? '').localeCompare(b.metadata.namespace ?? '') ||
          a.metadata.name.localeCompare(b.metadata.name),
      );
  }

  /** Stores an object under a new resource version and returns the stored copy. */
  put(resource: string, object: KubeObject): KubeObject {
    const namespace = object.metadata.namespace ?? '';
    const key = keyOf(resource, namespace, object.metadata.name);
    const type: WatchEventType = this.#objects.has(key) ? 'MODIFIED' : 'ADDED';
    this.#version++;
    const stored = structuredClone(object);
    stored.metadata.resourceVersion = String(this.#version);
    this.#objects.set(key, stored);
    this.#emit({
      type,
      resource,
      namespace,
      object: structuredClone(stored),
      resourceVersion: this.#version,
    });
    return structuredClone(stored);
  }

  remove(resource: string, namespace: string, name: string): KubeObject | undefined {
    const key = keyOf(resource, namespace, name);
    const existing = this.#objects.get(key);
    if (!existing) return undefined;
    this.#objects.delete(key);
    this.#version++;
    const gone = structuredClone(existing);
    gone.metadata.resourceVersion = String(this.#version);
    this.#emit({ type: 'DELETED', resource, namespace, object: gone, resourceVersion: this.#version });
    return structuredClone(gone);
  }

  /** Changes after a resource version, or undefined when the history no longer reaches back that far. */
  eventsSince(resourceVersion: number): StoreEvent[] | undefined {
    const oldest = this.#history[0];
    if (resourceVersion >= this.#version) return [];
    if (!oldest || oldest.resourceVersion > resourceVersion + 1) return undefined;
    return this.#history.filter((e) => e.resourceVersion > resourceVersion).map((e) => structuredClone(e));
  }

  subscribe(listener: (event: StoreEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #emit(event: StoreEvent): void {
    this.#history.push(event);
    if (this.#history.length > HISTORY) this.#history.splice(0, this.#history.length - HISTORY);
    for (const listener of this.#listeners) listener(structuredClone(event));
  }
}
