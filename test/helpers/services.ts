import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';
import pg from 'pg';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import type { Connection } from '@temporalio/client';
import proto from '@temporalio/proto';
import { searchAttributeKeys } from '../../src/workflows/search-attributes.js';

export const services = () => inject('services');

/** A short random suffix that keeps a test file's queues, databases and topics apart from others'. */
export function uniqueName(prefix: string): string {
  return `${prefix}-${randomBytes(4).toString('hex')}`;
}

/** A fresh database on the project PostgreSQL, dropped by the returned function. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const adminUrl = services().postgresUrl;
  const name = uniqueName('test').replace('-', '_');
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: adminUrl });
      await c.connect();
      try {
        await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await c.end();
      }
    },
  };
}

/** A test environment on the suite's real Temporal dev server (visibility, search attributes, CLI). */
export async function devServerEnv(): Promise<TestWorkflowEnvironment> {
  const { temporalAddress, temporalNamespace } = services();
  return TestWorkflowEnvironment.createFromExistingServer({
    address: temporalAddress,
    namespace: temporalNamespace,
  });
}

/** A test environment on the time-skipping server, with the contract's search attributes registered. */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: services().timeSkippingServer } },
  });
  await registerSearchAttributes(env.connection, env.namespace ?? 'default');
  return env;
}

export async function registerSearchAttributes(connection: Connection, namespace: string): Promise<void> {
  const { IndexedValueType } = proto.temporal.api.enums.v1;
  const searchAttributes: Record<string, proto.temporal.api.enums.v1.IndexedValueType> = {};
  for (const key of searchAttributeKeys) {
    searchAttributes[key.name] = IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`];
  }
  await connection.operatorService.addSearchAttributes({ namespace, searchAttributes });
}
