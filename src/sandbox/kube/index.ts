export { KubeSimulator, kubeSimulatorOptionsSchema } from './simulator.js';
export type {
  KubeSimulatorOptions,
  NamespaceState,
  PodView,
  WorkloadView,
  HpaView,
  PodFaultOptions,
} from './simulator.js';
export type { PodCondition, PodFaultTarget } from './pod-health.js';
export type { RequestMatch } from './request-faults.js';
export type { RequestRecord } from './http-api.js';
export { FTE_NAMESPACE, FTE_SECRET, FTE_DEPLOYMENTS, FTE_STATEFULSETS } from './seed.js';
export { kubeconfigYaml } from './kubeconfig.js';
