import { describe, expect, it } from 'vitest';
import type { Finding, FindingStatus } from '../../src/domain/findings.js';
import { ConfigError } from '../../src/config.js';
import { loadMonitorConfig } from '../../src/starters/monitor-config.js';
import {
  evaluate,
  gmailRenewalObservation,
  healthMonitorInputSchema,
  healthObservations,
  kafkaLagObservation,
  poolExhausted,
  readMonitorState,
  type HealthExtraFindings,
  type HealthMonitorInput,
  type MonitorState,
  type Observation,
} from '../../src/workflows/monitor-rules.js';

const MIN = 60_000;
const T0 = Date.parse('2026-11-27T03:00:00Z');
const policy = { repeatEveryMs: 60 * MIN, everyMs: MIN };

const input: HealthMonitorInput = {
  scope: 'customer-success-fte',
  channelErrorRate: 0.5,
  channelDownForMs: 0,
  p95LatencyMs: 10_000,
  latencyForMs: 0,
  escalationRate: 0.3,
  escalationForMs: 10 * MIN,
  repeatEveryMs: 60 * MIN,
  everyMs: MIN,
};

function finding(status: FindingStatus, metrics: Finding['metrics'] = {}): Finding {
  return { probe: 'p', status, summary: `p is ${status}`, metrics, evidence: [], at: '2026-11-27T03:00:00Z' };
}

type Stats = { requests?: number; errorRate?: number; p95?: number; escalation?: number };
function channelMetrics(stats: Partial<Record<'email' | 'whatsapp' | 'web_form', Stats>> = {}): Finding {
  const metrics: Finding['metrics'] = { windowSeconds: 300 };
  for (const c of ['email', 'whatsapp', 'web_form'] as const) {
    const s = stats[c] ?? {};
    metrics[`requests/${c}`] = s.requests ?? 100;
    metrics[`errorRate/${c}`] = s.errorRate ?? 0.01;
    metrics[`p95LatencyMs/${c}`] = s.p95 ?? 2000;
    metrics[`escalationRate/${c}`] = s.escalation ?? 0.1;
  }
  return finding('ok', metrics);
}

/** The fingerprints whose condition holds, by alert name. */
function holding(observations: Observation[]): string[] {
  return observations.filter((o) => o.holds).map((o) => o.labels.alertname as string);
}

/** Runs the rule once a minute over a series of observations (true/false/undefined per minute). */
function run(series: (boolean | undefined)[], forMs: number, p = policy) {
  let state: MonitorState = { conditions: {} };
  const sent: { minute: number; status: string }[] = [];
  series.forEach((holds, minute) => {
    const o: Observation = {
      fingerprint: 'monitor:x:s',
      holds,
      forMs,
      labels: { alertname: 'X', namespace: 's' },
      summary: 'x',
    };
    const r = evaluate(state, [o], T0 + minute * MIN, p);
    state = r.state;
    sent.push(...r.alerts.map((a) => ({ minute, status: a.status })));
  });
  return { state, sent };
}

