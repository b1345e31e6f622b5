import { timingSafeEqual } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ClusterApi } from './cluster.js';
import * as discovery from './discovery.js';
import { KubeStatusError } from './objects.js';
import type { RequestFaults, RequestInfo } from './request-faults.js';
import { findResource, type ResourceDef } from './resources.js';
import { fieldSelector, labelSelector } from './selectors.js';
import type { ObjectStore, StoreEvent } from './store.js';
import { toTable } from './table.js';

/** One request as the simulator saw it, for assertions (never with its Authorization header). */
export interface RequestRecord {
  method: string;
  path: string;
  query: string;
  verb: string;
  resource: string;
  subresource: string;
  namespace: string;
  name: string;
  status: number;
  contentType: string;
  userAgent: string;
}

export interface ApiServerContext {
  api: ClusterApi;
  store: ObjectStore;
  faults: RequestFaults;
  token: string;
  /** The user name RBAC errors name, like a service account's. */
  user: string;
  serverAddress: () => string;
  record: (request: RequestRecord) => void;
}

interface Request {
  params: Record<string, string>;
  query: URLSearchParams;
  body: unknown;
  contentType: string;
  accept: string;
  def: ResourceDef | undefined;
  info: RequestInfo;
  api: ClusterApi;
}

type Reply =
  | { status: number; body: unknown; contentType?: string }
  | { watch: { def: ResourceDef; namespace: string | undefined; query: URLSearchParams } };

type Handler = (request: Request) => Reply;

interface Route {
  method: string;
  pattern: RegExp;
  keys: string[];
  /** Resource routes resolve a ResourceDef from :group/:version/:resource and name an RBAC verb. */
  resource: boolean;
  handle: Handler;
}

const PUBLIC_PATHS = new Set(['/version', '/healthz', '/livez', '/readyz']);
const MAX_BODY = 3 * 1024 * 1024;

const ok = (body: unknown, status = 200): Reply => ({ status, body });
const notFoundPath = () =>
  new KubeStatusError(404, 'NotFound', 'the server could not find the requested resource', {});

function route(method: string, path: string, handle: Handler, resource = false): Route {
  const keys: string[] = [];
  const source = path.replace(/:(\w+)/g, (_, key: string) => {
    keys.push(key);
    return '([^/]+)';
  });
  return { method, pattern: new RegExp(`^${source}$`), keys, resource, handle };
}

const isTrue = (value: string | null) => value === 'true' || value === '1';
const dryRun = (r: Request) => r.query.get('dryRun') === 'All';
const ns = (r: Request) => r.params.namespace ?? '';
const must = (r: Request): ResourceDef => {
  if (!r.def) throw notFoundPath();
  return r.def;
};

function listOrWatch(r: Request): Reply {
  const def = must(r);
  const namespace = r.params.namespace;
  if (isTrue(r.query.get('watch'))) return { watch: { def, namespace, query: r.query } };
  const options = {
    labelSelector: r.query.get('labelSelector'),
    fieldSelector: r.query.get('fieldSelector'),
  };
  return ok(r.api.list(def, namespace, options));
}

function subresource(r: Request, method: 'GET' | 'PUT' | 'PATCH'): Reply {
  const def = must(r);
  const { name = '', subresource: sub } = r.params;
  if (sub === 'log' && def.resource === 'pods' && method === 'GET') {
    return { status: 200, body: r.api.podLog(ns(r), name, r.query), contentType: 'text/plain' };
  }
  if (sub === 'scale') {
    if (method === 'GET') return ok(r.api.getScale(def, ns(r), name));
    if (method === 'PUT') return ok(r.api.updateScale(def, ns(r), name, r.body, dryRun(r)));
    return ok(r.api.patchScale(def, ns(r), name, r.contentType, r.body, dryRun(r)));
  }
  if (sub === 'status' && method === 'GET') return ok(r.api.get(def, ns(r), name));
  if (def.subresources.some((s) => s.name === sub)) {
    throw new KubeStatusError(
      405,
      'MethodNotAllowed',
      `the server does not allow this method on the requested resource`,
    );
  }
  throw notFoundPath();
}

