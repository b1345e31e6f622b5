import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import pg from 'pg';
import { drillReportSchema } from '../../src/cli/drill-report.js';
import { runIncidentctl } from '../../src/cli/incidentctl.js';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { services } from '../helpers/services.js';
import { useProduct } from './harness.js';

// `incidentctl drill api-down` on real parts (see harness.ts): the sandbox on the real control plane behind
// its control API, the receiver, the dev server, the worker with its real activities, and incidentctl itself.
const product = useProduct('all-channels-down');

class Capture extends Writable {
  text = '';
  override _write(chunk: Buffer | string, _enc: BufferEncoding, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

describe('incidentctl drill', () => {
  it('rehearses api-down: detected, approved, repaired, resolved by itself, reported, marked', async () => {
    const { sandbox, env, controlUrl, receiverUrl, receiverToken } = product();
    const stdout = new Capture();
    const stderr = new Capture();
    const code = await runIncidentctl(
      [
        'drill',
        'api-down',
        '--scope',
        sandbox.namespace,
        '--sandbox',
        controlUrl,
        '--receiver',
        receiverUrl,
        '--approve-as',
        'alice',
        '--complete-tasks-as',
        'erin',
        '--timeout',
        '5m',
        '--json',
      ],
      {
        stdout,
        stderr,
        env: {
          PATH: process.env.PATH,
          TEMPORAL_ADDRESS: services().temporalAddress,
          TEMPORAL_NAMESPACE: 'default',
          RECEIVER_TOKEN: receiverToken,
        },
        client: env.client,
        defaultUser: 'drill-test',
      },
    );
    expect(code, `${stderr.text}\n${stdout.text}`).toBe(0);
    const report = drillReportSchema.parse(JSON.parse(stdout.text));
    const id = incidentWorkflowId('all-channels-down', sandbox.namespace);
    expect(report).toMatchObject({
      scenario: 'api-down',
      outcome: 'passed',
      incidentId: id,
      marked: true,
      runbook: { expected: 'all-channels-down', actual: 'all-channels-down' },
      severity: 'P1',
      resolvedBy: 'system',
    });
    expect(report.steps.find((s) => s.id === 'restart-api')).toMatchObject({
      status: 'recovered',
      runs: 1,
      approvedBy: 'alice',
      expected: true,
    });
    expect(report.findings.diagnosis.find((f) => f.probe === 'api-health')?.status).toBe('down');
    expect(report.times.detectMs).not.toBeNull();
    expect(report.times.resolveMs).toBeGreaterThan(0);
    expect(report.actions.map((a) => a.action)).toEqual(['applied', 'sent alert', 'approved', 'sent alert']);
    // Live progress went to stderr with --json: the timeline as it happened.
    expect(stderr.text).toMatch(/step-verified: recovered after/);
    expect(sandbox.scenarios.active).toEqual([]);

    const described = await env.client.workflow.getHandle(id).describe();
    expect(described.status.name).toBe('COMPLETED');
    expect(described.searchAttributes.IncidentDrill).toEqual([true]);
    const post = env.client.workflow.getHandle(report.postIncidentWorkflowId as string);
    expect((await post.describe()).searchAttributes.IncidentDrill).toEqual([true]);

    const ledger = new pg.Client({ connectionString: sandbox.env.LEDGER_DATABASE_URL });
    await ledger.connect();
    try {
      const { rows } = await ledger.query<{ drill: boolean; status: string }>(
        'SELECT drill, status FROM incidents WHERE incident_id = $1',
        [id],
      );
      expect(rows).toEqual([{ drill: true, status: 'resolved' }]);
    } finally {
      await ledger.end();
    }
    await post.terminate('test finished');
  }, 300_000);
});
