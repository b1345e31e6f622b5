import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createActivities,
  loadActivityDependencies,
  type ActivityDependencies,
} from '../../src/activities/index.js';
import { kafkaActivities } from '../../src/activities/kafka.js';
import { loadKafkaDependencies } from '../../src/activities/kafka-env.js';
import type { ProbeInput } from '../../src/domain/activity-contract.js';
import { createConsumerLag } from '../../src/sandbox/platform-data.js';
import { projectRoot } from '../helpers/paths.js';
import { createTestDatabase, services, uniqueName } from '../helpers/services.js';

// The worker's Kafka settings (KAFKA_SSL*, KAFKA_SASL*) against the suite's broker: its SASL_SSL listener
// (TLS with a certificate of the broker's own CA, then SASL) and its MTLS listener (client certificate),
// both made by scripts/kafka.sh.

const run = promisify(execFile);
const kafkaData = `${projectRoot}.data/kafka`;
const tls = {
  ca: `${kafkaData}/tls/ca.crt`,
  cert: `${kafkaData}/tls/client.crt`,
  key: `${kafkaData}/tls/client.key`,
};
const passwordFile = `${kafkaData}/sasl-password`;
const saslSsl = `127.0.0.1:${process.env.KAFKA_SASL_SSL_PORT ?? '19095'}`;
const mtls = `127.0.0.1:${process.env.KAFKA_MTLS_PORT ?? '19096'}`;
const user = 'incident_response';

const probeInput = (args: Record<string, unknown> = {}, probeId = 'kafka'): ProbeInput => ({
  incidentId: 'all-channels-down/test',
  scope: 'test',
  probeId,
  args,
});
const probesFor = async (env: NodeJS.ProcessEnv) => kafkaActivities(await loadKafkaDependencies(env));

let password = '';
beforeAll(async () => {
  if (!existsSync(tls.ca) || !existsSync(passwordFile)) {
    throw new Error(
      `${tls.ca} or ${passwordFile} is missing: the broker predates its SASL_SSL listener; ` +
        'run scripts/kafka.sh stop && scripts/kafka.sh start',
    );
  }
  password = (await readFile(passwordFile, 'utf8')).trim();
});