function deleteCollection(r: Request): Reply {
  const def = must(r);
  const list = r.api.list(def, r.params.namespace, {
    labelSelector: r.query.get('labelSelector'),
    fieldSelector: r.query.get('fieldSelector'),
  }) as { items: { metadata: { name: string; namespace?: string } }[] };
  for (const item of list.items)
    r.api.delete(def, item.metadata.namespace ?? '', item.metadata.name, r.body, dryRun(r));
  return ok(list);
}

function resourceRoutes(prefix: string, scope: string): Route[] {
  const base = `${prefix}${scope}/:resource`;
  return [
    route('GET', base, listOrWatch, true),
    route('POST', base, (r) => ok(r.api.create(must(r), ns(r), r.body, dryRun(r)), 201), true),
    route('DELETE', base, deleteCollection, true),
    route('GET', `${base}/:name`, (r) => ok(r.api.get(must(r), ns(r), r.params.name ?? '')), true),
    route(
      'PUT',
      `${base}/:name`,
      (r) => ok(r.api.update(must(r), ns(r), r.params.name ?? '', r.body, dryRun(r))),
      true,
    ),
    route(
      'PATCH',
      `${base}/:name`,
      (r) => ok(r.api.patch(must(r), ns(r), r.params.name ?? '', r.contentType, r.body, dryRun(r))),
      true,
    ),
    route(
      'DELETE',
      `${base}/:name`,
      (r) => ok(r.api.delete(must(r), ns(r), r.params.name ?? '', r.body, dryRun(r))),
      true,
    ),
    route('GET', `${base}/:name/:subresource`, (r) => subresource(r, 'GET'), true),
    route('PUT', `${base}/:name/:subresource`, (r) => subresource(r, 'PUT'), true),
    route('PATCH', `${base}/:name/:subresource`, (r) => subresource(r, 'PATCH'), true),
  ];
}

function found<T>(value: T | undefined): T {
  if (value === undefined) throw notFoundPath();
  return value;
}

const verbs: Record<string, (named: boolean, watch: boolean) => string> = {
  GET: (named, watch) => (named ? 'get' : watch ? 'watch' : 'list'),
  POST: () => 'create',
  PUT: () => 'update',
  PATCH: () => 'patch',
  DELETE: (named) => (named ? 'delete' : 'deletecollection'),
};

/** The simulated API server: a route table over the cluster's API semantics, with auth and faults in front. */
export class ApiServer {
  #watches = new Set<ServerResponse>();
  readonly #routes: Route[];

