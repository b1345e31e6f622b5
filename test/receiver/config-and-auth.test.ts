import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ServiceError } from '@temporalio/client';
import { alertmanagerWebhookSchema, toDomainAlert } from '../../src/starters/alertmanager-payload.js';
import { tokenChecker } from '../../src/starters/receiver-auth.js';
import { loadReceiverConfig } from '../../src/starters/receiver-config.js';
import { temporalUnavailableReason } from '../../src/starters/receiver-temporal.js';
import { amAlert, amPayload, basic, bearer } from './harness.js';

const TOKEN = 'a-long-enough-secret-token';

describe('receiver configuration', () => {
  it('has loopback defaults and needs only a token', async () => {
    const cfg = await loadReceiverConfig({ RECEIVER_TOKEN: TOKEN });
    expect(cfg).toMatchObject({ host: '127.0.0.1', port: 8088, bodyLimit: 1024 * 1024, token: TOKEN });
    expect(cfg.runbooksDir).toMatch(/\/runbooks$/);
    expect(cfg.contactsFile).toMatch(/\/config\/contacts\.yaml$/);
  });

  it('refuses to start without a token, and names the variable of each problem without echoing it', async () => {
    await expect(loadReceiverConfig({})).rejects.toThrow(
      /RECEIVER_TOKEN: the receiver refuses to start without a token/,
    );
    const short = await loadReceiverConfig({ RECEIVER_TOKEN: 'short-secret' }).catch((e: Error) => e);
    expect(String(short)).toMatch(/RECEIVER_TOKEN: must be at least 16 characters/);
    expect(String(short)).not.toContain('short-secret');
    await expect(loadReceiverConfig({ RECEIVER_TOKEN: TOKEN, RECEIVER_TOKEN_FILE: '/t' })).rejects.toThrow(
      /RECEIVER_TOKEN_FILE: set either RECEIVER_TOKEN or RECEIVER_TOKEN_FILE, not both/,
    );
    await expect(loadReceiverConfig({ RECEIVER_TOKEN: TOKEN, RECEIVER_PORT: 'http' })).rejects.toThrow(
      /RECEIVER_PORT: /,
    );
    await expect(loadReceiverConfig({ RECEIVER_TOKEN: TOKEN, RECEIVER_BODY_LIMIT: '10' })).rejects.toThrow(
      /RECEIVER_BODY_LIMIT: /,
    );
  });

  it('reads the token from RECEIVER_TOKEN_FILE, trimmed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'receiver-'));
    await writeFile(join(dir, 'token'), `${TOKEN}\n`);
    await writeFile(join(dir, 'weak'), 'weak\n');
    expect((await loadReceiverConfig({ RECEIVER_TOKEN_FILE: join(dir, 'token') })).token).toBe(TOKEN);
    await expect(loadReceiverConfig({ RECEIVER_TOKEN_FILE: join(dir, 'weak') })).rejects.toThrow(
      /RECEIVER_TOKEN_FILE: the token in the file must be at least 16 characters/,
    );
    await expect(loadReceiverConfig({ RECEIVER_TOKEN_FILE: join(dir, 'missing') })).rejects.toThrow(
      /RECEIVER_TOKEN_FILE: cannot read file .*missing \(ENOENT\)/,
    );
  });
});

describe('credentials', () => {
  const check = tokenChecker(TOKEN);

  it('accept the token as bearer, or as basic-auth password with any username', () => {
    expect(check(bearer(TOKEN))).toBe('ok');
    expect(check(`bearer ${TOKEN}`)).toBe('ok');
    expect(check(basic('alertmanager', TOKEN))).toBe('ok');
    expect(check(basic('', TOKEN))).toBe('ok');
  });

  it('tell missing credentials from wrong ones', () => {
    expect(check(undefined)).toBe('missing');
    expect(check('')).toBe('missing');
    expect(check(bearer(`${TOKEN}x`))).toBe('wrong');
    expect(check(bearer(TOKEN.slice(0, -1)))).toBe('wrong');
    expect(check(basic(TOKEN, 'password'))).toBe('wrong');
    expect(check(`Basic ${Buffer.from(TOKEN).toString('base64')}`)).toBe('wrong');
    expect(check(`Token ${TOKEN}`)).toBe('wrong');
    expect(check(TOKEN)).toBe('wrong');
  });
});

describe('Alertmanager payload', () => {
  it('becomes domain alerts that keep fingerprint, status, labels, annotations and times', () => {
    const firing = amAlert('FTEAllChannelsDown', 'fp-1', 'ns-a');
    const resolved = amAlert('FTEAllChannelsDown', 'fp-2', 'ns-a', 'resolved');
    const payload = alertmanagerWebhookSchema.parse(amPayload([firing, resolved]));

    expect(payload.alerts.map(toDomainAlert)).toEqual([
      {
        fingerprint: 'fp-1',
        status: 'firing',
        labels: firing.labels,
        annotations: firing.annotations,
        startsAt: firing.startsAt,
      },
      {
        fingerprint: 'fp-2',
        status: 'resolved',
        labels: resolved.labels,
        annotations: resolved.annotations,
        startsAt: resolved.startsAt,
        endsAt: '2026-11-27T03:20:00Z',
      },
    ]);
  });

  it('accepts a payload from an Alertmanager without truncatedAlerts, and unknown extra fields', () => {
    const { truncatedAlerts: _t, ...old } = amPayload([amAlert('A', 'fp', 'ns')]);
    const parsed = alertmanagerWebhookSchema.safeParse({ ...old, somethingNew: true });
    expect(parsed.success && parsed.data.truncatedAlerts).toBe(0);
  });
});

describe('Temporal failures', () => {
  const grpc = (code: number, message: string) =>
    Object.assign(new Error(message), { code, details: message });

  it('tell "Temporal cannot take the call now" (503) from other errors (500), through the client wrapper', () => {
    const wrapped = (code: number) =>
      new ServiceError('Failed to signalWithStart Workflow', { cause: grpc(code, 'x') });
    expect(temporalUnavailableReason(wrapped(14))).toBe('UNAVAILABLE');
    expect(temporalUnavailableReason(wrapped(4))).toBe('DEADLINE_EXCEEDED');
    expect(temporalUnavailableReason(wrapped(8))).toBe('RESOURCE_EXHAUSTED');
    expect(temporalUnavailableReason(grpc(14, 'bare'))).toBe('UNAVAILABLE');
    expect(temporalUnavailableReason(wrapped(3))).toBeUndefined(); // INVALID_ARGUMENT
    expect(temporalUnavailableReason(wrapped(7))).toBeUndefined(); // PERMISSION_DENIED
    expect(temporalUnavailableReason(new Error('no runbook matches'))).toBeUndefined();
  });
});
