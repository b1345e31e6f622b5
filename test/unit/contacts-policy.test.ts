import { readFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { parse } from 'yaml';
import { contactsSchema } from '../../src/domain/contacts.js';
import { unverifiedRefusal } from '../../src/domain/identity.js';
import { contactsFile, projectRoot } from '../helpers/paths.js';

const load = (file: string) => contactsSchema.parse(parse(readFileSync(file, 'utf8')));

it('the sandbox contacts file stays convenient: unsigned actions may do everything', () => {
  const policy = load(contactsFile).policy?.unverified;
  for (const action of ['acknowledge', 'approve', 'reject', 'resolve', 'cancel']) {
    expect(unverifiedRefusal(policy, action, 'high')).toBeUndefined();
  }
});

it('the production example is strict: unsigned people acknowledge, note and escalate, and decide nothing', () => {
  const contacts = load(`${projectRoot}config/contacts.production.example.yaml`);
  const policy = contacts.policy?.unverified;
  for (const action of ['acknowledge', 'addNote', 'escalate'])
    expect(unverifiedRefusal(policy, action)).toBeUndefined();
  for (const action of ['approve', 'reject']) expect(unverifiedRefusal(policy, action, 'low')).toBeDefined();
  for (const action of ['resolve', 'cancel', 'completeTask'])
    expect(unverifiedRefusal(policy, action)).toBeDefined();
  expect(contacts.people.every((p) => p.publicKey)).toBe(true);
});

it('refuses a malformed key, and one Slack user for two people', () => {
  const base = load(contactsFile);
  const withKey = (publicKey: string) =>
    contactsSchema.safeParse({
      ...base,
      people: [{ ...base.people[0], publicKey }, ...base.people.slice(1)],
    });
  expect(withKey('ssh-ed25519 AAAA').success).toBe(false);
  expect(withKey(`ed25519:${'a'.repeat(64)}`).success).toBe(true);
  const twice = contactsSchema.safeParse({
    ...base,
    people: base.people.map((p, i) => (i < 2 ? { ...p, slackUserId: 'U0SAME0001' } : p)),
  });
  expect(twice.success).toBe(false);
  expect(JSON.stringify(twice.error?.issues)).toContain('a Slack user is one person');
});
