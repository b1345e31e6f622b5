import { readFile } from 'node:fs/promises';
import { expect, it } from 'vitest';
import { projectRoot } from '../helpers/paths.js';

// `make start` builds the workflow bundle once and hands it to the worker (WORKFLOW_BUNDLE), so neither the
// worker's first start nor its restarts by the supervisor run webpack (bench/worker-start.ts measures both).

it('make start runs the worker on a workflow bundle built before it starts', async () => {
  const script = await readFile(`${projectRoot}scripts/start.sh`, 'utf8');
  const worker = script.indexOf('supervise worker ');
  const build = script.search(/node --import tsx src\/workflow-bundle\.ts "\$DATA\/workflows\.bundle\.js"/);
  const handed = script.search(/export WORKFLOW_BUNDLE="\$DATA\/workflows\.bundle\.js"/);
  expect(worker).toBeGreaterThan(0);
  expect(build).toBeGreaterThan(0);
  expect(handed).toBeGreaterThan(build);
  expect(worker).toBeGreaterThan(handed);
  // A bundle the operator names is used as it is.
  expect(script).toMatch(
    /if \[\[ -z "\$\{WORKFLOW_BUNDLE:-\}" \]\]; then\n\s+echo "make start: building the workflow bundle"/,
  );
});