describe('pending → firing → resolved', () => {
  it('fires once the condition has held for the whole `for` duration, not a minute earlier', () => {
    // Observations at minutes 0..9 span 9 minutes: still pending.
    expect(run(Array(10).fill(true), 10 * MIN).sent).toEqual([]);
    // The 11th observation is 10 minutes after the first: one firing alert.
    expect(run(Array(11).fill(true), 10 * MIN).sent).toEqual([{ minute: 10, status: 'firing' }]);
    // Holding on: no repeats within the repeat interval.
    expect(run(Array(30).fill(true), 10 * MIN).sent).toEqual([{ minute: 10, status: 'firing' }]);
  });

  it('counts a late first run and an early last run as the full duration (runs start with jitter)', () => {
    let state: MonitorState = { conditions: {} };
    const sent: number[] = [];
    for (let minute = 0; minute <= 10; minute++) {
      const lateness = minute === 0 ? 900 : 5; // the first run took longer to start
      const o: Observation = {
        fingerprint: 'f',
        holds: true,
        forMs: 10 * MIN,
        labels: { alertname: 'X' },
        summary: 's',
      };
      const r = evaluate(state, [o], T0 + minute * MIN + lateness, policy);
      state = r.state;
      if (r.alerts.length) sent.push(minute);
    }
    expect(sent).toEqual([10]);
  });

  it('starts over when the condition clears before `for` has passed, and sends nothing for it', () => {
    const series = [...Array(8).fill(true), false, ...Array(10).fill(true)];
    const { sent, state } = run(series, 10 * MIN);
    expect(sent).toEqual([]);
    expect(state.conditions['monitor:x:s']?.since).toBe(new Date(T0 + 9 * MIN).toISOString());
  });

  it('sends resolved when a fired condition clears, with the same fingerprint and labels', () => {
    let state: MonitorState = { conditions: {} };
    const o = (holds: boolean, summary: string): Observation => ({
      fingerprint: 'monitor:x:s',
      holds,
      forMs: 0,
      labels: { alertname: 'X', namespace: 's' },
      summary,
    });
    const fired = evaluate(state, [o(true, 'bad')], T0, policy);
    state = fired.state;
    const cleared = evaluate(state, [o(false, 'good again')], T0 + MIN, policy);
    expect(fired.alerts).toEqual([
      {
        fingerprint: 'monitor:x:s',
        status: 'firing',
        labels: { alertname: 'X', namespace: 's' },
        annotations: { summary: 'bad' },
        startsAt: new Date(T0).toISOString(),
      },
    ]);
    expect(cleared.alerts).toEqual([
      {
        fingerprint: 'monitor:x:s',
        status: 'resolved',
        labels: { alertname: 'X', namespace: 's' },
        annotations: { summary: 'good again' },
        startsAt: new Date(T0).toISOString(),
        endsAt: new Date(T0 + MIN).toISOString(),
      },
    ]);
    expect(cleared.state.conditions).toEqual({});
  });

  it('repeats a firing alert after the repeat interval while the condition holds', () => {
    const { sent } = run(Array(21).fill(true), 0, { repeatEveryMs: 10 * MIN, everyMs: MIN });
    expect(sent.map((s) => s.minute)).toEqual([0, 10, 20]);
  });

  it('keeps its state when the probes cannot tell, and restarts a pending streak after a long gap', () => {
    // Unknown in between: the streak goes on (minutes 0..10 → fires at 10).
    const withUnknown = [true, true, undefined, undefined, true, true, true, true, true, true, true];
    expect(run(withUnknown, 10 * MIN).sent).toEqual([{ minute: 10, status: 'firing' }]);
    // Four unknown minutes exceed the 3-minute staleness: the streak restarts at minute 5.
    const gap = [true, undefined, undefined, undefined, undefined, ...Array(11).fill(true)];
    expect(run(gap, 10 * MIN).sent).toEqual([{ minute: 15, status: 'firing' }]);
    // A firing alert never goes stale: unknown minutes do not resolve it.
    expect(run([true, undefined, undefined, undefined, undefined, undefined, false], 0).sent).toEqual([
      { minute: 0, status: 'firing' },
      { minute: 6, status: 'resolved' },
    ]);
  });

  it('resolves a fired condition that is no longer watched', () => {
    const fired = evaluate(
      { conditions: {} },
      [{ fingerprint: 'monitor:x:old', holds: true, forMs: 0, labels: { alertname: 'X' }, summary: 's' }],
      T0,
      policy,
    );
    const next = evaluate(fired.state, [], T0 + MIN, policy);
    expect(next.alerts.map((a) => [a.fingerprint, a.status, a.labels.alertname])).toEqual([
      ['monitor:x:old', 'resolved', 'X'],
    ]);
  });

  it('reads a missing or foreign previous result as a fresh start', () => {
    expect(readMonitorState(undefined)).toEqual({ conditions: {} });
    expect(readMonitorState({ something: 'else' })).toEqual({ conditions: {} });
    const state = { conditions: { a: { since: 'x', lastSeen: 'y' } } };
    expect(readMonitorState(state)).toEqual(state);
  });
});

