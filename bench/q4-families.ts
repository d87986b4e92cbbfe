/**
 * Which tensor families need int8 in q4 mode? Runs the float64 CPU reference on weights quantized per family
 * (the GPU quantizer's exact rules, src/model/gemma3n/cpu-quant.ts) and prints top-1 agreement and mean
 * KL(golden ‖ ours) over every golden position of every gemma3n-tiny-* fixture, or (--family gemma4) of the
 * gemma4-tiny-a fixture with Gemma 4's tensor groups (src/model/gemma4/quant-plan.ts).
 * Usage: node --import ./scripts/register.mjs bench/q4-families.ts [--family gemma3n|gemma4] [--plans-only]
 */
import { openSafetensorsCheckpoint } from '../src/io/safetensors.ts';
import { directoryFiles } from '../src/node/checkpoint-files.ts';
import { parseGemma3nConfig } from '../src/model/gemma3n/config.ts';
import { type Family, type StoredFormat } from '../src/model/gemma3n/quant-plan.ts';
import { quantizeRefWeights, quantizeRefWeightsBy } from '../test/helpers/quantized-reference.ts';
import { loadRefWeights, referenceForward, type RefWeights } from '../test/helpers/reference-gemma3n.ts';
import { tinyFixtures, argmax, klDivergence } from '../test/helpers/fixtures.ts';
import { parseGemma4Config } from '../src/model/gemma4/config.ts';
import { formatFor as gemma4FormatFor, groupOf as gemma4GroupOf, type Group as Gemma4Group } from '../src/model/gemma4/quant-plan.ts';
import { kQuantOrFallback, usesMoreBits, type TensorFacts } from '../src/model/stored-format.ts';
import { dataBytes, isQuantFormat, scaleBytes } from '../src/formats/weight-format.ts';
import { countGemma4Memory } from '../src/model/gemma4/memory-estimate.ts';
import { createGemma4RandomCheckpoint } from '../src/model/gemma4/random-checkpoint.ts';
import { gemma4TensorTable } from '../src/model/gemma4/tensors.ts';
import { tableSpecs } from '../src/model/tensor-table.ts';
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
    console.log(`absmax plan before the Q4_K_M mix (attn+mlp+pleTable q4) ${score({ ...allQ8, attn: 'q4', mlp: 'q4', pleTable: 'q4' })}`);
  }
}
/**
 * Gemma 4: the same measurement over its own groups (no AltUp, LAuReL or embedders), then whole per-tensor plans
 * (K-quants included, with llama.cpp's shape fallback on the fixture's rows, which are not 256-weight super-blocks)
 * with their bits per weight over every text-decoder tensor (1-D tensors in f32, the host PLE table in its q4 mode
 * format) and their GPU bytes at real E2B / E4B size (src/model/gemma4/memory-estimate.ts's count, weights in the
 * plan's formats; 4,096-token context, chunk 64, PLE table in host memory).
 */
