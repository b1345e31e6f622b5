import { randomBytes, randomUUID } from 'node:crypto';
import { z } from 'zod';
import type { Controllers } from './controllers.js';
import type { LogBook } from './logs.js';
import {
  deleteOptionsSchema,
  KubeStatusError,
  scaleSchema,
  successStatus,
  validateObject,
  type Deployment,
  type KubeObject,
} from './objects.js';
import { applyPatch } from './patch.js';
import { groupVersionOf, type ResourceDef } from './resources.js';
import { fieldSelector, labelSelector, selectorText } from './selectors.js';
import type { ObjectStore } from './store.js';

// The API server's object semantics over the store: validation, resource-version preconditions, generation,
// status kept apart from spec, the scale subresource and pod logs. Every write lets the controllers react.

const timestamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

const qualified = (def: ResourceDef) => (def.group ? `${def.resource}.${def.group}` : def.resource);

export function notFound(def: ResourceDef, name: string): KubeStatusError {
  return new KubeStatusError(404, 'NotFound', `${qualified(def)} "${name}" not found`, {
    name,
    group: def.group,
    kind: def.resource,
  });
}

function conflict(def: ResourceDef, name: string): KubeStatusError {
  return new KubeStatusError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(def)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: def.group, kind: def.resource },
  );
}

const isDict = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === 'object' && !Array.isArray(value);

export interface ListOptions {
  labelSelector: string | null;
  fieldSelector: string | null;
}

export const logQuerySchema = z.object({
  container: z.string().optional(),
  tailLines: z.coerce.number().int().min(0).optional(),
  limitBytes: z.coerce.number().int().min(1).optional(),
  timestamps: z.enum(['true', 'false', '1', '0']).optional(),
  previous: z.enum(['true', 'false', '1', '0']).optional(),
});

const SCALABLE = new Set(['deployments', 'statefulsets', 'replicasets']);

export class ClusterApi {
  constructor(
    private readonly store: ObjectStore,
    private readonly controllers: Controllers,
    private readonly logs: LogBook,
  ) {}

  get(def: ResourceDef, namespace: string, name: string): KubeObject {
    const found = this.store.get(def.resource, namespace, name);
    if (!found) throw notFound(def, name);
    return found;
  }

  list(def: ResourceDef, namespace: string | undefined, options: ListOptions): Record<string, unknown> {
    const byLabel = labelSelector(options.labelSelector);
    const byField = fieldSelector(options.fieldSelector);
    return {
      kind: `${def.kind}List`,
      apiVersion: groupVersionOf(def),
      metadata: { resourceVersion: this.store.resourceVersion },
      items: this.store.list(def.resource, namespace).filter((o) => byLabel(o) && byField(o)),
    };
  }

  create(def: ResourceDef, namespace: string, body: unknown, dryRun: boolean): KubeObject {
    if (!isDict(body) || !isDict(body.metadata)) {
      throw new KubeStatusError(400, 'BadRequest', 'the request body must be an object with metadata');
    }
    this.#checkKind(def, body);
    const metadata = { ...body.metadata };
    if (!metadata.name && typeof metadata.generateName === 'string') {
      metadata.name = `${metadata.generateName}${randomBytes(3).toString('hex').slice(0, 5)}`;
    }
    if (def.namespaced) {
      if (metadata.namespace !== undefined && metadata.namespace !== namespace) {
        throw new KubeStatusError(
          400,
          'BadRequest',
          'the namespace of the provided object does not match the namespace sent on the request',
        );
      }
      metadata.namespace = namespace;
      if (!this.store.get('namespaces', '', namespace)) {
        throw new KubeStatusError(404, 'NotFound', `namespaces "${namespace}" not found`, {
          name: namespace,
          kind: 'namespaces',
        });
      }
    }
    const name = String(metadata.name ?? '');
    const object = this.#validate(def, this.#normalize(def, { ...body, metadata }), name);
    if (this.store.get(def.resource, namespace, object.metadata.name)) {
      throw new KubeStatusError(409, 'AlreadyExists', `${qualified(def)} "${name}" already exists`, {
        name,
        group: def.group,
        kind: def.resource,
      });
    }
    object.metadata.uid = randomUUID();
    object.metadata.creationTimestamp = timestamp();
    if (def.generation) object.metadata.generation = 1;
    delete object.status;
    return this.#write(def, object, dryRun);
  }

  update(def: ResourceDef, namespace: string, name: string, body: unknown, dryRun: boolean): KubeObject {
    const existing = this.get(def, namespace, name);
    if (!isDict(body) || !isDict(body.metadata)) {
      throw new KubeStatusError(400, 'BadRequest', 'the request body must be an object with metadata');
    }
    this.#checkKind(def, body);
    const rv = body.metadata.resourceVersion;
    if (rv !== undefined && rv !== '' && rv !== existing.metadata.resourceVersion) throw conflict(def, name);
    return this.#replace(def, existing, body, dryRun);
  }

