import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { TcpProxy, type TcpProxyOptions } from '../../src/sandbox/tcp-proxy.js';
import { services } from '../helpers/services.js';
import { freePort } from '../helpers/ports.js';

// The sandbox's cuttable proxy: against small local servers, then with a pg client against the suite's
// PostgreSQL.

const proxies: TcpProxy[] = [];
const servers: { srv: Server; sockets: Set<Socket> }[] = [];
const clients: Socket[] = [];

async function proxy(target: { host: string; port: number }, options: Partial<TcpProxyOptions> = {}) {
  const p = await TcpProxy.start({ target, ...options });
  proxies.push(p);
  return p;
}

/** A local server that tracks its open sockets; `onConnection` defaults to echoing. */
async function server(onConnection: (socket: Socket) => void = (s) => s.pipe(s)) {
  const sockets = new Set<Socket>();
  const srv = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.once('close', () => sockets.delete(socket));
    onConnection(socket);
  });
  await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve));
  servers.push({ srv, sockets });
  return { srv, sockets, target: { host: '127.0.0.1', port: (srv.address() as AddressInfo).port } };
}

/** Connects; resolves with the socket, or rejects with the connect error. */
async function dial(port: number): Promise<Socket> {
  const socket = connect({ host: '127.0.0.1', port });
  clients.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', resolve);
    socket.once('error', reject);
  });
  return socket;
}

/** How a connection ends: the error code, or 'end' for an orderly close; with everything it received. */
function ending(socket: Socket): Promise<{ how: string; data: Buffer }> {
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  return new Promise((resolve) => {
    let how = 'end';
    socket.once('error', (e: NodeJS.ErrnoException) => (how = e.code ?? e.message));
    socket.once('close', () => resolve({ how, data: Buffer.concat(chunks) }));
  });
}

async function until(condition: () => boolean, what: string, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await Promise.all(proxies.splice(0).map((p) => p.stop()));
  const done = servers.splice(0);
  for (const { sockets } of done) for (const s of sockets) s.destroy();
  await Promise.all(done.map(({ srv }) => new Promise((resolve) => srv.close(resolve))));
});

