import type { Client } from '@temporalio/client';
import { incidentWorkflowId } from '../src/domain/incident-key.js';
import type { IncidentState } from '../src/domain/incident.js';
import { signalIncident } from '../src/starters/deliver.js';
import { compareInRounds, firingAlert, incidentState, listRuns, terminateAll } from './lib/incidents.js';
import { timedPool } from './lib/measure.js';
import { startBenchProduct } from './lib/product.js';
import { figure } from './lib/result.js';
import { runAlone, type Benchmark } from './lib/runner.js';

// M re-deliveries of one firing alert through the receiver to its open incident, against M raw signalWithStart
// calls (the product's own signalIncident, without the receiver) to a twin incident, in alternating rounds.
// The worker runs in both phases: a storm is about what the open incident does with each repeat.

const ALERTNAME = 'FTEEscalationRateHigh';
const RUNBOOK = 'high-escalation-rate';
const FINGERPRINT = 'storm-alert';
const EVENTS_PER_DELIVERY_GOAL = 4;

const diagnoses = (s: IncidentState) => s.timeline.filter((t) => t.type === 'diagnosis').length;

/** Events in every run of the incident's chain (continue-as-new starts a new history). */
async function chainEvents(client: Client, workflowId: string): Promise<{ events: number; runs: number }> {
  const runs = await listRuns(client, `WorkflowId = '${workflowId}'`);
  let events = 0;
  for (const run of runs)
    events += (await client.workflow.getHandle(workflowId, run.runId).describe()).historyLength;
  return { events, runs: runs.length };
}

