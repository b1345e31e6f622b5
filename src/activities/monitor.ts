import { Context } from '@temporalio/activity';
import { Client, Connection } from '@temporalio/client';
import type { Runbook } from '../domain/runbook.js';
import { deliverAlerts } from '../starters/deliver.js';
import { clientConnectionOptions, loadTemporalSettings } from '../temporal.js';
import {
  deliverMonitorAlertsInputSchema,
  type DeliverMonitorAlertsInput,
  type MonitorDeliveryReport,
} from '../workflows/monitor-rules.js';
import { activityError, parseActivityArgs } from './common.js';
import { InvalidFileError, loadRunbookDir } from './runbooks.js';

type MatchableRunbook = Pick<Runbook, 'id' | 'title' | 'match'>;

export interface MonitorActivityDeps {
  /** The Temporal client incidents are opened with; a function is called on first use. */
  client: Client | (() => Promise<Client>);
  runbooksDir: string;
  contactsFile: string;
  /** Task queue of the incidents the monitors open; by default the one this activity runs on. */
  taskQueue?: string;
  /** Namespaces incidents act in (ACTION_NAMESPACES); alerts for another open a triage incident. */
  actionNamespaces?: readonly string[];
}

/** A Temporal client from the worker's environment (TEMPORAL_*), connected once on first use. */
export function lazyTemporalClient(processEnv: NodeJS.ProcessEnv = process.env): () => Promise<Client> {
  let client: Promise<Client> | undefined;
  return () => {
    client ??= (async () => {
      const settings = await loadTemporalSettings(processEnv);
      const connection = await Connection.connect(clientConnectionOptions(settings));
      return new Client({
        connection,
        namespace: settings.namespace,
        ...(settings.dataConverter ? { dataConverter: settings.dataConverter } : {}),
      });
    })();
    client.catch(() => {
      client = undefined;
    });
    return client;
  };
}

/** The activity through which monitor workflows open, join and resolve incidents (source `monitor`). */
export function monitorActivities(deps: MonitorActivityDeps) {
  let lastGood: MatchableRunbook[] | undefined;

  // Routing reads the runbook folder on every delivery, so an edited match applies at once; a folder
  // broken by an edit keeps routing with the last good reading instead of dropping alerts.
  async function runbooks(): Promise<MatchableRunbook[]> {
    try {
      const { runbooks: files } = await loadRunbookDir(deps.runbooksDir, deps.contactsFile);
      lastGood = files.map((f) => f.runbook);
    } catch (error) {
      if (!lastGood) {
        const why = error instanceof InvalidFileError ? error.message : String(error);
        throw activityError('ServerError', `cannot route monitor alerts: the runbooks do not load (${why})`);
      }
    }
    return lastGood;
  }

  return {
    /**
     * Delivers with deliverAlerts (signalWithStart, source `monitor`): firing alerts open or join their
     * incident; resolved ones only reach an incident that is still open.
     */
    async deliverMonitorAlerts(input: DeliverMonitorAlertsInput): Promise<MonitorDeliveryReport> {
      const { alerts } = parseActivityArgs(deliverMonitorAlertsInputSchema, input, 'deliverMonitorAlerts');
      const client = typeof deps.client === 'function' ? await deps.client() : deps.client;
      const taskQueue = deps.taskQueue ?? Context.current().info.taskQueue;
      const deliveries = await deliverAlerts(
        { client, taskQueue, ...(deps.actionNamespaces ? { actionNamespaces: deps.actionNamespaces } : {}) },
        await runbooks(),
        alerts,
        'monitor',
      );
      return {
        delivered: deliveries
          .filter((d) => d.delivered)
          .map((d) => ({ workflowId: d.workflowId, runbookId: d.runbookId, alerts: d.alerts })),
        skipped: deliveries
          .filter((d) => !d.delivered)
          .map((d) => ({ workflowId: d.workflowId, alerts: d.alerts })),
      };
    },
  };
}