describe('TcpProxy', () => {
  it('forwards bytes both ways unchanged, and closes both sides when the client ends', async () => {
    const echo = await server();
    const p = await proxy(echo.target);
    expect(p.address).toBe(`127.0.0.1:${p.port}`);
    expect(p.port).toBeGreaterThan(0);
    expect(p.isCut).toBe(false);

    const socket = await dial(p.port);
    const result = ending(socket);
    const payload = randomBytes(2 * 1024 * 1024);
    let received = 0;
    socket.on('data', (c: Buffer) => {
      received += c.length;
      if (received >= payload.length) socket.end();
    });
    socket.write(payload);
    const { how, data } = await result;
    expect(how).toBe('end');
    expect(data.equals(payload)).toBe(true);
    await until(() => p.connections === 0 && echo.sockets.size === 0, 'both sides to close');
  });

  it('passes an orderly end of the target on to the client after its last bytes', async () => {
    const target = await server((s) => s.end('bye'));
    const p = await proxy(target.target);
    const { how, data } = await ending(await dial(p.port));
    expect([how, data.toString()]).toEqual(['end', 'bye']);
    await until(() => p.connections === 0, 'the pair to close');
  });

  it('resets the client when the target refuses or resets the connection', async () => {
    const refused = await proxy({ host: '127.0.0.1', port: await freePort() });
    expect((await ending(await dial(refused.port))).how).toBe('ECONNRESET');
    await until(() => refused.connections === 0, 'the pair to close');

    const resetting = await server((s) => setTimeout(() => s.resetAndDestroy(), 20));
    const p = await proxy(resetting.target);
    expect((await ending(await dial(p.port))).how).toBe('ECONNRESET');
    await until(() => p.connections === 0, 'the pair to close');
  });

  it('closes the target side when the client resets', async () => {
    const echo = await server();
    const p = await proxy(echo.target);
    const socket = await dial(p.port);
    await until(() => echo.sockets.size === 1, 'the target connection');
    socket.resetAndDestroy();
    await until(() => p.connections === 0 && echo.sockets.size === 0, 'both sides to close');
  });

  it('when cut, refuses new connections and resets open ones; restore listens again on the same port', async () => {
    const echo = await server();
    const p = await proxy(echo.target);
    const port = p.port;
    const open = await Promise.all([dial(port), dial(port)]);
    const endings = open.map(ending);
    await until(() => p.connections === 2 && echo.sockets.size === 2, 'two connections');

    await p.cut();
    expect(p.isCut).toBe(true);
    expect(p.connections).toBe(0);
    expect((await Promise.all(endings)).map((e) => e.how)).toEqual(['ECONNRESET', 'ECONNRESET']);
    await expect(dial(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await until(() => echo.sockets.size === 0, 'the target side to close');
    await p.cut(); // idempotent

    await p.restore();
    expect([p.isCut, p.port]).toEqual([false, port]);
    const socket = await dial(port);
    socket.write('again');
    const [chunk] = (await once(socket, 'data')) as [Buffer];
    expect(chunk.toString()).toBe('again');
    await p.restore(); // idempotent
  });

  it('restore waits briefly for a port someone else took meanwhile, else fails and stays cut', async () => {
    const echo = await server();
    const p = await proxy(echo.target, { restoreRetryMs: 300 });
    await p.cut();
    const squatter = createServer();
    await new Promise<void>((resolve) => squatter.listen(p.port, '127.0.0.1', resolve));
    await expect(p.restore()).rejects.toMatchObject({ code: 'EADDRINUSE' });
    expect(p.isCut).toBe(true);

    const restored = p.restore();
    await sleep(100);
    await new Promise((resolve) => squatter.close(resolve));
    await restored;
    expect(p.isCut).toBe(false);
    await dial(p.port);
  });

  it('with claimPort, holds its port while cut against other claiming proxies until stopped', async () => {
    const echo = await server();
    const port = await freePort();
    const first = await proxy(echo.target, { listen: { port }, claimPort: true });
    await expect(proxy(echo.target, { listen: { port }, claimPort: true })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    await first.cut();
    await expect(dial(port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(proxy(echo.target, { listen: { port }, claimPort: true })).rejects.toMatchObject({
      code: 'EADDRINUSE',
    });
    await first.restore();
    await first.stop();
    const second = await proxy(echo.target, { listen: { port }, claimPort: true });
    expect(second.port).toBe(port);
  });

  it('after stop, refuses connections and cannot be restored', async () => {
    const echo = await server();
    const p = await proxy(echo.target);
    const open = ending(await dial(p.port));
    await p.stop();
    await p.stop();
    expect([p.isCut, p.isStopped, p.connections]).toEqual([true, true, 0]);
    expect((await open).how).toBe('ECONNRESET');
    await expect(dial(p.port)).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    await expect(p.restore()).rejects.toThrow(/stopped/);
  });

  it('listens on loopback only, and checks its ports', async () => {
    const target = { host: '127.0.0.1', port: 5432 };
    for (const host of ['0.0.0.0', '::', '192.168.1.10', 'localhost']) {
      await expect(TcpProxy.start({ target, listen: { host } })).rejects.toThrow(/loopback only/);
    }
    await expect(TcpProxy.start({ target: { host: '127.0.0.1', port: 0 } })).rejects.toThrow(/target port/);
    await expect(TcpProxy.start({ target, listen: { port: 70000 } })).rejects.toThrow(/listen port/);
    await expect(TcpProxy.start({ target, claimPort: true })).rejects.toThrow(/fixed listen port/);
    const p = await proxy(target, { listen: { host: '127.0.0.2' } });
    expect(p.address).toBe(`127.0.0.2:${p.port}`);
  });
});

describe('TcpProxy in front of PostgreSQL', () => {
  const through = (p: TcpProxy) => {
    const url = new URL(services().postgresUrl);
    url.host = p.address;
    return url.toString();
  };
  const client = (p: TcpProxy) =>
    new pg.Client({ connectionString: through(p), connectionTimeoutMillis: 3000 });

  it('serves a pg client; when cut, new connections are refused and open ones fail; restored, it serves again', async () => {
    const target = new URL(services().postgresUrl);
    const p = await proxy({ host: target.hostname, port: Number(target.port) });
    const port = p.port;

    const open = client(p);
    const errors: NodeJS.ErrnoException[] = [];
    open.on('error', (e) => errors.push(e));
    await open.connect();
    expect((await open.query<{ n: number }>('SELECT 1 AS n')).rows).toEqual([{ n: 1 }]);
    expect(p.connections).toBe(1);

    await p.cut();
    await until(() => errors.length > 0, 'the open client to fail');
    expect(errors[0]?.code).toBe('ECONNRESET');
    await expect(open.query('SELECT 1')).rejects.toThrow();
    const fresh = client(p);
    await expect(fresh.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });

    await p.restore();
    expect(p.port).toBe(port);
    const again = client(p);
    await again.connect();
    try {
      expect((await again.query<{ n: number }>('SELECT 2 AS n')).rows).toEqual([{ n: 2 }]);
    } finally {
      await again.end();
    }
    await until(() => p.connections === 0, 'the pg connection to close');
  });
});
