import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { z } from 'zod';
import { projectRoot } from '../helpers/paths.js';
import {
  acknowledgeArgs,
  addFollowUpArgs,
  addNoteArgs,
  approveArgs,
  completeFollowUpArgs,
  completeTaskArgs,
  cancelArgs,
  escalateArgs,
  markRunbookUpdatedArgs,
  rejectArgs,
  resolveArgs,
  submitReportArgs,
} from '../../src/domain/commands.js';
import { incidentActions, postIncidentActions } from '../../src/workflows/api.js';

// docs/cli.md gives the plain `temporal` CLI equivalent of every human action: each must name a real
// Update/Signal and carry an argument the workflow accepts.
const schemas: Record<string, { schema: z.ZodType; on: 'incident' | 'post-incident' }> = {
  acknowledge: { schema: acknowledgeArgs, on: 'incident' },
  approve: { schema: approveArgs, on: 'incident' },
  reject: { schema: rejectArgs, on: 'incident' },
  resolve: { schema: resolveArgs, on: 'incident' },
  escalate: { schema: escalateArgs, on: 'incident' },
  addNote: { schema: addNoteArgs, on: 'incident' },
  completeTask: { schema: completeTaskArgs, on: 'incident' },
  cancel: { schema: cancelArgs, on: 'incident' },
  submitReport: { schema: submitReportArgs, on: 'post-incident' },
  addFollowUp: { schema: addFollowUpArgs, on: 'post-incident' },
  completeFollowUp: { schema: completeFollowUpArgs, on: 'post-incident' },
  markRunbookUpdated: { schema: markRunbookUpdatedArgs, on: 'post-incident' },
};

describe('docs/cli.md', () => {
  it('shows every human action as a valid temporal Update and Signal', async () => {
    const doc = await readFile(`${projectRoot}docs/cli.md`, 'utf8');
    const lines = doc.split('\n').filter((l) => /^temporal workflow (update execute|signal) /.test(l));
    const seen = { update: new Set<string>(), signal: new Set<string>() };
    for (const line of lines) {
      const m =
        /^temporal workflow (update execute|signal) --workflow-id (\S+) --name (\w+) --input '([^']*)'$/.exec(
          line,
        );
      expect(m, line).not.toBeNull();
      const [, kind, workflowId, name, input] = m as RegExpExecArray;
      const spec = schemas[name as string];
      expect(spec, `unknown action in: ${line}`).toBeDefined();
      expect(workflowId?.startsWith(spec?.on === 'incident' ? 'incident-' : 'post-incident-'), line).toBe(
        true,
      );
      const parsed = spec?.schema.safeParse(JSON.parse(input as string));
      expect(parsed?.success, `${line}: ${JSON.stringify(parsed?.error?.issues)}`).toBe(true);
      seen[kind === 'signal' ? 'signal' : 'update'].add(name as string);
    }
    const all = [...Object.keys(incidentActions), ...Object.keys(postIncidentActions)].sort();
    expect([...seen.update].sort()).toEqual(all);
    expect([...seen.signal].sort()).toEqual(all);
  });

  it('has a section with an example for every incidentctl command', async () => {
    const doc = await readFile(`${projectRoot}docs/cli.md`, 'utf8');
    for (const command of [
      'list',
      'show',
      'declare',
      'ack',
      'approve',
      'reject',
      'resolve',
      'escalate',
      'note',
      'task done',
      'report submit',
      'report runbook-updated',
      'followup add',
      'followup done',
      'runbook lint',
      'schedules apply',
      'drill',
    ]) {
      expect(doc, command).toMatch(new RegExp(`^### \`${command}\\b`, 'm'));
      expect(doc, command).toMatch(new RegExp(`^incidentctl ${command}\\b`, 'm'));
    }
  });
});
