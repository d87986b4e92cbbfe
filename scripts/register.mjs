// `node --import ./scripts/register.mjs file.ts`: TypeScript (tsx) plus `?raw` WGSL imports, for tests, benchmarks and the CLI.
import { register } from 'node:module';
import { register as registerTsx } from 'tsx/esm/api';

registerTsx();
register('./wgsl-hooks.mjs', import.meta.url);
