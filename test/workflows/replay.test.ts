import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { Worker } from '@temporalio/worker';
import { productBundle } from '../helpers/workflows.js';
import { projectRoot } from '../helpers/paths.js';

// Histories recorded from the workflows as they ran (test/histories/record.ts). Replaying them against the
// current code fails when a change would break incidents and reports that are already running.
describe('replay of recorded histories', () => {
  for (const [name, type, workflowId] of [
    ['p1-incident.json', 'incidentWorkflow', 'incident-all-channels-down--customer-success-fte'],
    ['post-incident.json', 'postIncidentWorkflow', 'post-incident-all-channels-down--customer-success-fte'],
    // One scheduled run of the health monitor as it was before it probed the database pool and the Gmail
    // watch (recorded from commit bad9545; the current code cannot record it again): a deploy can land mid-run.
    ['health-monitor-before-pool-probe.json', 'healthMonitorWorkflow', 'monitor-health-2026-11-27T03:00:00Z'],
  ] as const) {
    it(`${name} replays against the current ${type}`, async () => {
      const history = JSON.parse(await readFile(`${projectRoot}test/histories/${name}`, 'utf8')) as {
        events: { workflowExecutionStartedEventAttributes?: { workflowType?: { name?: string } } }[];
      };
      expect(history.events[0]?.workflowExecutionStartedEventAttributes?.workflowType?.name).toBe(type);
      expect(history.events.length).toBeGreaterThan(20);
      await expect(
        Worker.runReplayHistory({ workflowBundle: await productBundle() }, history, workflowId),
      ).resolves.toBeUndefined();
    });
  }
});
