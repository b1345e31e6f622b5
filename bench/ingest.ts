import { performance } from 'node:perf_hooks';
import { incidentWorkflowId } from '../src/domain/incident-key.js';
import { alertsSignal } from '../src/workflows/api.js';
import {
  compareInRounds,
  firingAlert,
  incidentState,
  listRuns,
  settledCount,
  terminateAll,
} from './lib/incidents.js';
import { percentile, timedPool } from './lib/measure.js';
import { startBenchProduct, uniqueName } from './lib/product.js';
import { figure } from './lib/result.js';
import { runAlone, type Benchmark } from './lib/runner.js';

// N distinct alerts (one scope each, so N incidents) through the receiver, against N raw signalWithStart
// calls of an empty workflow on the same server, in alternating rounds (raw, receiver, receiver, raw, ...).
// No worker runs while either is timed: both phases then cost the server the same (start, signal, a workflow
// task scheduled) and the comparison is the receiver's own cost. Correctness is checked afterwards.

const ALERTNAME = 'FTEEscalationRateHigh';
const RUNBOOK = 'high-escalation-rate';

export const benchmark: Benchmark = {
  name: 'ingest',
  title: 'Ingest: distinct alerts through the receiver vs raw signalWithStart',
  async run({ services, small, log }) {
    const n = small ? 20 : 1000;
    const concurrency = small ? 5 : 20;
    const rounds = small ? 2 : 10;
    const perRound = Math.ceil(n / rounds);
    const product = await startBenchProduct(services);
    const { client } = product;
    const rawQueue = uniqueName('bench-raw');
    const incidentQuery = `WorkflowType = 'incidentWorkflow' AND TaskQueue = '${product.taskQueue}'`;
    const scopeOf = (i: number) => `${product.namespace}-i${i}`;
    const fingerprintOf = (i: number) => `ingest-${i}`;
    try {
      const raw = async (from: number) =>
        timedPool(Math.min(perRound, n - from), concurrency, async (k) => {
          const i = from + k;
          await client.workflow.signalWithStart('benchEmptyWorkflow', {
            taskQueue: rawQueue,
            workflowId: `${rawQueue}-${i}`,
            args: [],
            signal: alertsSignal.name,
            signalArgs: [{ alerts: [firingAlert(ALERTNAME, scopeOf(i), fingerprintOf(i))] }],
          });
        });
      const latencies: number[] = [];
      const refused: number[] = [];
      const viaReceiver = async (from: number) =>
        timedPool(Math.min(perRound, n - from), concurrency, async (k) => {
          const i = from + k;
          const started = performance.now();
          const status = await product.post([
            { labels: { alertname: ALERTNAME, namespace: scopeOf(i) }, fingerprint: fingerprintOf(i) },
          ]);
          latencies.push(performance.now() - started);
          if (status !== 202) refused.push(i);
        });

      const { rawRates, receiverRates, cpu, ratio, rawRate, receiverRate } = await compareInRounds({
        rounds,
        perRound,
        total: n,
        run: (phase, from) => (phase === 'raw' ? raw(from) : viaReceiver(from)),
        log,
      });

      // Correctness: one run per scope in visibility, then the incidents' own count of their alert.
      const expected = new Set(Array.from({ length: n }, (_, i) => incidentWorkflowId(RUNBOOK, scopeOf(i))));
      await settledCount(client, incidentQuery, n);
      const runs = await listRuns(client, incidentQuery);
      const runsPerId = new Map<string, number>();
      for (const run of runs) runsPerId.set(run.workflowId, (runsPerId.get(run.workflowId) ?? 0) + 1);
      const unexpected = [...runsPerId.keys()].filter((id) => !expected.has(id)).length;
      const extraRuns = [...runsPerId.values()].reduce((sum, c) => sum + c - 1, 0);

      // Every accepted alert is in its incident's history as the one signal that carries it, durable before
      // the receiver answered 202: checked for all N without running them.
      const ids = [...expected];
      let signalledOnce = 0;
      let signalledTwice = 0;
      await timedPool(ids.length, concurrency, async (k) => {
        const history = await client.workflow.getHandle(ids[k] as string).fetchHistory();
        const signals = (history.events ?? []).filter(
          (e) => e.workflowExecutionSignaledEventAttributes?.signalName === alertsSignal.name,
        ).length;
        if (signals === 1) signalledOnce++;
        else if (signals > 1) signalledTwice++;
      });
      // The incidents' own count of their alert (status query) needs the worker to open them all: in the
      // small run only (the full run would measure the worker opening N incidents at once, not ingest).
      let miscounted = 0;
      if (small) {
        log(`  verifying: worker started, asking each of ${ids.length} incidents for its alert`);
        await product.startWorker();
        await timedPool(ids.length, concurrency, async (k) => {
          const s = await incidentState(
            client,
            ids[k] as string,
            (x) => x.alerts[fingerprintOf(k)] !== undefined,
            60_000,
          );
          if (s?.alerts[fingerprintOf(k)]?.deliveries !== 1) miscounted++;
        });
        await product.stopWorker();
      }
      const lost = n - signalledOnce - signalledTwice;

      return {
        params: { N: n, concurrency, rounds, perRound },
        figures: [
          figure('receiver rate / raw rate (median of rounds)', ratio, '', { atLeast: 0.8 }),
          figure('receiver rate', receiverRate, 'alerts/s'),
          figure('raw signalWithStart rate', rawRate, 'calls/s'),
          figure('receiver latency p50', percentile(latencies, 50), 'ms'),
          figure('receiver latency p95', percentile(latencies, 95), 'ms'),
          figure('alerts refused (not 202)', refused.length, '', { atMost: 0 }),
          figure('lost alerts', lost, '', { atMost: 0 }),
          figure('alerts delivered more than once', signalledTwice, '', { atMost: 0 }),
          ...(small
            ? [figure('alerts the incident did not count exactly once', miscounted, '', { atMost: 0 })]
            : []),
          figure('duplicate incidents', unexpected + extraRuns, '', { atMost: 0 }),
          figure('incidents', runsPerId.size, '', { atLeast: n, atMost: n, text: `= ${n}` }),
        ],
        notes: [
          `The ratio is the median over ${rounds} rounds of receiver rate / raw rate within the round (the rates shown are medians too), rounds of ${perRound} calls each, in alternating order (raw, receiver, then receiver, raw) at concurrency ${concurrency} on the same server; all rounds: raw ${rawRates.map((x) => x.toFixed(0)).join(', ')}/s, receiver ${receiverRates.map((x) => x.toFixed(0)).join(', ')}/s.`,
          "No worker runs while either phase is timed (both then cost the server the same: a start, a signal, a workflow task scheduled). Afterwards every incident's history is read: lost = incidents without the signal carrying their alert. (The small run also starts the worker and asks each incident, by its status query, whether it counted its alert exactly once; the full run does not, as that would time the worker opening N incidents at once.)",
          `Each alert has a scope (namespace) of its own, so it opens its own incident; runbook ${RUNBOOK} was chosen because its probes read the platform's metrics and fte-api, not the scope's Kubernetes namespace, so the ${n} incidents diagnose the sandbox's real platform instead of probing namespaces that do not exist.`,
          `CPU of this process (client, receiver, HTTP) per phase, share of one core: raw ${cpu.raw.map((x) => x.toFixed(2)).join(', ')}, receiver ${cpu.receiver.map((x) => x.toFixed(2)).join(', ')}; the rest of the 2 cores goes to the Temporal dev server.`,
        ],
      };
    } finally {
      await product.stopWorker();
      await terminateAll(client, incidentQuery, concurrency);
      await terminateAll(client, `TaskQueue = '${rawQueue}'`, concurrency);
      await product.stop();
    }
  },
};

await runAlone(import.meta.url, 'ingest');
