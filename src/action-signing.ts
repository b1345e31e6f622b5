import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  type KeyObject,
} from 'node:crypto';
import { signedText, type ActionSignature } from './domain/identity.js';

// Signing a person's action with an Ed25519 private key (incidentctl), or a service's vouching for a person it
// authenticated itself (the receiver's Slack endpoint). The workflows verify with src/domain/identity.ts.

/** The public key as the contacts file lists it: "ed25519:" and the 32 raw bytes in hex. */
export function publicKeyLine(key: KeyObject): string {
  const publicKey = key.type === 'private' ? createPublicKey(key) : key;
  const jwk = publicKey.export({ format: 'jwk' });
  if (jwk.crv !== 'Ed25519' || !jwk.x) throw new Error('not an Ed25519 key');
  return `ed25519:${Buffer.from(jwk.x, 'base64url').toString('hex')}`;
}

/** A new key pair: the private key as PKCS#8 PEM (keep it secret) and the public key line for the contacts file. */
export function newKeyPair(): { privateKeyPem: string; publicKey: string } {
  const { privateKey } = generateKeyPairSync('ed25519');
  return {
    privateKeyPem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicKey: publicKeyLine(privateKey),
  };
}

/** Reads an Ed25519 private key from PEM; the error never quotes the key. */
export function parsePrivateKey(pem: string, source: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw new Error(`${source} does not hold a PEM private key (incidentctl keys init makes one)`);
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new Error(
      `${source} holds a ${key.asymmetricKeyType ?? 'non-asymmetric'} key; an Ed25519 key is needed`,
    );
  }
  return key;
}

export interface ActionToSign {
  workflowId: string;
  action: string;
  /** The action's arguments exactly as they will be sent, without `signature`. */
  args: Record<string, unknown>;
  /** A service signing for the person named in `args.by` (contacts file `signers`). */
  signer?: string;
  now?: Date;
}

/** The `signature` to send beside the action's arguments. */
export function signAction(key: KeyObject, a: ActionToSign): ActionSignature {
  const signedAt = (a.now ?? new Date()).toISOString();
  const nonce = randomBytes(18).toString('base64url');
  const text = signedText({
    workflowId: a.workflowId,
    action: a.action,
    args: a.args,
    signedAt,
    nonce,
    signer: a.signer,
  });
  const sig = sign(null, Buffer.from(text, 'utf8'), key).toString('hex');
  return { signedAt, nonce, sig, ...(a.signer ? { signer: a.signer } : {}) };
}