describe('health monitor decisions', () => {
  it('all channels failing → FTEAllChannelsDown only', () => {
    const metrics = channelMetrics({
      email: { errorRate: 0.9 },
      whatsapp: { errorRate: 0.6 },
      web_form: { errorRate: 1 },
    });
    expect(holding(healthObservations(input, finding('ok'), metrics))).toEqual(['FTEAllChannelsDown']);
  });

  it('health down → FTEAllChannelsDown, whatever the metrics say (or when they are unreadable)', () => {
    expect(holding(healthObservations(input, finding('down'), channelMetrics()))).toEqual([
      'FTEAllChannelsDown',
    ]);
    const obs = healthObservations(input, finding('down'), finding('down'));
    expect(holding(obs)).toEqual(['FTEAllChannelsDown']);
    // The channels are covered by the all-channels incident: they are clear, not unknown.
    expect(obs.filter((o) => o.labels.channel).map((o) => o.holds)).toEqual([false, false, false]);
  });

  it('exactly one channel failing → that channel runbook alert', () => {
    const cases = [
      ['whatsapp', 'FTEWhatsAppChannelDown'],
      ['email', 'FTEGmailChannelDown'],
      ['web_form', 'FTEWebFormChannelDown'],
    ] as const;
    for (const [channel, alertname] of cases) {
      const obs = healthObservations(input, finding('ok'), channelMetrics({ [channel]: { errorRate: 0.5 } }));
      expect(holding(obs)).toEqual([alertname]);
      const o = obs.find((x) => x.holds);
      expect(o?.fingerprint).toBe(`monitor:channel-down:${channel}:customer-success-fte`);
      expect(o?.labels).toMatchObject({ namespace: 'customer-success-fte', source: 'monitor', channel });
    }
  });

  it('two channels failing → an alert for each', () => {
    const obs = healthObservations(
      input,
      finding('ok'),
      channelMetrics({ email: { errorRate: 0.7 }, whatsapp: { errorRate: 0.8 } }),
    );
    expect(holding(obs).sort()).toEqual(['FTEGmailChannelDown', 'FTEWhatsAppChannelDown']);
  });

  it('p95 agent processing over 10 s on any channel → FTEAgentLatencyHigh', () => {
    expect(
      holding(healthObservations(input, finding('ok'), channelMetrics({ email: { p95: 10_000 } }))),
    ).toEqual([]);
    const obs = healthObservations(input, finding('ok'), channelMetrics({ email: { p95: 12_500 } }));
    expect(holding(obs)).toEqual(['FTEAgentLatencyHigh']);
    expect(obs.find((o) => o.holds)?.summary).toContain('12500 ms');
  });

  it('judges the escalation rate over all conversations, weighted by requests', () => {
    // 100 requests at 90 % and 900 at 10 %: 18 % overall.
    const mixed = channelMetrics({
      email: { requests: 100, escalation: 0.9 },
      whatsapp: { requests: 900, escalation: 0.1 },
      web_form: { requests: 0, escalation: 1 },
    });
    expect(holding(healthObservations(input, finding('ok'), mixed))).toEqual([]);
    const high = channelMetrics({
      email: { escalation: 0.35 },
      whatsapp: { escalation: 0.31 },
      web_form: { escalation: 0.32 },
    });
    const obs = healthObservations(input, finding('ok'), high);
    expect(holding(obs)).toEqual(['FTEEscalationRateHigh']);
    expect(obs.find((o) => o.holds)?.forMs).toBe(10 * MIN);
  });

  it('all clear on a healthy platform', () => {
    const obs = healthObservations(input, finding('ok'), channelMetrics());
    expect(obs.map((o) => o.holds)).toEqual([false, false, false, false, false, false]);
  });

  it('cannot tell (unknown) when the metrics are unreadable but health is not down', () => {
    const obs = healthObservations(input, finding('ok'), finding('unknown'));
    expect(obs.map((o) => o.holds)).toEqual(Array(6).fill(undefined));
  });
});

