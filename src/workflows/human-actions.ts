import * as wf from '@temporalio/workflow';
import type { Contacts } from '../domain/contacts.js';
import { checkIdentity, SIGNATURE_VALID_MS, unverifiedRefusal, type Identity } from '../domain/identity.js';

/** A human action on a workflow: validation (throws with a message a person understands) and its effect. */
export interface HumanAction<A> {
  validate(raw: unknown): A;
  apply(args: A, identity: Identity): string;
  /** For approve and reject: the risk of the step decided, which the policy for unsigned decisions weighs. */
  risk?(args: A): 'low' | 'high' | undefined;
}

/** The Update and Signal definitions of each action, as api.ts declares them (only their names are used). */
type Definitions<N extends string> = Record<N, { update: { name: string }; signal: { name: string } }>;

export interface RegisterOptions {
  /** A Signal that failed validation: it cannot answer its sender, so it is recorded instead. */
  onRefused(name: string, by: string | undefined, error: unknown): void;
  /** Returns false while the workflow cannot take actions yet; the Signal then waits in `deferred`. */
  ready?(): boolean;
  deferred?: (() => void)[];
  /**
   * Checks signatures (src/domain/identity.ts) against the contacts the workflow holds. Without it every
   * action is unverified and no signature is accepted.
   */
  identity?: IdentityOptions;
}

export interface IdentityOptions {
  workflowId: string;
  contacts(): Contacts;
  /** Nonces of signed actions taken, with when they expire (ms): kept in the workflow's state. */
  nonces(): Record<string, number>;
}

/** Splits a raw argument into the action's own arguments and the signature that came with them. */
function splitSignature(raw: unknown): { args: unknown; signature: unknown } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || !('signature' in raw)) {
    return { args: raw, signature: undefined };
  }
  const { signature, ...args } = raw as Record<string, unknown>;
  return { args, signature };
}

/** The identity behind an action, or a refusal: a bad signature, or an unsigned action the policy forbids. */
function identify(
  name: string,
  action: HumanAction<unknown>,
  args: unknown,
  signature: unknown,
  options: IdentityOptions | undefined,
): Identity & { nonce?: string } {
  const claimed = (claimedBy(args) ?? '').trim();
  // A workflow without the contacts to check signatures against (a report started before they existed)
  // cannot verify one: the action is what it always was there, a claim.
  if (!options) return { by: claimed, verified: false };
  const contacts = options.contacts();
  const nowMs = Date.now();
  const nonces = options.nonces();
  const identity = checkIdentity({
    contacts,
    workflowId: options.workflowId,
    action: name,
    args: args as Record<string, unknown>,
    signature,
    nowMs,
    nonceUsed: (n) => (nonces[n] ?? 0) > nowMs,
  });
  if (!identity.verified) {
    const refusal = unverifiedRefusal(contacts.policy?.unverified, name, action.risk?.(args));
    if (refusal) throw new Error(refusal);
  }
  return identity;
}

/** Remembers a signed action's nonce until its signature would be stale anyway, and forgets expired ones. */
function spendNonce(identity: { nonce?: string }, options: IdentityOptions | undefined): void {
  if (!identity.nonce || !options) return;
  const nonces = options.nonces();
  const nowMs = Date.now();
  for (const [n, expires] of Object.entries(nonces)) if (expires <= nowMs) delete nonces[n];
  nonces[identity.nonce] = nowMs + 2 * SIGNATURE_VALID_MS;
}

/** Who a raw argument says acted, for the record of a refused attempt (bounded, never trusted). */
export function claimedBy(raw: unknown): string | undefined {
  if (typeof raw !== 'object' || !raw || !('by' in raw)) return undefined;
  const by = (raw as { by: unknown }).by;
  try {
    return String(by).slice(0, 100);
  } catch {
    // An object whose toString is not a function (e.g. {"toString": 1}): String() throws.
    return '(an object)';
  }
}

/** Unpaired UTF-16 surrogates: a string with one is no valid UTF-8, which protobuf strings must be. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g;

/**
 * A refusal as the caller of an Update gets it: the reason, and nothing else.
 * - Well-formed text: a refusal quotes what was sent (an unknown step, who asked), and an argument may hold
 *   an unpaired surrogate (JSON carries one as `\ud800`). protobufjs writes short strings (under 40
 *   characters, e.g. `unknown follow-up "\ud800" (known: FU-1)`) with an encoder of its own that passes
 *   it on as invalid UTF-8: the core cannot decode the worker's completion, the Update never gets an
 *   answer and the worker stops.
 * - No stack trace: it would carry the file paths of the worker's code to whoever sent the Update.
 */
function asRefusal(error: unknown): Error {
  const refusal = error instanceof Error ? error : new Error(String(error));
  refusal.message = refusal.message.replace(LONE_SURROGATE, '\ufffd');
  refusal.stack = '';
  return refusal;
}

/**
 * Registers each action as an Update (validator + handler: the caller gets the verdict) and as a Signal of the
 * same name and argument, for `temporal workflow signal` and the Temporal UI.
 */
export function registerHumanActions<N extends string>(
  definitions: Definitions<N>,
  actions: Record<N, { validate(raw: unknown): unknown; apply(args: never, identity: Identity): string }>,
  options: RegisterOptions,
): void {
  for (const name of Object.keys(actions) as N[]) {
    const action = actions[name] as HumanAction<unknown>;
    const defs = definitions[name];
    // The action's own validation first (it says what is wrong with the arguments), then who sent it.
    const check = (raw: unknown) => {
      const split = splitSignature(raw);
      const args = action.validate(split.args);
      return { args, identity: identify(name, action, split.args, split.signature, options.identity) };
    };
    const run = (raw: unknown) => {
      const { args, identity } = check(raw);
      spendNonce(identity, options.identity);
      return action.apply(args, { by: identity.by, verified: identity.verified, via: identity.via });
    };
    wf.setHandler(wf.defineUpdate<string, [unknown]>(defs.update.name), run, {
      validator: (raw) => {
        try {
          check(raw);
        } catch (error) {
          throw asRefusal(error);
        }
      },
    });
    const signal = (raw: unknown) => {
      try {
        run(raw);
      } catch (error) {
        options.onRefused(name, claimedBy(splitSignature(raw).args), error);
      }
    };
    wf.setHandler(wf.defineSignal<[unknown]>(defs.signal.name), (raw) => {
      if (!options.ready || options.ready()) signal(raw);
      else options.deferred?.push(() => signal(raw));
    });
  }
}
