import Fastify, { type FastifyInstance } from 'fastify';
import type { Sandbox } from './platform.js';
import { ScenarioUnavailableError } from './scenario-engine.js';
import { scenarioNameSchema, scenarioNames } from './scenarios.js';

// The sandbox's control port (8090 under `make start`): what a drill or a person uses to break the platform.
//   GET  /scenarios                 every scenario, what it breaks, which runbook answers it, which are active
//   POST /scenarios/<name>          applies one (`healthy` clears every fault)
//   POST /scenarios/<name>/recover  ends a vendor incident or review scenario (upstream recovered)

export function controlApp(sandbox: Sandbox): FastifyInstance {
  const app = Fastify({ logger: false });
  const usage = `POST /scenarios/{${scenarioNames.join('|')}}`;

  app.get('/scenarios', async () => ({
    scenarios: scenarioNames.map((name) => sandbox.scenarios.describe(name)),
    active: sandbox.scenarios.active,
    kubernetes: sandbox.kubeProxy.attached ? 'ready' : 'starting',
    ...(sandbox.scenarios.lastError ? { lastError: sandbox.scenarios.lastError } : {}),
  }));

  app.post<{ Params: { name: string } }>('/scenarios/:name', async (req, reply) => {
    const name = scenarioNameSchema.safeParse(req.params.name);
    if (!name.success) return reply.code(404).send({ error: `unknown scenario '${req.params.name}'`, usage });
    try {
      await sandbox.apply(name.data);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return reply.code(error instanceof ScenarioUnavailableError ? 503 : 500).send({ error: message });
    }
    return { applied: name.data, active: sandbox.scenarios.active };
  });

  app.post<{ Params: { name: string } }>('/scenarios/:name/recover', async (req, reply) => {
    const name = scenarioNameSchema.safeParse(req.params.name);
    if (!name.success) return reply.code(404).send({ error: `unknown scenario '${req.params.name}'`, usage });
    if (!(await sandbox.scenarios.recover(name.data))) {
      return reply.code(409).send({
        error: `${name.data} is not an active scenario that recovers when told (see GET /scenarios)`,
      });
    }
    return { recovered: name.data, active: sandbox.scenarios.active };
  });

  return app;
}

/** Serves the control app on loopback. */
export async function controlServer(sandbox: Sandbox, port: number): Promise<FastifyInstance> {
  const app = controlApp(sandbox);
  await app.listen({ host: '127.0.0.1', port });
  return app;
}
