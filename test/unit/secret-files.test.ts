import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { secretSetting, withSecretFiles } from '../../src/secret-files.js';
import { secretsOf } from '../../src/activities/notify-delivery.js';

const dir = mkdtempSync(join(tmpdir(), 'secrets-'));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

it('reads NAME_FILE in place of NAME, without its trailing newline', () => {
  const env = withSecretFiles({
    LEDGER_DATABASE_URL_FILE: file('ledger', 'postgres://u:p4ss@db/ledger\n'),
    PLATFORM_DATABASE_URL: 'postgres://as-is',
  });
  expect(env.LEDGER_DATABASE_URL).toBe('postgres://u:p4ss@db/ledger');
  expect(env.LEDGER_DATABASE_URL_FILE).toBeUndefined();
  expect(env.PLATFORM_DATABASE_URL).toBe('postgres://as-is');
});

it('refuses both set and an unreadable file, naming the variable and never the value', () => {
  expect(() =>
    secretSetting(
      { SLACK_SIGNING_SECRET: 's3cr3t-value', SLACK_SIGNING_SECRET_FILE: file('s', 'x') },
      'SLACK_SIGNING_SECRET',
    ),
  ).toThrow('set either SLACK_SIGNING_SECRET or SLACK_SIGNING_SECRET_FILE, not both');
  const missing = () => secretSetting({ FTE_API_ADMIN_TOKEN_FILE: join(dir, 'nope') }, 'FTE_API_ADMIN_TOKEN');
  expect(missing).toThrow(/FTE_API_ADMIN_TOKEN_FILE: cannot read file .*nope \(ENOENT\)/);
});

it('hides a webhook token given as a file from notification logs like one given in the environment', () => {
  const contacts = {
    roles: { 'on-call': { people: ['alice'] } },
    people: [
      {
        name: 'alice',
        targets: [{ type: 'webhook' as const, url: 'https://pager.example/x', tokenEnv: 'PAGER_TOKEN' }],
      },
    ],
  };
  expect(secretsOf(contacts, { PAGER_TOKEN_FILE: file('pager', 'tok-from-file-123\n') })).toEqual([
    'tok-from-file-123',
  ]);
});