  constructor(private readonly ctx: ApiServerContext) {
    this.#routes = [
      route('GET', '/version', () => ok(discovery.SERVER_VERSION)),
      ...['/healthz', '/livez', '/readyz'].map((p) =>
        route('GET', p, () => ({ status: 200, body: 'ok', contentType: 'text/plain' })),
      ),
      route('GET', '/api', () => ok(discovery.coreVersions(ctx.serverAddress()))),
      route('GET', '/apis', () => ok(discovery.groupList())),
      route('GET', '/api/:version', (r) => ok(found(discovery.resourceList('', r.params.version ?? '')))),
      route('GET', '/apis/:group', (r) => ok(found(discovery.group(r.params.group ?? '')))),
      route('GET', '/apis/:group/:version', (r) =>
        ok(found(discovery.resourceList(r.params.group ?? '', r.params.version ?? ''))),
      ),
      ...resourceRoutes('/api/:version', '/namespaces/:namespace'),
      ...resourceRoutes('/apis/:group/:version', '/namespaces/:namespace'),
      ...resourceRoutes('/api/:version', ''),
      ...resourceRoutes('/apis/:group/:version', ''),
    ];
  }

  /** Ends the open watch streams (on stop). */
  closeWatches(): void {
    for (const res of this.#watches) res.end();
    this.#watches.clear();
  }

  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#handle(req, res).catch((error: unknown) => {
      if (!res.headersSent)
        this.#send(res, 500, new KubeStatusError(500, 'InternalError', String(error)).toStatus());
      else res.destroy();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://simulator');
    const method = req.method ?? 'GET';
    const record: RequestRecord = {
      method,
      path: url.pathname,
      query: url.search,
      verb: '',
      resource: '',
      subresource: '',
      namespace: '',
      name: '',
      status: 0,
      contentType: req.headers['content-type'] ?? '',
      userAgent: req.headers['user-agent'] ?? '',
    };
    const finish = (status: number, body: unknown, contentType?: string) => {
      record.status = status;
      this.ctx.record(record);
      this.#send(res, status, body, contentType);
    };
    try {
      const raw = await readBody(req);
      if (!PUBLIC_PATHS.has(url.pathname) && !this.#authorized(req)) {
        throw new KubeStatusError(401, 'Unauthorized', 'Unauthorized');
      }
      const { route: matched, params, def, info } = this.#resolve(method, url);
      Object.assign(record, {
        verb: info.verb,
        resource: info.resource,
        subresource: info.subresource,
        namespace: info.namespace,
        name: info.name,
      });
      const { delayMs, hooks, failure } = this.ctx.faults.resolve(info, this.ctx.user);
      if (delayMs > 0) await sleep(delayMs);
      for (const hook of hooks) hook();
      if (failure) throw failure;
      const request = {
        params,
        query: url.searchParams,
        body: parseJson(raw, record.contentType),
        contentType: record.contentType,
        accept: req.headers.accept ?? '',
        def,
        info,
        api: this.ctx.api,
      };
      const reply = matched.handle(request);
      if ('watch' in reply) {
        record.status = 200;
        this.ctx.record(record);
        this.#watch(req, res, reply.watch.def, reply.watch.namespace, reply.watch.query);
        return;
      }
      // kubectl get asks for server-side printing: a Table of the objects instead of the objects.
      const asked = def && method === 'GET' && !info.subresource && /as=Table/.test(request.accept);
      const body = asked ? asTable(def, reply.body, url.searchParams.get('includeObject')) : reply.body;
      finish(reply.status, body, reply.contentType);
    } catch (error) {
      const status =
        error instanceof KubeStatusError ? error : new KubeStatusError(500, 'InternalError', String(error));
      finish(status.code, status.toStatus());
    }
  }

  #authorized(req: IncomingMessage): boolean {
    const expected = Buffer.from(`Bearer ${this.ctx.token}`);
    const given = Buffer.from(req.headers.authorization ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The route, the resource it addresses and the request in RBAC terms (verb, resource, namespace, name). */
  #resolve(
    method: string,
    url: URL,
  ): { route: Route; params: Record<string, string>; def?: ResourceDef; info: RequestInfo } {
    const { route: matched, params } = this.#match(method, url.pathname);
    const info: RequestInfo = {
      verb: 'get',
      group: params.group ?? '',
      resource: params.resource ?? '',
      subresource: params.subresource ?? '',
      namespace: params.namespace ?? '',
      name: params.name ?? '',
    };
    if (!matched.resource) return { route: matched, params, info };
    const def = findResource(info.group, params.version ?? '', info.resource);
    const namespaced = params.namespace !== undefined;
    // A namespaced path for a cluster-scoped resource, or a named cluster path for a namespaced one.
    if (
      !def ||
      (namespaced && !def.namespaced) ||
      (params.name !== undefined && def.namespaced && !namespaced)
    ) {
      throw notFoundPath();
    }
    const watch = isTrue(url.searchParams.get('watch'));
    info.verb = verbs[method]?.(params.name !== undefined, watch) ?? method.toLowerCase();
    return { route: matched, params, def, info };
  }

  #match(method: string, path: string): { route: Route; params: Record<string, string> } {
    let pathMatched = false;
    for (const candidate of this.#routes) {
      const m = candidate.pattern.exec(path);
      if (!m) continue;
      pathMatched = true;
      if (candidate.method !== method) continue;
      const params: Record<string, string> = {};
      candidate.keys.forEach((key, i) => (params[key] = decodeURIComponent(m[i + 1] ?? '')));
      return { route: candidate, params };
    }
    if (pathMatched) {
      throw new KubeStatusError(
        405,
        'MethodNotAllowed',
        'the server does not allow this method on the requested resource',
      );
    }
    throw notFoundPath();
  }

  #send(res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
    if (res.writableEnded || res.destroyed) return;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'Content-Type': contentType,
      'Content-Length': Buffer.byteLength(text),
      'Cache-Control': 'no-cache, private',
    });
    res.end(text);
  }

  /** A watch stream: newline-separated {type, object} events until the client leaves or the timeout passes. */
  #watch(
    req: IncomingMessage,
    res: ServerResponse,
    def: ResourceDef,
    namespace: string | undefined,
    query: URLSearchParams,
  ): void {
    const byLabel = labelSelector(query.get('labelSelector'));
    const byField = fieldSelector(query.get('fieldSelector'));
    const wanted = (e: StoreEvent) =>
      e.resource === def.resource &&
      (namespace === undefined || e.namespace === namespace) &&
      byLabel(e.object) &&
      byField(e.object);
    res.writeHead(200, {
      'Content-Type': 'application/json',
      'Transfer-Encoding': 'chunked',
      'Cache-Control': 'no-cache, private',
    });
    // Headers go out now, as the API server sends them: a client waits for them before it reads any event.
    res.flushHeaders();
    const send = (type: string, object: unknown) => {
      if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`);
    };
    this.#watches.add(res);
    const since = Number(query.get('resourceVersion') ?? '0');
    if (!since) {
      for (const object of this.ctx.store.list(def.resource, namespace))
        if (byLabel(object) && byField(object)) send('ADDED', object);
    } else {
      const missed = this.ctx.store.eventsSince(since);
      if (!missed) {
        send('ERROR', new KubeStatusError(410, 'Expired', `too old resource version: ${since}`).toStatus());
        res.end();
        this.#watches.delete(res);
        return;
      }
      for (const e of missed) if (wanted(e)) send(e.type, e.object);
    }
    const unsubscribe = this.ctx.store.subscribe((e) => wanted(e) && send(e.type, e.object));
    const seconds = Number(query.get('timeoutSeconds') ?? '1800');
    const timer = setTimeout(() => res.end(), Math.min(Math.max(seconds, 1), 3600) * 1000);
    timer.unref();
    const done = () => {
      clearTimeout(timer);
      unsubscribe();
      this.#watches.delete(res);
    };
    res.on('close', done);
    req.on('close', done);
  }
}

function asTable(def: ResourceDef, body: unknown, includeObject: string | null): unknown {
  const value = body as { kind?: string; items?: unknown[]; metadata?: { resourceVersion?: string } };
  if (value.kind === 'Status') return body;
  const items = (value.kind?.endsWith('List') ? (value.items ?? []) : [body]) as Parameters<
    typeof toTable
  >[1];
  return toTable(def.kind, items, value.metadata?.resourceVersion ?? '', includeObject);
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY)
      throw new KubeStatusError(413, 'RequestEntityTooLarge', 'the request body is too large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

function parseJson(body: Buffer, contentType: string): unknown {
  if (body.length === 0) return undefined;
  if (/yaml/.test(contentType)) {
    throw new KubeStatusError(
      415,
      'UnsupportedMediaType',
      `the simulator does not accept ${contentType} bodies`,
    );
  }
  try {
    return JSON.parse(body.toString('utf8')) as unknown;
  } catch {
    throw new KubeStatusError(
      400,
      'BadRequest',
      "couldn't get version/kind; json parse error: invalid JSON in the request body",
    );
  }
}
