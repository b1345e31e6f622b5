import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, request as httpsRequest, Agent, type Server } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeStatusError, RequestFaults, type RequestInfo, type RequestMatch } from './request-faults.js';
import { selfSignedCertificate } from './self-signed.js';

// A small HTTPS reverse proxy in front of the real kube-apiserver, the address the sandbox gives the worker.
// Like `kubectl proxy`, it takes its clients' own token and forwards their requests with the worker
// ServiceAccount's token, so the API server authorises every call against the Role the product ships. It
// does three jobs the API server cannot do for a test or a drill: it records each request in RBAC terms
// (verb, resource, namespace, name, answer); it injects request-level faults (a 500, a 403, a slow answer,
// a hook run at an exact point of a client's work); and it can start before the control plane exists
// (a first `make start` builds it in the background), answering 503 until `attach` names the API server.

export interface ProxiedRequest extends RequestInfo {
  method: string;
  path: string;
  status: number;
  contentType: string;
}

/** One kind of request (the same RBAC terms), how often it came and the answers it got. */
export interface RequestKind extends RequestInfo {
  count: number;
  statuses: number[];
}

export interface ApiProxyOptions {
  /** The user named in a 403 the proxy makes up (the worker's ServiceAccount). */
  user: string;
  port?: number;
  /** The bearer token clients must send; random by default (read it from `proxy.token`). */
  token?: string;
  /** What a request is told while no API server is attached. */
  detachedMessage?: string;
}

export interface Upstream {
  /** The real API server, e.g. https://127.0.0.1:16443. */
  url: string;
  /** The CA that signed the API server's certificate. */
  caPem: string;
  /** The ServiceAccount token requests are forwarded with. */
  token: string;
}

const MAX_RECORDS = 2000;

const VERBS: Record<string, (named: boolean, watch: boolean) => string> = {
  GET: (named, watch) => (named ? 'get' : watch ? 'watch' : 'list'),
  POST: () => 'create',
  PUT: () => 'update',
  PATCH: () => 'patch',
  DELETE: (named) => (named ? 'delete' : 'deletecollection'),
};

