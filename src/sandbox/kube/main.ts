import { parseArgs } from 'node:util';
import { z } from 'zod';
import { KubeSimulator } from './simulator.js';

// Runs the simulated cluster on its own, e.g. `tsx src/sandbox/kube/main.ts --port 6443 --kubeconfig k.yaml`,
// then `kubectl --kubeconfig k.yaml get pods`. Ctrl-C stops it.

const argsSchema = z.object({
  port: z.coerce.number().int().min(0).max(65535).default(0),
  kubeconfig: z.string().min(1).optional(),
  namespace: z.string().min(1).optional(),
});

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string' }, kubeconfig: { type: 'string' }, namespace: { type: 'string' } },
  });
  const args = argsSchema.parse(values);
  const sim = await new KubeSimulator({
    port: args.port,
    kubeconfigPath: args.kubeconfig,
    namespace: args.namespace,
  }).start();
  console.log(`Kubernetes simulator on ${sim.url}, namespace ${sim.namespace}`);
  console.log(`kubeconfig: ${sim.kubeconfigPath}`);
  const stop = () => void sim.stop().then(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
