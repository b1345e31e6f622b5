import { randomBytes } from 'node:crypto';
import type { ClusterApi } from './cluster.js';
import { resourceByKind } from './resources.js';

// The Customer Success FTE platform as it runs in its namespace: the FastAPI service, the message worker,
// PostgreSQL and Kafka, the worker's HPA and the secrets the services read.

export const FTE_NAMESPACE = 'customer-success-fte';

export interface WorkloadSeed {
  name: string;
  image: string;
  replicas: number;
  port: number;
  component: string;
}

export const FTE_DEPLOYMENTS: WorkloadSeed[] = [
  {
    name: 'fte-api',
    image: 'ghcr.io/customer-success-fte/fte-api:1.8.2',
    replicas: 3,
    port: 8000,
    component: 'api',
  },
  {
    name: 'fte-message-processor',
    image: 'ghcr.io/customer-success-fte/fte-worker:1.8.2',
    replicas: 2,
    port: 9100,
    component: 'worker',
  },
];

export const FTE_STATEFULSETS: WorkloadSeed[] = [
  { name: 'postgres', image: 'postgres:16.4', replicas: 1, port: 5432, component: 'database' },
  { name: 'kafka', image: 'apache/kafka:3.8.0', replicas: 1, port: 9092, component: 'broker' },
];

export const FTE_SECRET = 'fte-secrets';

/** Fresh random values for the platform's secrets; tests read them back to check they never leak. */
export function randomSecretValues(): Record<string, string> {
  const token = () => randomBytes(16).toString('hex');
  return {
    TWILIO_ACCOUNT_SID: `AC${token()}`,
    TWILIO_AUTH_TOKEN: token(),
    OPENAI_API_KEY: `sk-proj-${randomBytes(24).toString('base64url')}`,
    GMAIL_CLIENT_SECRET: `GOCSPX-${randomBytes(14).toString('base64url')}`,
  };
}

function workload(kind: 'Deployment' | 'StatefulSet', namespace: string, w: WorkloadSeed) {
  const labels = {
    app: w.name,
    'app.kubernetes.io/part-of': 'customer-success-fte',
    'app.kubernetes.io/component': w.component,
  };
  return {
    apiVersion: 'apps/v1',
    kind,
    metadata: { name: w.name, namespace, labels },
    spec: {
      replicas: w.replicas,
      ...(kind === 'StatefulSet' ? { serviceName: w.name } : {}),
      selector: { matchLabels: { app: w.name } },
      template: {
        metadata: { labels },
        spec: {
          containers: [
            {
              name: w.name,
              image: w.image,
              ports: [{ containerPort: w.port, protocol: 'TCP' }],
              resources: { requests: { cpu: '250m', memory: '256Mi' }, limits: { memory: '1Gi' } },
              ...(kind === 'Deployment' ? { envFrom: [{ secretRef: { name: FTE_SECRET } }] } : {}),
            },
          ],
        },
      },
    },
  };
}

export function seedNamespace(api: ClusterApi, name: string): void {
  api.create(
    resourceByKind('Namespace'),
    '',
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name } },
    false,
  );
}

/** Creates the FTE platform's objects in a namespace; the controllers then start its pods. */
export function seedFtePlatform(api: ClusterApi, namespace: string, secrets: Record<string, string>): void {
  for (const d of FTE_DEPLOYMENTS)
    api.create(resourceByKind('Deployment'), namespace, workload('Deployment', namespace, d), false);
  for (const s of FTE_STATEFULSETS)
    api.create(resourceByKind('StatefulSet'), namespace, workload('StatefulSet', namespace, s), false);
  api.create(
    resourceByKind('HorizontalPodAutoscaler'),
    namespace,
    {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'fte-message-processor', namespace, labels: { app: 'fte-message-processor' } },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'fte-message-processor' },
        minReplicas: 2,
        maxReplicas: 5,
        metrics: [
          {
            type: 'Resource',
            resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } },
          },
        ],
      },
    },
    false,
  );
  api.create(
    resourceByKind('Secret'),
    namespace,
    {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: FTE_SECRET, namespace },
      type: 'Opaque',
      stringData: secrets,
    },
    false,
  );
}