export const benchmark: Benchmark = {
  name: 'storm',
  title: 'Storm: re-deliveries of one alert through the receiver vs raw signalWithStart',
  async run({ services, small, log }) {
    const m = small ? 20 : 1000;
    const concurrency = small ? 5 : 20;
    const rounds = small ? 2 : 10;
    const perRound = Math.ceil(m / rounds);
    const product = await startBenchProduct(services);
    const { client } = product;
    const incidentQuery = `WorkflowType = 'incidentWorkflow' AND TaskQueue = '${product.taskQueue}'`;
    // The receiver's incident is about the sandbox's own namespace; the raw twin has a scope of its own.
    const scope = product.namespace;
    const rawScope = `${product.namespace}-raw`;
    const id = incidentWorkflowId(RUNBOOK, scope);
    const rawId = incidentWorkflowId(RUNBOOK, rawScope);
    const rawAlert = firingAlert(ALERTNAME, rawScope, FINGERPRINT);
    const deliverRaw = () =>
      signalIncident(
        { client, taskQueue: product.taskQueue },
        { runbookId: RUNBOOK, scope: rawScope, source: 'alertmanager' },
        [rawAlert],
      );
    const deliver = async () => {
      const status = await product.post([{ labels: { alertname: ALERTNAME }, fingerprint: FINGERPRINT }]);
      if (status !== 202) refused++;
    };
    let refused = 0;
    try {
      await product.startWorker();
      // Both incidents open and finish their first diagnosis before the storm.
      await Promise.all([deliver(), deliverRaw()]);
      const opened = (x: IncidentState) => diagnoses(x) > 0 && x.waitingFor !== 'diagnosis';
      const [before, rawBefore] = await Promise.all([
        incidentState(client, id, opened, 120_000),
        incidentState(client, rawId, opened, 120_000),
      ]);
      if (!before || !rawBefore || !opened(before) || !opened(rawBefore))
        throw new Error('the incidents did not open and diagnose within 2 minutes');
      const baseline = await chainEvents(client, id);
      const metricsUrl = product.receiverUrl.replace('/webhooks/alertmanager', '/metrics');
      const dedupBefore = await deduplicatedTotal(metricsUrl);

      const { rawRates, receiverRates, cpu, ratio, rawRate, receiverRate } = await compareInRounds({
        rounds,
        perRound,
        total: m,
        run: (phase, _from, count) =>
          timedPool(count, concurrency, async () => {
            await (phase === 'raw' ? deliverRaw() : deliver());
          }),
        log,
      });

      // Correctness: every delivery counted once by the incident, one incident, history per delivery.
      const all = (x: IncidentState) => (x.alerts[FINGERPRINT]?.deliveries ?? 0) >= m + 1;
      const [after, rawAfter] = await Promise.all([
        incidentState(client, id, all, 120_000),
        incidentState(client, rawId, all, 120_000),
      ]);
      const counted = (after?.alerts[FINGERPRINT]?.deliveries ?? 0) - 1;
      const rawCounted = (rawAfter?.alerts[FINGERPRINT]?.deliveries ?? 0) - 1;
      const chain = await chainEvents(client, id);
      const eventsPerDelivery = (chain.events - baseline.events) / m;
      const ids = new Set((await listRuns(client, incidentQuery)).map((x) => x.workflowId));
      ids.delete(rawId);
      const deduplicated = (await deduplicatedTotal(metricsUrl)) - dedupBefore;
      const storming = after ? diagnoses(after) - diagnoses(before) : Number.NaN;

      return {
        params: { M: m, concurrency, rounds, perRound },
        figures: [
          figure('receiver rate / raw rate (median of rounds)', ratio, '', { atLeast: 0.8 }),
          figure('receiver rate', receiverRate, 'deliveries/s'),
          figure('raw signalWithStart rate', rawRate, 'calls/s'),
          figure('deliveries refused (not 202)', refused, '', { atMost: 0 }),
          figure('incidents', ids.size, '', { atLeast: 1, atMost: 1, text: '= 1' }),
          figure('deliveries counted by the incident', counted, '', {
            atLeast: m,
            atMost: m,
            text: `= ${m}`,
          }),
          figure('deliveries counted as deduplicated (receiver metric)', deduplicated, '', {
            atLeast: m,
            atMost: m,
            text: `= ${m}`,
          }),
          figure('diagnoses run during the storm', storming, '', { atMost: 0 }),
          figure('history events per delivery', eventsPerDelivery, 'events', {
            atMost: EVENTS_PER_DELIVERY_GOAL,
          }),
          figure('runs of the incident (continue-as-new)', chain.runs, ''),
        ],
        notes: [
          `The ratio is the median over ${rounds} rounds of receiver rate / raw rate within the round (the rates shown are medians too), rounds of ${perRound} deliveries each, in alternating order (raw, receiver, then receiver, raw) at concurrency ${concurrency}; all rounds: raw ${rawRates.map((x) => x.toFixed(0)).join(', ')}/s, receiver ${receiverRates.map((x) => x.toFixed(0)).join(', ')}/s.`,
          `Raw is the product's own signalWithStart (deliver.ts signalIncident) to a twin incident of the same runbook, so the worker's handling of each repeat is in both phases; the twin counted ${rawCounted} of ${m}.`,
          `History goal: a repeat may cost its signal event plus at most one workflow task (scheduled, started, completed), ${EVENTS_PER_DELIVERY_GOAL} events; concurrent signals share workflow tasks, so less is expected. Anything above means the incident issues commands for a repeat. The incident continues as new past 8,000 events.`,
          `CPU of this process (client, receiver, in-process worker) per phase, share of one core: raw ${cpu.raw.map((x) => x.toFixed(2)).join(', ')}, receiver ${cpu.receiver.map((x) => x.toFixed(2)).join(', ')}.`,
        ],
      };
    } finally {
      await product.stopWorker();
      await terminateAll(client, incidentQuery, concurrency);
      await product.stop();
    }
  },
};

async function deduplicatedTotal(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const line = text.split('\n').find((l) => l.startsWith('incident_receiver_alerts_deduplicated_total '));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

await runAlone(import.meta.url, 'storm');
