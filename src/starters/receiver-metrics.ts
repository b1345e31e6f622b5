import type { Client, WorkflowExecutionInfo } from '@temporalio/client';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { incidentStatuses } from '../domain/incident.js';
import { severitySchema } from '../domain/severity.js';
import proto from '@temporalio/proto';
import {
  AwaitingApproval,
  IncidentRunbook,
  IncidentSeverity,
  IncidentStatus,
  ReportStatus,
} from '../workflows/api.js';
import type { IncidentOutcome } from '../workflows/incident.js';
import { withTemporalDeadline } from './receiver-temporal.js';

export const rejectionReasons = [
  'auth',
  'malformed',
  'oversize',
  'rate-limited',
  'unavailable',
  'error',
] as const;
export type RejectionReason = (typeof rejectionReasons)[number];

/** Incidents that closed this long before the last look are looked at again (visibility is eventually consistent). */
const CLOSE_OVERLAP_MS = 5 * 60_000;
const MAX_LISTED = 5_000;
const RESULT_FETCH_BATCH = 8;

export interface ReceiverMetricsOptions {
  client: Client;
  /** Only incidents on this task queue are counted: the ones this receiver opens. */
  taskQueue: string;
  /** How long one look at Temporal visibility is reused across scrapes. */
  cacheMs: number;
  /** Deadline of one look at Temporal (all list and result calls together). */
  timeoutMs: number;
  /** Incidents that completed before this moment are not observed in the histograms. */
  since?: Date;
  onError?: (error: unknown) => void;
}

export interface ReceiverMetrics {
  registry: Registry;
  alertsReceived: Counter<'status'>;
  alertsDeduplicated: Counter;
  rejected: Counter<'reason'>;
  /** The exposition text, after refreshing the incident metrics from Temporal (cached). */
  render(): Promise<string>;
}

