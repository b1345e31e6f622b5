import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import type { Alert } from '../../src/domain/alerts.js';
import type { IncidentState } from '../../src/domain/incident.js';
import { incidentStatusQuery } from '../../src/workflows/api.js';
import { percentile, perSecond, timedPool } from './measure.js';

// What the ingest and storm benchmarks check after their timed phases: runs in visibility, the incidents'
// own count of deliveries (status query), and clean-up.

/** One firing alert as the receiver turns it into a domain alert (what a raw signal carries). */
export function firingAlert(alertname: string, namespace: string, fingerprint: string): Alert {
  return {
    fingerprint,
    status: 'firing',
    labels: { alertname, namespace, severity: 'critical' },
    annotations: { summary: 'benchmark' },
    startsAt: new Date(Date.now() - 60_000).toISOString(),
  };
}

export async function listRuns(client: Client, query: string): Promise<WorkflowExecutionInfo[]> {
  const runs: WorkflowExecutionInfo[] = [];
  for await (const info of client.workflow.list({ query })) runs.push(info);
  return runs;
}

/** Waits until visibility counts `expected` executions for the query (it is eventually consistent). */
export async function settledCount(
  client: Client,
  query: string,
  expected: number,
  withinMs = 30_000,
): Promise<number> {
  const deadline = Date.now() + withinMs;
  for (;;) {
    const { count } = await client.workflow.count(query);
    if (count >= expected || Date.now() > deadline) return count;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * Polls an incident's status query until `done` holds (the worker must run); the last state seen, or
 * undefined when the incident never answered within the time.
 */
export async function incidentState(
  client: Client,
  workflowId: string,
  done: (s: IncidentState) => boolean,
  withinMs: number,
): Promise<IncidentState | undefined> {
  const deadline = Date.now() + withinMs;
  let last: IncidentState | undefined;
  for (;;) {
    try {
      last = await client.workflow.getHandle(workflowId).query(incidentStatusQuery);
      if (done(last)) return last;
    } catch {
      // Still opening (no state before the runbook is loaded), or its first task not run yet.
    }
    if (Date.now() > deadline) return last;
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Terminates every running execution the query finds. */
export async function terminateAll(client: Client, query: string, concurrency: number): Promise<void> {
  const runs = await listRuns(client, `${query} AND ExecutionStatus = 'Running'`);
  await timedPool(runs.length, concurrency, async (i) => {
    const run = runs[i] as WorkflowExecutionInfo;
    await client.workflow
      .getHandle(run.workflowId, run.runId)
      .terminate('benchmark over')
      .catch(() => undefined);
  });
}

/** CPU time this process used while `fn` ran, as a share of one core over its wall time. */
export async function withCpu<T>(fn: () => Promise<T>): Promise<{ value: T; cpuShare: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const value = await fn();
  const used = process.cpuUsage(cpu);
  const wallUs = (performance.now() - started) * 1000;
  return { value, cpuShare: wallUs > 0 ? (used.user + used.system) / wallUs : 0 };
}

export type Phase = 'raw' | 'receiver';

/** Per-round rates of both phases, their medians, and the median of the within-round ratios. */
export interface RoundsComparison {
  rawRates: number[];
  receiverRates: number[];
  cpu: Record<Phase, number[]>;
  /** Median over the rounds of receiver rate / raw rate within the round. */
  ratio: number;
  rawRate: number;
  receiverRate: number;
}

/**
 * Times `rounds` rounds of both phases in alternating order (raw then receiver, then receiver then raw, ...):
 * rounds next to each other in time see the same server load, so each round's ratio compares like with like.
 * `run(phase, from, count)` sends `count` calls starting at call number `from` and returns its wall time.
 */
export async function compareInRounds(options: {
  rounds: number;
  perRound: number;
  total: number;
  run: (phase: Phase, from: number, count: number) => Promise<number>;
  log: (line: string) => void;
}): Promise<RoundsComparison> {
  const { rounds, perRound, total, run, log } = options;
  const rawRates: number[] = [];
  const receiverRates: number[] = [];
  const cpu: Record<Phase, number[]> = { raw: [], receiver: [] };
  for (let r = 0; r < rounds; r++) {
    const from = r * perRound;
    const count = Math.min(perRound, total - from);
    const order: Phase[] = r % 2 === 0 ? ['raw', 'receiver'] : ['receiver', 'raw'];
    for (const phase of order) {
      const { value: ms, cpuShare } = await withCpu(() => run(phase, from, count));
      (phase === 'raw' ? rawRates : receiverRates).push(perSecond(count, ms));
      cpu[phase].push(cpuShare);
      log(
        `  round ${r + 1} ${phase}: ${count} in ${Math.round(ms)} ms (${perSecond(count, ms).toFixed(1)}/s)`,
      );
    }
  }
  return {
    rawRates,
    receiverRates,
    cpu,
    ratio: percentile(
      rawRates.map((raw, i) => (receiverRates[i] ?? 0) / raw),
      50,
    ),
    rawRate: percentile(rawRates, 50),
    receiverRate: percentile(receiverRates, 50),
  };
}
