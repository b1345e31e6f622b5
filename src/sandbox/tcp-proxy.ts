import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { connect, createServer, isIPv4, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A loopback TCP proxy the sandbox can cut: it hands out the proxy's address instead of a real service's
 * (PostgreSQL, Kafka), and `cut()` makes that service really unreachable for whoever was given the address,
 * without touching the service itself. While cut nothing listens on the port, so new connections are
 * refused (ECONNREFUSED), and open ones are reset. Bytes are copied as they are, never inspected.
 */

export interface Endpoint {
  host: string;
  port: number;
}

export interface TcpProxyOptions {
  /** Where connections are forwarded to. */
  target: Endpoint;
  /** Where the proxy listens: a loopback address only (default 127.0.0.1), port 0 for any free port. */
  listen?: { host?: string; port?: number };
  /**
   * Also hold a UDP socket on the same address and port from start to stop. A cut proxy does not listen,
   * so its TCP port is free; proxies that claim their port this way cannot take one another's ports
   * meanwhile (a successful UDP bind is the lock). Needs a fixed port.
   */
  claimPort?: boolean;
  /** How long restore() keeps retrying while the port is taken (EADDRINUSE), in ms; default 2000. */
  restoreRetryMs?: number;
}

/** A closed side is given this long to flush what it was sent before the pair is destroyed. */
const HALF_CLOSE_GRACE_MS = 5000;
const RETRY_INTERVAL_MS = 50;

interface Pair {
  client: Socket;
  upstream: Socket;
  closed: Promise<void>;
}

type State = 'listening' | 'cut' | 'stopped';

function isLoopback(host: string): boolean {
  return (isIPv4(host) && host.startsWith('127.')) || host === '::1';
}

function errorCode(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code;
}

function closeSocket(socket: Socket, reset: boolean): void {
  if (socket.destroyed) return;
  // RST, so the peer sees ECONNRESET rather than an orderly end. A socket still connecting is reset once
  // it connects, which resetAndDestroy handles itself.
  if (reset) socket.resetAndDestroy();
  else socket.destroy();
}

export class TcpProxy {
  readonly target: Endpoint;
  readonly host: string;
  #port: number;
  #state: State = 'cut';
  #server: Server | undefined;
  #claim: UdpSocket | undefined;
  readonly #pairs = new Set<Pair>();
  readonly #restoreRetryMs: number;
  /** cut, restore and stop run one at a time, in call order. */
  #queue: Promise<unknown> = Promise.resolve();

  private constructor(options: TcpProxyOptions) {
    this.target = { ...options.target };
    this.host = options.listen?.host ?? '127.0.0.1';
    this.#port = options.listen?.port ?? 0;
    this.#restoreRetryMs = options.restoreRetryMs ?? 2000;
  }

  /** Listens and forwards; rejects with the listen error (e.g. code EADDRINUSE) if the port is taken. */
  static async start(options: TcpProxyOptions): Promise<TcpProxy> {
    const proxy = new TcpProxy(options);
    if (!isLoopback(proxy.host)) {
      throw new TypeError(`a TcpProxy listens on loopback only (127.0.0.0/8 or ::1), not ${proxy.host}`);
    }
    const { port: targetPort } = proxy.target;
    if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) {
      throw new TypeError(`bad target port ${targetPort}`);
    }
    if (!Number.isInteger(proxy.#port) || proxy.#port < 0 || proxy.#port > 65535) {
      throw new TypeError(`bad listen port ${proxy.#port}`);
    }
    if (options.claimPort) {
      if (proxy.#port === 0) throw new TypeError('claimPort needs a fixed listen port');
      proxy.#claim = await bindUdp(proxy.host, proxy.#port);
    }
    try {
      await proxy.#listen(0);
    } catch (error) {
      proxy.#releaseClaim();
      throw error;
    }
    return proxy;
  }

  get port(): number {
    return this.#port;
  }

  /** host:port of the proxy, to hand out instead of the target's. */
  get address(): string {
    return this.host.includes(':') ? `[${this.host}]:${this.#port}` : `${this.host}:${this.#port}`;
  }

  get isCut(): boolean {
    return this.#state !== 'listening';
  }

  get isStopped(): boolean {
    return this.#state === 'stopped';
  }

  /** Client connections currently forwarded. */
  get connections(): number {
    return this.#pairs.size;
  }

  /** Stops listening and resets every open connection; resolves once all of them are closed. */
  cut(): Promise<void> {
    return this.#serially(async () => {
      if (this.#state === 'listening') await this.#close('cut');
    });
  }

  /** Listens again on the same port; retries briefly while it is taken, then rejects (still cut). */
  restore(): Promise<void> {
    return this.#serially(async () => {
      if (this.#state === 'stopped') throw new Error(`TcpProxy ${this.address} is stopped`);
      if (this.#state === 'cut') await this.#listen(this.#restoreRetryMs);
    });
  }

  /** Cuts for good and releases the port claim; idempotent. */
  stop(): Promise<void> {
    return this.#serially(async () => {
      if (this.#state === 'listening') await this.#close('stopped');
      this.#state = 'stopped';
      this.#releaseClaim();
    });
  }

  #serially(work: () => Promise<void>): Promise<void> {
    const run = this.#queue.then(work);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #listen(retryMs: number): Promise<void> {
    const deadline = Date.now() + retryMs;
    for (;;) {
      const server = createServer({ noDelay: true }, (client) => this.#forward(client));
      try {
        await new Promise<void>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ host: this.host, port: this.#port, exclusive: true }, () => {
            server.off('error', reject);
            resolve();
          });
        });
      } catch (error) {
        if (errorCode(error) === 'EADDRINUSE' && this.#port !== 0 && Date.now() < deadline) {
          await sleep(RETRY_INTERVAL_MS);
          continue;
        }
        throw error;
      }
      // Accept errors (e.g. EMFILE) must not crash the process; the client side is simply not served.
      server.on('error', () => {});
      this.#port = (server.address() as { port: number }).port;
      this.#server = server;
      this.#state = 'listening';
      return;
    }
  }

  async #close(next: State): Promise<void> {
    this.#state = next;
    const server = this.#server;
    this.#server = undefined;
    // close() releases the port at once; its callback waits for the connections, reset just below.
    const closed = server ? new Promise<void>((resolve) => server.close(() => resolve())) : undefined;
    const pairs = [...this.#pairs];
    for (const { client, upstream } of pairs) {
      closeSocket(client, true);
      closeSocket(upstream, false);
    }
    await Promise.all([closed, ...pairs.map((p) => p.closed)]);
  }

  #releaseClaim(): void {
    const claim = this.#claim;
    this.#claim = undefined;
    if (claim) {
      try {
        claim.close();
      } catch {
        // already closed
      }
    }
  }

  #forward(client: Socket): void {
    if (this.#state !== 'listening') {
      closeSocket(client, true);
      return;
    }
    const upstream = connect({ host: this.target.host, port: this.target.port, noDelay: true });
    const closedOnce = (socket: Socket) =>
      new Promise<void>((resolve) => socket.once('close', () => resolve()));
    const pair: Pair = {
      client,
      upstream,
      closed: Promise.all([closedOnce(client), closedOnce(upstream)]).then(() => {
        this.#pairs.delete(pair);
      }),
    };
    this.#pairs.add(pair);

    // An error on either side ends both: a failing target (refused, reset) resets the client, so the
    // client sees the failure as it would without the proxy; a failing client just closes the target side.
    client.on('error', () => closeSocket(upstream, false));
    upstream.on('error', () => closeSocket(client, true));
    // pipe() forwards an orderly end (FIN) to the other side; once one side is fully closed, the other
    // gets a short grace to flush, then is destroyed, so a peer that never closes cannot leak its socket.
    const afterClose = (other: Socket) => () => {
      if (other.destroyed) return;
      other.end();
      const timer = setTimeout(() => closeSocket(other, false), HALF_CLOSE_GRACE_MS);
      timer.unref();
      other.once('close', () => clearTimeout(timer));
    };
    client.once('close', afterClose(upstream));
    upstream.once('close', afterClose(client));
    client.pipe(upstream);
    upstream.pipe(client);
  }
}

async function bindUdp(host: string, port: number): Promise<UdpSocket> {
  const socket = createSocket({ type: host.includes(':') ? 'udp6' : 'udp4', reuseAddr: false });
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject);
    socket.bind({ address: host, port, exclusive: true }, () => {
      socket.off('error', reject);
      resolve();
    });
  }).catch((error: unknown) => {
    try {
      socket.close();
    } catch {
      // never bound
    }
    throw error;
  });
  // A marker only: datagrams sent to it are dropped, and it does not keep the process alive.
  socket.on('error', () => {});
  socket.unref();
  return socket;
}
