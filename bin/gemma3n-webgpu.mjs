#!/usr/bin/env node
// gemma3n-webgpu CLI: runs the same engine code the browser runs, on Dawn (the optional `webgpu` npm package).
// Commands and options: `gemma3n-webgpu --help` (the usage text lives in src/node/cli.ts only).
// Installed package: runs the built dist/cli.js (plain JavaScript). Development checkout (scripts/register.mjs is
// there; it is not published): runs src/node/cli.ts through tsx, so the CLI is never a stale build.
import { existsSync } from 'node:fs';

const devCheckout = existsSync(new URL('../scripts/register.mjs', import.meta.url));
let cli;
if (devCheckout) {
  await import('../scripts/register.mjs');
  cli = await import('../src/node/cli.ts');
} else {
  cli = await import('../dist/cli.js');
}
await cli.main(process.argv.slice(2));
