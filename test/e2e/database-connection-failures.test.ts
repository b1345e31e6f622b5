import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { scenarioInfo } from '../../src/sandbox/scenarios.js';
import { useProduct } from './harness.js';

// Seed procedure 6: idle connections fill the platform database's connection limit, so fte-api fails on every
// endpoint while PostgreSQL itself is up. Terminating the idle connections (low risk) frees the pool.

const runbook = 'database-connection-failures';
const product = useProduct(runbook);

async function platformConnections(url: string): Promise<number> {
  const db = new pg.Client({ connectionString: url });
  await db.connect();
  try {
    const { rows } = await db.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'fte-api'",
    );
    return rows[0]?.n ?? 0;
  } finally {
    await db.end();
  }
}

describe('db-connections-exhausted', () => {
  it('says the pool is exhausted (not that PostgreSQL is down), kills the idle connections and recovers', async () => {
    const { sandbox } = product();
    await sandbox.apply('db-connections-exhausted');
    const held = await platformConnections(sandbox.env.PLATFORM_DATABASE_URL);
    expect(held).toBeGreaterThanOrEqual(38);
    expect((await fetch(`${sandbox.api.url}/health`)).status).toBeGreaterThanOrEqual(500);
    // The Prometheus rule fires after its `for:`; by then the leaked connections have been idle a minute.
    const { alertAfterSeconds } = scenarioInfo('db-connections-exhausted');
    await new Promise((resolve) => setTimeout(resolve, alertAfterSeconds * 1000));

    expect(await product().alert('FTEDatabaseConnectionFailures', 'firing')).toBe(202);
    const killed = await product().waitFor(
      runbook,
      (s) => s.steps.some((st) => st.id === 'kill-idle-connections' && st.runs === 1),
      'diagnosis and the idle-connection cleanup',
      120,
    );
    expect(killed.severity).toBe('P1');
    expect(killed.findings.postgres?.status).toBe('ok');
    expect(killed.findings.connections?.status).toBe('down');
    expect(killed.findings.connections?.summary).toContain('pool exhausted');
    // Said before anything is ended: which sessions the step's selection covers (the platform's own).
    expect(killed.findings.connections?.summary).toMatch(
      /killIdleConnections would end \d+ idle session\(s\) of applications fte-api, fte-message-processor/,
    );
    expect(killed.findings['api-health']?.status).toBe('down');

    const recovered = await product().waitFor(
      runbook,
      (s) => s.status === 'Monitoring',
      'the cleanup verified and fte-api healthy again',
      180,
    );
    const step = recovered.steps.find((s) => s.id === 'kill-idle-connections');
    expect(step?.status).toBe('recovered');
    expect(step?.result).toMatch(
      /terminated (3[89]|40) idle connections of applications fte-api, fte-message-processor /,
    );
    expect(recovered.findings.connections?.status).toBe('ok');
    expect(recovered.findings['api-health']?.status).toBe('ok');
    expect(await platformConnections(sandbox.env.PLATFORM_DATABASE_URL)).toBeLessThan(5);
    // The pool is usable again: a new connection and a query go through.
    expect((await fetch(`${sandbox.api.url}/health`)).status).toBe(200);
    // Only the low-risk step was needed; the API was not restarted.
    expect(recovered.steps.find((s) => s.id === 'restart-api')?.runs ?? 0).toBe(0);

    expect(await product().alert('FTEDatabaseConnectionFailures', 'resolved')).toBe(202);
    const outcome = (await product().handle(runbook).result()) as { postIncidentWorkflowId?: string };
    expect(outcome.postIncidentWorkflowId).toBeDefined();
    await product()
      .env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string)
      .terminate('test done');
  }, 480_000);
});