async function mainGemma4() {
  const fx = gemma4Fixture();
  const ckpt = await openSafetensorsCheckpoint(directoryFiles(fx.dir));
  const cfg = parseGemma4Config(ckpt.config);
  const w = await loadGemma4RefWeights(ckpt, cfg);
  const shapes = new Map([...w.keys()].map((n) => [n, ckpt.tensor(n)!.shape]));
  const groups: Gemma4Group[] = ['embed', 'pleTable', 'attn', 'mlp', 'pleProj'];
  const scoreWeights = (qw: RefWeights) => {
    let agree = 0, n = 0, kl = 0;
    for (const gc of fx.golden.cases) {
      const { logits } = gemma4ReferenceForward(cfg, qw, gc.input_ids);
      gc.logits.forEach((g, t) => {
        agree += argmax(logits[t]) === argmax(g) ? 1 : 0;
        kl += klDivergence(g, logits[t]);
        n++;
      });
    }
    return { top1: agree / n, kl: kl / n, n };
  };
  const score = (plan: Partial<Record<Gemma4Group, StoredFormat>>) => {
    const s = scoreWeights(quantizeRefWeights(w, shapes, plan, undefined, gemma4GroupOf));
    return `top-1 ${s.top1.toFixed(3)}  mean KL ${s.kl.toFixed(4)}  (${s.n} positions)`;
  };
  const all = (f: StoredFormat) => Object.fromEntries(groups.map((g) => [g, f])) as Record<Gemma4Group, StoredFormat>;
  console.log(`== ${fx.name}`);
  if (!process.argv.includes('--plans-only')) {
    console.log(`all q4                     ${score(all('q4'))}`);
    console.log(`all q8                     ${score(all('q8'))}`);
    for (const g of groups) console.log(`q4, ${g.padEnd(9)} in q8         ${score({ ...all('q4'), [g]: 'q8' })}`);
    for (const g of groups) console.log(`q8, ${g.padEnd(9)} only in q4   ${score({ ...all('q8'), [g]: 'q4' })}`);
  }

  // Whole plans, per tensor. The PLE table is host memory in the q4 mode's format (ple-table.ts pleHostFormat: q4).
  type Plan = (name: string, group: Gemma4Group, facts: TensorFacts) => StoredFormat;
  // `flat`: K-quants even where a row is not whole super-blocks (see heldShape); else llama.cpp's fallback (q5, q8).
  let flat = false;
  const kq = (f: 'q4k' | 'q6k', facts: TensorFacts) => (flat ? f : kQuantOrFallback(f, facts.shape[1]));
  const mirror = (attn: 'kquant' | 'q8' | 'qk-q8', moreBits: boolean, pleProj: 'q8' | 'llama.cpp', embed: 'q6k' | 'q8' = 'q6k'): Plan => (name, group, facts) => {
    switch (group) {
      case 'embed':
        return embed === 'q8' ? 'q8' : kq('q6k', facts);
      case 'pleTable':
        return 'q4';
      case 'pleProj':
        return pleProj === 'llama.cpp' && !name.endsWith('per_layer_model_projection.weight') ? kq('q4k', facts) : 'q8';
      case 'attn':
      case 'mlp':
        if (group === 'attn' && (attn === 'q8' || (attn === 'qk-q8' && /(q|k)_proj\.weight$/.test(name)))) return 'q8';
        return kq(moreBits && usesMoreBits(name, facts.layers) ? 'q6k' : 'q4k', facts);
      default:
        return 'f32';
    }
  };
  const plans: Record<string, Plan> = {
    'Q4_PLAN (the plan in quant-plan.ts)': (name, _g, facts) => gemma4FormatFor(name, 'q4', false, facts),
    'the absmax plan before: mlp, PLE q4; attn, embed, pleProj q8': (_n, g) => ({ mlp: 'q4', pleTable: 'q4', small: 'f32' } as Record<string, StoredFormat>)[g] ?? 'q8',
    'absmax plan with mlp q4k (no more-bits layers)': (_n, g, facts) => (g === 'mlp' ? kq('q4k', facts) : g === 'pleTable' ? 'q4' : g === 'small' ? 'f32' : 'q8'),
    'Q4_K_M mirror: attn/mlp q4k, v/down more-bits q6k, embed q6k, pleProj q8': mirror('kquant', true, 'q8'),
    'mirror, pleProj as llama.cpp (gate/proj q4k, model proj q8)': mirror('kquant', true, 'llama.cpp'),
    'mirror, no more-bits layers': mirror('kquant', false, 'q8'),
    'mirror, attn q8': mirror('q8', true, 'q8'),
    'mirror, attn q8, no more-bits layers': mirror('q8', false, 'q8'),
    'mirror, attn q8, pleProj as llama.cpp': mirror('q8', true, 'llama.cpp'),
    'mirror, attn q8, embed q8': mirror('q8', true, 'q8', 'q8'),
    'mirror, q/k q8': mirror('qk-q8', true, 'q8'),
  };
  const L = cfg.text.numLayers;
  const matrixBytes = (f: StoredFormat, rows: number, cols: number) => {
    const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
    return align16(dataBytes(f, rows, cols)) + (isQuantFormat(f) ? align16(scaleBytes(f, rows, cols)) : 0);
  };
  const realGb = (plan: Plan) =>
    (['e2b', 'e4b'] as const).map((preset) => {
      const c = parseGemma4Config(createGemma4RandomCheckpoint({ preset }).config).text;
      const n = countGemma4Memory(c, { weights: 'q4', maxContext: 4096, chunk: 64, f16: false });
      let delta = 0;
      for (const spec of tableSpecs(gemma4TensorTable(c))) {
        if (spec.kind !== 'matrix') continue;
        const facts = { shape: spec.shape, layers: c.numLayers };
        delta += matrixBytes(plan(spec.name, gemma4GroupOf(spec.name), facts), ...spec.shape) - matrixBytes(gemma4FormatFor(spec.name, 'q4', false, facts), ...spec.shape);
      }
      return ((n.weights + delta + n.kvCache + n.scratch) / 1e9).toFixed(3);
    });
  // The fixture's rows (96, 64, 128, 192, 384 weights) are not whole 256-weight super-blocks: with `flat`, a K-quant
  // tensor is quantized as its values in rows of 256 ([n/256, 256]; every count here is a multiple of 256). Every
  // 32-weight (q4k) / 16-weight (q6k) sub-block still lies within one real row; only the super-block's f16 d/dmin
  // span rows. That measures the formats at the bits E2B/E4B pay (4.5 / 6.56), which the fallback cannot.
  const heldShape = (f: StoredFormat, shape: readonly number[]) =>
    flat && (f === 'q4k' || f === 'q6k') && shape[1] % 256 !== 0 ? [(shape[0] * shape[1]) / 256, 256] : shape;
  console.log('\n| plan | mean KL | top-1 | bits/weight | E2B / E4B GPU GB |\n|---|---|---|---|---|');
  for (const f of [false, true]) {
    flat = f;
    for (const [label, plan] of Object.entries(plans)) {
      if (flat && !/mirror|q4k/.test(label)) continue;
      const formatOf = (name: string) => {
        const shape = shapes.get(name)!;
        return shape.length === 2 ? plan(name, gemma4GroupOf(name), { shape, layers: L }) : 'f32';
      };
      let bytes = 0, params = 0;
      const held = new Map<string, readonly number[]>();
      for (const [name, values] of w) {
        const shape = shapes.get(name)!, f = formatOf(name);
        const hs = heldShape(f, shape.length === 2 ? shape : [1, values.length]);
        held.set(name, shape.length === 2 ? hs : shape);
        bytes += dataBytes(f, hs[0], hs[1]) + (isQuantFormat(f) ? scaleBytes(f, hs[0], hs[1]) : 0);
        params += values.length;
      }
      const s = scoreWeights(quantizeRefWeightsBy(w, held, formatOf));
      console.log(`| ${label}${flat ? ' [K-quant super-blocks across rows]' : ''} | ${s.kl.toFixed(4)} | ${s.top1.toFixed(3)} | ${((8 * bytes) / params).toFixed(3)} | ${realGb(plan).join(' / ')} |`);
    }
  }
}

const family = process.argv.includes('--family') ? process.argv[process.argv.indexOf('--family') + 1] : 'gemma3n';
if (family === 'gemma4') await mainGemma4();
else await main();
