import type { KubeObject } from './objects.js';

// Server-side printing: kubectl get asks for meta.k8s.io Table answers and prints the columns it is given.
// The columns follow the ones the real API server prints for these kinds.

interface Column {
  name: string;
  type: 'string' | 'integer' | 'date';
  format?: string;
  priority?: number;
  description?: string;
  cell: (o: KubeObject, now: Date) => string | number;
}

/** kubectl's short, human age: 45s, 3m20s, 5h12m, 3d4h, 200d. */
export function humanAge(since: string, now: Date): string {
  const seconds = Math.floor((now.getTime() - new Date(since).getTime()) / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 120) return `${Math.max(0, seconds)}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (days < 365 * 2) return `${days}d`;
  return `${Math.floor(days / 365)}y`;
}

type Dict = Record<string, unknown>;
const field = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>(
    (node, key) => (node && typeof node === 'object' ? (node as Dict)[key] : undefined),
    o,
  );
const num = (o: unknown, ...path: string[]) => Number(field(o, ...path) ?? 0);

interface ContainerStatus {
  ready?: boolean;
  restartCount?: number;
  state?: { waiting?: { reason?: string }; terminated?: { reason?: string; exitCode?: number } };
}

function podStatusText(pod: KubeObject): string {
  if (pod.metadata.deletionTimestamp) return 'Terminating';
  let reason = String(field(pod, 'status', 'reason') ?? field(pod, 'status', 'phase') ?? 'Unknown');
  for (const c of (field(pod, 'status', 'containerStatuses') ?? []) as ContainerStatus[]) {
    if (c.state?.waiting?.reason) reason = c.state.waiting.reason;
    else if (c.state?.terminated?.reason) reason = c.state.terminated.reason;
    else if (c.state?.terminated) reason = `ExitCode:${c.state.terminated.exitCode ?? 0}`;
  }
  return reason;
}

const nameColumn: Column = {
  name: 'Name',
  type: 'string',
  format: 'name',
  description: 'Name must be unique within a namespace.',
  cell: (o) => o.metadata.name,
};
const ageColumn: Column = {
  name: 'Age',
  type: 'string',
  description: 'CreationTimestamp is a timestamp representing the server time when this object was created.',
  cell: (o, now) => humanAge(o.metadata.creationTimestamp, now),
};
const containersOf = (o: unknown) =>
  (field(o, 'spec', 'template', 'spec', 'containers') ?? []) as { name: string; image: string }[];
const workloadColumns: Column[] = [
  {
    name: 'Containers',
    type: 'string',
    priority: 1,
    cell: (o) =>
      containersOf(o)
        .map((c) => c.name)
        .join(','),
  },
  {
    name: 'Images',
    type: 'string',
    priority: 1,
    cell: (o) =>
      containersOf(o)
        .map((c) => c.image)
        .join(','),
  },
];

const COLUMNS: Record<string, Column[]> = {
  Pod: [
    nameColumn,
    {
      name: 'Ready',
      type: 'string',
      description: 'The aggregate readiness state of this pod for accepting traffic.',
      cell: (o) => {
        const statuses = (field(o, 'status', 'containerStatuses') ?? []) as ContainerStatus[];
        const total = ((field(o, 'spec', 'containers') ?? []) as unknown[]).length;
        return `${statuses.filter((c) => c.ready).length}/${total}`;
      },
    },
    {
      name: 'Status',
      type: 'string',
      description: 'The aggregate status of the containers in this pod.',
      cell: podStatusText,
    },
    {
      name: 'Restarts',
      type: 'string',
      description: 'The number of times the containers in this pod have been restarted.',
      cell: (o) =>
        String(
          ((field(o, 'status', 'containerStatuses') ?? []) as ContainerStatus[]).reduce(
            (n, c) => n + (c.restartCount ?? 0),
            0,
          ),
        ),
    },
    ageColumn,
    { name: 'IP', type: 'string', priority: 1, cell: (o) => String(field(o, 'status', 'podIP') ?? '<none>') },
    {
      name: 'Node',
      type: 'string',
      priority: 1,
      cell: (o) => String(field(o, 'spec', 'nodeName') ?? '<none>'),
    },
  ],
  Deployment: [
    nameColumn,
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => `${num(o, 'status', 'readyReplicas')}/${num(o, 'spec', 'replicas')}`,
    },
    { name: 'Up-to-date', type: 'integer', cell: (o) => num(o, 'status', 'updatedReplicas') },
    { name: 'Available', type: 'integer', cell: (o) => num(o, 'status', 'availableReplicas') },
    ageColumn,
    ...workloadColumns,
  ],
  StatefulSet: [
    nameColumn,
    {
      name: 'Ready',
      type: 'string',
      cell: (o) => `${num(o, 'status', 'readyReplicas')}/${num(o, 'spec', 'replicas')}`,
    },
    ageColumn,
    ...workloadColumns,
  ],
  ReplicaSet: [
    nameColumn,
    { name: 'Desired', type: 'integer', cell: (o) => num(o, 'spec', 'replicas') },
    { name: 'Current', type: 'integer', cell: (o) => num(o, 'status', 'replicas') },
    { name: 'Ready', type: 'integer', cell: (o) => num(o, 'status', 'readyReplicas') },
    ageColumn,
    ...workloadColumns,
  ],
  HorizontalPodAutoscaler: [
    nameColumn,
    {
      name: 'Reference',
      type: 'string',
      cell: (o) =>
        `${String(field(o, 'spec', 'scaleTargetRef', 'kind'))}/${String(field(o, 'spec', 'scaleTargetRef', 'name'))}`,
    },
    {
      name: 'Targets',
      type: 'string',
      cell: (o) => {
        const current = field(
          o,
          'status',
          'currentMetrics',
          '0',
          'resource',
          'current',
          'averageUtilization',
        );
        const metrics = field(o, 'spec', 'metrics') as
          { resource?: { target?: { averageUtilization?: number } } }[] | undefined;
        const target = metrics?.[0]?.resource?.target?.averageUtilization ?? 70;
        return `cpu: ${current === undefined ? '<unknown>' : `${String(current)}%`}/${target}%`;
      },
    },
    { name: 'MinPods', type: 'integer', cell: (o) => num(o, 'spec', 'minReplicas') },
    { name: 'MaxPods', type: 'integer', cell: (o) => num(o, 'spec', 'maxReplicas') },
    { name: 'Replicas', type: 'integer', cell: (o) => num(o, 'status', 'currentReplicas') },
    ageColumn,
  ],
  Secret: [
    nameColumn,
    { name: 'Type', type: 'string', cell: (o) => String(field(o, 'type') ?? 'Opaque') },
    { name: 'Data', type: 'integer', cell: (o) => Object.keys((field(o, 'data') ?? {}) as Dict).length },
    ageColumn,
  ],
  Namespace: [nameColumn, { name: 'Status', type: 'string', cell: () => 'Active' }, ageColumn],
};

/** A meta.k8s.io/v1 Table of the objects; rows carry the object's metadata, or the object when asked. */
export function toTable(
  kind: string,
  objects: KubeObject[],
  resourceVersion: string,
  includeObject: string | null,
): Record<string, unknown> {
  const columns = COLUMNS[kind] ?? [nameColumn, ageColumn];
  const now = new Date();
  return {
    kind: 'Table',
    apiVersion: 'meta.k8s.io/v1',
    metadata: { resourceVersion },
    columnDefinitions: columns.map((c) => ({
      name: c.name,
      type: c.type,
      format: c.format ?? '',
      description: c.description ?? '',
      priority: c.priority ?? 0,
    })),
    rows: objects.map((o) => ({
      cells: columns.map((c) => c.cell(o, now)),
      object:
        includeObject === 'Object'
          ? o
          : includeObject === 'None'
            ? null
            : { kind: 'PartialObjectMetadata', apiVersion: 'meta.k8s.io/v1', metadata: o.metadata },
    })),
  };
}
