import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import type { WorkflowHandle } from '@temporalio/client';
import { loadRunbookDir } from '../src/activities/runbooks.js';
import type { IncidentState } from '../src/domain/incident.js';
import { incidentWorkflowId } from '../src/domain/incident-key.js';
import { incidentActions, incidentStatusQuery } from '../src/workflows/api.js';
import type { IncidentOutcome } from '../src/workflows/incident.js';
import { percentile } from './lib/measure.js';
import { projectRoot } from './lib/paths.js';
import { startBenchProduct, type BenchProduct } from './lib/product.js';
import { figure } from './lib/result.js';
import { runAlone, type Benchmark } from './lib/runner.js';

// Alert POST → the initial diagnosis in the `status` query, one incident at a time on the product as
// `make start` runs it: the receiver, the worker and every probe of the runbook against the healthy sandbox
// (its real namespace, so Kubernetes probes read real pods). Incidents cycle through the runbooks (each
// matched by its own alert name); each is resolved and its run finished before the next alert, so every
// alert opens a fresh incident that runs all its runbook's probes.

const POLL_MS = 10;

const isDiagnosed = (s: IncidentState) =>
  s.timeline.some((t) => t.type === 'diagnosis' && t.text.startsWith('initial diagnosis'));

async function diagnosed(handle: WorkflowHandle, timeoutMs: number): Promise<IncidentState> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const state = await handle.query(incidentStatusQuery).catch(() => undefined);
    if (state && isDiagnosed(state)) return state;
    if (performance.now() > deadline)
      throw new Error(`${handle.workflowId}: no initial diagnosis after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

interface Sample {
  runbook: string;
  ms: number;
  probes: number;
  /** Findings that were not ok, as runbook/probe=status. */
  notOk: string[];
}

async function oneIncident(
  product: BenchProduct,
  runbook: { id: string; alertname: string },
): Promise<Sample> {
  const id = incidentWorkflowId(runbook.id, product.namespace);
  const handle = product.client.workflow.getHandle<() => Promise<IncidentOutcome>>(id);
  const started = performance.now();
  const code = await product.post([
    { labels: { alertname: runbook.alertname }, fingerprint: randomBytes(8).toString('hex') },
  ]);
  if (code !== 202) throw new Error(`the receiver answered ${code}`);
  const state = await diagnosed(handle, 60_000);
  const ms = performance.now() - started;
  await handle.executeUpdate(incidentActions.resolve.update, {
    args: [{ by: 'alice', summary: 'benchmark' }],
  });
  const outcome = await handle.result();
  if (outcome.postIncidentWorkflowId) {
    await product.client.workflow
      .getHandle(outcome.postIncidentWorkflowId)
      .terminate('benchmark')
      .catch(() => {});
  }
  const findings = Object.values(state.findings);
  return {
    runbook: runbook.id,
    ms,
    probes: findings.length,
    notOk: findings
      .filter((f) => f.status !== 'ok')
      .map((f) => `${runbook.id}/${f.probe}=${f.status} (${f.summary})`),
  };
}

export const benchmark: Benchmark = {
  name: 'time-to-diagnosis',
  title: 'Time to diagnosis: alert POST → initial diagnosis in the status query',
  async run({ services, small, log }) {
    const incidents = small ? 3 : 50;
    const { runbooks } = await loadRunbookDir(`${projectRoot}runbooks`, `${projectRoot}config/contacts.yaml`);
    const cycle = runbooks
      .map((r) => r.runbook)
      .filter((r) => !r.match.fallback && r.match.alertnames.length > 0)
      .map((r) => ({ id: r.id, alertname: r.match.alertnames[0] as string, probes: r.probes.length }));
    const product = await startBenchProduct(services);
    try {
      await product.startWorker();
      // One incident first, not counted: the worker's first workflow task and activity connections.
      await oneIncident(product, cycle[0] as (typeof cycle)[number]);
      const samples: Sample[] = [];
      for (let i = 0; i < incidents; i++) {
        const sample = await oneIncident(product, cycle[i % cycle.length] as (typeof cycle)[number]);
        samples.push(sample);
        if ((i + 1) % 10 === 0) log(`  ${i + 1}/${incidents} incidents diagnosed`);
      }
      const ms = samples.map((s) => s.ms);
      const byRunbook = cycle
        .map((r) => {
          const of = samples.filter((s) => s.runbook === r.id).map((s) => s.ms);
          return of.length ? `${r.id} (${r.probes} probes) p50 ${Math.round(percentile(of, 50))} ms` : '';
        })
        .filter(Boolean);
      const notOk = samples.flatMap((s) => s.notOk);
      return {
        params: { incidents, runbooks: cycle.length, pollMs: POLL_MS },
        figures: [
          figure('incidents diagnosed', samples.length, 'incidents', { atLeast: incidents }),
          figure('probes run per diagnosis (mean)', mean(samples.map((s) => s.probes)), 'probes'),
          figure('findings not ok (healthy sandbox)', notOk.length, 'findings'),
          figure('time to diagnosis p50', percentile(ms, 50), 'ms', { atMost: 300 }),
          figure('time to diagnosis p99', percentile(ms, 99), 'ms', { atMost: 1500 }),
          figure('time to diagnosis max', Math.max(...ms), 'ms'),
        ],
        notes: [
          `${incidents} incidents one after another (after one warm-up incident not counted), cycling through the ${cycle.length} runbooks by alert name in the sandbox's own namespace: every probe of the runbook runs against the healthy sandbox (real pods on the control plane, PostgreSQL, Kafka, fte-api)`,
          'measured from before the Alertmanager webhook POST to the first status query that shows the "initial diagnosis" timeline entry (queries every 10 ms); each incident is then resolved by hand and its run finished before the next alert',
          `by runbook: ${byRunbook.join('; ')}`,
          `findings not ok on the healthy sandbox: ${[...new Set(notOk)].join(', ') || 'none'}`,
        ],
      };
    } finally {
      await product.stop();
    }
  },
};

const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

await runAlone(import.meta.url, 'time-to-diagnosis');
