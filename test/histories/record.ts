/**
 * Records the histories that test/replay.test.ts replays: a full P1 incident (alert, diagnosis, approval,
 * remediation, verification, resolution) and its post-incident workflow (follow-up, overdue, report).
 * Run after a deliberate, compatible change to the workflows:  npx tsx test/histories/record.ts
 * A change that breaks replay of these histories would break incidents already running in production.
 */
import { writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { historyToJSON } from '@temporalio/common/lib/proto-utils.js';
import { Worker } from '@temporalio/worker';
import { FakePlatform } from '../helpers/fake-platform.js';
import { registerSearchAttributes } from '../helpers/services.js';
import { alert, productBundle } from '../helpers/workflows.js';
import { incidentActions, incidentStatusQuery, postIncidentActions } from '../../src/workflows/api.js';
import { signalIncident } from '../../src/starters/deliver.js';

const here = fileURLToPath(new URL('.', import.meta.url));
const server = execFileSync('bash', [`${here}../../scripts/temporal-test-server.sh`, 'path'], { encoding: 'utf8' }).trim();
const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path: server } } });
await registerSearchAttributes(env.connection, 'default');
const platform = new FakePlatform().heals('restartStatefulSetPod', { postgres: 'ok', 'api-health': 'ok' });
platform.status = { postgres: 'down', 'api-health': 'down' };
platform.metrics = { pods: { 'uid/postgres-0': 'uid-1' } };
const taskQueue = 'record-histories';
const worker = await Worker.create({
  connection: env.nativeConnection,
  taskQueue,
  workflowBundle: await productBundle(),
  activities: platform.activities(),
});

await worker.runUntil(async () => {
  const handle = await signalIncident({ client: env.client, taskQueue }, { runbookId: 'all-channels-down', scope: 'customer-success-fte', source: 'alertmanager' }, [
    alert('FTEAllChannelsDown', 'fp-1'),
  ]);
  for (let i = 0; i < 50; i++) {
    const s = await handle.query(incidentStatusQuery).catch(() => undefined);
    if (s?.awaitingApproval.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  await handle.executeUpdate(incidentActions.acknowledge.update, { args: [{ by: 'alice' }] });
  await handle.signal(incidentActions.addNote.signal, { by: 'alice', text: 'postgres-0 is in CrashLoopBackOff' });
  await handle.executeUpdate(incidentActions.approve.update, { args: [{ step: 'restart-postgres', by: 'carol' }] });
  await env.sleep('2 minutes');
  await handle.signal('alerts', { alerts: [alert('FTEAllChannelsDown', 'fp-1', 'resolved')] });
  const outcome = await handle.result();
  const post = env.client.workflow.getHandle(outcome.postIncidentWorkflowId as string);
  await post.executeUpdate(postIncidentActions.addFollowUp.update, {
    args: [{ title: 'Alert on postgres disk usage', owner: 'carol', dueAt: new Date(Date.now() + 3_600_000).toISOString() }],
  });
  await env.sleep('30 hours');
  await post.executeUpdate(postIncidentActions.submitReport.update, { args: [{ by: 'alice', rootCause: 'disk full' }] });
  await post.executeUpdate(postIncidentActions.completeFollowUp.update, { args: [{ id: 'FU-1', by: 'carol' }] });
  await post.result();
  await writeFile(`${here}p1-incident.json`, historyToJSON(await handle.fetchHistory()));
  await writeFile(`${here}post-incident.json`, historyToJSON(await post.fetchHistory()));
});
await env.teardown();
console.log('recorded test/histories/p1-incident.json and test/histories/post-incident.json');
