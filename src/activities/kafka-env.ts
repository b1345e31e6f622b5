import { createPrivateKey, X509Certificate } from 'node:crypto';
import { z } from 'zod';
import { ConfigError, parseEnv, readConfigFile, unsetIfEmpty } from '../config.js';
import type { KafkaDependencies } from './kafka.js';

// How the worker connects to the platform's Kafka: brokers, TLS and SASL, from the environment. The files
// are read once, at start; a rotated certificate or password takes a restart.

const brokerList = z
  .string()
  .transform((s) =>
    s
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean),
  )
  .pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'expected host:port[,host:port…]')).min(1));

const optional = z.preprocess(unsetIfEmpty, z.string().min(1).optional());

export const kafkaEnvShape = {
  KAFKA_BROKERS: brokerList,
  KAFKA_SSL: z.preprocess(unsetIfEmpty, z.enum(['true', 'false']).optional()),
  KAFKA_SSL_CA_FILE: optional,
  KAFKA_SSL_CERT_FILE: optional,
  KAFKA_SSL_KEY_FILE: optional,
  KAFKA_SASL_MECHANISM: z.preprocess(
    (v) => unsetIfEmpty(typeof v === 'string' ? v.trim().toLowerCase() : v),
    z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  ),
  KAFKA_SASL_USERNAME: optional,
  KAFKA_SASL_PASSWORD: optional,
  KAFKA_SASL_PASSWORD_FILE: optional,
};

type KafkaEnvShape = z.output<z.ZodObject<typeof kafkaEnvShape>>;

/** The rules across the Kafka variables; an activity env schema that spreads kafkaEnvShape adds these. */
export function checkKafkaEnv(env: KafkaEnvShape, ctx: z.RefinementCtx): void {
  const issue = (variable: string, message: string) =>
    ctx.addIssue({ code: 'custom', path: [variable], message });
  if (env.KAFKA_SSL === 'false') {
    for (const v of ['KAFKA_SSL_CA_FILE', 'KAFKA_SSL_CERT_FILE', 'KAFKA_SSL_KEY_FILE'] as const) {
      if (env[v]) issue(v, `is set but KAFKA_SSL=false: TLS settings need TLS`);
    }
  }
  if (Boolean(env.KAFKA_SSL_CERT_FILE) !== Boolean(env.KAFKA_SSL_KEY_FILE)) {
    issue(
      env.KAFKA_SSL_CERT_FILE ? 'KAFKA_SSL_KEY_FILE' : 'KAFKA_SSL_CERT_FILE',
      'a client certificate needs both KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE',
    );
  }
  if (env.KAFKA_SASL_PASSWORD && env.KAFKA_SASL_PASSWORD_FILE) {
    issue('KAFKA_SASL_PASSWORD_FILE', 'set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, not both');
  }
  const hasPassword = Boolean(env.KAFKA_SASL_PASSWORD || env.KAFKA_SASL_PASSWORD_FILE);
  if (env.KAFKA_SASL_MECHANISM) {
    if (!env.KAFKA_SASL_USERNAME) issue('KAFKA_SASL_USERNAME', 'required with KAFKA_SASL_MECHANISM');
    if (!hasPassword) {
      issue(
        'KAFKA_SASL_PASSWORD',
        'KAFKA_SASL_MECHANISM needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE',
      );
    }
  } else if (env.KAFKA_SASL_USERNAME || hasPassword) {
    issue(
      'KAFKA_SASL_MECHANISM',
      'SASL credentials are set but no mechanism: set plain, scram-sha-256 or scram-sha-512',
    );
  }
}

export const kafkaEnvSchema = z.object(kafkaEnvShape).superRefine(checkKafkaEnv);
export type KafkaEnv = z.output<typeof kafkaEnvSchema>;

const invalid = (variable: string, message: string) =>
  new ConfigError(`Invalid configuration:\n  ${variable}: ${message}`);

async function readCertificates(variable: string, path: string): Promise<string> {
  const pem = (await readConfigFile(variable, path)).toString('utf8');
  try {
    if (!pem.includes('-----BEGIN CERTIFICATE-----')) throw new Error('no certificate');
    new X509Certificate(pem);
  } catch {
    throw invalid(variable, `${path} holds no PEM certificate`);
  }
  return pem;
}

async function readPrivateKey(variable: string, path: string): Promise<string> {
  const pem = (await readConfigFile(variable, path)).toString('utf8');
  try {
    createPrivateKey(pem);
  } catch {
    throw invalid(variable, `${path} holds no unencrypted PEM private key`);
  }
  return pem;
}

async function readPassword(path: string): Promise<string> {
  // `echo secret > file` ends it with a newline that is not part of the password.
  const password = (await readConfigFile('KAFKA_SASL_PASSWORD_FILE', path))
    .toString('utf8')
    .replace(/\r?\n$/, '');
  if (!password) throw invalid('KAFKA_SASL_PASSWORD_FILE', `${path} is empty`);
  return password;
}

/** The kafka probes' settings from parsed variables; reads the files they name. */
export async function kafkaDependencies(env: KafkaEnv): Promise<KafkaDependencies> {
  const deps: KafkaDependencies = { brokers: env.KAFKA_BROKERS };
  const { KAFKA_SSL_CA_FILE: caFile, KAFKA_SSL_CERT_FILE: certFile, KAFKA_SSL_KEY_FILE: keyFile } = env;
  if (caFile || (certFile && keyFile)) {
    deps.ssl = {
      ...(caFile ? { ca: await readCertificates('KAFKA_SSL_CA_FILE', caFile) } : {}),
      ...(certFile && keyFile
        ? {
            cert: await readCertificates('KAFKA_SSL_CERT_FILE', certFile),
            key: await readPrivateKey('KAFKA_SSL_KEY_FILE', keyFile),
          }
        : {}),
    };
  } else if (env.KAFKA_SSL === 'true') {
    // Node's own trusted CAs (and NODE_EXTRA_CA_CERTS) verify the brokers.
    deps.ssl = true;
  }
  if (env.KAFKA_SASL_MECHANISM && env.KAFKA_SASL_USERNAME) {
    const password = env.KAFKA_SASL_PASSWORD_FILE
      ? await readPassword(env.KAFKA_SASL_PASSWORD_FILE)
      : env.KAFKA_SASL_PASSWORD;
    if (password) {
      deps.sasl = { mechanism: env.KAFKA_SASL_MECHANISM, username: env.KAFKA_SASL_USERNAME, password };
    }
  }
  return deps;
}

/** Parses and loads the Kafka settings alone, as the worker does at start (loadActivityDependencies). */
export async function loadKafkaDependencies(
  processEnv: NodeJS.ProcessEnv = process.env,
): Promise<KafkaDependencies> {
  return kafkaDependencies(parseEnv(kafkaEnvSchema, processEnv));
}