  patch(
    def: ResourceDef,
    namespace: string,
    name: string,
    contentType: string,
    body: unknown,
    dryRun: boolean,
  ): KubeObject {
    const existing = this.get(def, namespace, name);
    const patched = applyPatch(contentType, existing, body);
    if (!isDict(patched) || !isDict(patched.metadata)) {
      throw new KubeStatusError(
        422,
        'Invalid',
        `${qualified(def)} "${name}" is invalid: metadata: Required value`,
      );
    }
    if (patched.metadata.resourceVersion !== existing.metadata.resourceVersion) throw conflict(def, name);
    return this.#replace(def, existing, patched, dryRun);
  }

  delete(def: ResourceDef, namespace: string, name: string, body: unknown, dryRun: boolean): unknown {
    const existing = this.get(def, namespace, name);
    const options = deleteOptionsSchema.safeParse(body ?? {});
    if (!options.success)
      throw new KubeStatusError(400, 'BadRequest', 'the body of the request is not valid DeleteOptions');
    const preconditions = options.data.preconditions;
    if (preconditions?.uid && preconditions.uid !== existing.metadata.uid) {
      throw new KubeStatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualified(def)} "${name}": Precondition failed: UID in precondition: ${preconditions.uid}, UID in object meta: ${existing.metadata.uid}`,
        { name, group: def.group, kind: def.resource },
      );
    }
    if (
      preconditions?.resourceVersion &&
      preconditions.resourceVersion !== existing.metadata.resourceVersion
    ) {
      throw new KubeStatusError(
        409,
        'Conflict',
        `Operation cannot be fulfilled on ${qualified(def)} "${name}": Precondition failed: ResourceVersion in precondition: ${preconditions.resourceVersion}, ResourceVersion in object meta: ${existing.metadata.resourceVersion}`,
        { name, group: def.group, kind: def.resource },
      );
    }
    if (dryRun) return existing;
    const gone = this.store.remove(def.resource, namespace, name) ?? existing;
    if (def.resource === 'pods') this.controllers.podDeleted(gone);
    this.controllers.reconcile();
    if (def.resource === 'pods') {
      return {
        ...gone,
        metadata: {
          ...gone.metadata,
          deletionTimestamp: timestamp(),
          deletionGracePeriodSeconds: options.data.gracePeriodSeconds ?? 30,
        },
      };
    }
    return successStatus({ name, group: def.group, kind: def.resource, uid: gone.metadata.uid });
  }

  getScale(def: ResourceDef, namespace: string, name: string): Record<string, unknown> {
    if (!SCALABLE.has(def.resource)) throw notFound(def, name);
    const workload = this.get(def, namespace, name) as Deployment;
    return {
      kind: 'Scale',
      apiVersion: 'autoscaling/v1',
      metadata: {
        name,
        namespace,
        uid: workload.metadata.uid,
        resourceVersion: workload.metadata.resourceVersion,
        creationTimestamp: workload.metadata.creationTimestamp,
      },
      spec: { replicas: workload.spec.replicas },
      status: {
        replicas: Number((workload.status as { replicas?: number } | undefined)?.replicas ?? 0),
        selector: selectorText(workload.spec.selector.matchLabels),
      },
    };
  }

  updateScale(
    def: ResourceDef,
    namespace: string,
    name: string,
    body: unknown,
    dryRun: boolean,
  ): Record<string, unknown> {
    const current = this.getScale(def, namespace, name);
    const scale = scaleSchema.safeParse(body);
    if (!scale.success) {
      const problem = scale.error.issues[0];
      throw new KubeStatusError(
        422,
        'Invalid',
        `Scale.autoscaling "${name}" is invalid: ${problem?.path.join('.')}: Invalid value: ${problem?.message}`,
        {
          name,
          group: 'autoscaling',
          kind: 'Scale',
        },
      );
    }
    const rv = scale.data.metadata?.resourceVersion;
    if (rv && rv !== (current.metadata as { resourceVersion: string }).resourceVersion)
      throw conflict(def, name);
    const replicas = scale.data.spec.replicas;
    if (replicas !== undefined) {
      const workload = this.get(def, namespace, name) as Deployment;
      this.#replace(def, workload, { ...workload, spec: { ...workload.spec, replicas } }, dryRun);
    }
    return dryRun ? { ...current, spec: { replicas } } : this.getScale(def, namespace, name);
  }

  patchScale(
    def: ResourceDef,
    namespace: string,
    name: string,
    contentType: string,
    body: unknown,
    dryRun: boolean,
  ): Record<string, unknown> {
    const current = this.getScale(def, namespace, name);
    return this.updateScale(def, namespace, name, applyPatch(contentType, current, body), dryRun);
  }

  podLog(namespace: string, name: string, query: URLSearchParams): string {
    const def = { group: '', resource: 'pods' } as ResourceDef;
    const pod = this.store.get('pods', namespace, name);
    if (!pod) throw notFound(def, name);
    const parsed = logQuerySchema.safeParse(Object.fromEntries(query));
    if (!parsed.success) {
      const problem = parsed.error.issues[0];
      throw new KubeStatusError(
        400,
        'BadRequest',
        `invalid log options: ${problem?.path.join('.')}: ${problem?.message}`,
      );
    }
    const options = parsed.data;
    const containers = ((pod.spec as { containers?: { name: string }[] } | undefined)?.containers ?? []).map(
      (c) => c.name,
    );
    const container = options.container ?? (containers.length === 1 ? containers[0] : undefined);
    if (!container) {
      throw new KubeStatusError(
        400,
        'BadRequest',
        `a container name must be specified for pod ${name}, choose one of: [${containers.join(' ')}]`,
      );
    }
    if (!containers.includes(container)) {
      throw new KubeStatusError(400, 'BadRequest', `container ${container} is not valid for pod ${name}`);
    }
    const state = (
      pod.status as
        | {
            containerStatuses?: {
              name: string;
              restartCount?: number;
              state?: { waiting?: { reason?: string } };
            }[];
          }
        | undefined
    )?.containerStatuses?.find((c) => c.name === container);
    const waiting = state?.state?.waiting?.reason;
    if (waiting === 'ContainerCreating' || waiting === 'ImagePullBackOff') {
      throw new KubeStatusError(
        400,
        'BadRequest',
        `container "${container}" in pod "${name}" is waiting to start: ${waiting}`,
      );
    }
    const previous = options.previous === 'true' || options.previous === '1';
    if (previous && !state?.restartCount) {
      throw new KubeStatusError(
        400,
        'BadRequest',
        `previous terminated container "${container}" in pod "${name}" not found`,
      );
    }
    return this.logs.read(pod.metadata.uid, {
      tail: options.tailLines,
      limitBytes: options.limitBytes,
      timestamps: options.timestamps === 'true' || options.timestamps === '1',
    });
  }

  #checkKind(def: ResourceDef, body: Record<string, unknown>): void {
    const apiVersion = groupVersionOf(def);
    if (
      (body.kind !== undefined && body.kind !== def.kind) ||
      (body.apiVersion !== undefined && body.apiVersion !== apiVersion)
    ) {
      throw new KubeStatusError(
        400,
        'BadRequest',
        `the API version in the data (${String(body.apiVersion)}) does not match the expected API version (${apiVersion})`,
      );
    }
  }

  /** Fills defaults the API server fills (kind, apiVersion) and folds Secret stringData into data. */
  #normalize(def: ResourceDef, body: Record<string, unknown>): Record<string, unknown> {
    const object: Record<string, unknown> = { ...body, kind: def.kind, apiVersion: groupVersionOf(def) };
    if (def.kind === 'Secret' && isDict(object.stringData)) {
      const data = isDict(object.data) ? { ...object.data } : {};
      for (const [key, value] of Object.entries(object.stringData))
        data[key] = Buffer.from(String(value)).toString('base64');
      object.data = data;
      delete object.stringData;
    }
    return object;
  }

  #validate(def: ResourceDef, object: unknown, name: string): KubeObject {
    return validateObject(def.schema, object, { kind: def.kind, group: def.group, name });
  }

  /** Writes a new version of an existing object: identity fields kept, status kept, generation raised on spec change. */
  #replace(
    def: ResourceDef,
    existing: KubeObject,
    body: Record<string, unknown>,
    dryRun: boolean,
  ): KubeObject {
    const metadata = isDict(body.metadata) ? body.metadata : {};
    const name = existing.metadata.name;
    if (
      (metadata.name !== undefined && metadata.name !== name) ||
      (metadata.namespace !== undefined && metadata.namespace !== existing.metadata.namespace)
    ) {
      throw new KubeStatusError(
        400,
        'BadRequest',
        `the name or namespace of the object (${String(metadata.name)}) does not match the request (${name})`,
      );
    }
    if (metadata.uid !== undefined && metadata.uid !== '' && metadata.uid !== existing.metadata.uid) {
      throw new KubeStatusError(
        422,
        'Invalid',
        `${qualified(def)} "${name}" is invalid: metadata.uid: Invalid value: field is immutable`,
      );
    }
    const object = this.#validate(def, this.#normalize(def, body), name);
    object.metadata = {
      ...object.metadata,
      name,
      namespace: existing.metadata.namespace,
      uid: existing.metadata.uid,
      creationTimestamp: existing.metadata.creationTimestamp,
      resourceVersion: existing.metadata.resourceVersion,
    };
    if (existing.status !== undefined) object.status = existing.status;
    else delete object.status;
    if (def.generation) {
      const changed = JSON.stringify(object.spec) !== JSON.stringify(existing.spec);
      object.metadata.generation = (existing.metadata.generation ?? 1) + (changed ? 1 : 0);
    }
    return this.#write(def, object, dryRun);
  }

  #write(def: ResourceDef, object: KubeObject, dryRun: boolean): KubeObject {
    if (dryRun) return object;
    const stored = this.store.put(def.resource, object);
    this.controllers.reconcile();
    return stored;
  }
}
