import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/curves/utils.js';
import { z } from 'zod';
import type { Contacts } from './contacts.js';

// Who did a human action: a name proven by an Ed25519 signature, or one only claimed. Pure and deterministic,
// so the workflows verify signatures themselves, by workflow time, the same way on every replay.

/** How long a signature is accepted after (and before: clock skew) the moment it says it was made. */
export const SIGNATURE_VALID_MS = 5 * 60_000;

export const PUBLIC_KEY_PATTERN = /^ed25519:[0-9a-f]{64}$/;
export const publicKeySchema = z
  .string()
  .regex(PUBLIC_KEY_PATTERN, 'an Ed25519 public key is "ed25519:" and 64 hex digits (incidentctl keys init)');

/** The signature a signed action carries beside its own arguments, under the key `signature`. */
export const actionSignatureSchema = z.strictObject({
  signedAt: z.iso.datetime({ offset: true }),
  /** Unique per action: the same signature sent twice is refused the second time. */
  nonce: z.string().regex(/^[A-Za-z0-9_-]{16,64}$/, 'a nonce is 16 to 64 letters, digits, _ or -'),
  /** 64 bytes, hex. */
  sig: z.string().regex(/^[0-9a-f]{128}$/, 'a signature is 128 hex digits'),
  /** A service of the contacts file (e.g. `slack`) that vouches for `by`; absent when `by` signed it. */
  signer: z.string().min(1).max(100).optional(),
});
export type ActionSignature = z.infer<typeof actionSignatureSchema>;

/** What a person's action is known to be: proven by a key, or only claimed (no signature). */
export interface Identity {
  by: string;
  verified: boolean;
  /** The service that vouched for the person (e.g. `slack`), when it was not their own key. */
  via?: string;
}

/** JSON with object keys sorted at every level: the same value is the same text whoever writes it. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** What is signed: the workflow, the action, its arguments and when, so a signature fits nowhere else. */
export interface SignedFields {
  workflowId: string;
  action: string;
  args: Record<string, unknown>;
  signedAt: string;
  nonce: string;
  signer?: string;
}

export function signedText(f: SignedFields): string {
  return canonicalJson({
    v: 1,
    workflowId: f.workflowId,
    action: f.action,
    args: f.args,
    signedAt: f.signedAt,
    nonce: f.nonce,
    signer: f.signer,
  });
}

const encoder = new TextEncoder();

/** Whether `sig` is the signature of `text` by the Ed25519 key `publicKey` ("ed25519:<hex>"). */
export function verifySignature(publicKey: string, text: string, sig: string): boolean {
  if (!PUBLIC_KEY_PATTERN.test(publicKey)) return false;
  try {
    return ed25519.verify(hexToBytes(sig), encoder.encode(text), hexToBytes(publicKey.slice(8)));
  } catch {
    return false;
  }
}

/** What the policy of the contacts file allows an action that carries no signature. */
export interface UnverifiedPolicy {
  /** Actions allowed without a signature (default: all). */
  allow?: string[];
  /** Which steps an unsigned approve or reject may decide (default: any). */
  decideSteps?: 'any' | 'low-risk' | 'none';
}

export interface IdentityCheck {
  contacts: Contacts;
  workflowId: string;
  action: string;
  /** The action's arguments, without `signature`. */
  args: Record<string, unknown> & { by?: unknown };
  signature: unknown;
  nowMs: number;
  /** True when this nonce was already used (and is still within SIGNATURE_VALID_MS). */
  nonceUsed(nonce: string): boolean;
}

/**
 * The identity behind an action: verified when a valid, fresh, unused signature by the person's key (or a
 * service's vouching for them) comes with it; unverified when none does. A signature that is present but
 * does not hold is refused, never downgraded to a claim.
 */
export function checkIdentity(c: IdentityCheck): Identity & { nonce?: string } {
  const by = typeof c.args.by === 'string' ? c.args.by.trim() : '';
  if (c.signature === undefined) return { by, verified: false };
  const parsed = actionSignatureSchema.safeParse(c.signature);
  if (!parsed.success) {
    const problem = parsed.error.issues[0];
    throw new Error(
      `signature: ${problem ? `${problem.path.join('.') || 'value'}: ${problem.message}` : 'invalid'}`,
    );
  }
  const s = parsed.data;
  const key = s.signer
    ? c.contacts.signers?.find((x) => x.name === s.signer)?.publicKey
    : c.contacts.people.find((p) => p.name === by)?.publicKey;
  if (!key) {
    throw new Error(
      s.signer
        ? `signature: "${s.signer}" is not a signer in the contacts file`
        : `signature: ${by || 'the sender'} has no public key in the contacts file (incidentctl keys init)`,
    );
  }
  if (s.signer && !c.contacts.people.some((p) => p.name === by)) {
    throw new Error(`signature: ${s.signer} vouches for "${by}", who is not in the contacts file`);
  }
  const signedAtMs = Date.parse(s.signedAt);
  if (Math.abs(c.nowMs - signedAtMs) > SIGNATURE_VALID_MS) {
    throw new Error(
      `signature: made at ${s.signedAt}, more than ${SIGNATURE_VALID_MS / 60_000} minutes from the workflow's time ${new Date(c.nowMs).toISOString()}; sign it again`,
    );
  }
  const text = signedText({
    workflowId: c.workflowId,
    action: c.action,
    args: c.args,
    signedAt: s.signedAt,
    nonce: s.nonce,
    signer: s.signer,
  });
  if (!verifySignature(key, text, s.sig)) {
    throw new Error(
      `signature: does not match ${s.signer ? `signer ${s.signer}` : by}'s public key for this ${c.action} of ${c.workflowId}`,
    );
  }
  if (c.nonceUsed(s.nonce)) throw new Error('signature: this signed action was already used once (a replay)');
  return { by, verified: true, via: s.signer, nonce: s.nonce };
}

/** Why the contacts file's policy refuses an unsigned action, or undefined when it allows it. */
export function unverifiedRefusal(
  policy: UnverifiedPolicy | undefined,
  action: string,
  stepRisk?: 'low' | 'high',
): string | undefined {
  const how = 'sign it (incidentctl with your key) or ask someone whose key is in the contacts file';
  if (policy?.allow && !policy.allow.includes(action)) {
    return `${action} needs a verified identity here: the contacts file's policy allows unsigned only [${policy.allow.join(', ')}]; ${how}`;
  }
  const decide = policy?.decideSteps ?? 'any';
  if (stepRisk && (decide === 'none' || (decide === 'low-risk' && stepRisk === 'high'))) {
    return `${action} of a ${stepRisk}-risk step needs a verified identity here (policy: unsigned decisions on ${decide === 'none' ? 'no' : 'low-risk'} steps); ${how}`;
  }
  return undefined;
}
