import { afterAll, beforeAll, expect, it } from 'vitest';
import { incidentWorkflowId } from '../../src/domain/incident-key.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { until } from '../helpers/workflows.js';
import { uniqueName } from '../helpers/services.js';
import { amAlert, amPayload, post, startHarness, type Harness } from './harness.js';

// The alert's namespace label is whatever its sender wrote: off the allowlist, it opens a triage incident
// (no actions) whose title says why, instead of the runbook that would restart things there.
const allowed = uniqueName('fte')
  .toLowerCase()
  .replace(/[^a-z0-9-]/g, '-')
  .slice(0, 40);
let h: Harness;
beforeAll(async () => {
  h = await startHarness({ actionNamespaces: [allowed] });
});
afterAll(() => h?.close());

it('routes an allowlisted namespace to its runbook and any other to triage, saying why', async () => {
  const other = `kube-system-${allowed}`.slice(0, 63);
  const inside = await post(
    `${h.url}/webhooks/alertmanager`,
    amPayload([amAlert('FTEAllChannelsDown', 'fp-in', allowed)]),
  );
  expect(inside.status).toBe(202);
  expect(inside.body.incidents).toEqual([
    expect.objectContaining({ runbookId: 'all-channels-down', scope: allowed }),
  ]);

  const outside = await post(
    `${h.url}/webhooks/alertmanager`,
    amPayload([amAlert('FTEAllChannelsDown', 'fp-out', other)]),
  );
  expect(outside.status).toBe(202);
  expect(outside.body.incidents).toEqual([expect.objectContaining({ runbookId: 'triage', scope: other })]);
  const handle = h.env.client.workflow.getHandle(incidentWorkflowId('triage', other));
  const s = await until(
    () => handle.query(incidentStatusQuery),
    (x) => x.runbookId === 'triage',
    'the triage incident',
  );
  expect(s.title).toMatch(
    /FTEAllChannelsDown: no runbook action runs here, namespace ".*" is not on the allowlist/,
  );
  expect(s.steps).toEqual([]);
  expect(h.platform.actionCalls).toEqual([]);
});
