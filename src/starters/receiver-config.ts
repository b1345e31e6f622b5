import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { actionNamespacesSchema } from '../domain/namespaces.js';
import { secretSetting } from '../secret-files.js';

const root = fileURLToPath(new URL('../..', import.meta.url));

const MIN_TOKEN_LENGTH = 16;
const positiveInt = (min: number) => z.coerce.number().int().min(min);

/** The receiver's own settings; Temporal's come from the TEMPORAL_* variables (src/config.ts). */
export const receiverEnvSchema = z
  .object({
    RECEIVER_HOST: z.string().min(1).default('127.0.0.1'),
    RECEIVER_PORT: z.coerce.number().int().min(0).max(65_535).default(8088),
    RECEIVER_TOKEN: z.string().optional(),
    RECEIVER_TOKEN_FILE: z.string().min(1).optional(),
    RECEIVER_BODY_LIMIT: positiveInt(1024).default(1024 * 1024),
    RECEIVER_TEMPORAL_TIMEOUT_MS: positiveInt(100).default(10_000),
    RECEIVER_METRICS_CACHE_MS: positiveInt(0).default(15_000),
    /** Per source address; 0 turns the limit off. */
    RECEIVER_RATE_LIMIT_PER_MINUTE: positiveInt(0).default(600),
    RECEIVER_METRICS_AUTH: z.enum(['none', 'token']).default('none'),
    ACTION_NAMESPACES: actionNamespacesSchema,
    SLACK_SIGNING_SECRET: z.string().min(1).optional(),
    SLACK_SIGNING_SECRET_FILE: z.string().min(1).optional(),
    /** The receiver's Ed25519 private key (PEM), whose public key the contacts file lists as signer `slack`. */
    SLACK_SIGNER_KEY_FILE: z.string().min(1).optional(),
    SLACK_RESPONSE_URL_PREFIX: z.url().default('https://hooks.slack.com/'),
    RECEIVER_LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    RUNBOOKS_DIR: z.string().min(1).default(`${root}runbooks`),
    CONTACTS_FILE: z.string().min(1).default(`${root}config/contacts.yaml`),
  })
  .superRefine((env, ctx) => {
    if (env.RECEIVER_TOKEN !== undefined && env.RECEIVER_TOKEN_FILE) {
      ctx.addIssue({
        code: 'custom',
        path: ['RECEIVER_TOKEN_FILE'],
        message: 'set either RECEIVER_TOKEN or RECEIVER_TOKEN_FILE, not both',
      });
    } else if (env.RECEIVER_TOKEN === undefined && !env.RECEIVER_TOKEN_FILE) {
      ctx.addIssue({
        code: 'custom',
        path: ['RECEIVER_TOKEN'],
        message: 'the receiver refuses to start without a token: set RECEIVER_TOKEN or RECEIVER_TOKEN_FILE',
      });
    } else if (env.RECEIVER_TOKEN !== undefined && env.RECEIVER_TOKEN.trim().length < MIN_TOKEN_LENGTH) {
      ctx.addIssue({
        code: 'custom',
        path: ['RECEIVER_TOKEN'],
        message: `must be at least ${MIN_TOKEN_LENGTH} characters`,
      });
    }
  });

export interface ReceiverConfig {
  host: string;
  port: number;
  token: string;
  bodyLimit: number;
  temporalTimeoutMs: number;
  metricsCacheMs: number;
  rateLimitPerMinute: number;
  actionNamespaces: string[];
  /** Absent: POST /slack/interactions answers 404. */
  slack?: { signingSecret: string; signerKeyPem: string; signerKeyFile: string; responseUrlPrefix: string };
  metricsRequireToken: boolean;
  logLevel: z.output<typeof receiverEnvSchema>['RECEIVER_LOG_LEVEL'];
  runbooksDir: string;
  contactsFile: string;
}

async function slackConfig(
  env: NodeJS.ProcessEnv,
  cfg: z.output<typeof receiverEnvSchema>,
): Promise<Pick<ReceiverConfig, 'slack'>> {
  const signingSecret = secretSetting(env, 'SLACK_SIGNING_SECRET')?.trim();
  if (!signingSecret) return {};
  if (!cfg.SLACK_SIGNER_KEY_FILE) {
    throw new ConfigError(
      'Invalid configuration:\n  SLACK_SIGNER_KEY_FILE: Slack approvals need the key the receiver signs them with (incidentctl keys init --out FILE; list its public key under signers as slack)',
    );
  }
  let signerKeyPem: string;
  try {
    signerKeyPem = await readFile(cfg.SLACK_SIGNER_KEY_FILE, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    throw new ConfigError(
      `Invalid configuration:\n  SLACK_SIGNER_KEY_FILE: cannot read file ${cfg.SLACK_SIGNER_KEY_FILE} (${code})`,
    );
  }
  return {
    slack: {
      signingSecret,
      signerKeyPem,
      signerKeyFile: cfg.SLACK_SIGNER_KEY_FILE,
      responseUrlPrefix: cfg.SLACK_RESPONSE_URL_PREFIX,
    },
  };
}

/** Reads and checks the receiver's environment; errors name the variable and never echo the token. */
export async function loadReceiverConfig(env: NodeJS.ProcessEnv = process.env): Promise<ReceiverConfig> {
  const cfg = parseEnv(receiverEnvSchema, env);
  let token = cfg.RECEIVER_TOKEN?.trim();
  if (cfg.RECEIVER_TOKEN_FILE) {
    try {
      token = (await readFile(cfg.RECEIVER_TOKEN_FILE, 'utf8')).trim();
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code ?? 'unreadable';
      throw new ConfigError(
        `Invalid configuration:\n  RECEIVER_TOKEN_FILE: cannot read file ${cfg.RECEIVER_TOKEN_FILE} (${code})`,
      );
    }
    if (token.length < MIN_TOKEN_LENGTH) {
      throw new ConfigError(
        `Invalid configuration:\n  RECEIVER_TOKEN_FILE: the token in the file must be at least ${MIN_TOKEN_LENGTH} characters`,
      );
    }
  }
  return {
    host: cfg.RECEIVER_HOST,
    port: cfg.RECEIVER_PORT,
    token: token as string,
    bodyLimit: cfg.RECEIVER_BODY_LIMIT,
    temporalTimeoutMs: cfg.RECEIVER_TEMPORAL_TIMEOUT_MS,
    metricsCacheMs: cfg.RECEIVER_METRICS_CACHE_MS,
    rateLimitPerMinute: cfg.RECEIVER_RATE_LIMIT_PER_MINUTE,
    actionNamespaces: cfg.ACTION_NAMESPACES,
    ...(await slackConfig(env, cfg)),
    metricsRequireToken: cfg.RECEIVER_METRICS_AUTH === 'token',
    logLevel: cfg.RECEIVER_LOG_LEVEL,
    runbooksDir: cfg.RUNBOOKS_DIR,
    contactsFile: cfg.CONTACTS_FILE,
  };
}
