import * as wf from '@temporalio/workflow';

/** A human action on a workflow: validation (throws with a message a person understands) and its effect. */
export interface HumanAction<A> {
  validate(raw: unknown): A;
  apply(args: A): string;
}

/** The Update and Signal definitions of each action, as api.ts declares them (only their names are used). */
type Definitions<N extends string> = Record<N, { update: { name: string }; signal: { name: string } }>;

export interface RegisterOptions {
  /** A Signal that failed validation: it cannot answer its sender, so it is recorded instead. */
  onRefused(name: string, by: string | undefined, error: unknown): void;
  /** Returns false while the workflow cannot take actions yet; the Signal then waits in `deferred`. */
  ready?(): boolean;
  deferred?: (() => void)[];
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
  actions: Record<N, { validate(raw: unknown): unknown; apply(args: never): string }>,
  options: RegisterOptions,
): void {
  for (const name of Object.keys(actions) as N[]) {
    const action = actions[name] as HumanAction<unknown>;
    const defs = definitions[name];
    wf.setHandler(
      wf.defineUpdate<string, [unknown]>(defs.update.name),
      (raw) => action.apply(action.validate(raw)),
      {
        validator: (raw) => {
          try {
            action.validate(raw);
          } catch (error) {
            throw asRefusal(error);
          }
        },
      },
    );
    const signal = (raw: unknown) => {
      try {
        action.apply(action.validate(raw));
      } catch (error) {
        options.onRefused(name, claimedBy(raw), error);
      }
    };
    wf.setHandler(wf.defineSignal<[unknown]>(defs.signal.name), (raw) => {
      if (!options.ready || options.ready()) signal(raw);
      else options.deferred?.push(() => signal(raw));
    });
  }
}
