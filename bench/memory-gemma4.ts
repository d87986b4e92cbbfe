/**
 * `bench/memory.ts --family gemma4`: GPU and host memory of the real Gemma 4 E2B and E4B text decoders at a
 * 4,096-token context, by group, two ways (as for Gemma 3n):
 *   - counted: src/model/gemma4/memory-estimate.ts (the pre-flight check's count: format plan, weight layouts,
 *     KV-cache sizing per layer type, forward.ts's scratch buffers), with the weights broken down by group here;
 *   - measured: Gemma4Model.load(ctx, randomCheckpoint, { random: true }) really allocates the model (real dimensions
 *     and vocabulary, random int4/int8 codes written on the GPU, no download) and reports model.memory(). Exits 1
 *     if the two disagree by a single byte (the kernels' own buffers are measured only: bench/memory-table.ts).
 */
import { parseGemma4Config, type Gemma4TextConfig } from '../src/model/gemma4/config.ts';
import { formatFor } from '../src/model/gemma4/quant-plan.ts';
import { gemma4TensorTable } from '../src/model/gemma4/tensors.ts';
import { Gemma4Model } from '../src/model/gemma4/model.ts';
import { createGemma4RandomCheckpoint, type Gemma4RandomPreset } from '../src/model/gemma4/random-checkpoint.ts';
import { tableSpecs } from '../src/model/tensor-table.ts';
import type { WeightMode } from '../src/model/family.ts';
import type { MemoryReport } from '../src/model/language-model.ts';
import { dataBytes, isQuantFormat, scaleBytes } from '../src/formats/weight-format.ts';
import { pleHostFormat } from '../src/model/ple-table.ts';
import { countGemma4Memory } from '../src/model/gemma4/memory-estimate.ts';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import { printMemoryTable } from './memory-table.ts';

export interface Gemma4MemoryOptions {
  presets: string[];
  context: number;
  chunk: number;
  mode: WeightMode;
  pleOnGpu: boolean;
  measure: boolean;
}

const GROUP_LABEL: Record<string, string> = { embed: 'embedding / LM head', attn: 'attention', mlp: 'MLP', pleProj: 'PLE projections', small: 'norms, layer scalars (f32)' };

/** Counts what Gemma4Model.load allocates for `c` (see the header). */
function count(c: Gemma4TextConfig, o: Gemma4MemoryOptions) {
  const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
  const vecBytes = (floats: number) => Math.max(16, floats * 4);
  const byGroup = new Map<string, number>();
  let weights = 0;
  const addTo = (label: string, b: number) => {
    byGroup.set(label, (byGroup.get(label) ?? 0) + b);
    weights += b;
  };
  for (const spec of tableSpecs(gemma4TensorTable(c))) {
    if (spec.kind === 'matrix') {
      const [rows, cols] = spec.shape;
      const f = formatFor(spec.name, o.mode, false, { shape: spec.shape, layers: c.numLayers });
      const group = spec.name.includes('embed_tokens') ? 'embed' : /self_attn/.test(spec.name) ? 'attn' : /mlp\./.test(spec.name) ? 'mlp' : 'pleProj';
      addTo(`${GROUP_LABEL[group]} (${f})`, align16(dataBytes(f, rows, cols)) + (isQuantFormat(f) ? align16(scaleBytes(f, rows, cols)) : 0));
    } else {
      // layer_scalar [1] is broadcast to [D] at load.
      addTo(GROUP_LABEL.small, vecBytes(spec.name.endsWith('layer_scalar') ? c.hiddenSize : spec.length));
    }
  }
  const n = countGemma4Memory(c, { weights: o.mode, maxContext: o.context, chunk: o.chunk, f16: false, pleOnGpu: o.pleOnGpu });
  const pleFormat = pleHostFormat(undefined, o.mode);
  if (o.pleOnGpu) addTo(`PLE table (${pleFormat})`, n.pleGpu);
  if (weights !== n.weights) throw new Error(`bench: weights by group ${weights} B, the estimate counts ${n.weights} B`);
  return { byGroup, weights, kv: n.kvCache, kvLayers: n.kvLayers, scratch: n.scratch, pleHost: n.pleHost, pleBytes: n.pleGpu };
}

const MiB = (b: number) => (b / 2 ** 20).toFixed(1) + ' MiB';
const GB = (b: number) => (b / 1e9).toFixed(3) + ' GB';

/** Prints the tables; returns false when counted and measured bytes disagree. */
export async function gemma4Memory(o: Gemma4MemoryOptions): Promise<boolean> {
  let ok = true;
  const ctx = o.measure ? await createNodeGpuContext() : undefined;
  for (const preset of o.presets) {
    if (preset !== 'e2b' && preset !== 'e4b') throw new Error(`--preset: e2b, e4b or e2b,e4b; got ${preset}`);
    const checkpoint = createGemma4RandomCheckpoint({ preset: preset as Gemma4RandomPreset });
    const c = parseGemma4Config(checkpoint.config).text;
    const n = count(c, o);
    console.log(`\nGemma 4 ${preset.toUpperCase()} text decoder (${c.numLayers} layers, vocabulary ${c.vocabSize}), weights=${o.mode}, context ${o.context}, prefill chunk ${o.chunk}, f32 activations and KV cache, PLE table ${o.pleOnGpu ? 'on the GPU (--ple-gpu)' : 'in host memory'}`);
    console.log('GPU weights by group (counted):');
    for (const [k, v] of [...n.byGroup].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(32)}${MiB(v).padStart(13)}`);
    let m: MemoryReport | undefined;
    let loadS = 0;
    if (ctx) {
      const t0 = performance.now();
      const model = await Gemma4Model.load(ctx, checkpoint, { random: true, weights: o.mode, maxContext: o.context, chunk: o.chunk, pleOnGpu: o.pleOnGpu });
      await ctx.device.queue.onSubmittedWorkDone();
      loadS = (performance.now() - t0) / 1000;
      m = model.memory();
      model.dispose();
    }
    if (!printMemoryTable(`Gemma 4 ${preset.toUpperCase()}, context ${o.context}`, n, o.mode === 'q4' ? 'int4 rows' : 'f16', m)) ok = false;
    if (m) console.log(`measured by loading the random ${preset.toUpperCase()} model (random int4/int8 codes on the GPU, real vocabulary): ${loadS.toFixed(1)} s on ${ctx!.adapterName}`);
    console.log(`PLE table on the GPU would add ${MiB(n.pleBytes)} (${GB(n.pleBytes)})`);
  }
  return ok;
}
