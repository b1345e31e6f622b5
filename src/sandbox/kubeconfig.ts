import { writeFile } from 'node:fs/promises';
import { stringify } from 'yaml';

export interface KubeconfigOptions {
  server: string;
  token: string;
  namespace: string;
  /** PEM of the CA that signed the server's certificate; without it (plain HTTP) TLS checks are skipped. */
  caPem?: string;
  /** The name used for the cluster, user and context entries. */
  name?: string;
}

/** A kubeconfig document for an API server with a bearer token, as a cloud provider's CLI writes one. */
export function kubeconfigYaml({
  server,
  token,
  namespace,
  caPem,
  name = 'fte-sandbox',
}: KubeconfigOptions): string {
  const tls = caPem
    ? { 'certificate-authority-data': Buffer.from(caPem).toString('base64') }
    : { 'insecure-skip-tls-verify': true };
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name, cluster: { server, ...tls } }],
    users: [{ name: `${name}-admin`, user: { token } }],
    contexts: [{ name, context: { cluster: name, user: `${name}-admin`, namespace } }],
    'current-context': name,
    preferences: {},
  });
}

/** Writes the kubeconfig readable by its owner only: it holds the token. */
export async function writeKubeconfig(path: string, options: KubeconfigOptions): Promise<void> {
  await writeFile(path, kubeconfigYaml(options), { mode: 0o600 });
}
