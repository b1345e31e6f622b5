import { z } from 'zod';
import { ConfigError, parseEnv } from '../config.js';
import { FteApiSim } from './fte-api.js';

// Runs the simulated fte-api by itself (demo, drills): `tsx src/sandbox/fte-api-server.ts`.

const envSchema = z.object({
  FTE_API_SIM_HOST: z.string().min(1).default('127.0.0.1'),
  FTE_API_SIM_PORT: z.coerce.number().int().min(0).max(65_535).default(8000),
  /** Bearer token of the /admin endpoints; the worker's Gmail activities use the same value. */
  FTE_API_ADMIN_TOKEN: z.string().min(8),
});

let env: z.output<typeof envSchema>;
try {
  env = parseEnv(envSchema);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`${error.message}\n`);
  process.exit(2);
}
const sim = await FteApiSim.start({
  host: env.FTE_API_SIM_HOST,
  port: env.FTE_API_SIM_PORT,
  adminToken: env.FTE_API_ADMIN_TOKEN,
});
process.stdout.write(`simulated fte-api listening on ${sim.url}\n`);
const shutdown = () => void sim.stop().then(() => process.exit(0));
process.once('SIGINT', shutdown);
process.once('SIGTERM', shutdown);
