import { describe, expect, it } from 'vitest';
import { notifyActivities } from '../../src/activities/notify.js';
import type { ActionInput, Notification } from '../../src/domain/activity-contract.js';
import { contactsSchema } from '../../src/domain/contacts.js';

// Drill notifications: marked DRILL everywhere, and delivered to people only when the drill asked (--notify).

const contacts = contactsSchema.parse({
  roles: { 'on-call': { people: ['alice'] }, platform: { people: ['carol'] } },
  people: [
    { name: 'alice', targets: [{ type: 'slack', webhookUrlEnv: 'SLACK_URL' }] },
    { name: 'carol', targets: [{ type: 'webhook', url: 'http://hooks.test/incident' }, { type: 'log' }] },
  ],
});

function world() {
  const posts: { url: string; body: Record<string, unknown> }[] = [];
  const lines: string[] = [];
  const fetchFake = (async (url: string | URL | Request, init?: RequestInit) => {
    posts.push({ url: String(url), body: JSON.parse(String(init?.body)) as Record<string, unknown> });
    return new Response('ok', { status: 200 });
  }) as typeof fetch;
  const acts = notifyActivities({
    contacts,
    env: { SLACK_URL: 'http://slack.test/services/T1/B1/secret' },
    temporalUiUrl: 'http://ui.test',
    namespace: 'default',
    fetch: fetchFake,
    logger: (line) => lines.push(line),
  });
  return { acts, posts, lines };
}

const note = (over: Partial<Notification> = {}): Notification => ({
  kind: 'opened',
  workflowId: 'incident-all-channels-down--customer-success-fte',
  title: 'All channels down',
  severity: 'P1',
  roles: ['on-call', 'platform'],
  text: 'P1 All channels down: incident opened',
  ...over,
});

describe('drill notifications', () => {
  it('are only logged, marked DRILL, when the drill did not ask to notify', async () => {
    const { acts, posts, lines } = world();
    const result = await acts.notify(note({ drill: { notify: false } }));
    expect(result).toEqual({ delivered: 0, failed: 0, failures: [] });
    expect(posts).toEqual([]);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toMatchObject({
      event: 'notification',
      drill: true,
      sent: false,
      title: '[DRILL] All channels down',
      recipients: ['alice', 'carol'],
    });
  });

  it('reach every target, marked DRILL, with --notify', async () => {
    const { acts, posts, lines } = world();
    const result = await acts.notify(note({ drill: { notify: true } }));
    expect(result.delivered).toBe(3);
    const slack = posts.find((p) => p.url.startsWith('http://slack.test'));
    expect(String(slack?.body.text)).toMatch(/^P1 · \[DRILL\] All channels down/);
    const hook = posts.find((p) => p.url === 'http://hooks.test/incident');
    expect(hook?.body).toMatchObject({ title: '[DRILL] All channels down', drill: true });
    expect(JSON.parse(lines[0] as string)).toMatchObject({ title: '[DRILL] All channels down', drill: true });
  });

  it('of a real incident are unchanged', async () => {
    const { acts, posts } = world();
    await acts.notify(note());
    const hook = posts.find((p) => p.url === 'http://hooks.test/incident');
    expect(hook?.body.title).toBe('All channels down');
    expect(hook?.body).not.toHaveProperty('drill');
  });

  it('notifyTeam in a silent drill logs what it would have said and succeeds', async () => {
    const { acts, posts, lines } = world();
    const input: ActionInput = {
      incidentId: 'incident-high-escalation-rate--customer-success-fte',
      scope: 'customer-success-fte',
      stepId: 'inform-human-team',
      idempotencyKey: 'k-1',
      args: { roles: ['on-call'], message: 'expect more escalations' },
      drill: { notify: false },
    };
    const result = await acts.notifyTeam(input);
    expect(result).toEqual({
      changed: true,
      summary: 'drill: logged, not sent; would have told on-call (alice)',
    });
    expect(posts).toEqual([]);
    expect(JSON.parse(lines[0] as string)).toMatchObject({ drill: true, sent: false, recipients: ['alice'] });
    expect((await acts.notifyTeam(input)).changed).toBe(false);

    const loud = await acts.notifyTeam({ ...input, idempotencyKey: 'k-2', drill: { notify: true } });
    expect(loud.changed).toBe(true);
    expect(String(posts[0]?.body.text)).toContain('[DRILL] Incident incident-high-escalation-rate');
  });
});
