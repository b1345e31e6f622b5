#!/usr/bin/env node
// incidentctl without a build step: tsx compiles the TypeScript sources on the fly.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/incidentctl.ts');
process.exitCode = await main(process.argv.slice(2));
