import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { z } from 'zod';
import { parseEnv } from '../config.js';
import { contactsSchema } from '../domain/contacts.js';
import { gmailActivities } from './gmail.js';
import { withHeartbeats } from './heartbeats.js';
import { httpActivities } from './http.js';
import { kafkaActivities, kafkaAdmins, type KafkaAdmins, type KafkaDependencies } from './kafka.js';
import { checkKafkaEnv, kafkaDependencies, kafkaEnvShape } from './kafka-env.js';
import { kubernetesActivities, loadKubeConfig } from './kubernetes.js';
import { applyMigrations, ledgerActivities } from './ledger.js';
import { lazyTemporalClient, monitorActivities } from './monitor.js';
import { notifyActivities } from './notify.js';
import { postgresActivities } from './postgres.js';
import { parseYamlFile, runbookActivities } from './runbooks.js';
import { withSecretFiles } from '../secret-files.js';
import { actionNamespacesSchema } from '../domain/namespaces.js';
import { withNamespaceGuard } from './namespace-guard.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const url = z.url();

/** Where the worker finds the platform it protects and its own ledger; one schema, errors name the variable. */
export const activityEnvSchema = z
  .object({
    RUNBOOKS_DIR: z.string().min(1).default(`${root}runbooks`),
    CONTACTS_FILE: z.string().min(1).default(`${root}config/contacts.yaml`),
    LEDGER_DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL'),
    PLATFORM_DATABASE_URL: z.string().regex(/^postgres(ql)?:\/\//, 'expected a postgres:// URL'),
    ...kafkaEnvShape,
    KUBECONFIG: z.string().min(1).optional(),
    FTE_API_URL: url.default('http://127.0.0.1:8000'),
    FTE_API_ADMIN_TOKEN: z.string().min(1).optional(),
    GMAIL_WATCH_URL: url.optional(),
    OPENAI_STATUS_URL: url.default('https://status.openai.com'),
    TWILIO_STATUS_URL: url.default('https://status.twilio.com'),
    TEMPORAL_UI_URL: url.default('http://127.0.0.1:8233'),
    TEMPORAL_NAMESPACE: z.string().min(1).default('default'),
    ACTION_NAMESPACES: actionNamespacesSchema,
  })
  .superRefine(checkKafkaEnv);
export type ActivityEnv = z.output<typeof activityEnvSchema>;

/** Everything activities need from the outside world, created once per worker process. */
export interface ActivityDependencies {
  env: ActivityEnv;
  processEnv: NodeJS.ProcessEnv;
  ledgerPool: pg.Pool;
  /** Brokers, TLS and SASL of the platform's Kafka, with the files the variables name already read. */
  kafka: KafkaDependencies;
  /** The Kafka probes' admin clients, kept connected between calls (closed by close()); without, their own. */
  kafkaAdmins?: KafkaAdmins;
  close(): Promise<void>;
}

/** Reads the configuration, opens the ledger pool and applies the ledger migrations. */
export async function loadActivityDependencies(
  processEnv: NodeJS.ProcessEnv = process.env,
): Promise<ActivityDependencies> {
  const env = parseEnv(activityEnvSchema, withSecretFiles(processEnv));
  const kafka = await kafkaDependencies(env);
  const ledgerPool = new pg.Pool({
    connectionString: env.LEDGER_DATABASE_URL,
    max: 5,
    application_name: 'fte-incident-response',
  });
  ledgerPool.on('error', () => {
    // An idle client lost its connection; the next query reconnects. Nothing to do here.
  });
  try {
    await applyMigrations(ledgerPool);
  } catch (error) {
    await ledgerPool.end();
    throw error;
  }
  const admins = kafkaAdmins(kafka);
  return {
    env,
    processEnv,
    ledgerPool,
    kafka,
    kafkaAdmins: admins,
    close: async () => {
      await Promise.all([ledgerPool.end(), admins.close()]);
    },
  };
}

/**
 * The activity registry the worker serves; names are the ones runbooks and workflows call. Each heartbeats
 * while it runs when its workflow set a heartbeat timeout (heartbeats.ts).
 */
export function createActivities(deps: ActivityDependencies) {
  const { env } = deps;
  const activities = withHeartbeats({
    ...runbookActivities({ runbooksDir: env.RUNBOOKS_DIR, contactsFile: env.CONTACTS_FILE }),
    ...ledgerActivities({ pool: deps.ledgerPool }),
    ...notifyActivities({
      contacts: async () => (await parseYamlFile(env.CONTACTS_FILE, contactsSchema)).value,
      env: deps.processEnv,
      temporalUiUrl: env.TEMPORAL_UI_URL,
      namespace: env.TEMPORAL_NAMESPACE,
    }),
    ...kubernetesActivities({ kubeConfig: loadKubeConfig(env.KUBECONFIG) }),
    ...postgresActivities({
      platformDb: { connectionString: env.PLATFORM_DATABASE_URL },
      ledgerPool: deps.ledgerPool,
    }),
    ...kafkaActivities(deps.kafka, deps.kafkaAdmins),
    ...httpActivities({
      apiBaseUrl: env.FTE_API_URL,
      statusPages: { openai: env.OPENAI_STATUS_URL, twilio: env.TWILIO_STATUS_URL },
    }),
    ...monitorActivities({
      client: lazyTemporalClient(deps.processEnv),
      runbooksDir: env.RUNBOOKS_DIR,
      contactsFile: env.CONTACTS_FILE,
      actionNamespaces: env.ACTION_NAMESPACES,
    }),
    ...gmailActivities({
      watchUrl: env.GMAIL_WATCH_URL ?? `${env.FTE_API_URL.replace(/\/+$/, '')}/admin/gmail/watch`,
      ...(env.FTE_API_ADMIN_TOKEN ? { token: env.FTE_API_ADMIN_TOKEN } : {}),
    }),
  });
  return withNamespaceGuard(activities, env.ACTION_NAMESPACES);
}
