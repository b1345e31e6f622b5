import { pathToFileURL } from 'node:url';
import cors from '@fastify/cors';
import type { Payload } from '@temporalio/common';
import Fastify, { type FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ConfigError, parseEnv } from './config.js';
import { createLogger } from './logging.js';
import { EncryptionCodec, loadPayloadKeys, type PayloadKeys } from './payload-codec.js';
import { tokenChecker } from './starters/receiver-auth.js';
import { secretSetting } from './secret-files.js';

// The codec endpoint the Temporal UI (and `temporal --codec-endpoint`) calls to show encrypted payloads
// decrypted: POST /decode and POST /encode with {"payloads": [...]} in Temporal's JSON form. It runs where the
// keys are, and answers only the UI's origin and, when CODEC_TOKEN is set, only requests that carry it.

const payloadsBody = z.object({
  payloads: z
    .array(
      z.object({
        metadata: z.record(z.string(), z.string()).optional(),
        data: z.string().optional(),
      }),
    )
    .max(10_000),
});
type JsonPayload = z.infer<typeof payloadsBody>['payloads'][number];

const fromJson = (p: JsonPayload): Payload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [k, new Uint8Array(Buffer.from(v, 'base64'))]),
  ),
  data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')),
});
const toJson = (p: Payload): JsonPayload => ({
  metadata: Object.fromEntries(
    Object.entries(p.metadata ?? {}).map(([k, v]) => [
      k,
      Buffer.from(v ?? new Uint8Array()).toString('base64'),
    ]),
  ),
  data: Buffer.from(p.data ?? new Uint8Array()).toString('base64'),
});

export interface CodecServerOptions {
  keys: PayloadKeys;
  /** Origins allowed to call it from a browser: the Temporal UI's. */
  corsOrigins: string[];
  /** When set, every request must carry it (Authorization: Bearer, as the UI's "pass access token" sends). */
  token?: string;
}

export function createCodecServer(o: CodecServerOptions): FastifyInstance {
  const codec = new EncryptionCodec(o.keys);
  const checkAuth = o.token ? tokenChecker(o.token) : undefined;
  const app = Fastify({ bodyLimit: 16 * 1024 * 1024 });
  void app.register(cors, {
    origin: o.corsOrigins,
    methods: ['POST'],
    allowedHeaders: ['content-type', 'x-namespace', 'authorization'],
    credentials: true,
  });
  void app.register(async (scope) => {
    scope.addHook('onRequest', async (request, reply) => {
      if (request.method === 'OPTIONS' || !checkAuth) return;
      if (checkAuth(request.headers.authorization) !== 'ok') {
        return reply.code(401).send({ error: 'the codec endpoint needs its token' });
      }
    });
    for (const direction of ['encode', 'decode'] as const) {
      scope.post(`/${direction}`, async (request, reply) => {
        const parsed = payloadsBody.safeParse(request.body);
        if (!parsed.success) return reply.code(400).send({ error: 'expected {"payloads": [...]}' });
        try {
          const payloads = await codec[direction](parsed.data.payloads.map(fromJson));
          return { payloads: payloads.map(toJson) };
        } catch (error) {
          return reply.code(422).send({ error: error instanceof Error ? error.message : 'cannot decode' });
        }
      });
    }
  });
  return app;
}

const codecEnvSchema = z.object({
  CODEC_HOST: z.string().min(1).default('127.0.0.1'),
  CODEC_PORT: z.coerce.number().int().min(0).max(65_535).default(8089),
  CODEC_CORS_ORIGINS: z.string().min(1).default('http://127.0.0.1:8233,http://localhost:8233'),
});

/** `node dist/codec-server.js` (`npm run codec-server`): PAYLOAD_KEYS, CODEC_* from the environment. */
export async function main(env: NodeJS.ProcessEnv = process.env): Promise<void> {
  const cfg = parseEnv(codecEnvSchema, env);
  const keys = loadPayloadKeys(env);
  if (!keys) throw new ConfigError('the codec endpoint needs PAYLOAD_KEYS or PAYLOAD_KEYS_FILE');
  const token = secretSetting(env, 'CODEC_TOKEN')?.trim();
  const app = createCodecServer({
    keys,
    corsOrigins: cfg.CODEC_CORS_ORIGINS.split(',').map((s) => s.trim()),
    ...(token ? { token } : {}),
  });
  const logger = createLogger({ level: 'info' });
  await app.listen({ host: cfg.CODEC_HOST, port: cfg.CODEC_PORT });
  logger.info({ host: cfg.CODEC_HOST, port: cfg.CODEC_PORT, keys: keys.keys.size }, 'codec endpoint ready');
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(error instanceof ConfigError ? 2 : 1);
  });
}
