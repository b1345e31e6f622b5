import { readdir } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { projectRoot } from '../helpers/paths.js';
import {
  allows,
  describeGrant,
  describeRequest,
  grants,
  kubeRequestsDir,
  readKubeRequestRecordings,
  shippedRole,
} from '../helpers/rbac.js';

// Runs after the whole suite (`make test`; vitest.suite-end.config.ts): every request the worker's real
// activities made to the sandbox's Kubernetes API, in every test that ran a whole product (end-to-end tests
// of the six runbooks, the drill, chaos, monitors), against the Role the product ships. Each request must
// be one the Role allows, inside the platform's namespace; and each permission of the Role must be one
// the end-to-end and drill tests needed: a permission only a unit-sized test uses is not least privilege.

const e2eDir = 'test/e2e';

describe('the Kubernetes requests of the whole-product tests, against the shipped Role', async () => {
  const recordings = await readKubeRequestRecordings();
  const { rules = [] } = await shippedRole();
  const e2eFiles = (await readdir(`${projectRoot}${e2eDir}`)).filter((f) => f.endsWith('.test.ts')).sort();
  const e2e = recordings.filter((r) => r.file.startsWith(`${e2eDir}/`));

  it('has a recording from every end-to-end and drill test file of this run', () => {
    const recorded = new Set(e2e.map((r) => r.file.slice(e2eDir.length + 1)));
    const missing = e2eFiles.filter((f) => !recorded.has(f));
    expect(
      missing,
      `no requests recorded in ${kubeRequestsDir} by these files: run the whole suite first (make test)`,
    ).toEqual([]);
    expect(e2e.flatMap((r) => r.requests).length).toBeGreaterThan(0);
  });

  it('are each allowed by the Role, inside the platform namespace', () => {
    const outside: string[] = [];
    const denied: string[] = [];
    for (const recording of recordings) {
      for (const request of recording.requests) {
        const what = `${recording.file}: ${describeRequest(request)} (${request.count}x)`;
        if (request.namespace !== recording.namespace) outside.push(what);
        if (!rules.some((rule) => allows(rule, request))) denied.push(what);
      }
    }
    expect(recordings.length).toBeGreaterThanOrEqual(e2eFiles.length);
    expect(outside, 'requests outside the namespace of the platform').toEqual([]);
    expect(denied, 'requests the shipped Role does not allow').toEqual([]);
  });

  it('use every permission of the Role', () => {
    const requests = e2e.flatMap((r) => r.requests);
    const unused = rules
      .flatMap(grants)
      .filter((grant) => !requests.some((r) => allows(grant, r)))
      .map(describeGrant);
    expect(unused, 'permissions no end-to-end or drill test needed').toEqual([]);
  });
});
