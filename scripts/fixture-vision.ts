// `npm run fixture:vision -- --out DIR`: writes the gemma3n-vision-procedural fixture's vision tower (+ embed_vision)
// as a bf16 safetensors checkpoint with its config.json (src/node/procedural-vision-fixture.ts). ~600 MB.
import { writeProceduralVisionCheckpoint } from '../src/node/procedural-vision-fixture.ts';

const args = process.argv.slice(2);
const i = args.indexOf('--out');
const out = i >= 0 ? args[i + 1] : undefined;
if (!out) {
  console.error('usage: npm run fixture:vision -- --out DIR');
  process.exit(1);
}
const t0 = performance.now();
const { bytes, tensors } = await writeProceduralVisionCheckpoint(out);
console.log(JSON.stringify({ out, tensors, bytes, seconds: Math.round((performance.now() - t0) / 100) / 10 }));
