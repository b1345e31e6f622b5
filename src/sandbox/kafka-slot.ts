import { connect } from 'node:net';
import { TcpProxy } from './tcp-proxy.js';

/**
 * Kafka through a proxy the sandbox can cut. A Kafka client only bootstraps from the address it is given:
 * from then on it connects to the address the broker advertises in its metadata, which would bypass a plain
 * proxy. So the project broker (scripts/kafka.sh) has a few extra "sandbox slot" listeners: slot i listens
 * on 127.0.0.1:(listenerPortBase + i) but advertises 127.0.0.1:(proxyPortBase + i), where the sandbox that
 * holds the slot runs its proxy to that listener. Every connection of its clients then goes through the
 * proxy, and cutting it makes Kafka really unreachable for them while the broker serves everyone else.
 *
 * A slot is held by the proxy's claim on its port (see TcpProxyOptions.claimPort): the first slot whose port
 * can be bound is taken, so concurrent sandboxes (test files, demos) get distinct slots, and a stopped
 * proxy, or an exited process, frees its slot.
 */

/**
 * The slot layout. scripts/kafka.sh reads the same variables with the same defaults (a shell script cannot
 * import these): change both together. KAFKA_SANDBOX_PORT_BASE, KAFKA_SANDBOX_PROXY_PORT_BASE,
 * KAFKA_SANDBOX_SLOTS.
 */
export const KAFKA_SANDBOX_DEFAULTS = {
  /** Slot i's listener on the broker is 127.0.0.1:(listenerPortBase + i), i = 1..slots. */
  listenerPortBase: 19100,
  /** Slot i is advertised as 127.0.0.1:(proxyPortBase + i), where the slot holder's proxy listens. */
  proxyPortBase: 19110,
  slots: 4,
} as const;

export const KAFKA_SANDBOX_ENV = {
  listenerPortBase: 'KAFKA_SANDBOX_PORT_BASE',
  proxyPortBase: 'KAFKA_SANDBOX_PROXY_PORT_BASE',
  slots: 'KAFKA_SANDBOX_SLOTS',
} as const;

/** The host the broker's slot listeners bind and advertise (scripts/kafka.sh's HOST). */
const SLOT_HOST = '127.0.0.1';

export interface KafkaSlotLayout {
  listenerPortBase: number;
  proxyPortBase: number;
  slots: number;
}

/** The slot layout from the environment, with the defaults shared with scripts/kafka.sh. */
export function kafkaSlotLayout(env: NodeJS.ProcessEnv = process.env): KafkaSlotLayout {
  const read = (key: keyof KafkaSlotLayout): number => {
    const name = KAFKA_SANDBOX_ENV[key];
    const raw = env[name];
    if (raw === undefined || raw === '') return KAFKA_SANDBOX_DEFAULTS[key];
    if (!/^\d+$/.test(raw)) throw new Error(`${name} must be a number, not '${raw}'`);
    return Number(raw);
  };
  return checkLayout({
    listenerPortBase: read('listenerPortBase'),
    proxyPortBase: read('proxyPortBase'),
    slots: read('slots'),
  });
}

function checkLayout(layout: KafkaSlotLayout): KafkaSlotLayout {
  const { listenerPortBase, proxyPortBase, slots } = layout;
  if (!Number.isInteger(slots) || slots < 1) throw new Error(`Kafka sandbox slots must be at least 1`);
  for (const base of [listenerPortBase, proxyPortBase]) {
    if (!Number.isInteger(base) || base < 1 || base + slots > 65535) {
      throw new Error(`Kafka sandbox slot ports ${base + 1}..${base + slots} are out of range`);
    }
  }
  if (Math.abs(listenerPortBase - proxyPortBase) < slots) {
    throw new Error(
      `Kafka sandbox listener ports (${listenerPortBase + 1}..) and proxy ports (${proxyPortBase + 1}..) overlap`,
    );
  }
  return layout;
}

export interface ClaimKafkaSlotOptions extends Partial<KafkaSlotLayout> {
  /** Host of the broker's slot listeners; default 127.0.0.1. */
  brokerHost?: string;
  /**
   * Check that the broker has the slot's listener (default true): a broker started before kafka.sh had
   * slots has none, and the proxy would only forward to a closed port.
   */
  verify?: boolean;
  /** Bound of that check, in ms; default 2000. */
  verifyTimeoutMs?: number;
}

export interface KafkaSlot {
  /** 1..slots */
  slot: number;
  /** Cut it to make Kafka unreachable for the slot's clients; restore it to bring Kafka back. */
  proxy: TcpProxy;
  /** The bootstrap list to hand out: the proxy's address, which the broker also advertises for this slot. */
  brokers: string[];
  /** The broker's listener the proxy forwards to. */
  listener: { host: string; port: number };
  /** Stops the proxy and frees the slot (the same as proxy.stop()). */
  stop(): Promise<void>;
}

export class KafkaSlotsTakenError extends Error {
  override readonly name = 'KafkaSlotsTakenError';
}

/** Claims the first free sandbox slot of the project broker and starts its proxy. */
export async function claimKafkaSlot(options: ClaimKafkaSlotOptions = {}): Promise<KafkaSlot> {
  const fromEnv = kafkaSlotLayout();
  const layout = checkLayout({
    listenerPortBase: options.listenerPortBase ?? fromEnv.listenerPortBase,
    proxyPortBase: options.proxyPortBase ?? fromEnv.proxyPortBase,
    slots: options.slots ?? fromEnv.slots,
  });
  const brokerHost = options.brokerHost ?? SLOT_HOST;
  for (let slot = 1; slot <= layout.slots; slot++) {
    const listener = { host: brokerHost, port: layout.listenerPortBase + slot };
    let proxy: TcpProxy;
    try {
      proxy = await TcpProxy.start({
        target: listener,
        listen: { host: SLOT_HOST, port: layout.proxyPortBase + slot },
        claimPort: true,
      });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') continue;
      throw error;
    }
    if (options.verify ?? true) {
      try {
        await canConnect(listener, options.verifyTimeoutMs ?? 2000);
      } catch (error) {
        await proxy.stop();
        throw new Error(
          `the Kafka broker has no sandbox listener for slot ${slot} at ${listener.host}:${listener.port} ` +
            `(${(error as Error).message}); a broker started before scripts/kafka.sh had sandbox slots ` +
            `needs a restart: scripts/kafka.sh stop && scripts/kafka.sh start`,
        );
      }
    }
    return {
      slot,
      proxy,
      brokers: [proxy.address],
      listener,
      stop: () => proxy.stop(),
    };
  }
  const first = layout.proxyPortBase + 1;
  const last = layout.proxyPortBase + layout.slots;
  throw new KafkaSlotsTakenError(
    `all ${layout.slots} Kafka sandbox slots are taken (ports ${SLOT_HOST}:${first}..${last} are in use ` +
      `by other sandboxes or processes); stop one, or give the broker more slots ` +
      `(${KAFKA_SANDBOX_ENV.slots} for scripts/kafka.sh and here)`,
  );
}

function canConnect(target: { host: string; port: number }, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(target);
    socket.setTimeout(timeoutMs, () => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    socket.once('connect', () => {
      socket.destroy();
      resolve();
    });
    socket.once('error', (error: NodeJS.ErrnoException) => reject(new Error(error.code ?? error.message)));
  });
}
