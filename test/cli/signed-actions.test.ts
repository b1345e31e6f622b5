import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { contactsFile } from '../helpers/paths.js';
import { CliHarness } from './harness.js';

// The verified approval path: `keys init` makes carol's key, the contacts file lists its public key under a
// strict policy (unsigned people may only acknowledge and add notes), and incidentctl signs with it.
const h = new CliHarness();
const dir = mkdtempSync(join(tmpdir(), 'incidentctl-keys-'));
const carolKey = join(dir, 'carol.pem');

beforeAll(async () => {
  const made = await h.cli('--as', 'carol', 'keys', 'init', '--out', carolKey);
  expect(made.code, made.stderr).toBe(0);
  const publicKey = /publicKey: (ed25519:[0-9a-f]{64})/.exec(made.stdout)?.[1];
  expect(publicKey).toBeDefined();
  const contacts = parse(readFileSync(contactsFile, 'utf8')) as {
    people: { name: string; publicKey?: string }[];
    policy?: unknown;
  };
  const carol = contacts.people.find((p) => p.name === 'carol');
  if (carol) carol.publicKey = publicKey;
  contacts.policy = { unverified: { allow: ['acknowledge', 'addNote'], decideSteps: 'none' } };
  const file = join(dir, 'contacts.yaml');
  writeFileSync(file, stringify(contacts));
  h.platform.contactsFile = file;
  h.platform.status = { postgres: 'down' };
  await h.start();
});
afterAll(() => h.stop());

describe('incidentctl keys init', () => {
  it('writes a private key only its owner can read and refuses to overwrite it', async () => {
    expect(statSync(carolKey).mode & 0o777).toBe(0o600);
    expect(readFileSync(carolKey, 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const again = await h.cli('--as', 'carol', 'keys', 'init', '--out', carolKey);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('exists');
  });
});

describe('signed approvals under a strict policy', () => {
  it('refuses carol unsigned, accepts her signed approval as verified, and refuses alice with carol’s key', async () => {
    const id = await h.waitingIncident();
    const unsigned = await h.cli('--as', 'carol', 'approve', id, 'restart-postgres');
    expect(unsigned.code).toBe(1);
    expect(unsigned.stderr).toContain('sent unsigned');
    expect(unsigned.stderr).toMatch(/approve needs a verified identity here/);

    const forged = await h.cli('--as', 'alice', '--key', carolKey, 'approve', id, 'restart-postgres');
    expect(forged.code).toBe(1);
    expect(forged.stderr).toMatch(/does not match alice's public key|alice has no public key/);

    const ack = await h.cli('--as', 'bob', 'ack', id);
    expect(ack.code, ack.stderr).toBe(0);

    const signed = await h.cli('--as', 'carol', '--key', carolKey, 'approve', id, 'restart-postgres');
    expect(signed.code, signed.stderr).toBe(0);
    expect(signed.stderr).toBe('');
    const s = await h.until(id, (x) => x.timeline.some((t) => t.type === 'step-approved'), 'approved');
    expect(s.timeline.find((t) => t.type === 'step-approved')).toMatchObject({ by: 'carol', verified: true });
    expect(s.timeline.find((t) => t.type === 'acknowledged')).toMatchObject({ by: 'bob', verified: false });
  });

  it('reads the key from INCIDENTCTL_KEY_FILE and refuses a key file others can read', async () => {
    const id = await h.waitingIncident();
    const open = join(dir, 'open.pem');
    writeFileSync(open, readFileSync(carolKey));
    chmodSync(open, 0o644);
    const refused = await h.cliWith(
      { env: { INCIDENTCTL_KEY_FILE: open } },
      '--as',
      'carol',
      'note',
      id,
      'x',
    );
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(`chmod 600 ${open}`);
    chmodSync(open, 0o600);
    const note = await h.cliWith(
      { env: { INCIDENTCTL_KEY_FILE: open } },
      '--as',
      'carol',
      'note',
      id,
      'checked',
    );
    expect(note.code, note.stderr).toBe(0);
    const s = await h.until(id, (x) => x.timeline.some((t) => t.type === 'note'), 'note');
    expect(s.timeline.find((t) => t.type === 'note')).toMatchObject({ by: 'carol', verified: true });
  });
});
