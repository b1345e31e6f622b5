import type { Client } from '@temporalio/client';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { searchAttributeKeys } from '../../src/workflows/search-attributes.js';
import type { BenchServices } from './services.js';

// Workflow histories as the server keeps them (events and serialized bytes, run by run), and the
// time-skipping server for benchmarks whose workflows wait minutes or hours.

export interface RunSize {
  runId: string;
  events: number;
  /** The serialized history (temporal.api.history.v1.History), as the server stores and limits it. */
  bytes: number;
  /** How many upsertSearchAttributes commands the run recorded. */
  upserts: number;
  continuedAsNew: boolean;
  /** Marker events by marker name (core_patch: a patched() marker, core_local_activity: a local activity). */
  markers: Record<string, number>;
  /** Events by type (EVENT_TYPE_ prefix dropped), most frequent first. */
  byType: [string, number][];
}

/** The size of every run of a workflow id, from `firstRunId` along its continue-as-new chain. */
export async function runSizes(client: Client, workflowId: string, firstRunId: string): Promise<RunSize[]> {
  const { History } = proto.temporal.api.history.v1;
  const { EventType } = proto.temporal.api.enums.v1;
  const runs: RunSize[] = [];
  for (let runId: string | undefined = firstRunId; runId;) {
    const history: proto.temporal.api.history.v1.IHistory = await client.workflow
      .getHandle(workflowId, runId)
      .fetchHistory();
    const events = history.events ?? [];
    const last = events.at(-1);
    const next: string | undefined =
      last?.workflowExecutionContinuedAsNewEventAttributes?.newExecutionRunId ?? undefined;
    runs.push({
      runId,
      events: events.length,
      bytes: History.encode(history).finish().length,
      upserts: events.filter((e) => e.eventType === EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES)
        .length,
      continuedAsNew: next !== undefined,
      markers: Object.fromEntries(
        countTypes(events.flatMap((e) => e.markerRecordedEventAttributes?.markerName ?? [])),
      ),
      byType: countTypes(events.map((e) => EventType[e.eventType ?? 0] ?? String(e.eventType))),
    });
    runId = next;
  }
  return runs;
}

/** A time-skipping test server of its own, with the contract's search attributes registered. */
export async function timeSkippingEnv(services: BenchServices): Promise<TestWorkflowEnvironment> {
  if (!services.timeSkippingServer)
    throw new Error('this benchmark needs the time-skipping test server (BenchServices.timeSkippingServer)');
  const env = await TestWorkflowEnvironment.createTimeSkipping({
    server: { executable: { type: 'existing-path', path: services.timeSkippingServer } },
  });
  const { IndexedValueType } = proto.temporal.api.enums.v1;
  const searchAttributes: Record<string, proto.temporal.api.enums.v1.IndexedValueType> = {};
  for (const key of searchAttributeKeys)
    searchAttributes[key.name] = IndexedValueType[`INDEXED_VALUE_TYPE_${key.type}`];
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes,
  });
  return env;
}

function countTypes(types: string[]): [string, number][] {
  const counts = new Map<string, number>();
  for (const t of types)
    counts.set(t.replace(/^EVENT_TYPE_/, ''), (counts.get(t.replace(/^EVENT_TYPE_/, '')) ?? 0) + 1);
  return [...counts.entries()].sort((a, b) => b[1] - a[1]);
}
