import { expect, it } from 'vitest';
import { slackMessage, type OutgoingMessage } from '../../src/activities/notify-message.js';

const base: OutgoingMessage = {
  kind: 'approval-needed',
  workflowId: 'incident-all-channels-down--customer-success-fte',
  title: 'All channels down',
  severity: 'P1',
  text: 'Approval needed: restart PostgreSQL',
  roles: ['platform'],
  command: 'incidentctl approve incident-all-channels-down--customer-success-fte restart-postgres',
  step: 'restart-postgres',
  link: 'http://127.0.0.1:8233/namespaces/default/workflows/x',
};

const buttons = (m: OutgoingMessage) =>
  slackMessage(m, ['carol'])
    .blocks.flatMap((b) => (b.type === 'actions' ? b.elements : []))
    .map((e) => ({ action: e.action_id, value: e.value }));

it('an approval message carries Approve and Reject buttons naming the incident and the step', () => {
  const value = JSON.stringify({ workflowId: base.workflowId, step: 'restart-postgres' });
  expect(buttons(base)).toEqual([
    { action: 'incident-approve', value },
    { action: 'incident-reject', value },
    { action: 'open-workflow', value: undefined },
  ]);
  expect(buttons({ ...base, kind: 'approval-reminder' }).map((b) => b.action)).toContain('incident-approve');
});

it('other messages, and approval messages without a step, only link to the Temporal UI', () => {
  expect(buttons({ ...base, kind: 'escalated' })).toEqual([{ action: 'open-workflow', value: undefined }]);
  const { step: _step, ...noStep } = base;
  expect(buttons(noStep)).toEqual([{ action: 'open-workflow', value: undefined }]);
});
