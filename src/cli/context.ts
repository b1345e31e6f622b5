import { userInfo } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Writable } from 'node:stream';
import {
  Client,
  Connection,
  isGrpcCancelledError,
  isGrpcDeadlineError,
  WorkflowUpdateRPCTimeoutOrCancelledError,
  type WorkflowHandle,
} from '@temporalio/client';
import { z } from 'zod';
import { parseEnv } from '../config.js';
import { clientConnectionOptions, loadTemporalSettings, type TemporalSettings } from '../temporal.js';
import { unreachable, usageError } from './errors.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** What incidentctl needs from the outside world; tests inject their own streams and client. */
export interface CliDeps {
  stdout: Writable;
  stderr: Writable;
  env?: NodeJS.ProcessEnv;
  /** A connected client to use instead of connecting from the environment (ignored with --address/--namespace). */
  client?: Client;
  /** Identity when --as is not given; defaults to the OS user. */
  defaultUser?: string;
  /** How long a query or an update may wait for a worker (default WORKER_DEADLINES_MS). */
  workerDeadlinesMs?: { query?: number; update?: number };
}

/** Options every command accepts, wherever they appear on the command line. */
export const globalOptionsSchema = z.object({
  as: z.string().trim().min(1, '--as must name a person').max(100).optional(),
  address: z.string().min(1).optional(),
  namespace: z.string().min(1).optional(),
  connectTimeout: z.coerce
    .number({ error: '--connect-timeout takes seconds' })
    .positive('--connect-timeout must be positive')
    .max(300)
    .default(5),
  /** The id of the Update a command sends: the workflow applies an id once, however often it arrives. */
  updateId: z
    .string()
    .regex(/^[A-Za-z0-9._:-]{8,100}$/, '--update-id takes 8 to 100 letters, digits and . _ : -')
    .optional(),
  debug: z.boolean().default(false),
  /** The private key that signs actions (default: $INCIDENTCTL_KEY_FILE, else ~/.config/incidentctl/key.pem). */
  key: z.string().min(1, '--key names a file').optional(),
});
export type GlobalOptions = z.output<typeof globalOptionsSchema>;

const cliEnvSchema = z.object({
  RUNBOOKS_DIR: z.string().min(1).default(`${root}runbooks`),
  CONTACTS_FILE: z.string().min(1).default(`${root}config/contacts.yaml`),
});

/** Deadlines for calls that wait on a worker (queries, updates) rather than on the server alone. */
export const WORKER_DEADLINES_MS = { query: 15_000, update: 30_000 };

function osUser(env: NodeJS.ProcessEnv): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return env.USER ?? env.LOGNAME;
  }
}

/** One command's view of its options, output streams and (lazily) its Temporal connection. */
export class CliContext {
  private readonly env: NodeJS.ProcessEnv;
  private settingsPromise: Promise<TemporalSettings> | undefined;
  private clientPromise: Promise<Client> | undefined;
  private ownConnection: Connection | undefined;

  constructor(
    private readonly deps: CliDeps,
    readonly globals: GlobalOptions,
  ) {
    this.env = deps.env ?? process.env;
  }

  out(text: string): void {
    this.deps.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  err(text: string): void {
    this.deps.stderr.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  /** The environment commands read their configuration from (process.env unless a test injects one). */
  get environment(): NodeJS.ProcessEnv {
    return this.env;
  }

  get stdout(): Writable {
    return this.deps.stdout;
  }

  get stderr(): Writable {
    return this.deps.stderr;
  }

  /** The person acting: --as, else the default user. */
  get identity(): string {
    const who = this.globals.as ?? this.deps.defaultUser ?? osUser(this.env);
    if (!who) throw usageError('cannot tell who you are: pass --as NAME');
    return who;
  }

  get paths(): { runbooksDir: string; contactsFile: string } {
    const env = parseEnv(cliEnvSchema, this.env);
    return { runbooksDir: env.RUNBOOKS_DIR, contactsFile: env.CONTACTS_FILE };
  }

  /** Connection settings from the environment, with --address/--namespace on top (validated alike). */
  settings(): Promise<TemporalSettings> {
    this.settingsPromise ??= loadTemporalSettings({
      ...this.env,
      ...(this.globals.address ? { TEMPORAL_ADDRESS: this.globals.address } : {}),
      ...(this.globals.namespace ? { TEMPORAL_NAMESPACE: this.globals.namespace } : {}),
    });
    return this.settingsPromise;
  }

  /** Where errors say we tried to reach, without loading anything that could fail again. */
  where(): { address: string; namespace: string } {
    return {
      address: this.globals.address ?? this.env.TEMPORAL_ADDRESS ?? '127.0.0.1:7233',
      namespace: this.globals.namespace ?? this.env.TEMPORAL_NAMESPACE ?? 'default',
    };
  }

  client(): Promise<Client> {
    this.clientPromise ??= this.connect();
    return this.clientPromise;
  }

  private async connect(): Promise<Client> {
    const settings = await this.settings();
    if (this.deps.client && !this.globals.address && !this.globals.namespace) return this.deps.client;
    try {
      this.ownConnection = await Connection.connect({
        ...clientConnectionOptions(settings),
        connectTimeout: this.globals.connectTimeout * 1000,
      });
    } catch (error) {
      throw unreachable(
        `cannot reach Temporal at ${settings.address} within ${this.globals.connectTimeout}s` +
          ` (set TEMPORAL_ADDRESS or --address; is the server running?)`,
        error,
      );
    }
    return new Client({
      connection: this.ownConnection,
      namespace: settings.namespace,
      identity: `incidentctl:${this.globals.as ?? this.deps.defaultUser ?? osUser(this.env) ?? 'unknown'}`,
      ...(settings.dataConverter ? { dataConverter: settings.dataConverter } : {}),
    });
  }

  /**
   * Calls answered by a worker (queries, updates) of one workflow get a deadline, so a stopped worker shows
   * up as a clear error instead of a hang.
   */
  async viaWorker<T>(
    what: 'query' | 'update',
    workflowId: string,
    fn: (handle: WorkflowHandle) => Promise<T>,
    /** Said after a timeout, e.g. how to repeat the call safely. */
    onTimeout?: string,
  ): Promise<T> {
    const client = await this.client();
    const handle = client.workflow.getHandle(workflowId);
    const ms = this.deps.workerDeadlinesMs?.[what] ?? WORKER_DEADLINES_MS[what];
    const deadline = Date.now() + ms;
    try {
      return await client.withDeadline(deadline, () => fn(handle));
    } catch (error) {
      // Past the deadline, grpc-js may report the call as cancelled rather than as deadline exceeded.
      const timedOut =
        isGrpcDeadlineError(error) ||
        error instanceof WorkflowUpdateRPCTimeoutOrCancelledError ||
        (isGrpcCancelledError(error) && Date.now() >= deadline);
      if (!timedOut) throw error;
      const taskQueue = await handle.describe().then(
        (d) => d.taskQueue,
        () => undefined,
      );
      throw unreachable(
        `no answer from ${workflowId} within ${ms / 1000}s: is a worker polling task queue` +
          ` "${taskQueue ?? '?'}" on ${this.where().address}?` +
          (what === 'update'
            ? ' (the action may still be applied once a worker runs; check with show)'
            : '') +
          (onTimeout ? `; ${onTimeout}` : ''),
        error,
      );
    }
  }

  async close(): Promise<void> {
    await this.ownConnection?.close().catch(() => undefined);
  }
}
