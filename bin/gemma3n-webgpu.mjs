#!/usr/bin/env node
// gemma3n-webgpu CLI: runs the same engine code the browser runs, on Dawn (the `webgpu` npm package).
//   logits   --model DIR|FILE.gguf --tokens 2,105,2364 [--weights float|q4]         → {"logits": [[...], ...]}
//   generate --model DIR|FILE.gguf --tokens 2,105 --max-new-tokens 12 [--weights float|q4] → {"tokens": [...]}
//   both: [--size NAME | --skip-layers a,b --ffn-widths w1,w2,…] to run a MatFormer sub-model cut from the checkpoint
// No build step: TypeScript (and WGSL imports) load through scripts/register.mjs.
await import('../scripts/register.mjs');
const { main } = await import('../src/node/cli.ts');
await main(process.argv.slice(2));
