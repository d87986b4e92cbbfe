/**
 * Which tensor families need int8 in q4 mode? Runs the float64 CPU reference on weights quantized per family
 * (the GPU quantizer's exact rules, src/model/gemma3n/cpu-quant.ts) and prints top-1 agreement and mean
 * KL(golden ‖ ours) over every golden position of every gemma3n-tiny-* fixture, or (--family gemma4) of the
 * gemma4-tiny-a fixture with Gemma 4's tensor groups (src/model/gemma4/quant-plan.ts).
 * Usage: node --import ./scripts/register.mjs bench/q4-families.ts [--family gemma3n|gemma4]
 */
import { openSafetensorsCheckpoint } from '../src/io/safetensors.ts';
import { directoryFiles } from '../src/node/checkpoint-files.ts';
import { parseGemma3nConfig } from '../src/model/gemma3n/config.ts';
import { type Family, type StoredFormat } from '../src/model/gemma3n/quant-plan.ts';
import { quantizeRefWeights } from '../test/helpers/quantized-reference.ts';
import { loadRefWeights, referenceForward } from '../test/helpers/reference-gemma3n.ts';
import { tinyFixtures, argmax, klDivergence } from '../test/helpers/fixtures.ts';
import { parseGemma4Config } from '../src/model/gemma4/config.ts';
import { Q4_PLAN as GEMMA4_Q4_PLAN, groupOf as gemma4GroupOf, type Group as Gemma4Group } from '../src/model/gemma4/quant-plan.ts';
import { gemma4Fixture } from '../test/helpers/gemma4-fixture.ts';
import { gemma4ReferenceForward, loadGemma4RefWeights } from '../test/helpers/reference-gemma4.ts';

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
/** Gemma 4: the same measurement over its own groups (no AltUp, LAuReL or embedders). */
async function mainGemma4() {
  const fx = gemma4Fixture();
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
  const cfg = parseGemma4Config(ckpt.config);
  const w = await loadGemma4RefWeights(ckpt, cfg);
  const shapes = new Map([...w.keys()].map((n) => [n, ckpt.tensor(n)!.shape]));
  const groups: Gemma4Group[] = ['embed', 'pleTable', 'attn', 'mlp', 'pleProj'];
  const score = (plan: Partial<Record<Gemma4Group, StoredFormat>>) => {
    const qw = quantizeRefWeights(w, shapes, plan, undefined, gemma4GroupOf);
    let agree = 0, n = 0, kl = 0;
    for (const gc of fx.golden.cases) {
      const { logits } = gemma4ReferenceForward(cfg, qw, gc.input_ids);
      gc.logits.forEach((g, t) => {
        agree += argmax(logits[t]) === argmax(g) ? 1 : 0;
        kl += klDivergence(g, logits[t]);
        n++;
      });
    }
    return `top-1 ${(agree / n).toFixed(3)}  mean KL ${(kl / n).toFixed(4)}  (${n} positions)`;
  };
  const all = (f: StoredFormat) => Object.fromEntries(groups.map((g) => [g, f])) as Record<Gemma4Group, StoredFormat>;
  console.log(`== ${fx.name}`);
  console.log(`all q4                     ${score(all('q4'))}`);
  console.log(`all q8                     ${score(all('q8'))}`);
  for (const g of groups) console.log(`q4, ${g.padEnd(9)} in q8         ${score({ ...all('q4'), [g]: 'q8' })}`);
  for (const g of groups) console.log(`q8, ${g.padEnd(9)} only in q4   ${score({ ...all('q8'), [g]: 'q4' })}`);
  console.log(`Q4_PLAN                    ${score(GEMMA4_Q4_PLAN)}`);
}

const family = process.argv.includes('--family') ? process.argv[process.argv.indexOf('--family') + 1] : 'gemma3n';
if (family === 'gemma4') await mainGemma4();
else await main();
