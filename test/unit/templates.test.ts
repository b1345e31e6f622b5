import { describe, expect, it } from 'vitest';
import type { Finding } from '../../src/domain/findings.js';
import { renderArgs } from '../../src/domain/templates.js';

const finding = (probe: string, status: Finding['status'], metrics: Finding['metrics'] = {}): Finding => ({
  probe,
  status,
  summary:
    status === 'unknown'
      ? 'probe k8sPods gave no answer: list pods in fte: 500 etcdserver: request timed out'
      : 'ok',
  metrics,
  evidence: [],
  at: '2026-11-30T03:00:00Z',
});

const ctx = (findings: Record<string, Finding>) => ({ incidentId: 'incident-x', scope: 'fte', findings });

describe('renderArgs', () => {
  it('fills scope, incident id and finding metrics; a whole placeholder keeps its type', () => {
    const args = renderArgs(
      {
        namespace: '{{scope}}',
        note: 'for {{incidentId}} in {{ scope }}',
        replicas: '{{finding:lag.replicas}}',
      },
      ctx({ lag: finding('lag', 'degraded', { replicas: 3 }) }),
    );
    expect(args).toEqual({ namespace: 'fte', note: 'for incident-x in fte', replicas: 3 });
  });

  it('says the probe could not answer, and what it said, when the metric is missing from an unknown finding', () => {
    expect(() =>
      renderArgs({ expectUid: '{{finding:pods.uid/postgres-0}}' }, ctx({ pods: finding('pods', 'unknown') })),
    ).toThrow(
      'argument {{finding:pods.uid/postgres-0}} has no value: the pods probe could not answer (probe k8sPods gave no answer: list pods in fte: 500 etcdserver: request timed out)',
    );
  });

  it('names the missing metric of an answered finding, and a finding that does not exist', () => {
    expect(() =>
      renderArgs(
        { uid: '{{finding:pods.uid/kafka-0}}' },
        ctx({ pods: finding('pods', 'ok', { 'uid/postgres-0': 'u1' }) }),
      ),
    ).toThrow('has no value: the pods finding (ok) has no metric uid/kafka-0');
    expect(() => renderArgs({ uid: '{{finding:pods.uid/kafka-0}}' }, ctx({}))).toThrow(
      'has no value: there is no pods finding',
    );
  });

  it('refuses a placeholder it does not know', () => {
    expect(() => renderArgs({ x: '{{secret:token}}' }, ctx({}))).toThrow(
      'unknown placeholder {{secret:token}}',
    );
  });
});
