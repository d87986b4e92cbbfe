/**
 * Dispatches per decode token and per decoder layer at a preset's real layer structure (random weights drawn on the
 * GPU, the Q4_K_M plan of each family; the LM head's vocabulary cut to 1,024 rows, which changes no count), with f32
 * and int8 GEMV activations: the figure the decode-step fusions are judged by (docs: issue 14 part 4). One greedy
 * decode step per model through GpuCounter (bench/gpu-counters.ts); layers grouped by their dispatch sequence.
 * Gemma 3n layers are split as bench/decode-profile.ts splits them; Gemma 4 layers end at every third residual-norm
 * dispatch (attention add, MLP add, per-layer-input add), layer 0 starts after its input RMSNorm.
 *
 * Usage: node --import ./scripts/register.mjs bench/decode-dispatches.ts [--family gemma3n|gemma4] [--preset e2b|tiny]
 *   [--activations f32|int8] (default: every combination of gemma3n e2b, gemma4 e2b and tiny, f32 and int8)
 */
import { createNodeGpuContext } from '../src/node/gpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { Gemma3nModel } from '../src/model/gemma3n/model.ts';
import { Gemma4Model } from '../src/model/gemma4/model.ts';
import { createRandomCheckpoint } from '../src/model/gemma3n/random-checkpoint.ts';
import { createGemma4RandomCheckpoint, type Gemma4RandomPreset } from '../src/model/gemma4/random-checkpoint.ts';
import { GpuCounter, type DispatchRecord } from './gpu-counters.ts';
import { kernelName, splitLayers } from './decode-profile.ts';

type Family = 'gemma3n' | 'gemma4';
type Act = 'f32' | 'int8';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Gemma 4: layer l ends at residual-norm dispatch 3(l + 1); layer 0 starts after the first rmsnorm. */
function splitGemma4(records: DispatchRecord[], layers: number) {
  const names = records.map(kernelName);
  const start = names.indexOf('rmsnorm/main') + 1;
  const ends = names.flatMap((n, i) => (n.startsWith('residual-norm/') ? [i] : [])).filter((_, j) => j % 3 === 2);
  if (start <= 0 || ends.length !== layers) return undefined;
  const groups = new Map<string, { layers: number[]; dispatches: number; sequence: string }>();
  let from = start;
  ends.forEach((end, l) => {
    const seq = names.slice(from, end + 1).map((n) => n.split(' ')[0]);
    from = end + 1;
    const key = seq.join(',');
    const g = groups.get(key) ?? { layers: [], dispatches: seq.length, sequence: key };
    g.layers.push(l);
    groups.set(key, g);
  });
  return { meanDispatches: (ends[ends.length - 1] + 1 - start) / layers, before: start, after: names.length - ends[ends.length - 1] - 1, groups: [...groups.values()] };
}

async function count(ctx: GpuContext, family: Family, preset: string, activations: Act) {
  const opts = { weights: 'q4' as const, random: true, maxContext: 64, chunk: 8, activations };
  const model = family === 'gemma3n'
    ? await Gemma3nModel.load(ctx, createRandomCheckpoint({ preset: preset as 'e2b' | 'tiny', vocabSize: 1024 }), opts)
    : await Gemma4Model.load(ctx, createGemma4RandomCheckpoint({ preset: preset as Gemma4RandomPreset, vocabSize: 1024 }), opts);
  try {
    const layers = family === 'gemma3n' ? (model as Gemma3nModel).config.text.numLayers : (model as Gemma4Model).config.text.numLayers;
    const first = await model.feedAndSample([2, 17], { temperature: 0, allowMultimodal: true });
    const counter = GpuCounter.install(ctx.device, false);
    try {
      await model.feedAndSample([first], { temperature: 0, allowMultimodal: true });
    } finally {
      counter.uninstall();
    }
    const split = family === 'gemma3n' ? splitLayers(counter.records, layers) : splitGemma4(counter.records, layers);
    const groups = split?.groups.map((g) => ({
      layers: g.layers.length === 1 ? `${g.layers[0]}` : `${g.layers[0]}..${g.layers[g.layers.length - 1]} (${g.layers.length})`,
      dispatches: g.dispatches,
      sequence: typeof g.sequence === 'string' ? g.sequence : g.sequence.map((s) => (s.count > 1 ? `${s.kernel} x${s.count}` : s.kernel)).join(','),
    }));
    return { family, preset, activations, layers, perToken: counter.counts.dispatches, perLayer: split ? Number(split.meanDispatches.toFixed(2)) : undefined, before: split?.before, after: split?.after, groups };
  } finally {
    model.dispose();
  }
}

const ctx = await createNodeGpuContext();
const families: Family[] = arg('family') ? [arg('family') as Family] : ['gemma3n', 'gemma4'];
const acts: Act[] = arg('activations') ? [arg('activations') as Act] : ['f32', 'int8'];
for (const family of families) {
  const presets = arg('preset') ? [arg('preset')!] : family === 'gemma3n' ? ['e2b'] : ['tiny', 'e2b'];
  for (const preset of presets) {
    for (const act of acts) {
      const r = await count(ctx, family, preset, act);
      console.log(`${r.family} ${r.preset} ${r.activations}: ${r.perToken} dispatches/token, ${r.perLayer} per layer (${r.layers} layers; ${r.before} before, ${r.after} after)`);
      for (const g of r.groups ?? []) console.log(`  layers ${g.layers}: ${g.dispatches}  ${g.sequence}`);
    }
  }
}
process.exit(0);
