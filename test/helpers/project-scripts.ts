import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { projectRoot } from './paths.js';

// The project's service scripts (scripts/*.sh), as the test suite's global setup and the benchmarks run them.

const run = promisify(execFile);

/** Runs `scripts/<name> <args>` and returns its trimmed stdout; a failure says what the script printed. */
export async function projectScript(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
): Promise<string> {
  try {
    const { stdout } = await run('bash', [`${projectRoot}scripts/${name}`, ...args], {
      env,
      cwd: projectRoot,
      // The control plane builds itself on a fresh machine first (about 15 minutes).
      timeout: 1_800_000,
    });
    return stdout.trim();
  } catch (error) {
    const e = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`scripts/${name} ${args.join(' ')} failed:\n${e.stderr || e.stdout || e.message}`);
  }
}

/** Whether `scripts/<name> status` says the service runs. */
export const projectServiceRunning = (name: string, env?: NodeJS.ProcessEnv): Promise<boolean> =>
  projectScript(name, ['status'], env).then(
    () => true,
    () => false,
  );
