import { expect, it } from 'vitest';
import { makeFinding, redact } from '../../src/activities/common.js';

// Pod log lines become findings, and findings live in workflow history: customers' contact details must not.
it.each([
  ['WARN gmail: reply to jane.doe+vip@customer-mail.co.uk bounced', 'WARN gmail: reply to [EMAIL] bounced'],
  [
    'INFO whatsapp: message from whatsapp:+14155550123 queued',
    'INFO whatsapp: message from whatsapp:[PHONE] queued',
  ],
  ['ERROR twilio: delivery to +44 7700 900123 failed', 'ERROR twilio: delivery to [PHONE] failed'],
  ['web form: callback (415) 555-0123 or 415-555-0123', 'web form: callback [PHONE] or [PHONE]'],
])('redacts %j', (line, expected) => {
  expect(redact(line)).toBe(expected);
});

it('leaves what diagnosis needs: times, addresses, ports, pids, versions, counts', () => {
  const line =
    '2026-11-27T03:00:00.123Z pod 10.244.0.12:8080 pid 12345 took 1500 ms v1.2.3-45 rows 1234567890';
  expect(redact(line)).toBe(line);
});

it('redacts a finding’s summary and evidence', () => {
  const f = makeFinding('logs', 'degraded', '3 errors for bob@example.org', {}, [
    'sms to +15551234567 failed',
  ]);
  expect(JSON.stringify(f)).not.toMatch(/bob@example\.org|15551234567/);
});
