import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Payload, PayloadCodec } from '@temporalio/common';
import proto from '@temporalio/proto';
import { z } from 'zod';
import { ConfigError } from './config.js';
import { secretSetting } from './secret-files.js';

// Optional encryption of every workflow payload (arguments, results, signals, updates, queries, activity
// inputs and outputs) with AES-256-GCM, so workflow history holds no plaintext for those who read it without
// the key. The worker, the receiver, incidentctl and the codec endpoint for the Temporal UI use the same keys.

export const ENCRYPTED_ENCODING = 'binary/encrypted';
const KEY_ID_METADATA = 'encryption-key-id';
const IV_BYTES = 12;
const TAG_BYTES = 16;

const ProtoPayload = proto.temporal.api.common.v1.Payload;
const utf8 = (s: string) => new TextEncoder().encode(s);

/**
 * PAYLOAD_KEYS (or PAYLOAD_KEYS_FILE): `id=base64key` entries, comma or newline separated, each key 32 bytes.
 * The first encrypts; all of them decrypt, so a key is rotated by putting a new one first and keeping the
 * old ones until no open incident or report holds payloads they encrypted.
 */
const keyEntrySchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,64}=[A-Za-z0-9+/_-]+={0,2}$/, 'each entry is id=base64 (a 32-byte key)');

export interface PayloadKeys {
  current: string;
  keys: Map<string, Buffer>;
}

export function parsePayloadKeys(text: string): PayloadKeys {
  const entries = text
    .split(/[\n,]/)
    .map((e) => e.trim())
    .filter(Boolean);
  if (entries.length === 0) throw new ConfigError('PAYLOAD_KEYS: name at least one key (id=base64)');
  const keys = new Map<string, Buffer>();
  for (const [i, entry] of entries.entries()) {
    // The entry holds a key: a problem names its position, never its text.
    if (!keyEntrySchema.safeParse(entry).success) {
      throw new ConfigError(`PAYLOAD_KEYS: entry ${i + 1} is not id=base64`);
    }
    const at = entry.indexOf('=');
    const id = entry.slice(0, at);
    const key = Buffer.from(entry.slice(at + 1), 'base64');
    if (key.length !== 32) throw new ConfigError(`PAYLOAD_KEYS: key "${id}" is ${key.length} bytes, not 32`);
    if (keys.has(id)) throw new ConfigError(`PAYLOAD_KEYS: key id "${id}" is listed twice`);
    keys.set(id, key);
  }
  return { current: entries[0]?.slice(0, entries[0].indexOf('=')) as string, keys };
}

/** The keys from the environment, or undefined when payloads are not encrypted. */
export function loadPayloadKeys(env: NodeJS.ProcessEnv = process.env): PayloadKeys | undefined {
  const text = secretSetting(env, 'PAYLOAD_KEYS');
  return text?.trim() ? parsePayloadKeys(text) : undefined;
}

/** A new key entry for PAYLOAD_KEYS (`incidentctl`-free: `node -e` in docs/security.md prints one too). */
export function newPayloadKeyEntry(id: string): string {
  return `${id}=${randomBytes(32).toString('base64')}`;
}

export class EncryptionCodec implements PayloadCodec {
  constructor(private readonly keys: PayloadKeys) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    const key = this.keys.keys.get(this.keys.current) as Buffer;
    return payloads.map((payload) => {
      const iv = randomBytes(IV_BYTES);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const plain = ProtoPayload.encode(payload).finish();
      const data = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
      return {
        metadata: { encoding: utf8(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8(this.keys.current) },
        data: new Uint8Array(data),
      };
    });
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((payload) => {
      const encoding = payload.metadata?.encoding;
      if (!encoding || Buffer.from(encoding).toString() !== ENCRYPTED_ENCODING) return payload;
      const id = Buffer.from(payload.metadata?.[KEY_ID_METADATA] ?? new Uint8Array()).toString();
      const key = this.keys.keys.get(id);
      if (!key) throw new Error(`payload encrypted with key "${id}", which PAYLOAD_KEYS does not hold`);
      const data = Buffer.from(payload.data ?? new Uint8Array());
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return ProtoPayload.decode(plain) as Payload;
    });
  }
}

/** The data converter for workers and clients: the default one, plus encryption when keys are set. */
export function dataConverterFor(
  keys: PayloadKeys | undefined,
): { payloadCodecs: PayloadCodec[] } | undefined {
  return keys ? { payloadCodecs: [new EncryptionCodec(keys)] } : undefined;
}