describe('health monitor: the platform database pool and the Gmail watch', () => {
  const scope = 'customer-success-fte';
  /** What postgresConnections reports for the sandbox's db-connections-exhausted (38 idle of 40 + its own). */
  const exhausted = finding('down', { utilisationPct: 97.5, databaseConnections: 39, databaseLimit: 40 });
  const roomy = finding('ok', { utilisationPct: 12.5, databaseConnections: 5, databaseLimit: 40 });
  const watchValid = finding('ok', { hoursLeft: 160 });
  const watchExpired = finding('down', { hoursLeft: -1 });
  const byFingerprint = (obs: Observation[]) => Object.fromEntries(obs.map((o) => [o.fingerprint, o.holds]));

  it('pool exhausted while health fails → FTEDatabaseConnectionFailures only, not FTEAllChannelsDown', () => {
    const obs = healthObservations(input, finding('down'), channelMetrics(), {
      pool: exhausted,
      gmailWatch: watchValid,
    });
    expect(holding(obs)).toEqual(['FTEDatabaseConnectionFailures']);
    const db = obs.find((o) => o.holds);
    expect(db).toMatchObject({
      fingerprint: `monitor:db-connections:${scope}`,
      forMs: MIN,
      labels: {
        alertname: 'FTEDatabaseConnectionFailures',
        namespace: scope,
        source: 'monitor',
        monitor: 'health',
      },
    });
    expect(db?.summary).toContain('p is down');
    expect(db?.summary).toContain('exhausted at 95.0 %');
    // The all-channels condition is clear (not unknown): a firing one resolves, explained by the pool.
    const all = obs.find((o) => o.labels.alertname === 'FTEAllChannelsDown');
    expect(all?.holds).toBe(false);
    expect(all?.summary).toContain('explained by the exhausted database pool');
    // The channels are covered by the database incident.
    expect(obs.filter((o) => o.fingerprint.includes(':channel-down:')).map((o) => o.holds)).toEqual([
      false,
      false,
      false,
    ]);
  });

  it('every channel failing because the pool is exhausted → the database alert only', () => {
    const failing = channelMetrics({
      email: { errorRate: 1 },
      whatsapp: { errorRate: 1 },
      web_form: { errorRate: 1 },
    });
    expect(holding(healthObservations(input, finding('ok'), failing, { pool: exhausted }))).toEqual([
      'FTEDatabaseConnectionFailures',
    ]);
  });

  it('judges the pool by its utilisation against the configured threshold, or a refusal for lack of a slot', () => {
    expect(poolExhausted(exhausted, 0.95)).toBe(true);
    expect(poolExhausted(finding('degraded', { utilisationPct: 90 }), 0.95)).toBe(false);
    expect(poolExhausted(finding('degraded', { utilisationPct: 90 }), 0.9)).toBe(true);
    expect(poolExhausted(roomy, 0.95)).toBe(false);
    // The server refused the probe: no slot left (SQLSTATE 53300) is the pool exhausted...
    expect(poolExhausted(finding('down', { error: 'UnavailableError', sqlState: '53300' }), 0.95)).toBe(true);
    // ...an unreachable database is not (postgres-down: all channels down covers it); no answer cannot tell.
    expect(poolExhausted(finding('down', { error: 'UnavailableError' }), 0.95)).toBe(false);
    expect(poolExhausted(finding('unknown'), 0.95)).toBeUndefined();

    const strict = { ...input, poolUtilisation: 0.99 };
    const obs = healthObservations(strict, finding('ok'), channelMetrics(), {
      pool: finding('degraded', { utilisationPct: 97.5 }),
    });
    expect(holding(obs)).toEqual([]);
  });

  it('database unreachable while health fails → FTEAllChannelsDown, no database alert (postgres-down)', () => {
    const unreachable = finding('down', { error: 'UnavailableError' });
    const obs = healthObservations(input, finding('down'), finding('down'), { pool: unreachable });
    expect(holding(obs)).toEqual(['FTEAllChannelsDown']);
    expect(byFingerprint(obs)[`monitor:db-connections:${scope}`]).toBe(false);
  });

  it('a pool probe without an answer neither raises nor hides anything', () => {
    const obs = healthObservations(input, finding('down'), channelMetrics(), { pool: finding('unknown') });
    expect(holding(obs)).toEqual(['FTEAllChannelsDown']);
    expect(byFingerprint(obs)[`monitor:db-connections:${scope}`]).toBeUndefined();
  });

  it('Gmail watch expired → FTEGmailChannelDown, with a fingerprint of its own (not the renewal schedule’s)', () => {
    // gmail-watch-expired: the watch is down and the email channel simply receives nothing (0 requests).
    const quietEmail = channelMetrics({ email: { requests: 0 } });
    const obs = healthObservations(input, finding('ok'), quietEmail, {
      pool: roomy,
      gmailWatch: watchExpired,
    });
    expect(holding(obs)).toEqual(['FTEGmailChannelDown']);
    const watch = obs.find((o) => o.holds);
    expect(watch).toMatchObject({
      fingerprint: `monitor:gmail-watch:${scope}`,
      forMs: 0,
      labels: { alertname: 'FTEGmailChannelDown', namespace: scope, monitor: 'health', channel: 'email' },
      summary: 'p is down',
    });
    expect(watch?.fingerprint).not.toBe(
      gmailRenewalObservation(scope, { ok: false, error: 'x' }).fingerprint,
    );
    // A watch close to expiry is the renewal schedule's business; an unreadable one cannot tell.
    const soon = healthObservations(input, finding('ok'), channelMetrics(), {
      gmailWatch: finding('degraded'),
    });
    expect(byFingerprint(soon)[`monitor:gmail-watch:${scope}`]).toBe(false);
    const unread = healthObservations(input, finding('ok'), channelMetrics(), {
      gmailWatch: finding('unknown'),
    });
    expect(byFingerprint(unread)[`monitor:gmail-watch:${scope}`]).toBeUndefined();
  });

  it('all clear on a healthy platform, eight conditions', () => {
    const obs = healthObservations(input, finding('ok'), channelMetrics(), {
      pool: roomy,
      gmailWatch: watchValid,
    });
    expect(obs.map((o) => o.holds)).toEqual(Array(8).fill(false));
  });

  it('fires after the pool has been exhausted for its duration, never all channels, and recovery resolves both', () => {
    const health = { ...input, channelDownForMs: MIN, poolForMs: MIN, gmailWatchForMs: 0 };
    const minutes: [Finding, HealthExtraFindings][] = [
      [finding('down'), { pool: exhausted, gmailWatch: watchExpired }],
      [finding('down'), { pool: exhausted, gmailWatch: watchExpired }],
      [finding('down'), { pool: exhausted, gmailWatch: watchExpired }],
      [finding('ok'), { pool: roomy, gmailWatch: watchValid }],
    ];
    let state: MonitorState = { conditions: {} };
    const sent: string[] = [];
    minutes.forEach(([h, extra], minute) => {
      const r = evaluate(
        state,
        healthObservations(health, h, channelMetrics(), extra),
        T0 + minute * MIN,
        policy,
      );
      state = r.state;
      sent.push(...r.alerts.map((a) => `${minute} ${a.labels.alertname} ${a.status} ${a.fingerprint}`));
    });
    expect(sent).toEqual([
      `0 FTEGmailChannelDown firing monitor:gmail-watch:${scope}`,
      `1 FTEDatabaseConnectionFailures firing monitor:db-connections:${scope}`,
      `3 FTEDatabaseConnectionFailures resolved monitor:db-connections:${scope}`,
      `3 FTEGmailChannelDown resolved monitor:gmail-watch:${scope}`,
    ]);
    expect(state.conditions).toEqual({});
  });

  it('takes a schedule input from before the pool and watch checks with their defaults', () => {
    const { poolUtilisation, poolForMs, gmailWatchForMs, ...older } = healthMonitorInputSchema.parse(input);
    expect({ poolUtilisation, poolForMs, gmailWatchForMs }).toEqual({
      poolUtilisation: 0.95,
      poolForMs: MIN,
      gmailWatchForMs: 0,
    });
    expect(healthMonitorInputSchema.parse(older)).toMatchObject({ poolUtilisation: 0.95, poolForMs: MIN });
  });
});

