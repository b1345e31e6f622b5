import * as wf from '@temporalio/workflow';
import type { ProbeActivity } from '../../domain/activity-contract.js';
import { boundFinding, unknownFinding, type Finding } from '../../domain/findings.js';
import { applicableTasks, effectiveSeverity } from '../../domain/plan.js';
import type { ProbeSpec } from '../../domain/runbook.js';
import { renderArgs } from '../../domain/templates.js';
import { errorMessage, localReads } from './activities.js';
import type { Incident } from './context.js';

/**
 * Version marker: probes heartbeat (src/activities/heartbeats.ts), so a worker that dies while the incident
 * diagnoses is noticed within PROBE_HEARTBEAT_TIMEOUT_MS and the probe retried, instead of after the probe's
 * whole timeout. Diagnoses that ran before it replay without a heartbeat timeout.
 */
export const PROBE_HEARTBEAT = 'probe-heartbeat';
export const PROBE_HEARTBEAT_TIMEOUT_MS = 10_000;

function probeActivities(spec: ProbeSpec): Record<string, ProbeActivity> {
  const options = {
    startToCloseTimeout: spec.timeout,
    scheduleToCloseTimeout: spec.timeout * (spec.retries + 1) + 5_000 * spec.retries,
    retry: {
      maximumAttempts: spec.retries + 1,
      initialInterval: '1 second',
      maximumInterval: '5 seconds',
    },
    summary: `probe ${spec.id}`,
  };
  // Replay only: release 2026-12-01b's probes were local activities (see localReads).
  if (localReads()) return wf.proxyLocalActivities<Record<string, ProbeActivity>>(options);
  const heartbeat = wf.patched(PROBE_HEARTBEAT)
    ? { heartbeatTimeout: Math.min(PROBE_HEARTBEAT_TIMEOUT_MS, spec.timeout) }
    : {};
  return wf.proxyActivities<Record<string, ProbeActivity>>({ ...options, ...heartbeat });
}

async function runProbe(inc: Incident, spec: ProbeSpec): Promise<Finding> {
  const s = inc.ready().state;
  try {
    const probes = probeActivities(spec);
    const args = renderArgs(spec.args, { incidentId: inc.incidentId, scope: s.scope, findings: s.findings });
    const probe = probes[spec.probe] as ProbeActivity;
    const finding = await probe({ incidentId: inc.incidentId, scope: s.scope, probeId: spec.id, args });
    return boundFinding({ ...finding, probe: spec.id, at: finding.at || inc.now() });
  } catch (error) {
    return unknownFinding(spec.id, `probe ${spec.probe} gave no answer: ${errorMessage(error)}`, inc.now());
  }
}

/** Runs the runbook's probes (all, or the ones named) in parallel and takes in what they found. */
export async function runProbes(inc: Incident, ids: string[] | undefined, why: string): Promise<Finding[]> {
  const { state: s, snapshot: snap } = inc.ready();
  const specs = ids ? snap.runbook.probes.filter((p) => ids.includes(p.id)) : snap.runbook.probes;
  if (specs.length === 0) return [];
  const findings = await Promise.all(specs.map((spec) => runProbe(inc, spec)));
  for (const f of findings) s.findings[f.probe] = f;
  const summary = findings.map((f) => `${f.probe}=${f.status}`).join(', ');
  inc.record('diagnosis', `${why}: ${summary}`);
  for (const f of findings) {
    if (f.status !== 'ok') inc.record('finding', `${f.probe} ${f.status}: ${f.summary}`);
  }
  afterFindings(inc);
  return findings;
}

/** What new findings change: severity (raised, never lowered) and the manual tasks that now apply. */
function afterFindings(inc: Incident): void {
  const { state: s, snapshot: snap } = inc.ready();
  const severity = effectiveSeverity(snap.runbook, s.findings, s.severity);
  if (severity !== s.severity) {
    inc.record('severity-raised', `severity raised from ${s.severity} to ${severity} by findings`);
    inc.toLedger('severity-raised', { from: s.severity, to: severity });
    s.severity = severity;
    inc.notify('escalated', ['on-call'], `Severity raised to ${severity}`);
    inc.publish();
  }
  for (const task of applicableTasks(snap.runbook, s.findings)) {
    if (s.tasks.some((t) => t.id === task.id)) continue;
    s.tasks.push({ id: task.id, title: task.title, owner: task.owner, status: 'open' });
    inc.record('task-opened', `manual task for ${task.owner}: ${task.title}`);
  }
}
