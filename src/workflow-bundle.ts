// The workflow bundle: the one piece of code a Temporal worker replays, built by webpack from
// src/workflow-entry.ts. Production workers run a bundle built ahead of time (`npm run build:workflows`,
// part of `npm run build`), the same function builds the bundle the replay tests check, and a worker
// started from the sources builds it at start. `tsx src/workflow-bundle.ts [file]` writes it.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { bundleWorkflowCode, type WorkflowBundleWithSourceMap } from '@temporalio/worker';
import { ConfigError } from './config.js';

const fromSources = import.meta.url.endsWith('.ts');

/** Path of the bundle's entry; works from sources (tsx) and from the compiled dist. */
export const workflowsPath = fileURLToPath(
  new URL(`./workflow-entry${fromSources ? '.ts' : '.js'}`, import.meta.url),
);

/**
 * Where `npm run build:workflows` writes the bundle and where a compiled worker (dist/worker.js) looks for
 * it by default: dist/workflows.bundle.js, beside the compiled worker.
 */
export const defaultBundleFile = fileURLToPath(
  new URL(fromSources ? '../dist/workflows.bundle.js' : './workflows.bundle.js', import.meta.url),
);

/**
 * The tracing interceptors (src/workflows/tracing-interceptors.ts), in every bundle whether tracing is on or
 * not: the bundle, its digest and so the Worker Deployment Version do not depend on the environment.
 */
export const workflowInterceptorModules = [
  fileURLToPath(new URL(`./workflows/tracing-interceptors${fromSources ? '.ts' : '.js'}`, import.meta.url)),
];

type BundleLogger = NonNullable<Parameters<typeof bundleWorkflowCode>[0]['logger']>;
const noop = () => {};
/** Webpack's warnings and errors only. */
const quietLogger: BundleLogger = {
  trace: noop,
  debug: noop,
  info: noop,
  log: noop,
  warn: (message, meta) => console.warn(message, meta ?? ''),
  error: (message, meta) => console.error(message, meta ?? ''),
};

/** Bundles the product's workflows (webpack: several seconds). */
export function buildWorkflowBundle(
  logger: BundleLogger = quietLogger,
): Promise<WorkflowBundleWithSourceMap> {
  return bundleWorkflowCode({ workflowsPath, workflowInterceptorModules, logger });
}

/**
 * sha256 of the bundle's code without its inline source map (which holds the absolute paths of the
 * sources): the same sources and packages give the same digest wherever they are built.
 */
export function bundleDigest(code: string): string {
  const map = code.lastIndexOf('//# sourceMappingURL=data:');
  return createHash('sha256')
    .update(map > 0 ? code.slice(0, map) : code)
    .digest('hex');
}

/** Builds the bundle and writes it (atomically) to `file`; the source map is inline. */
export async function writeWorkflowBundle(
  file = defaultBundleFile,
): Promise<{ file: string; digest: string }> {
  const { code } = await buildWorkflowBundle();
  const target = resolve(file);
  await mkdir(dirname(target), { recursive: true });
  const partial = `${target}.${process.pid}.tmp`;
  await writeFile(partial, code);
  await rename(partial, target);
  return { file: target, digest: bundleDigest(code) };
}

export interface LoadedWorkflowBundle {
  /** For Worker.create({ workflowBundle }). */
  bundle: { code: string };
  /** Where it came from, for the worker's start line. */
  source: string;
  /** bundleDigest() of its code. */
  digest: string;
}

/**
 * The bundle a worker runs: the file WORKFLOW_BUNDLE names; else, for a compiled worker, the prebuilt
 * dist/workflows.bundle.js (an error if it is missing: a production worker never bundles at start);
 * else, from the sources, a bundle built now.
 */
export async function loadWorkflowBundle(
  bundleFile: string | undefined,
  compiled = !fromSources,
): Promise<LoadedWorkflowBundle> {
  const file = bundleFile ?? (compiled ? defaultBundleFile : undefined);
  if (!file) {
    const { code } = await buildWorkflowBundle();
    return { bundle: { code }, source: `built at start from ${workflowsPath}`, digest: bundleDigest(code) };
  }
  let code: string;
  try {
    code = await readFile(file, 'utf8');
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code ?? 'unreadable';
    const variable = bundleFile ? 'WORKFLOW_BUNDLE' : 'WORKFLOW_BUNDLE (unset)';
    throw new ConfigError(
      `Invalid configuration:\n  ${variable}: no workflow bundle at ${file} (${reason}); build it with \`npm run build\``,
    );
  }
  return { bundle: { code }, source: `prebuilt ${file}`, digest: bundleDigest(code) };
}

async function main(): Promise<void> {
  const { file, digest } = await writeWorkflowBundle(process.argv[2] ?? defaultBundleFile);
  console.log(`workflow bundle: ${file} (code sha256 ${digest})`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  });
}