describe('kafka lag and gmail renewal decisions', () => {
  const lagInput = {
    scope: 's',
    group: 'fte-message-processor',
    threshold: 1000,
    forMs: 5 * MIN,
    repeatEveryMs: 60 * MIN,
    everyMs: MIN,
  };

  it('lag above the threshold holds; at the threshold it does not; an unreadable group cannot tell', () => {
    const over = kafkaLagObservation(lagInput, finding('degraded', { totalLag: 1001 }));
    expect(over).toMatchObject({
      holds: true,
      forMs: 5 * MIN,
      fingerprint: 'monitor:kafka-lag:fte-message-processor:s',
      labels: { alertname: 'FTEAgentLatencyHigh', namespace: 's', group: 'fte-message-processor' },
    });
    expect(kafkaLagObservation(lagInput, finding('ok', { totalLag: 1000 })).holds).toBe(false);
    expect(kafkaLagObservation(lagInput, finding('unknown')).holds).toBeUndefined();
  });

  it('a failed renewal is FTEGmailChannelDown at once', () => {
    const failed = gmailRenewalObservation('s', { ok: false, error: 'answered 500' });
    expect(failed).toMatchObject({
      holds: true,
      forMs: 0,
      labels: { alertname: 'FTEGmailChannelDown', namespace: 's' },
    });
    expect(failed.summary).toContain('answered 500');
    expect(gmailRenewalObservation('s', { ok: true, summary: 'renewed' }).holds).toBe(false);
  });
});

