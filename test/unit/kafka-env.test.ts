import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { activityEnvSchema } from '../../src/activities/index.js';
import { loadKafkaDependencies } from '../../src/activities/kafka-env.js';
import { ConfigError, parseEnv } from '../../src/config.js';

// The worker's Kafka variables as loadActivityDependencies reads them: what a person sets, what the probes
// get, and what the error says when a setting is wrong.

const run = promisify(execFile);
const secret = 'Kafka-Secret-Pw-77c2';
const brokers = { KAFKA_BROKERS: 'kafka-1.example:9093, kafka-2.example:9093' };
let dir = '';
const file = (name: string) => join(dir, name);

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kafka-env-'));
  await run('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    file('client.key'),
    '-out',
    file('client.crt'),
    '-subj',
    '/CN=test',
    '-days',
    '1',
  ]);
  await writeFile(file('password'), `${secret}\n`);
  await writeFile(file('empty'), '');
  await writeFile(file('not-pem'), 'hello');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The ConfigError of a load, as text. */
const failure = async (env: NodeJS.ProcessEnv) => {
  const error = await loadKafkaDependencies({ ...brokers, ...env }).then(
    () => new Error('loaded'),
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return String(error);
};

describe('Kafka settings from the environment', () => {
  it('are plain brokers by default, and empty variables count as unset', async () => {
    expect(await loadKafkaDependencies(brokers)).toEqual({
      brokers: ['kafka-1.example:9093', 'kafka-2.example:9093'],
    });
    expect(
      await loadKafkaDependencies({
        ...brokers,
        KAFKA_SSL: '',
        KAFKA_SASL_MECHANISM: '',
        KAFKA_SASL_PASSWORD: '',
      }),
    ).not.toHaveProperty('sasl');
  });

  it('turn on TLS with the system CAs, or with the CA file and client certificate they name', async () => {
    expect((await loadKafkaDependencies({ ...brokers, KAFKA_SSL: 'true' })).ssl).toBe(true);
    const deps = await loadKafkaDependencies({
      ...brokers,
      KAFKA_SSL_CA_FILE: file('client.crt'),
      KAFKA_SSL_CERT_FILE: file('client.crt'),
      KAFKA_SSL_KEY_FILE: file('client.key'),
    });
    expect(deps.ssl).toEqual({
      ca: expect.stringContaining('-----BEGIN CERTIFICATE-----'),
      cert: expect.stringContaining('-----BEGIN CERTIFICATE-----'),
      key: expect.stringContaining('PRIVATE KEY-----'),
    });
  });

  it('give SASL the mechanism, user and password, from the variable or from a file', async () => {
    expect(
      (
        await loadKafkaDependencies({
          ...brokers,
          KAFKA_SASL_MECHANISM: 'SCRAM-SHA-512',
          KAFKA_SASL_USERNAME: 'probe',
          KAFKA_SASL_PASSWORD: secret,
        })
      ).sasl,
    ).toEqual({ mechanism: 'scram-sha-512', username: 'probe', password: secret });
    expect(
      (
        await loadKafkaDependencies({
          ...brokers,
          KAFKA_SASL_MECHANISM: 'plain',
          KAFKA_SASL_USERNAME: 'probe',
          KAFKA_SASL_PASSWORD_FILE: file('password'),
        })
      ).sasl,
    ).toEqual({ mechanism: 'plain', username: 'probe', password: secret });
  });

  it('name the variable that is wrong or missing, never the password', async () => {
    const missing = await failure({ KAFKA_SASL_MECHANISM: 'plain' });
    expect(missing).toMatch(/KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM/);
    expect(missing).toMatch(
      /KAFKA_SASL_PASSWORD: KAFKA_SASL_MECHANISM needs KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE/,
    );

    for (const env of [
      { KAFKA_SASL_USERNAME: 'probe', KAFKA_SASL_PASSWORD: secret },
      { KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'probe', KAFKA_SASL_PASSWORD: secret },
    ]) {
      const text = await failure(env);
      expect(text).toContain('KAFKA_SASL_MECHANISM');
      expect(text).not.toContain(secret);
    }
    const both = await failure({
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: 'probe',
      KAFKA_SASL_PASSWORD: secret,
      KAFKA_SASL_PASSWORD_FILE: file('password'),
    });
    expect(both).toMatch(
      /KAFKA_SASL_PASSWORD_FILE: set either KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE/,
    );
    expect(both).not.toContain(secret);

    expect(await failure({ KAFKA_SSL: 'yes' })).toContain('KAFKA_SSL:');
    expect(await failure({ KAFKA_SSL_CERT_FILE: file('client.crt') })).toMatch(
      /KAFKA_SSL_KEY_FILE: a client certificate needs both/,
    );
    expect(await failure({ KAFKA_SSL: 'false', KAFKA_SSL_CA_FILE: file('client.crt') })).toMatch(
      /KAFKA_SSL_CA_FILE: is set but KAFKA_SSL=false/,
    );
  });

  it('name the variable of a file that is missing, empty or not PEM', async () => {
    expect(await failure({ KAFKA_SSL_CA_FILE: file('nope.crt') })).toContain(
      `KAFKA_SSL_CA_FILE: cannot read file ${file('nope.crt')} (ENOENT)`,
    );
    expect(await failure({ KAFKA_SSL_CA_FILE: file('not-pem') })).toContain(
      `KAFKA_SSL_CA_FILE: ${file('not-pem')} holds no PEM certificate`,
    );
    expect(
      await failure({ KAFKA_SSL_CERT_FILE: file('client.crt'), KAFKA_SSL_KEY_FILE: file('client.crt') }),
    ).toContain(`KAFKA_SSL_KEY_FILE: ${file('client.crt')} holds no unencrypted PEM private key`);
    const sasl = { KAFKA_SASL_MECHANISM: 'plain', KAFKA_SASL_USERNAME: 'probe' };
    expect(await failure({ ...sasl, KAFKA_SASL_PASSWORD_FILE: file('empty') })).toContain(
      `KAFKA_SASL_PASSWORD_FILE: ${file('empty')} is empty`,
    );
    expect(await failure({ ...sasl, KAFKA_SASL_PASSWORD_FILE: file('nope') })).toContain(
      'KAFKA_SASL_PASSWORD_FILE: cannot read file',
    );
  });

  it("are checked with the rest of the worker's settings", () => {
    const worker = {
      LEDGER_DATABASE_URL: 'postgres://u@127.0.0.1:1/ledger',
      PLATFORM_DATABASE_URL: 'postgres://u@127.0.0.1:1/platform',
      ...brokers,
    };
    expect(() => parseEnv(activityEnvSchema, { ...worker, KAFKA_SASL_MECHANISM: 'plain' })).toThrow(
      /KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM/,
    );
    expect(parseEnv(activityEnvSchema, worker).KAFKA_BROKERS).toHaveLength(2);
  });
});
