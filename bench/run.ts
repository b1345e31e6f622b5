import { main } from './lib/runner.js';

process.exitCode = await main(process.argv.slice(2));
