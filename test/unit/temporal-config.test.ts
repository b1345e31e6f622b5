import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadTemporalSettings } from '../../src/temporal.js';

describe('Temporal connection settings', () => {
  it('default to the local dev server with no TLS', async () => {
    const s = await loadTemporalSettings({});
    expect(s).toMatchObject({
      address: '127.0.0.1:7233',
      namespace: 'default',
      taskQueue: 'incident-response',
    });
    expect(s.tls).toBeUndefined();
    expect(s.apiKey).toBeUndefined();
  });

  it('name the bad variable without echoing secrets', async () => {
    await expect(loadTemporalSettings({ TEMPORAL_ADDRESS: 'no-port-here' })).rejects.toThrow(
      /TEMPORAL_ADDRESS: expected host:port/,
    );
    await expect(loadTemporalSettings({ TEMPORAL_TLS_CERT: '/x.pem' })).rejects.toThrow(
      /TEMPORAL_TLS_KEY: mTLS needs both/,
    );
    const error = await loadTemporalSettings({
      TEMPORAL_API_KEY: 'secret-key-123',
      TEMPORAL_API_KEY_FILE: '/k',
    }).catch((e: Error) => e);
    expect(String(error)).toContain('TEMPORAL_API_KEY_FILE');
    expect(String(error)).not.toContain('secret-key-123');
    await expect(
      loadTemporalSettings({ TEMPORAL_TLS_CERT: '/nope.pem', TEMPORAL_TLS_KEY: '/nope.key' }),
    ).rejects.toThrow(/TEMPORAL_TLS_CERT: cannot read file \/nope\.pem \(ENOENT\)/);
  });

  it('read mTLS files and API keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tls-'));
    await writeFile(join(dir, 'c.pem'), 'CERT');
    await writeFile(join(dir, 'k.pem'), 'KEY');
    await writeFile(join(dir, 'api-key'), 'abc123\n');
    const mtls = await loadTemporalSettings({
      TEMPORAL_ADDRESS: 'ns.acct.tmprl.cloud:7233',
      TEMPORAL_TLS_CERT: join(dir, 'c.pem'),
      TEMPORAL_TLS_KEY: join(dir, 'k.pem'),
    });
    expect(mtls.tls?.clientCertPair?.crt.toString()).toBe('CERT');
    expect(mtls.tls?.clientCertPair?.key.toString()).toBe('KEY');
    const keyed = await loadTemporalSettings({ TEMPORAL_API_KEY_FILE: join(dir, 'api-key') });
    expect(keyed.apiKey).toBe('abc123');
    expect(keyed.tls).toEqual({});
    const plainKeyed = await loadTemporalSettings({ TEMPORAL_API_KEY: 'k', TEMPORAL_TLS: 'false' });
    expect(plainKeyed.tls).toBeUndefined();
  });
});
