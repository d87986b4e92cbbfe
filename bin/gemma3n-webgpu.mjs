#!/usr/bin/env node
// gemma3n-webgpu CLI: runs the same engine code the browser runs, on Dawn (the `webgpu` npm package).
//   logits   --model DIR|FILE.gguf --tokens 2,105,2364 [--weights float|q4]         → {"logits": [[...], ...]}
//   generate --model DIR|FILE.gguf --tokens 2,105 --max-new-tokens 12 [--weights float|q4] → {"tokens": [...]}
//   embed-image --model DIR --image FILE [--size WxH] [--out FILE.f32] → {"shape": [256, D], "out": ...} (src/node/cli-vision.ts)
// No build step: TypeScript (and WGSL imports) load through scripts/register.mjs.
await import('../scripts/register.mjs');
const { main } = await import('../src/node/cli.ts');
await main(process.argv.slice(2));
