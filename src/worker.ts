import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type NativeConnection } from '@temporalio/worker';
import { connectWorker, loadTemporalSettings } from './temporal.js';
import { createActivities, loadActivityDependencies, type ActivityDependencies } from './activities/index.js';

/** Path of the workflow entry the worker bundles; works from sources (tsx) and from the compiled dist. */
export const workflowsPath = fileURLToPath(
  new URL(`./workflows/index${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url),
);

export interface IncidentWorkerOptions {
  connection: NativeConnection;
  namespace: string;
  taskQueue: string;
  dependencies: ActivityDependencies;
}

export async function createIncidentWorker(options: IncidentWorkerOptions): Promise<Worker> {
  return Worker.create({
    connection: options.connection,
    namespace: options.namespace,
    taskQueue: options.taskQueue,
    workflowsPath,
    activities: createActivities(options.dependencies),
  });
}

async function main(): Promise<void> {
  const settings = await loadTemporalSettings();
  const connection = await connectWorker(settings);
  const dependencies = await loadActivityDependencies();
  const worker = await createIncidentWorker({
    connection,
    namespace: settings.namespace,
    taskQueue: settings.taskQueue,
    dependencies,
  });
  console.log(
    `worker: polling task queue ${settings.taskQueue} on ${settings.address} (${settings.namespace})`,
  );
  try {
    await worker.run();
  } finally {
    await dependencies.close();
    await connection.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
