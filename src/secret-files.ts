import { readFileSync } from 'node:fs';
import { ConfigError } from './config.js';

// Every secret setting NAME may instead be given as NAME_FILE, the path of a file that holds it (a mounted
// Kubernetes Secret, a Docker secret), so that the value is in no process environment and no manifest.

/** Secrets of the worker and the receiver besides those read where they are used (TEMPORAL_API_KEY, Kafka's). */
export const SECRET_SETTINGS = [
  'LEDGER_DATABASE_URL',
  'PLATFORM_DATABASE_URL',
  'FTE_API_ADMIN_TOKEN',
  'RECEIVER_TOKEN',
  'SLACK_SIGNING_SECRET',
  'PAYLOAD_KEYS',
  'CODEC_TOKEN',
] as const;

/**
 * The value of a secret setting: NAME, else the content of the file NAME_FILE names (one trailing newline
 * dropped). Both set is an error; so is a file that cannot be read. Errors name the variable, never the value.
 */
export function secretSetting(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const file = env[`${name}_FILE`];
  if (!file) return env[name];
  if (env[name] !== undefined) throw new ConfigError(`set either ${name} or ${name}_FILE, not both`);
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(`${name}_FILE: cannot read file ${file} (${code})`);
  }
}

/** The environment with each listed secret read from its NAME_FILE where one is given. */
export function withSecretFiles(
  env: NodeJS.ProcessEnv,
  names: readonly string[] = SECRET_SETTINGS,
): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const name of names) {
    if (!env[`${name}_FILE`]) continue;
    out[name] = secretSetting(env, name);
    delete out[`${name}_FILE`];
  }
  return out;
}
