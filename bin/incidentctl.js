#!/usr/bin/env node
// incidentctl. In a checkout it runs the TypeScript sources through tsx (a devDependency), so there is no
// build step to forget; where there are no sources, as in the image, it runs the compiled JavaScript.
import { existsSync } from 'node:fs';

const sources = new URL('../src/cli/incidentctl.ts', import.meta.url);
let main;
if (existsSync(sources)) {
  const { register } = await import('tsx/esm/api');
  register();
  ({ main } = await import(sources.href));
} else {
  ({ main } = await import('../dist/cli/incidentctl.js'));
}
process.exitCode = await main(process.argv.slice(2));
