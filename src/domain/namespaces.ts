import { z } from 'zod';
import { DEFAULT_SCOPE } from './alerts.js';

// The Kubernetes namespaces incidents may act in. An alert's `namespace` label is whatever its sender wrote:
// for any namespace off this list the incident only triages (runs no action) and says why, and the worker's
// actions refuse it too.

const namespaceName = z
  .string()
  .regex(/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, 'a Kubernetes namespace name (lower-case DNS label)');

/** ACTION_NAMESPACES: comma-separated namespace names; default the platform's own. */
export const actionNamespacesSchema = z
  .string()
  .default(DEFAULT_SCOPE)
  .transform((s) =>
    s
      .split(',')
      .map((n) => n.trim())
      .filter(Boolean),
  )
  .pipe(z.array(namespaceName).min(1, 'name at least one namespace'));

/** Why incidents may not act in `namespace`, or undefined when they may. */
export function notAllowedNamespace(allowed: readonly string[], namespace: string): string | undefined {
  if (allowed.includes(namespace)) return undefined;
  return `namespace "${namespace}" is not on the allowlist of namespaces incidents act in (ACTION_NAMESPACES: ${allowed.join(', ')})`;
}