const quote = (value: string) => {
  if (/['"\\]/.test(value)) throw new Error(`unsupported character in visibility query value: ${value}`);
  return `'${value}'`;
};

function keyword(info: WorkflowExecutionInfo, key: typeof IncidentSeverity): string | undefined {
  return info.typedSearchAttributes.get(key);
}

/**
 * The receiver's Prometheus registry (its own, never the global one). Request counters are updated by the
 * receiver; incident gauges and histograms come from Temporal visibility when scraped: running incidents
 * are listed and grouped by their search attributes, and incidents completed since the last look add
 * their time to acknowledge/resolve (from the workflow result) to the histograms exactly once.
 */
export function createReceiverMetrics(options: ReceiverMetricsOptions): ReceiverMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const registers = [registry];

  const alertsReceived = new Counter({
    name: 'incident_receiver_alerts_received_total',
    help: 'Alerts received in valid Alertmanager payloads, by alert status',
    labelNames: ['status'] as const,
    registers,
  });
  const alertsDeduplicated = new Counter({
    name: 'incident_receiver_alerts_deduplicated_total',
    help: 'Alerts delivered to an incident run this receiver had already delivered to (or resolved alerts to an open one)',
    registers,
  });
  const rejected = new Counter({
    name: 'incident_receiver_requests_rejected_total',
    help: 'Requests answered with an error, by reason (auth 401, malformed 400/415, oversize 413, unavailable 503, error 500)',
    labelNames: ['reason'] as const,
    registers,
  });
  for (const status of ['firing', 'resolved']) alertsReceived.inc({ status }, 0);
  for (const reason of rejectionReasons) rejected.inc({ reason }, 0);

  const open = new Gauge({
    name: 'incident_open',
    help: 'Running incidents, by severity and status (search attributes IncidentSeverity, IncidentStatus)',
    labelNames: ['severity', 'status'] as const,
    registers,
  });
  const awaiting = new Gauge({
    name: 'incident_steps_awaiting_approval',
    help: 'Remediation steps waiting for approval in running incidents, by runbook (search attribute AwaitingApproval)',
    labelNames: ['runbook'] as const,
    registers,
  });
  const tta = new Histogram({
    name: 'incident_time_to_acknowledge_seconds',
    help: 'Time from opening to acknowledgement of incidents completed since the receiver started, by severity',
    labelNames: ['severity'] as const,
    buckets: [30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14_400],
    registers,
  });
  const ttr = new Histogram({
    name: 'incident_time_to_resolve_seconds',
    help: 'Time from opening to resolution of incidents completed since the receiver started, by severity',
    labelNames: ['severity'] as const,
    buckets: [60, 300, 600, 1800, 3600, 7200, 14_400, 28_800, 86_400, 172_800],
    registers,
  });
  const visibilityUp = new Gauge({
    name: 'incident_receiver_visibility_up',
    help: '1 if the last look at Temporal visibility for the incident metrics succeeded, else 0',
    registers,
  });
  const lastLook = new Gauge({
    name: 'incident_receiver_visibility_last_success_timestamp_seconds',
    help: 'When the incident metrics were last read from Temporal',
    registers,
  });

  const pollers = new Gauge({
    name: 'incident_task_queue_pollers',
    help: 'Workers polling the incident task queue at the last look, by task type (0: nothing runs incidents)',
    labelNames: ['type'] as const,
    registers,
  });
  const reports = new Gauge({
    name: 'incident_reports',
    help: 'Post-incident reports not yet completed, by search attribute ReportStatus (Pending, Overdue, Submitted)',
    labelNames: ['status'] as const,
    registers,
  });

  const { client, taskQueue, cacheMs, timeoutMs } = options;
  const baseQuery = `WorkflowType = 'incidentWorkflow' AND TaskQueue = ${quote(taskQueue)}`;
  const since = (options.since ?? new Date()).getTime();
  let closedFrom = since;
  /** Completed runs already observed, with their close time (pruned once outside the overlap window). */
  const observed = new Map<string, number>();
  let lastRefresh = 0;
  let inFlight: Promise<void> | undefined;

  async function list(query: string): Promise<WorkflowExecutionInfo[]> {
    const found: WorkflowExecutionInfo[] = [];
    for await (const info of client.workflow.list({ query })) {
      found.push(info);
      if (found.length >= MAX_LISTED) break;
    }
    return found;
  }

  async function readOpenIncidents(): Promise<void> {
    const running = await list(`${baseQuery} AND ExecutionStatus = 'Running'`);
    open.reset();
    awaiting.reset();
    for (const severity of severitySchema.options)
      for (const status of incidentStatuses) open.set({ severity, status }, 0);
    for (const info of running) {
      // An incident that is still loading its runbook has no search attributes yet.
      const severity = keyword(info, IncidentSeverity) ?? 'unknown';
      const status = keyword(info, IncidentStatus) ?? 'Opening';
      open.inc({ severity, status });
      const steps = info.typedSearchAttributes.get(AwaitingApproval) ?? [];
      if (steps.length > 0)
        awaiting.inc({ runbook: keyword(info, IncidentRunbook) ?? 'unknown' }, steps.length);
    }
  }

  async function readPollers(): Promise<void> {
    const { TaskQueueType } = proto.temporal.api.enums.v1;
    const types = [
      ['workflow', TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW],
      ['activity', TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY],
    ] as const;
    for (const [type, taskQueueType] of types) {
      const answer = await client.workflowService.describeTaskQueue({
        namespace: client.options.namespace,
        taskQueue: { name: taskQueue },
        taskQueueType,
      });
      pollers.set({ type }, answer.pollers?.length ?? 0);
    }
  }

  async function readReports(): Promise<void> {
    const running = await list(
      `WorkflowType = 'postIncidentWorkflow' AND TaskQueue = ${quote(taskQueue)} AND ExecutionStatus = 'Running'`,
    );
    reports.reset();
    for (const status of ['Pending', 'Overdue', 'Submitted']) reports.set({ status }, 0);
    for (const info of running)
      reports.inc({ status: info.typedSearchAttributes.get(ReportStatus) ?? 'Pending' });
  }

  async function observeCompletedIncidents(startedAt: number): Promise<void> {
    const from = new Date(closedFrom).toISOString();
    const completed = await list(`${baseQuery} AND ExecutionStatus = 'Completed' AND CloseTime >= '${from}'`);
    const fresh = completed.filter((info) => !observed.has(`${info.workflowId}/${info.runId}`));
    for (let i = 0; i < fresh.length; i += RESULT_FETCH_BATCH) {
      await Promise.all(
        fresh.slice(i, i + RESULT_FETCH_BATCH).map(async (info) => {
          const handle = client.workflow.getHandle(info.workflowId, info.runId, { followRuns: false });
          const outcome = (await handle.result()) as IncidentOutcome;
          if (outcome.timeToAcknowledgeMs !== undefined)
            tta.observe({ severity: outcome.severity }, outcome.timeToAcknowledgeMs / 1000);
          ttr.observe({ severity: outcome.severity }, outcome.timeToResolveMs / 1000);
          observed.set(`${info.workflowId}/${info.runId}`, info.closeTime?.getTime() ?? startedAt);
        }),
      );
    }
    closedFrom = Math.max(since, startedAt - CLOSE_OVERLAP_MS);
    for (const [key, closedAt] of observed) if (closedAt < closedFrom) observed.delete(key);
  }

  async function refresh(): Promise<void> {
    const startedAt = Date.now();
    try {
      await withTemporalDeadline(client, timeoutMs, async () => {
        await readOpenIncidents();
        await readReports();
        await readPollers();
        await observeCompletedIncidents(startedAt);
      });
      visibilityUp.set(1);
      lastLook.set(Math.floor(startedAt / 1000));
      lastRefresh = startedAt;
    } catch (error) {
      // Keep the last values; the up gauge says they are stale.
      visibilityUp.set(0);
      options.onError?.(error);
    }
  }

  return {
    registry,
    alertsReceived,
    alertsDeduplicated,
    rejected,
    async render() {
      if (Date.now() - lastRefresh >= cacheMs) {
        inFlight ??= refresh().finally(() => {
          inFlight = undefined;
        });
        await inFlight;
      }
      return registry.metrics();
    },
  };
}
