import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { devServerEnv, services, uniqueName } from '../helpers/services.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { alert, productWorker, refusal, status, until } from '../helpers/workflows.js';
import { incidentActions, postIncidentActions } from '../../src/workflows/api.js';
import { signalIncident } from '../../src/starters/deliver.js';

const run = promisify(execFile);

// The real dev server: visibility by search attributes, update errors over the wire, the temporal CLI.
let env: TestWorkflowEnvironment;
beforeAll(async () => {
  env = await devServerEnv();
});
afterAll(async () => {
  await env?.teardown();
});

async function openIncident(taskQueue: string, scope: string) {
  const handle = await signalIncident(
    { client: env.client, taskQueue },
    { runbookId: 'all-channels-down', scope, source: 'alertmanager' },
    [
      {
        ...alert('FTEAllChannelsDown', `fp-${scope}`),
        labels: { alertname: 'FTEAllChannelsDown', namespace: scope },
      },
    ],
  );
  await until(
    () => status(handle),
    (s) => s.awaitingApproval.includes('restart-postgres'),
    'approval wait',
  );
  return handle;
}

async function listed(query: string): Promise<string[]> {
  const ids: string[] = [];
  for await (const wf of env.client.workflow.list({ query })) ids.push(wf.workflowId);
  return ids;
}

async function temporalCli(args: string[]): Promise<string> {
  const { stdout } = await run(services().temporalCli, [
    ...args,
    '--address',
    services().temporalAddress,
    '--namespace',
    'default',
  ]);
  return stdout;
}

describe('on the dev server', () => {
  it('finds a waiting incident and its post-incident report by search attributes', async () => {
    const platform = new FakePlatform().heals('restartStatefulSetPod', { postgres: 'ok' });
    platform.status = { postgres: 'down' };
    platform.metrics = { pods: { 'uid/postgres-0': 'uid-1' } };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    const scope = uniqueName('sa');
    await worker.runUntil(async () => {
      const handle = await openIncident(taskQueue, scope);
      const query = `IncidentRunbook="all-channels-down" AND IncidentStatus="AwaitingApproval" AND AwaitingApproval="restart-postgres" AND WorkflowId="${handle.workflowId}"`;
      expect(
        await until(
          () => listed(query),
          (ids) => ids.length === 1,
          'visibility of the incident',
        ),
      ).toEqual([handle.workflowId]);
      await handle.executeUpdate(incidentActions.approve.update, {
        args: [{ step: 'restart-postgres', by: 'carol' }],
      });
      await until(
        () => status(handle),
        (s) => s.status === 'Monitoring',
        'recovery (verification waits 20 s of real time)',
        600,
      );
      await handle.signal('alerts', {
        alerts: [
          {
            ...alert('FTEAllChannelsDown', `fp-${scope}`, 'resolved'),
            labels: { alertname: 'FTEAllChannelsDown', namespace: scope },
          },
        ],
      });
      const outcome = await handle.result();
      const reportQuery = `ReportStatus="Pending" AND IncidentSeverity="P1" AND WorkflowId="${outcome.postIncidentWorkflowId}"`;
      expect(
        await until(
          () => listed(reportQuery),
          (ids) => ids.length === 1,
          'visibility of the report',
        ),
      ).toEqual([outcome.postIncidentWorkflowId]);
      const post = env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string);
      await post.executeUpdate(postIncidentActions.submitReport.update, {
        args: [{ by: 'alice', rootCause: 'disk', noFollowUps: true }],
      });
      await post.result();
    });
  });

  it('sends update validation errors to the caller and approves through the temporal CLI (update and signal)', async () => {
    const platform = new FakePlatform().onAction('restartStatefulSetPod', (input) => {
      platform.status[input.args.statefulset as string] = 'ok';
      return { changed: true, summary: `restarted ${String(input.args.pod)}` };
    });
    platform.status = { postgres: 'down', kafka: 'down' };
    platform.metrics = { pods: { 'uid/postgres-0': 'uid-1', 'uid/kafka-0': 'uid-2' } };
    const { worker, taskQueue } = await productWorker(env, platform.activities());
    const scope = uniqueName('cli');
    await worker.runUntil(async () => {
      const handle = await openIncident(taskQueue, scope);
      expect(
        await refusal(
          handle.executeUpdate(incidentActions.approve.update, {
            args: [{ step: 'restart-postgres', by: 'dave' }],
          }),
        ),
      ).toMatch(/dave may not decide step "restart-postgres"/);
      expect(
        await refusal(
          handle.executeUpdate(incidentActions.reject.update, {
            args: [{ step: 'restart-postgres', by: 'carol' } as never],
          }),
        ),
      ).toMatch(/invalid arguments: reason:/);

      const cliError = await temporalCli([
        'workflow',
        'update',
        'execute',
        '--workflow-id',
        handle.workflowId,
        '--name',
        'approve',
        '--input',
        JSON.stringify({ step: 'restart-kafka', by: 'carol' }),
      ]).catch((e: { stderr: string }) => e.stderr);
      expect(cliError).toContain('is not waiting for approval');

      const out = await temporalCli([
        'workflow',
        'update',
        'execute',
        '--workflow-id',
        handle.workflowId,
        '--name',
        'approve',
        '--input',
        JSON.stringify({ step: 'restart-postgres', by: 'carol', reason: 'approved from the CLI' }),
      ]);
      expect(out).toContain('approved step restart-postgres');
      await until(
        () => status(handle),
        (s) => s.awaitingApproval.includes('restart-kafka'),
        'the next approval',
        600,
      );
      await temporalCli([
        'workflow',
        'signal',
        '--workflow-id',
        handle.workflowId,
        '--name',
        'approve',
        '--input',
        JSON.stringify({ step: 'restart-kafka', by: 'alice' }),
      ]);
      const s = await until(
        () => status(handle),
        (x) => x.steps[1]?.approvedBy === 'alice',
        'the signal approval',
      );
      expect(s.steps[0]).toMatchObject({ approvedBy: 'carol', reason: 'approved from the CLI' });
      expect(platform.timesActed('restartStatefulSetPod')).toBeGreaterThanOrEqual(1);
      await handle.executeUpdate(incidentActions.resolve.update, { args: [{ by: 'alice' }] });
      await handle.result();
    });
  }, 120_000);
});
