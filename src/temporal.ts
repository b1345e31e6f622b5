import type { PayloadCodec } from '@temporalio/common';
import { dataConverterFor, loadPayloadKeys } from './payload-codec.js';
import { Connection, type ConnectionOptions } from '@temporalio/client';
import { NativeConnection, type NativeConnectionOptions } from '@temporalio/worker';
import { parseEnv, readConfigFile, temporalEnvSchema, type TemporalEnv } from './config.js';

export interface TemporalSettings {
  address: string;
  namespace: string;
  taskQueue: string;
  uiUrl: string;
  tls?: {
    clientCertPair?: { crt: Buffer; key: Buffer };
    serverRootCACertificate?: Buffer;
    serverNameOverride?: string;
  };
  apiKey?: string;
  /** Set when PAYLOAD_KEYS is: every payload encrypted (src/payload-codec.ts). Workers and clients use it alike. */
  dataConverter?: { payloadCodecs: PayloadCodec[] };
}

/** Resolves plain, mTLS or API-key connection settings from the environment. */
export async function loadTemporalSettings(env: NodeJS.ProcessEnv = process.env): Promise<TemporalSettings> {
  const cfg: TemporalEnv = parseEnv(temporalEnvSchema, env);
  const settings: TemporalSettings = {
    address: cfg.TEMPORAL_ADDRESS,
    namespace: cfg.TEMPORAL_NAMESPACE,
    taskQueue: cfg.TEMPORAL_TASK_QUEUE,
    uiUrl: cfg.TEMPORAL_UI_URL,
  };
  const apiKey = cfg.TEMPORAL_API_KEY_FILE
    ? (await readConfigFile('TEMPORAL_API_KEY_FILE', cfg.TEMPORAL_API_KEY_FILE)).toString('utf8').trim()
    : cfg.TEMPORAL_API_KEY;
  if (apiKey) settings.apiKey = apiKey;
  const dataConverter = dataConverterFor(loadPayloadKeys(env));
  if (dataConverter) settings.dataConverter = dataConverter;
  const wantsTls =
    cfg.TEMPORAL_TLS === 'true' ||
    Boolean(cfg.TEMPORAL_TLS_CERT || cfg.TEMPORAL_TLS_CA || cfg.TEMPORAL_TLS_SERVER_NAME) ||
    (Boolean(apiKey) && cfg.TEMPORAL_TLS !== 'false');
  if (wantsTls) {
    settings.tls = {};
    if (cfg.TEMPORAL_TLS_CERT && cfg.TEMPORAL_TLS_KEY) {
      settings.tls.clientCertPair = {
        crt: await readConfigFile('TEMPORAL_TLS_CERT', cfg.TEMPORAL_TLS_CERT),
        key: await readConfigFile('TEMPORAL_TLS_KEY', cfg.TEMPORAL_TLS_KEY),
      };
    }
    if (cfg.TEMPORAL_TLS_CA) {
      settings.tls.serverRootCACertificate = await readConfigFile('TEMPORAL_TLS_CA', cfg.TEMPORAL_TLS_CA);
    }
    if (cfg.TEMPORAL_TLS_SERVER_NAME) settings.tls.serverNameOverride = cfg.TEMPORAL_TLS_SERVER_NAME;
  }
  return settings;
}

export function clientConnectionOptions(s: TemporalSettings): ConnectionOptions {
  return {
    address: s.address,
    ...(s.tls ? { tls: s.tls } : {}),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
  };
}

export function workerConnectionOptions(s: TemporalSettings): NativeConnectionOptions {
  return {
    address: s.address,
    ...(s.tls ? { tls: s.tls } : {}),
    ...(s.apiKey ? { apiKey: s.apiKey } : {}),
  };
}

export async function connectClient(s: TemporalSettings): Promise<Connection> {
  return Connection.connect(clientConnectionOptions(s));
}

export async function connectWorker(s: TemporalSettings): Promise<NativeConnection> {
  return NativeConnection.connect(workerConnectionOptions(s));
}
