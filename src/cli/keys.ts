import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { newKeyPair, parsePrivateKey } from '../action-signing.js';
import type { CliContext } from './context.js';
import { refused, usageError } from './errors.js';

// The person's signing key: `--key FILE`, else $INCIDENTCTL_KEY_FILE, else the file `keys init` writes.

export function defaultKeyFile(env: NodeJS.ProcessEnv): string {
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'incidentctl', 'key.pem');
}

/** Where the key is looked for, and whether the person named it (then it must exist). */
function keyLocation(ctx: CliContext): { file: string; named: boolean } {
  const named = ctx.globals.key ?? ctx.environment.INCIDENTCTL_KEY_FILE;
  return named ? { file: named, named: true } : { file: defaultKeyFile(ctx.environment), named: false };
}

/**
 * The signing key, or undefined when none is set up (the action then goes unsigned and is recorded as an
 * unverified claim). A key file others can read is refused, as ssh refuses one.
 */
export function loadSigningKey(ctx: CliContext): KeyObject | undefined {
  const { file, named } = keyLocation(ctx);
  if (!existsSync(file)) {
    if (named) throw usageError(`no key file at ${file} (incidentctl keys init makes one)`);
    return undefined;
  }
  if ((statSync(file).mode & 0o077) !== 0) {
    throw refused(`the key file ${file} can be read by others; make it yours alone: chmod 600 ${file}`);
  }
  return parsePrivateKey(readFileSync(file, 'utf8'), file);
}

/** `incidentctl keys init`: a new key pair; prints the line for the person's entry in the contacts file. */
export function initKeys(ctx: CliContext, o: { out?: string; force?: boolean }): void {
  const file = o.out ?? keyLocation(ctx).file;
  if (existsSync(file) && !o.force) {
    throw refused(
      `${file} exists; keep using it, or replace it with --force (its public key then stops working)`,
    );
  }
  const { privateKeyPem, publicKey } = newKeyPair();
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  writeFileSync(file, privateKeyPem, { mode: 0o600 });
  chmodSync(file, 0o600);
  ctx.out(`wrote your private key to ${file} (readable by you alone; never share it)`);
  ctx.out(`add your public key to your entry in the contacts file (${ctx.paths.contactsFile}):`);
  ctx.out(`  - name: ${ctx.identity}`);
  ctx.out(`    publicKey: ${publicKey}`);
  ctx.out('actions you send with incidentctl are then signed and recorded as verified');
}
