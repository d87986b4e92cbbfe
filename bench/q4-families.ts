/**
 * Which tensor families need int8 in q4 mode? Runs the float64 CPU reference on weights quantized per family
 * (the GPU quantizer's exact rules, src/model/gemma3n/cpu-quant.ts) and prints top-1 agreement and mean
 * KL(golden ‖ ours) over every golden position of every gemma3n-tiny-* fixture.
 * Usage: node --import ./scripts/register.mjs bench/q4-families.ts
 */
import { openSafetensorsCheckpoint } from '../src/io/safetensors.ts';
import { directoryFiles } from '../src/node/checkpoint-files.ts';
import { parseGemma3nConfig } from '../src/model/gemma3n/config.ts';
import { type Family, type StoredFormat } from '../src/model/gemma3n/quant-plan.ts';
import { quantizeRefWeights } from '../test/helpers/quantized-reference.ts';
import { loadRefWeights, referenceForward } from '../test/helpers/reference-gemma3n.ts';
import { tinyFixtures, argmax, klDivergence } from '../test/helpers/fixtures.ts';

const QUANTIZABLE: Family[] = ['embed', 'pleTable', 'attn', 'mlp', 'altup', 'laurel', 'pleProj'];

const quantizeWeights = quantizeRefWeights;

async function main() {
  for (const fx of tinyFixtures()) {
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
    const cfg = parseGemma3nConfig(ckpt.config);
    const w = await loadRefWeights(ckpt);
    const shapes = new Map([...w.keys()].map((n) => [n, ckpt.tensor(n)!.shape]));
    const score = (plan: Partial<Record<Family, StoredFormat>>) => {
      const qw = quantizeWeights(w, shapes, plan);
      let agree = 0, n = 0, kl = 0;
      for (const gc of fx.golden.cases) {
        const { logits } = referenceForward(cfg, qw, gc.input_ids);
        gc.logits.forEach((g, t) => {
          agree += argmax(logits[t]) === argmax(g) ? 1 : 0;
          kl += klDivergence(g, logits[t]);
          n++;
        });
      }
      return `top-1 ${(agree / n).toFixed(3)}  mean KL ${(kl / n).toFixed(4)}  (${n} positions)`;
    };
    const allQ4 = Object.fromEntries(QUANTIZABLE.map((f) => [f, 'q4'])) as Record<Family, StoredFormat>;
    const allQ8 = Object.fromEntries(QUANTIZABLE.map((f) => [f, 'q8'])) as Record<Family, StoredFormat>;
    console.log(`== ${fx.name}`);
    console.log(`all q4                     ${score(allQ4)}`);
    console.log(`all q8                     ${score(allQ8)}`);
    for (const f of QUANTIZABLE) console.log(`q4, ${f.padEnd(9)} in q8         ${score({ ...allQ4, [f]: 'q8' })}`);
    for (const f of QUANTIZABLE) console.log(`q8, ${f.padEnd(9)} only in q4   ${score({ ...allQ8, [f]: 'q4' })}`);
    console.log(`plan: attn+mlp q4, rest q8 ${score({ ...allQ8, attn: 'q4', mlp: 'q4' })}`);
    console.log(`plan: mlp q4, rest q8      ${score({ ...allQ8, mlp: 'q4' })}`);
    console.log(`Q4_PLAN (attn+mlp+pleTable q4) ${score({ ...allQ8, attn: "q4", mlp: "q4", pleTable: "q4" })}`);
  }
}
await main();
