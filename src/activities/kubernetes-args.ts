import { z } from 'zod';
import type { KubernetesActions } from './kubernetes-actions.js';
import type { KubernetesProbes } from './kubernetes-probes.js';

// Argument schemas of the Kubernetes probes and actions, as runbooks write them. They are strict: an unknown
// key (a typo such as `tial: 50`) is an error, not an argument silently left out.

const dnsLabel = z
  .string()
  .min(1)
  .max(63)
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be a Kubernetes name (lowercase letters, digits and "-")');
const objectName = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be a Kubernetes object name');

export const podsArgs = z.strictObject({
  namespace: dnsLabel,
  selector: z
    .string()
    .max(500)
    .regex(/^[A-Za-z0-9._/\-=!,() ]*$/, 'must be a label selector such as app=postgres')
    .optional(),
});

/** k8sPodUsage: the pods' cpu and memory from the resource metrics API, like `kubectl top pods`. */
export const podUsageArgs = podsArgs;

export const workloadKind = z.enum(['deployment', 'statefulset']);
export type WorkloadKind = z.infer<typeof workloadKind>;

export const logsArgs = z.strictObject({
  namespace: dnsLabel,
  kind: workloadKind,
  name: objectName,
  tail: z.number().int().min(1).max(1000).default(50),
  filter: z.string().min(1).max(200).optional(),
});

export const rolloutStatusArgs = z.strictObject({
  namespace: dnsLabel,
  kind: workloadKind,
  name: objectName,
});

export const hpaArgs = z.strictObject({ namespace: dnsLabel, name: objectName });

export const secretKeyArgs = z.strictObject({
  namespace: dnsLabel,
  secret: objectName,
  key: z
    .string()
    .min(1)
    .max(253)
    .regex(/^[-._a-zA-Z0-9]+$/, 'must be a Secret key (letters, digits, "-", "_" and ".")'),
});

export const rolloutRestartArgs = z.strictObject({
  namespace: dnsLabel,
  kind: z.literal('deployment'),
  name: objectName,
});

export const restartStatefulSetPodArgs = z
  .strictObject({
    namespace: dnsLabel,
    statefulset: objectName,
    pod: objectName,
    /** The uid the plan saw; the pod is deleted only while it is still that pod. */
    expectUid: z.string().min(1).max(64).optional(),
  })
  .refine((a) => new RegExp(`^${a.statefulset.replace(/\./g, '\\.')}-\\d+$`).test(a.pod), {
    path: ['pod'],
    message: 'must be a pod of the statefulset (<statefulset>-<ordinal>)',
  });

export const scaleDeploymentArgs = z.strictObject({
  namespace: dnsLabel,
  name: objectName,
  replicas: z.number().int().min(1).max(100),
});

export const raiseHpaMaxArgs = z.strictObject({
  namespace: dnsLabel,
  name: objectName,
  maxReplicas: z.number().int().min(1).max(1000),
});

// The schemas by activity name: the activities parse their arguments with these, and `runbook lint` checks
// runbook arguments against them. Here rather than in kubernetes-probes/-actions so that the lint does not
// load the Kubernetes client.

export const kubernetesProbeArgs = {
  k8sPods: podsArgs,
  k8sPodUsage: podUsageArgs,
  k8sLogs: logsArgs,
  k8sRolloutStatus: rolloutStatusArgs,
  k8sHpa: hpaArgs,
  k8sSecretKey: secretKeyArgs,
} as const satisfies Record<keyof KubernetesProbes, z.ZodType>;

export const kubernetesActionArgs = {
  rolloutRestart: rolloutRestartArgs,
  restartStatefulSetPod: restartStatefulSetPodArgs,
  scaleDeployment: scaleDeploymentArgs,
  raiseHpaMax: raiseHpaMaxArgs,
} as const satisfies Record<keyof KubernetesActions, z.ZodType>;
