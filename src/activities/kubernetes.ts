import { KubeConfig } from '@kubernetes/client-node';
import { kubernetesActions, type KubernetesActions } from './kubernetes-actions.js';
import { kubeClient } from './kubernetes-client.js';
import { kubernetesProbes, type KubernetesProbes } from './kubernetes-probes.js';

export {
  ACTION_KEYS_ANNOTATION,
  CONFLICT_ATTEMPTS,
  POD_RESTARTS_ANNOTATION,
  RESTARTED_AT_ANNOTATION,
} from './kubernetes-actions.js';

export interface KubernetesDependencies {
  kubeConfig: KubeConfig;
  /** Deadline of one Kubernetes API request; default 10 s. */
  requestTimeoutMs?: number;
}

export type KubernetesActivities = KubernetesProbes & KubernetesActions;

/**
 * The Kubernetes probes (k8sPods, k8sPodUsage, k8sLogs, k8sRolloutStatus, k8sHpa, k8sSecretKey) and actions (rolloutRestart,
 * restartStatefulSetPod, scaleDeployment, raiseHpaMax), by the names runbooks call them.
 */
export function kubernetesActivities(deps: KubernetesDependencies): KubernetesActivities {
  const client = kubeClient(deps.kubeConfig, deps.requestTimeoutMs ?? 10_000);
  return { ...kubernetesProbes(client), ...kubernetesActions(client) };
}

/** The cluster the worker talks to: $KUBECONFIG, ~/.kube/config, or the in-cluster service account. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  if (file) kubeConfig.loadFromFile(file);
  else kubeConfig.loadFromDefault();
  return kubeConfig;
}
