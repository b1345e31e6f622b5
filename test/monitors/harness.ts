import { fileURLToPath } from 'node:url';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { bundleWorkflowCode, Worker, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { gmailActivities } from '../../src/activities/gmail.js';
import { httpActivities } from '../../src/activities/http.js';
import { kafkaActivities } from '../../src/activities/kafka.js';
import { monitorActivities } from '../../src/activities/monitor.js';
import type { FteApiSim } from '../../src/sandbox/fte-api.js';
import type { DeliverMonitorAlertsInput, MonitorDeliveryReport } from '../../src/workflows/monitor-rules.js';
import { FakePlatform } from '../helpers/fake-platform.js';
import { contactsFile, runbooksDir } from '../helpers/paths.js';
import { services } from '../helpers/services.js';

const workflowsPath = fileURLToPath(new URL('./workflows.ts', import.meta.url));
const noop = () => {};
const quietLogger = { trace: noop, debug: noop, info: noop, warn: noop, error: noop, log: noop };

let bundle: Promise<WorkflowBundleWithSourceMap> | undefined;

/** The product's workflows and the monitors, bundled once per test file. */
export function monitorBundle(): Promise<WorkflowBundleWithSourceMap> {
  bundle ??= bundleWorkflowCode({ workflowsPath, logger: quietLogger });
  return bundle;
}

export interface Deliveries {
  calls: DeliverMonitorAlertsInput[];
  reports: MonitorDeliveryReport[];
  /** Alerts delivered so far, as "alertname status" lines. */
  lines(): string[];
}

/**
 * A worker serving the incident and monitor workflows. The monitors' fte-api, Gmail and Kafka probes and the
 * Gmail renewal are the real activities against the fte-api simulator and the suite's Kafka; alerts go
 * through the real delivery activity (recorded on the way); the database probes (the health monitor's
 * `postgresConnections` too) and the incidents' other activities are the FakePlatform's.
 */
export async function monitorWorker(
  env: TestWorkflowEnvironment,
  taskQueue: string,
  sim: FteApiSim,
  platform = new FakePlatform(),
): Promise<{ worker: Worker; deliveries: Deliveries }> {
  const http = httpActivities({ apiBaseUrl: sim.url, statusPages: { openai: sim.url, twilio: sim.url } });
  const gmail = gmailActivities({ watchUrl: sim.gmailWatchUrl, token: sim.adminToken });
  const kafka = kafkaActivities({ brokers: services().kafkaBrokers });
  const delivery = monitorActivities({ client: env.client, runbooksDir, contactsFile });
  const deliveries: Deliveries = {
    calls: [],
    reports: [],
    lines() {
      return this.calls.flatMap((c) => c.alerts.map((a) => `${a.labels.alertname} ${a.status}`));
    },
  };
  const worker = await Worker.create({
    connection: env.nativeConnection,
    namespace: env.namespace ?? 'default',
    taskQueue,
    workflowBundle: await monitorBundle(),
    activities: {
      ...platform.activities(),
      httpHealth: http.httpHealth,
      channelMetrics: http.channelMetrics,
      webhookCheck: http.webhookCheck,
      gmailWatch: gmail.gmailWatch,
      renewGmailWatch: gmail.renewGmailWatch,
      kafkaConsumerLag: kafka.kafkaConsumerLag,
      deliverMonitorAlerts: async (input: DeliverMonitorAlertsInput) => {
        deliveries.calls.push(input);
        const report = await delivery.deliverMonitorAlerts(input);
        deliveries.reports.push(report);
        return report;
      },
    },
  });
  return { worker, deliveries };
}

/** Reads until the predicate holds; errors (e.g. a workflow that does not exist yet) count as "not yet". */
export async function poll<T>(
  read: () => Promise<T>,
  predicate: (value: T) => boolean,
  what: string,
  tries = 200,
): Promise<T> {
  let last: unknown;
  for (let i = 0; i < tries; i++) {
    try {
      const value = await read();
      last = value;
      if (predicate(value)) return value;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const seen = last instanceof Error ? last.message : JSON.stringify(last);
  throw new Error(`timed out waiting for ${what}; last: ${String(seen).slice(0, 2000)}`);
}
