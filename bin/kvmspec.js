#!/usr/bin/env node
// Launcher: registers tsx so the TypeScript sources run without a build step, then hands over to the CLI.
import { register } from 'tsx/esm/api';

register();
// `kvmspec list | head`: a reader that stops early is no error.
process.stdout.on('error', (e) => {
  if (e.code !== 'EPIPE') throw e;
  process.exit(process.exitCode ?? 0);
});
const { main } = await import('../harness/cli/main.ts');
process.exitCode = await main(process.argv.slice(2));
