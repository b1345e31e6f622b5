import { createServer } from 'node:net';

/** A loopback port nothing listens on right now (the kernel's choice). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A port whose two neighbours (a Temporal dev server's HTTP and metrics ports) are free as well. Below the
 * kernel's ephemeral range (32768 and up): a server stopped and started again on these ports must find them
 * free, and a port in that range can meanwhile become some other connection's source port.
 */
export async function freePortTriple(): Promise<number> {
  const free = (port: number) =>
    new Promise<boolean>((resolve) => {
      const s = createServer()
        .once('error', () => resolve(false))
        .listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
    });
  for (let i = 0; i < 20; i++) {
    const base = 20_000 + Math.floor(Math.random() * 12_000);
    if ((await free(base)) && (await free(base + 1)) && (await free(base + 2))) return base;
  }
  throw new Error('no free port triple found');
}
