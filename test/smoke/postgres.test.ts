import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { services } from '../helpers/services.js';

describe('project PostgreSQL', () => {
  it('answers SELECT version()', async () => {
    const client = new pg.Client({ connectionString: services().postgresUrl, connectionTimeoutMillis: 5000 });
    await client.connect();
    try {
      const { rows } = await client.query<{ version: string }>('SELECT version()');
      expect(rows[0]?.version).toMatch(/^PostgreSQL \d+/);
    } finally {
      await client.end();
    }
  });
});