describe('monitor configuration', () => {
  it('has the documented defaults', () => {
    const config = loadMonitorConfig({});
    expect(config).toEqual({
      scope: 'customer-success-fte',
      repeatEveryMs: 60 * MIN,
      health: {
        everyMs: MIN,
        channelErrorRate: 0.5,
        channelDownForMs: MIN,
        p95LatencyMs: 10_000,
        latencyForMs: 0,
        escalationRate: 0.3,
        escalationForMs: 10 * MIN,
        poolUtilisation: 0.95,
        poolForMs: MIN,
        gmailWatchForMs: 0,
      },
      kafkaLag: { everyMs: MIN, group: 'fte-message-processor', threshold: 1000, forMs: 5 * MIN },
      gmailRenewal: { everyMs: 6 * 24 * 60 * MIN, retryEveryMs: 15 * MIN, retryForMs: 24 * 60 * MIN },
    });
  });

  it('takes MONITOR_* variables', () => {
    const config = loadMonitorConfig({
      MONITOR_SCOPE: 'staging',
      MONITOR_ESCALATION_RATE: '0.25',
      MONITOR_ESCALATION_FOR: '15m',
      MONITOR_KAFKA_LAG_THRESHOLD: '500',
      MONITOR_KAFKA_TOPIC: 'fte-messages',
      MONITOR_DB_POOL_UTILISATION: '0.9',
      MONITOR_DB_POOL_FOR: '2m',
      MONITOR_GMAIL_WATCH_FOR: '5m',
    });
    expect(config.scope).toBe('staging');
    expect(config.health.escalationRate).toBe(0.25);
    expect(config.health.escalationForMs).toBe(15 * MIN);
    expect(config.kafkaLag).toMatchObject({ threshold: 500, topic: 'fte-messages' });
    expect(config.health).toMatchObject({
      poolUtilisation: 0.9,
      poolForMs: 2 * MIN,
      gmailWatchForMs: 5 * MIN,
    });
  });

  it('names every bad variable and why', () => {
    const error = (() => {
      try {
        loadMonitorConfig({
          MONITOR_ESCALATION_RATE: '30',
          MONITOR_HEALTH_INTERVAL: 'often',
          MONITOR_GMAIL_RENEW_EVERY: '7d',
          MONITOR_KAFKA_LAG_THRESHOLD: '-1',
          MONITOR_GMAIL_WATCH_FOR: 'soon',
        });
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/MONITOR_ESCALATION_RATE: expected a rate between 0 and 1/);
    expect(message).toMatch(/MONITOR_HEALTH_INTERVAL: "often" is not a duration/);
    expect(message).toMatch(/MONITOR_KAFKA_LAG_THRESHOLD: expected a number/);
    expect(message).toMatch(/MONITOR_GMAIL_WATCH_FOR: "soon" is not a duration/);
  });

  it('refuses a pool threshold of 0', () => {
    expect(() => loadMonitorConfig({ MONITOR_DB_POOL_UTILISATION: '0' })).toThrow(
      /MONITOR_DB_POOL_UTILISATION: must be above 0/,
    );
  });

  it('refuses a renewal interval that lets the Gmail watch expire', () => {
    expect(() => loadMonitorConfig({ MONITOR_GMAIL_RENEW_EVERY: '7d' })).toThrow(
      /MONITOR_GMAIL_RENEW_EVERY: must be at least 1h and less than 7d/,
    );
  });
});