describe('the worker on a SASL_SSL listener', () => {
  let deps: ActivityDependencies | undefined;
  let dropDatabase: (() => Promise<void>) | undefined;
  afterAll(async () => {
    await deps?.close();
    await dropDatabase?.();
  });

  it('probes Kafka over TLS with SASL PLAIN, configured by the variables the worker reads', async () => {
    const ledger = await createTestDatabase();
    dropDatabase = ledger.drop;
    deps = await loadActivityDependencies({
      LEDGER_DATABASE_URL: ledger.url,
      PLATFORM_DATABASE_URL: ledger.url,
      KUBECONFIG: services().kubeconfig,
      KAFKA_BROKERS: saslSsl,
      KAFKA_SSL_CA_FILE: tls.ca,
      KAFKA_SASL_MECHANISM: 'PLAIN',
      KAFKA_SASL_USERNAME: user,
      KAFKA_SASL_PASSWORD_FILE: passwordFile,
    });
    const activities = createActivities(deps);

    const cluster = await activities.kafkaCluster(probeInput());
    expect(cluster.status).toBe('ok');
    expect(cluster.evidence).toEqual([`broker 1 at ${saslSsl}`]);

    const topic = uniqueName('fte-messages');
    const group = uniqueName('fte-message-processor');
    await createConsumerLag(
      { brokers: services().kafkaBrokers },
      { topic, group, lag: 6, consumed: 2, partitions: 2 },
    );
    const lag = await activities.kafkaConsumerLag(probeInput({ group, threshold: 100 }, 'kafka-lag'));
    expect(lag.status).toBe('ok');
    expect(lag.metrics.totalLag).toBe(6);
    expect(JSON.stringify([cluster, lag])).not.toContain(password);
  });

  it('says authentication failed on a wrong password, and never shows a password', async () => {
    const wrong = 'Wrong-Kafka-Pw-5c1f9e';
    const probes = await probesFor({
      KAFKA_BROKERS: saslSsl,
      KAFKA_SSL_CA_FILE: tls.ca,
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: user,
      KAFKA_SASL_PASSWORD: wrong,
    });
    const cluster = await probes.kafkaCluster(probeInput());
    // Kafka may be fine; it is the worker's credentials that are wrong: nothing to restart.
    expect(cluster.status).toBe('unknown');
    expect(cluster.summary).toMatch(
      new RegExp(
        `^cannot check Kafka at ${saslSsl}: SASL PLAIN authentication failed: .*Invalid username or password`,
      ),
    );
    expect(cluster.metrics).toMatchObject({ error: 'ForbiddenError', problem: 'authentication' });

    const lag = await probes.kafkaConsumerLag(probeInput({ group: 'g', threshold: 1 }, 'kafka-lag'));
    expect(lag.status).toBe('unknown');
    expect(lag.summary).toMatch(/authentication failed/);
    for (const finding of [cluster, lag]) {
      expect(JSON.stringify(finding)).not.toContain(wrong);
      expect(JSON.stringify(finding)).not.toContain(password);
    }
  });

  it("says the broker's certificate is not trusted when only the system's CAs are", async () => {
    const probes = await probesFor({
      KAFKA_BROKERS: saslSsl,
      KAFKA_SSL: 'true',
      KAFKA_SASL_MECHANISM: 'plain',
      KAFKA_SASL_USERNAME: user,
      KAFKA_SASL_PASSWORD_FILE: passwordFile,
    });
    const cluster = await probes.kafkaCluster(probeInput());
    expect(cluster.status).toBe('unknown');
    expect(cluster.summary).toMatch(
      /^cannot check Kafka at .+: TLS: the broker's certificate is not trusted \(self-signed certificate in certificate chain\); KAFKA_SSL_CA_FILE/,
    );
    expect(cluster.metrics).toMatchObject({ problem: 'tls' });
    expect(JSON.stringify(cluster)).not.toContain(password);
  });

  it('authenticates with SCRAM-SHA-512 once the user has SCRAM credentials', async () => {
    const scramUser = uniqueName('scram');
    const scramPassword = `Scram-Pw-${uniqueName('x')}`;
    const env = {
      KAFKA_BROKERS: saslSsl,
      KAFKA_SSL_CA_FILE: tls.ca,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: scramUser,
      KAFKA_SASL_PASSWORD: scramPassword,
    };
    const before = await (await probesFor(env)).kafkaCluster(probeInput());
    expect(before.status).toBe('unknown');
    expect(before.summary).toMatch(/SCRAM SHA512 authentication failed/);

    // kafka-configs, through the PLAINTEXT listener (no authorizer on the test broker).
    await run(
      'java',
      [
        '-cp',
        `${projectRoot}.tools/kafka/libs/*`,
        'org.apache.kafka.tools.ConfigCommand',
        '--bootstrap-server',
        services().kafkaBrokers[0]!,
        '--alter',
        '--entity-type',
        'users',
        '--entity-name',
        scramUser,
        '--add-config',
        `SCRAM-SHA-512=[iterations=4096,password=${scramPassword}]`,
      ],
      { timeout: 120_000 },
    );
    // The broker applies the new credentials from its metadata log, a moment after the command returns.
    let after = await (await probesFor(env)).kafkaCluster(probeInput());
    for (let i = 0; after.status !== 'ok' && i < 20; i++) {
      await new Promise((r) => setTimeout(r, 250));
      after = await (await probesFor(env)).kafkaCluster(probeInput());
    }
    expect(after.status).toBe('ok');
    expect(JSON.stringify([before, after])).not.toContain(scramPassword);
  });
});

describe('the worker on a listener that requires a client certificate', () => {
  it('connects with KAFKA_SSL_CERT_FILE and KAFKA_SSL_KEY_FILE', async () => {
    const probes = await probesFor({
      KAFKA_BROKERS: mtls,
      KAFKA_SSL_CA_FILE: tls.ca,
      KAFKA_SSL_CERT_FILE: tls.cert,
      KAFKA_SSL_KEY_FILE: tls.key,
    });
    const cluster = await probes.kafkaCluster(probeInput());
    expect(cluster.status).toBe('ok');
    expect(cluster.evidence).toEqual([`broker 1 at ${mtls}`]);
  });

  it('says a client certificate is required without one', async () => {
    const probes = await probesFor({ KAFKA_BROKERS: mtls, KAFKA_SSL_CA_FILE: tls.ca });
    const cluster = await probes.kafkaCluster(probeInput());
    expect(cluster.status).toBe('unknown');
    expect(cluster.summary).toBe(
      `cannot check Kafka at ${mtls}: TLS: the broker requires a client certificate (KAFKA_SSL_CERT_FILE, KAFKA_SSL_KEY_FILE)`,
    );
  });
});
