// Request-level faults the sandbox's API proxy (api-proxy.ts) injects in front of the real API server, and
// the Kubernetes Status answers it makes them with.

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

/** What an API request is, in the terms RBAC uses. */
export interface RequestInfo {
  verb: string;
  group: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
}

/** Which requests a fault applies to; an absent field matches anything. */
export interface RequestMatch {
  verb?: string | string[];
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

export type RequestFaultEffect =
  | { kind: 'forbidden' }
  | { kind: 'error'; code?: number; message?: string }
  | { kind: 'delay'; ms: number }
  /** Runs before the request is handled: lets a test change the cluster at an exact point of a client's work. */
  | { kind: 'hook'; run: () => void };

interface Rule {
  id: number;
  match: RequestMatch;
  effect: RequestFaultEffect;
  remaining: number;
}

const REASONS: Record<number, string> = {
  429: 'TooManyRequests',
  500: 'InternalError',
  502: 'InternalError',
  503: 'ServiceUnavailable',
  504: 'Timeout',
};

/** Whether a request is one a fault (or a test's hook) applies to. */
export function matches(match: RequestMatch, info: RequestInfo): boolean {
  const verbs = match.verb === undefined ? undefined : [match.verb].flat();
  return (
    (!verbs || verbs.includes(info.verb)) &&
    (match.resource === undefined || match.resource === info.resource) &&
    (match.subresource === undefined || match.subresource === info.subresource) &&
    (match.namespace === undefined || match.namespace === info.namespace) &&
    (match.name === undefined || match.name === info.name)
  );
}

/** The 403 the API server gives a service account that lacks a permission. */
export function forbidden(info: RequestInfo, user: string): KubeStatusError {
  const resource = info.subresource ? `${info.resource}/${info.subresource}` : info.resource;
  const subject = info.name
    ? `${info.group ? `${info.resource}.${info.group}` : info.resource} "${info.name}"`
    : info.resource;
  const scope = info.namespace ? ` in the namespace "${info.namespace}"` : ' at the cluster scope';
  return new KubeStatusError(
    403,
    'Forbidden',
    `${subject} is forbidden: User "${user}" cannot ${info.verb} resource "${resource}" in API group "${info.group}"${scope}`,
    { ...(info.name ? { name: info.name } : {}), group: info.group, kind: info.resource },
  );
}

/** Test-controlled request faults: forbidden verbs, server errors and slow answers. */
export class RequestFaults {
  #rules: Rule[] = [];
  #nextId = 1;

  /** Adds a fault; `times` limits how many requests it hits (default: all until removed). */
  add(match: RequestMatch, effect: RequestFaultEffect, times = Number.POSITIVE_INFINITY): number {
    const id = this.#nextId++;
    this.#rules.push({ id, match, effect, remaining: times });
    return id;
  }

  remove(id: number): void {
    this.#rules = this.#rules.filter((r) => r.id !== id);
  }

  clear(): void {
    this.#rules = [];
  }

  /** The delay to wait, the hooks to run and the failure to answer with, if any, for one request. */
  resolve(
    info: RequestInfo,
    user: string,
  ): { delayMs: number; hooks: (() => void)[]; failure?: KubeStatusError } {
    let delayMs = 0;
    let failure: KubeStatusError | undefined;
    const hooks: (() => void)[] = [];
    for (const rule of this.#rules) {
      if (rule.remaining <= 0 || !matches(rule.match, info)) continue;
      if (rule.effect.kind === 'delay') {
        delayMs += rule.effect.ms;
      } else if (rule.effect.kind === 'hook') {
        hooks.push(rule.effect.run);
      } else if (failure) {
        continue;
      } else if (rule.effect.kind === 'forbidden') {
        failure = forbidden(info, user);
      } else {
        const code = rule.effect.code ?? 500;
        const message = rule.effect.message ?? 'Internal error occurred: etcdserver: request timed out';
        failure = new KubeStatusError(code, REASONS[code] ?? 'InternalError', message, {
          causes: [{ message }],
        });
      }
      rule.remaining--;
    }
    this.#rules = this.#rules.filter((r) => r.remaining > 0);
    return { delayMs, hooks, failure };
  }
}
