import { z } from 'zod';

// The Kubernetes object shapes the simulator validates. Loose objects: unknown fields are kept as given,
// the way the API server keeps fields it does not look at.

const stringMap = z.record(z.string(), z.string());
const dnsName = z
  .string()
  .min(1)
  .max(253)
  .regex(
    /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/,
    'a lowercase RFC 1123 name must consist of a-z, 0-9, "-" or "."',
  );

export const ownerReferenceSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  name: z.string(),
  uid: z.string(),
  controller: z.boolean().optional(),
  blockOwnerDeletion: z.boolean().optional(),
});
export type OwnerReference = z.infer<typeof ownerReferenceSchema>;

export const objectMetaSchema = z.looseObject({
  name: dnsName,
  namespace: z.string().optional(),
  uid: z.string().default(''),
  resourceVersion: z.string().default(''),
  generation: z.number().int().optional(),
  creationTimestamp: z.string().default(''),
  deletionTimestamp: z.string().optional(),
  labels: stringMap.optional(),
  annotations: stringMap.optional(),
  ownerReferences: z.array(ownerReferenceSchema).optional(),
});
export type ObjectMeta = z.infer<typeof objectMetaSchema>;

export const kubeObjectSchema = z.looseObject({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: objectMetaSchema,
});
export type KubeObject = z.infer<typeof kubeObjectSchema>;

const containerSchema = z.looseObject({ name: dnsName, image: z.string().min(1) });
const podSpecSchema = z.looseObject({ containers: z.array(containerSchema).min(1) });
const labelSelectorSchema = z.looseObject({ matchLabels: stringMap.optional() });
const podTemplateSchema = z.looseObject({
  metadata: z.looseObject({ labels: stringMap.optional(), annotations: stringMap.optional() }).default({}),
  spec: podSpecSchema,
});
const replicas = z.number().int().min(0, 'must be greater than or equal to 0');

export const podSchema = kubeObjectSchema.extend({
  kind: z.literal('Pod'),
  spec: podSpecSchema,
  status: z.looseObject({}).optional(),
});
export type Pod = z.infer<typeof podSchema>;

const workloadSpec = z.looseObject({
  replicas: replicas.default(1),
  selector: labelSelectorSchema,
  template: podTemplateSchema,
});

export const deploymentSchema = kubeObjectSchema.extend({
  kind: z.literal('Deployment'),
  spec: workloadSpec,
  status: z.looseObject({}).optional(),
});
export type Deployment = z.infer<typeof deploymentSchema>;

export const replicaSetSchema = kubeObjectSchema.extend({
  kind: z.literal('ReplicaSet'),
  spec: workloadSpec,
  status: z.looseObject({}).optional(),
});
export type ReplicaSet = z.infer<typeof replicaSetSchema>;

export const statefulSetSchema = kubeObjectSchema.extend({
  kind: z.literal('StatefulSet'),
  spec: workloadSpec.extend({ serviceName: z.string().default('') }),
  status: z.looseObject({}).optional(),
});
export type StatefulSet = z.infer<typeof statefulSetSchema>;

export const hpaSchema = kubeObjectSchema
  .extend({
    kind: z.literal('HorizontalPodAutoscaler'),
    spec: z.looseObject({
      scaleTargetRef: z.looseObject({
        apiVersion: z.string().optional(),
        kind: z.string(),
        name: z.string(),
      }),
      minReplicas: z.number().int().min(1, 'must be greater than or equal to 1').default(1),
      maxReplicas: z.number().int().min(1, 'must be greater than or equal to 1'),
    }),
    status: z.looseObject({}).optional(),
  })
  .refine((h) => h.spec.minReplicas <= h.spec.maxReplicas, {
    path: ['spec', 'maxReplicas'],
    message: 'must be greater than or equal to `minReplicas`',
  });
export type HorizontalPodAutoscaler = z.infer<typeof hpaSchema>;

const base64 = z.string().regex(/^[A-Za-z0-9+/]*={0,2}$/, 'illegal base64 data');
export const secretSchema = kubeObjectSchema.extend({
  kind: z.literal('Secret'),
  type: z.string().default('Opaque'),
  data: z.record(z.string(), base64).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
});
export type Secret = z.infer<typeof secretSchema>;

export const namespaceSchema = kubeObjectSchema.extend({ kind: z.literal('Namespace') });

export const scaleSchema = z.looseObject({
  apiVersion: z.string().optional(),
  kind: z.string().optional(),
  metadata: z.looseObject({ resourceVersion: z.string().optional() }).optional(),
  spec: z.looseObject({ replicas: replicas.optional() }).default({}),
});

export const deleteOptionsSchema = z
  .looseObject({
    preconditions: z
      .looseObject({ uid: z.string().optional(), resourceVersion: z.string().optional() })
      .optional(),
    gracePeriodSeconds: z.number().int().optional(),
    propagationPolicy: z.string().optional(),
  })
  .default({});

export const jsonPatchSchema = z.array(
  z.discriminatedUnion('op', [
    z.object({ op: z.literal('add'), path: z.string(), value: z.unknown() }),
    z.object({ op: z.literal('replace'), path: z.string(), value: z.unknown() }),
    z.object({ op: z.literal('test'), path: z.string(), value: z.unknown() }),
    z.object({ op: z.literal('remove'), path: z.string() }),
    z.object({ op: z.literal('move'), path: z.string(), from: z.string() }),
    z.object({ op: z.literal('copy'), path: z.string(), from: z.string() }),
  ]),
);
export type JsonPatchOperation = z.infer<typeof jsonPatchSchema>[number];

/** The condition of a Kubernetes error answer: code, reason and message as the API server words them. */
export class KubeStatusError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
    message: string,
    readonly details: Record<string, unknown> = {},
  ) {
    super(message);
  }

  toStatus(): Record<string, unknown> {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      details: this.details,
      code: this.code,
    };
  }
}

export function successStatus(details: Record<string, unknown>): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', details };
}

/** Validates an object against its kind's schema; a failure is a 422 Invalid like the API server's. */
export function validateObject<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: { kind: string; group: string; name: string },
): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const causes = result.error.issues.map((i) => ({
    reason: 'FieldValueInvalid',
    field: i.path.join('.'),
    message: `Invalid value: ${i.message}`,
  }));
  const qualified = what.group ? `${what.kind}.${what.group}` : what.kind;
  const text = causes.map((c) => `${c.field}: ${c.message}`).join(', ');
  throw new KubeStatusError(422, 'Invalid', `${qualified} "${what.name}" is invalid: ${text}`, {
    name: what.name,
    group: what.group,
    kind: what.kind,
    causes,
  });
}
