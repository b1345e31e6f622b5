import { execFile } from 'node:child_process';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, symlink } from 'node:fs/promises';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { z } from 'zod';
import { writeWorkflowBundle } from '../../src/workflow-bundle.js';
import { useProduct } from '../e2e/harness.js';
import { projectRoot } from '../helpers/paths.js';
import { startWorkerProcess, type WorkerProcess } from '../helpers/worker-process.js';

// What the image holds (Dockerfile): `npm run build`'s compiled JavaScript and prebuilt workflow bundle, the
// runbooks, config and migrations, bin/, and the production dependencies only: no TypeScript sources, no
// tsx, no @temporalio/testing. Laid out the same way in a folder of the test's own, the compiled worker
// runs an incident on the real platform and the compiled incidentctl approves its step.

const run = promisify(execFile);
const runbook = 'all-channels-down';
const product = useProduct(runbook, { worker: 'none' });

const lockSchema = z.object({
  packages: z.record(z.string(), z.object({ dev: z.boolean().optional(), link: z.boolean().optional() })),
});
const manifestSchema = z.object({
  dependencies: z.record(z.string(), z.string()),
  devDependencies: z.record(z.string(), z.string()),
});

let image = '';
let worker: WorkerProcess | undefined;

/** `npm ci --omit=dev`'s tree, from the project's node_modules: the top-level packages the lock file does not mark dev. */
async function productionModules(into: string): Promise<void> {
  const lock = lockSchema.parse(JSON.parse(await readFile(`${projectRoot}package-lock.json`, 'utf8')));
  for (const [path, entry] of Object.entries(lock.packages)) {
    const name = path.slice('node_modules/'.length);
    if (!path.startsWith('node_modules/') || name.includes('/node_modules/') || entry.dev) continue;
    await mkdir(join(into, 'node_modules', name, '..'), { recursive: true });
    await symlink(join(projectRoot, path), join(into, 'node_modules', name), 'dir');
  }
}

beforeAll(async () => {
  image = await mkdtemp(join(tmpdir(), 'fte-image-'));
  await run(
    `${projectRoot}node_modules/.bin/tsc`,
    ['-p', 'tsconfig.build.json', '--outDir', `${image}/dist`],
    {
      cwd: projectRoot,
    },
  );
  await writeWorkflowBundle(`${image}/dist/workflows.bundle.js`);
  for (const part of ['package.json', 'bin', 'runbooks', 'config', 'migrations'])
    await cp(`${projectRoot}${part}`, `${image}/${part}`, { recursive: true });
  await productionModules(image);
}, 240_000);
afterAll(async () => {
  await worker?.kill('SIGKILL');
  if (image) await rm(image, { recursive: true, force: true });
});

async function compiledFiles(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile() && e.name.endsWith('.js')).map((e) => join(e.parentPath, e.name));
}

const packageOf = (specifier: string) =>
  specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : (specifier.split('/')[0] ?? '');

describe('the compiled product, laid out as in the image', () => {
  it('imports only Node built-ins and production dependencies', async () => {
    const { dependencies, devDependencies } = manifestSchema.parse(
      JSON.parse(await readFile(`${projectRoot}package.json`, 'utf8')),
    );
    expect(Object.keys(devDependencies)).toEqual(expect.arrayContaining(['tsx', '@temporalio/testing']));
    const imported = new Set<string>();
    for (const file of await compiledFiles(`${image}/dist`)) {
      if (file.endsWith('workflows.bundle.js')) continue;
      const code = await readFile(file, 'utf8');
      for (const m of code.matchAll(/(?:from|import\()\s*['"]((?:@[\w.-]+\/)?\w[\w.-]*(?:\/[\w./-]*)?)['"]/g))
        imported.add(packageOf(m[1] ?? ''));
    }
    const builtins = new Set(builtinModules);
    const outside = [...imported].filter(
      (p) => !p.startsWith('node:') && !builtins.has(p) && !(p in dependencies),
    );
    expect(outside, 'packages the compiled code imports that are not production dependencies').toEqual([]);
    expect(imported).toContain('@temporalio/worker');
  });

  it('has incidentctl without sources or tsx', async () => {
    const ctl = (args: string[]) =>
      run(process.execPath, [`${image}/bin/incidentctl.js`, ...args], { cwd: image, env: { PATH: '' } });
    await expect(readdir(`${image}/src`)).rejects.toThrow(/ENOENT/);
    await expect(readdir(`${image}/node_modules/tsx`)).rejects.toThrow(/ENOENT/);
    expect((await ctl(['--help'])).stdout).toMatch(/^ {2}approve\b/m);
    expect((await ctl(['runbook', 'lint', 'runbooks'])).stdout).toContain(runbook);
  });

  it('runs an incident: the compiled worker with the prebuilt bundle, approved by the compiled incidentctl', async () => {
    const p = product();
    worker = startWorkerProcess({ env: p.workerEnv, logFile: `${image}/worker.log`, compiledIn: image });
    await worker.polling(p.env.connection, 'default', 120);
    // No WORKFLOW_BUNDLE: the compiled worker finds the bundle beside it, as in the image.
    expect(await worker.output(50)).toContain(`${image}/dist/workflows.bundle.js`);

    await p.sandbox.apply('api-down');
    expect(await p.alert('FTEAllChannelsDown', 'firing')).toBe(202);
    const waiting = await p.waitFor(
      runbook,
      (s) => s.awaitingApproval.includes('restart-api'),
      'diagnosis by the compiled activities and the approval request',
      90,
    );
    expect(waiting.findings['api-health']?.status).toBe('down');
    expect(waiting.findings.postgres?.status).toBe('ok');

    const id = p.incidentId(runbook);
    const env = { PATH: '', TEMPORAL_ADDRESS: p.temporalAddress, TEMPORAL_NAMESPACE: 'default' };
    const approved = await run(
      process.execPath,
      [`${image}/bin/incidentctl.js`, 'approve', id, 'restart-api', '--as', 'carol'],
      { cwd: image, env },
    );
    expect(approved.stdout).toContain('approved step restart-api');
    const after = await p.waitFor(
      runbook,
      (s) => s.steps.some((st) => st.id === 'restart-api' && st.status !== 'awaiting-approval'),
      'the approved step to run',
      90,
    );
    expect(after.steps.find((st) => st.id === 'restart-api')?.approvedBy).toBe('carol');
  });
});
