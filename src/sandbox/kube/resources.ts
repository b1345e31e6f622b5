import type { z } from 'zod';
import {
  deploymentSchema,
  hpaSchema,
  namespaceSchema,
  podSchema,
  replicaSetSchema,
  secretSchema,
  statefulSetSchema,
  type KubeObject,
} from './objects.js';

/** One resource the simulated API server serves: what discovery announces and what routes accept. */
export interface ResourceDef {
  group: string;
  version: string;
  resource: string;
  singular: string;
  kind: string;
  namespaced: boolean;
  shortNames: string[];
  categories: string[];
  verbs: string[];
  subresources: { name: string; kind: string; group?: string; version?: string; verbs: string[] }[];
  schema: z.ZodType<KubeObject>;
  /** Whether spec changes raise metadata.generation (workloads do, pods and secrets do not keep one). */
  generation: boolean;
}

const ALL_VERBS = ['create', 'delete', 'deletecollection', 'get', 'list', 'patch', 'update', 'watch'];
const scale = {
  name: 'scale',
  kind: 'Scale',
  group: 'autoscaling',
  version: 'v1',
  verbs: ['get', 'patch', 'update'],
};
const status = (kind: string) => ({ name: 'status', kind, verbs: ['get', 'patch', 'update'] });

export const RESOURCES: ResourceDef[] = [
  {
    group: '',
    version: 'v1',
    resource: 'namespaces',
    singular: 'namespace',
    kind: 'Namespace',
    namespaced: false,
    shortNames: ['ns'],
    categories: [],
    verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'],
    subresources: [],
    schema: namespaceSchema,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    resource: 'pods',
    singular: 'pod',
    kind: 'Pod',
    namespaced: true,
    shortNames: ['po'],
    categories: ['all'],
    verbs: ALL_VERBS,
    subresources: [{ name: 'log', kind: 'Pod', verbs: ['get'] }, status('Pod')],
    schema: podSchema,
    generation: false,
  },
  {
    group: '',
    version: 'v1',
    resource: 'secrets',
    singular: 'secret',
    kind: 'Secret',
    namespaced: true,
    shortNames: [],
    categories: [],
    verbs: ALL_VERBS,
    subresources: [],
    schema: secretSchema,
    generation: false,
  },
  {
    group: 'apps',
    version: 'v1',
    resource: 'deployments',
    singular: 'deployment',
    kind: 'Deployment',
    namespaced: true,
    shortNames: ['deploy'],
    categories: ['all'],
    verbs: ALL_VERBS,
    subresources: [scale, status('Deployment')],
    schema: deploymentSchema,
    generation: true,
  },
  {
    group: 'apps',
    version: 'v1',
    resource: 'replicasets',
    singular: 'replicaset',
    kind: 'ReplicaSet',
    namespaced: true,
    shortNames: ['rs'],
    categories: ['all'],
    verbs: ALL_VERBS,
    subresources: [scale, status('ReplicaSet')],
    schema: replicaSetSchema,
    generation: true,
  },
  {
    group: 'apps',
    version: 'v1',
    resource: 'statefulsets',
    singular: 'statefulset',
    kind: 'StatefulSet',
    namespaced: true,
    shortNames: ['sts'],
    categories: ['all'],
    verbs: ALL_VERBS,
    subresources: [scale, status('StatefulSet')],
    schema: statefulSetSchema,
    generation: true,
  },
  {
    group: 'autoscaling',
    version: 'v2',
    resource: 'horizontalpodautoscalers',
    singular: 'horizontalpodautoscaler',
    kind: 'HorizontalPodAutoscaler',
    namespaced: true,
    shortNames: ['hpa'],
    categories: ['all'],
    verbs: ALL_VERBS,
    subresources: [status('HorizontalPodAutoscaler')],
    schema: hpaSchema,
    generation: true,
  },
];

export const groupVersionOf = (def: { group: string; version: string }) =>
  def.group ? `${def.group}/${def.version}` : def.version;

export function findResource(group: string, version: string, resource: string): ResourceDef | undefined {
  return RESOURCES.find((r) => r.group === group && r.version === version && r.resource === resource);
}

export function resourceByKind(kind: string): ResourceDef {
  const def = RESOURCES.find((r) => r.kind === kind);
  if (!def) throw new Error(`no resource serves kind ${kind}`);
  return def;
}

/** The API groups other than the core group, each with its versions (first is preferred). */
export function apiGroups(): { name: string; versions: string[] }[] {
  const groups = new Map<string, string[]>();
  for (const r of RESOURCES) {
    if (!r.group) continue;
    const versions = groups.get(r.group) ?? [];
    if (!versions.includes(r.version)) versions.push(r.version);
    groups.set(r.group, versions);
  }
  return [...groups.entries()].map(([name, versions]) => ({ name, versions }));
}