/** A request in the terms RBAC uses; paths that name no resource (discovery, /version) come out empty. */
export function requestInfo(method: string, url: URL): RequestInfo {
  const info: RequestInfo = { verb: '', group: '', resource: '', subresource: '', namespace: '', name: '' };
  const segments = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  let rest: string[];
  if (segments[0] === 'api' && segments.length >= 3) rest = segments.slice(2);
  else if (segments[0] === 'apis' && segments.length >= 4) {
    info.group = segments[1] ?? '';
    rest = segments.slice(3);
  } else return info;
  // namespaces/NS/RESOURCE/... is namespaced; namespaces/NS alone is the Namespace object itself.
  if (rest[0] === 'namespaces' && rest.length >= 3) {
    info.namespace = rest[1] ?? '';
    rest = rest.slice(2);
  }
  info.resource = rest[0] ?? '';
  info.name = rest[1] ?? '';
  info.subresource = rest[2] ?? '';
  const watch = ['true', '1'].includes(url.searchParams.get('watch') ?? '');
  info.verb = VERBS[method]?.(info.name !== '', watch) ?? method.toLowerCase();
  return info;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

export class ApiProxy {
  readonly #faults = new RequestFaults();
  readonly token: string;
  #upstream: { url: URL; agent: Agent; authorization: string } | undefined;
  readonly #certificate = selfSignedCertificate('fte-sandbox-api-proxy', ['127.0.0.1', 'localhost']);
  #requests: ProxiedRequest[] = [];
  // Every kind of request since the proxy started, uncapped and kept by clearRequests: what RBAC must allow.
  readonly #kinds = new Map<string, RequestKind>();
  /** Hooks started by the request being handled; they run synchronously to here, so they are its own. */
  #startedHooks: Array<Promise<void>> = [];
  #server: Server | undefined;
  /** The port of the first start: a restarted proxy listens there again, so its clients' kubeconfig holds. */
  #port: number | undefined;

  constructor(private readonly options: ApiProxyOptions) {
    this.token = options.token ?? randomBytes(24).toString('base64url');
  }

  /** Points the proxy at the API server; requests until then are answered 503. */
  attach(upstream: Upstream): void {
    this.#upstream?.agent.destroy();
    this.#upstream = {
      url: new URL(upstream.url),
      agent: new Agent({ ca: upstream.caPem, keepAlive: true }),
      authorization: `Bearer ${upstream.token}`,
    };
  }

  get attached(): boolean {
    return this.#upstream !== undefined;
  }

  /** The CA a client of the proxy trusts (the proxy's own self-signed certificate). */
  get caPem(): string {
    return this.#certificate.cert;
  }

  get url(): string {
    if (!this.#server) throw new Error('the API proxy is not started');
    return `https://127.0.0.1:${(this.#server.address() as AddressInfo).port}`;
  }

  async start(): Promise<this> {
    const server = createServer({ cert: this.#certificate.cert, key: this.#certificate.key }, (req, res) => {
      this.#handle(req, res).catch(() => res.destroy());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.options.port ?? this.#port ?? 0, '127.0.0.1', () => resolve());
    });
    this.#server = server;
    this.#port = (server.address() as AddressInfo).port;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = undefined;
    this.#upstream?.agent.destroy();
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** The requests passed through so far (never a header or a body). */
  get requests(): readonly ProxiedRequest[] {
    return this.#requests;
  }

  /** Each distinct request (verb, group, resource, subresource, namespace, name) since the proxy started. */
  get requestKinds(): readonly RequestKind[] {
    return [...this.#kinds.values()];
  }

  clearRequests(): void {
    this.#requests = [];
  }

  /** Answers 403 Forbidden to matching requests, as the API server does to a ServiceAccount lacking a rule. */
  forbid(match: RequestMatch): () => void {
    const id = this.#faults.add(match, { kind: 'forbidden' });
    return () => this.#faults.remove(id);
  }

  /** Answers matching requests with a server error (500 by default), `times` times or until removed. */
  failRequests(
    match: RequestMatch = {},
    error: { code?: number; message?: string; times?: number } = {},
  ): () => void {
    const id = this.#faults.add(
      match,
      { kind: 'error', code: error.code, message: error.message },
      error.times,
    );
    return () => this.#faults.remove(id);
  }

  /** Delays the answers to matching requests. */
  slowRequests(ms: number, match: RequestMatch = {}): () => void {
    const id = this.#faults.add(match, { kind: 'delay', ms });
    return () => this.#faults.remove(id);
  }

  /** Runs `run` (awaited) just before matching requests go upstream, once by default. */
  beforeRequest(match: RequestMatch, run: () => void | Promise<void>, times = 1): () => void {
    const start = () => void this.#startedHooks.push(Promise.resolve().then(run));
    const id = this.#faults.add(match, { kind: 'hook', run: start }, times);
    return () => this.#faults.remove(id);
  }

  clearFaults(): void {
    this.#faults.clear();
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const method = req.method ?? 'GET';
    if (!this.#authorized(req.headers.authorization)) {
      this.#send(res, new KubeStatusError(401, 'Unauthorized', 'Unauthorized'));
      return;
    }
    const upstreamNow = this.#upstream;
    if (!upstreamNow) {
      const message = this.options.detachedMessage ?? 'the Kubernetes API server is not available yet';
      this.#send(res, new KubeStatusError(503, 'ServiceUnavailable', message));
      return;
    }
    const url = new URL(req.url ?? '/', upstreamNow.url);
    const info = requestInfo(method, url);
    const record: ProxiedRequest = {
      ...info,
      method,
      path: url.pathname,
      status: 0,
      contentType: req.headers['content-type'] ?? '',
    };
    this.#record(record);
    const { delayMs, hooks, failure } = this.#faults.resolve(info, this.options.user);
    if (delayMs > 0) await sleep(delayMs);
    for (const hook of hooks) hook();
    await Promise.all(this.#startedHooks.splice(0));
    if (failure) {
      this.#settle(record, failure.code);
      this.#send(res, failure);
      return;
    }
    const headers = { ...req.headers, host: upstreamNow.url.host, authorization: upstreamNow.authorization };
    const upstream = httpsRequest(url, { method, headers, agent: upstreamNow.agent }, (answer) => {
      this.#settle(record, answer.statusCode ?? 502);
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    upstream.on('error', (error) => {
      this.#settle(record, 502);
      if (!res.headersSent)
        this.#send(res, new KubeStatusError(502, 'InternalError', `proxy: ${error.message}`));
      else res.destroy();
    });
    res.on('close', () => upstream.destroy());
    req.pipe(upstream);
  }

  #authorized(header: string | undefined): boolean {
    const expected = Buffer.from(`Bearer ${this.token}`);
    const given = Buffer.from(header ?? '');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  #record(record: ProxiedRequest): void {
    this.#requests.push(record);
    if (this.#requests.length > MAX_RECORDS) this.#requests.splice(0, this.#requests.length - MAX_RECORDS);
  }

  /** The request's answer; a request is counted once, by its first answer. */
  #settle(record: ProxiedRequest, status: number): void {
    if (record.status !== 0) return;
    record.status = status;
    const { verb, group, resource, subresource, namespace, name } = record;
    const key = JSON.stringify([verb, group, resource, subresource, namespace, name]);
    const kind = this.#kinds.get(key) ?? {
      verb,
      group,
      resource,
      subresource,
      namespace,
      name,
      count: 0,
      statuses: [],
    };
    kind.count += 1;
    if (!kind.statuses.includes(record.status)) kind.statuses.push(record.status);
    this.#kinds.set(key, kind);
  }

  #send(res: ServerResponse, error: KubeStatusError): void {
    res.writeHead(error.code, { 'content-type': 'application/json' });
    res.end(JSON.stringify(error.toStatus()));
  }
}
