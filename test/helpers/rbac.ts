import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { V1PolicyRule, V1Role } from '@kubernetes/client-node';
import { parseAllDocuments } from 'yaml';
import { z } from 'zod';
import type { RequestKind } from '../../src/sandbox/api-proxy.js';
import type { RequestInfo } from '../../src/sandbox/request-faults.js';
import { WORKER_RBAC_MANIFEST } from '../../src/sandbox/cluster.js';
import { projectRoot } from './paths.js';

// The Role the product ships, and the requests the worker made to the sandbox's Kubernetes API in the tests
// that run whole incidents: each test file writes what its product asked for into .data/kube-requests/
// (emptied when a suite starts), and test/suite-end/ checks them against the Role once the suite is over.

export async function shippedRole(): Promise<V1Role> {
  const documents = parseAllDocuments(await readFile(WORKER_RBAC_MANIFEST, 'utf8')).map(
    (d) => d.toJS() as { kind?: string } | null,
  );
  const role = documents.find((d) => d?.kind === 'Role');
  if (!role) throw new Error(`no Role in ${WORKER_RBAC_MANIFEST}`);
  return role as V1Role;
}

const anyOf = (granted: string[] | undefined, wanted: string) =>
  (granted ?? []).some((g) => g === '*' || g === wanted);

/** Whether an RBAC rule allows a request (resource names only limit requests that name an object). */
export function allows(rule: V1PolicyRule, request: RequestInfo): boolean {
  const resource = request.subresource ? `${request.resource}/${request.subresource}` : request.resource;
  return (
    anyOf(rule.apiGroups, request.group) &&
    anyOf(rule.resources, resource) &&
    anyOf(rule.verbs, request.verb) &&
    (!rule.resourceNames?.length || rule.resourceNames.includes(request.name))
  );
}

/** The rule split into one rule per group, resource and verb: each must be needed by some request. */
export const grants = (rule: V1PolicyRule): V1PolicyRule[] =>
  (rule.apiGroups ?? []).flatMap((group) =>
    (rule.resources ?? []).flatMap((resource) =>
      rule.verbs.map((verb) => ({ ...rule, apiGroups: [group], resources: [resource], verbs: [verb] })),
    ),
  );

export const describeGrant = (g: V1PolicyRule) =>
  `${g.verbs[0]} ${g.apiGroups?.[0] ? `${g.apiGroups[0]}/` : ''}${g.resources?.[0]}${
    g.resourceNames?.length ? ` (${g.resourceNames.join(', ')})` : ''
  }`;

export const describeRequest = (r: RequestInfo) =>
  `${r.verb} ${r.group ? `${r.group}/` : ''}${r.resource}${r.subresource ? `/${r.subresource}` : ''}` +
  `${r.name ? ` ${r.name}` : ''} in "${r.namespace}"`;

// KUBE_REQUESTS_DIR: another folder, for a run that must not share it (two suites at once in one checkout).
export const kubeRequestsDir = process.env.KUBE_REQUESTS_DIR ?? `${projectRoot}.data/kube-requests`;

const recordingSchema = z.object({
  /** The test file, relative to the project. */
  file: z.string(),
  /** The platform's namespace in the sandbox: every request must stay inside it. */
  namespace: z.string(),
  requests: z.array(
    z.object({
      verb: z.string(),
      group: z.string(),
      resource: z.string(),
      subresource: z.string(),
      namespace: z.string(),
      name: z.string(),
      count: z.number(),
      statuses: z.array(z.number()),
    }),
  ),
});
export type KubeRequestRecording = z.infer<typeof recordingSchema>;

/** Empties the recordings: called when a suite starts, so what the suite-end check reads is this run's. */
export async function clearKubeRequestRecordings(): Promise<void> {
  await rm(kubeRequestsDir, { recursive: true, force: true });
}

export async function recordKubeRequests(
  testFile: string,
  namespace: string,
  requests: readonly RequestKind[],
): Promise<void> {
  const file = relative(projectRoot, testFile);
  const recording: KubeRequestRecording = { file, namespace, requests: [...requests] };
  await mkdir(kubeRequestsDir, { recursive: true });
  await writeFile(
    join(kubeRequestsDir, `${file.replace(/[^A-Za-z0-9.-]/g, '_')}--${namespace}.json`),
    JSON.stringify(recording, null, 1),
  );
}

export async function readKubeRequestRecordings(): Promise<KubeRequestRecording[]> {
  const names = await readdir(kubeRequestsDir).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return [];
    throw error;
  });
  return Promise.all(
    names
      .filter((n) => n.endsWith('.json'))
      .sort()
      .map(async (n) => recordingSchema.parse(JSON.parse(await readFile(join(kubeRequestsDir, n), 'utf8')))),
  );
}
