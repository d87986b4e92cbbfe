/**
 * GPU memory of the real Gemma 3n E2B and E4B (--preset e2b|e4b for one) text decoders at a 4,096-token context, by group,
 * two ways:
 *   - counted: from the same format plan (quant-plan.ts), weight layouts (weight-format.ts), KV-cache sizing
 *     (KvCache.byteSizeFor) and scratch buffers (forward.ts) the engine allocates;
 *   - measured: Gemma3nModel.load(ctx, randomCheckpoint, { random: true }) really allocates the model (real
 *     dimensions and vocabulary, random int4/int8 codes written on the GPU, no download; ~20 s each on
 *     SwiftShader) and reports model.memory(). The script fails if the two disagree by a single byte (the kernels' own
 *     buffers, which the sizing code leaves out, are measured only: bench/memory-table.ts).
 * The PLE table is kept off the GPU (host memory, int4 rows) unless --ple-gpu (LoadOptions.pleOnGpu). Then measures
 * the per-step cost of the host-resident table: packing the current tokens' rows (PleTable.pack → packRowsForUpload)
 * and uploading them (queue.writeBuffer, waited for), for 1 token and a 64-token chunk at E2B dims (30 layers × 256,
 * int4).
 * --mix q4_k_m: the checkpoint's tensors carry the types of llama.cpp's Q4_K_M file of the model (bench/gguf-mix.ts),
 * so the loader keeps them as a GGUF load does: Q4_K / Q6_K natively (q4k / q6k), the BF16 tensors in the mode's plan;
 * the table then also compares each GPU tensor with its bytes in the GGUF file. --int8-path: the same file as the
 * loader took it before native K-quants (K-quants requantized to q8).
 * --size NAME[,NAME…|all] (with --preset e4b): MatFormer sub-models of E4B (src/model/gemma3n/matformer.ts; 'all' = the
 * 16 published configurations), each measured the same way, then one summary table.
 * `--family gemma4`: the same tables for Gemma 4 E2B/E4B (bench/memory-gemma4.ts).
 * Usage: node --import ./scripts/register.mjs bench/memory.ts [--family gemma3n|gemma4] [--preset e2b|e4b|e2b,e4b]
 *        [--context 4096] [--chunk 64] [--weights q4|float] [--mix q4_k_m [--int8-path]] [--ple-gpu] [--counted-only]
 *        [--no-fetch] [--size E2B,E2.54B|all]
 */
import { parseGemma3nConfig, type Gemma3nTextConfig } from '../src/model/gemma3n/config.ts';
import { forwardScratchFloats } from '../src/model/gemma3n/memory-estimate.ts';
import { formatForStored } from '../src/model/gemma3n/quant-plan.ts';
import type { WeightMode } from '../src/model/family.ts';
import { dataBytes, scaleBytes, groupsPerRow, isQuantFormat } from '../src/formats/weight-format.ts';
import { asQ4KM, ggufBytes, q4KMType } from './gguf-mix.ts';
import { KvCache } from '../src/kernels/kv-cache.ts';
import { pleHostBytes, pleHostFormat } from '../src/model/ple-table.ts';
import { packRowsForUpload, uploadedRowsBytes, type CpuTable } from '../src/kernels/gather.ts';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { Gemma3nModel } from '../src/model/gemma3n/model.ts';
import type { MemoryReport } from '../src/model/language-model.ts';
import { createRandomCheckpoint, type RandomPreset } from '../src/model/gemma3n/random-checkpoint.ts';
import { sliceGemma3n } from '../src/model/gemma3n/matformer.ts';
import { E4B_SLICING_CONFIGS } from '../src/model/gemma3n/matformer-configs.ts';
import type { SliceInfo } from '../src/model/family.ts';
import { gemma4Memory } from './memory-gemma4.ts';
import { printMemoryTable } from './memory-table.ts';

const arg = (k: string, d: string) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const context = Number(arg('context', '4096'));
const chunk = Number(arg('chunk', '64'));
const mode = arg('weights', 'q4') as WeightMode;
const pleOnGpu = process.argv.includes('--ple-gpu');
const measure = !process.argv.includes('--counted-only');
const presets = arg('preset', 'e2b,e4b').split(',') as RandomPreset[];
const mix = arg('mix', 'none');
if (mix !== 'none' && mix !== 'q4_k_m') throw new Error(`--mix: q4_k_m or none; got ${mix}`);
const int8Path = process.argv.includes('--int8-path');
for (const p of presets) if (p !== 'e2b' && p !== 'e4b') throw new Error(`--preset: e2b, e4b or e2b,e4b; got ${p}`);
if (arg('family', 'gemma3n') === 'gemma4') {
  const ok = await gemma4Memory({ presets, context, chunk, mode, pleOnGpu, measure });
  if (!ok) console.error('FAIL: counted and measured bytes disagree (the sizing above no longer matches what the engine allocates)');
  process.exit(ok ? 0 : 1);
}
const sizeArg = arg('size', '');
const sizes: Array<string | undefined> = sizeArg === '' ? [undefined] : sizeArg === 'all' ? E4B_SLICING_CONFIGS.map((c) => c.id) : sizeArg.split(',');
if (sizeArg !== '' && presets.some((p) => p !== 'e4b')) throw new Error('--size slices E4B: use it with --preset e4b');
const summary: Array<{ slice: SliceInfo; weights: number; kv: number; scratch: number; gpu: number; host: number; measured: boolean }> = [];

interface Counted {
  byFamily: Map<string, number>;
  weights: number;
  kv: number;
  kvLayers: number;
  scratch: number;
  pleHost: number;
  /** The PLE table's bytes wherever it lives; `upload`: the per-step upload slots it needs off the GPU. */
  pleBytes: number;
  upload: number;
  pleFormat: string;
  /** --mix: the GGUF bytes of the GPU-resident tensors, by stored type: [file bytes, GPU bytes]. */
  byStoredType: Map<string, [number, number]>;
}

/** Counts what Gemma3nModel.load allocates for `c` (see the header). */
function count(c: Gemma3nTextConfig): Counted {
  const storedType = (name: string, shape: number[]) => (mix === 'q4_k_m' ? q4KMType(name, shape, c.numLayers) : undefined);
  const byStoredType = new Map<string, [number, number]>();
  const D = c.hiddenSize, P = c.pleDim, A = c.altupNumInputs, H = c.numHeads, Hkv = c.numKvHeads, dh = c.headDim, V = c.vocabSize, L = c.numLayers;
  const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
  const byFamily = new Map<string, number>();
  let weights = 0;
  const mat = (name: string, rows: number, cols: number, family: string) => {
    const type = storedType(name, [rows, cols]);
    const f = formatForStored(name, type && int8Path && type.endsWith('_K') ? `${type} (requantized)` : type, mode, false, { shape: [rows, cols], layers: c.numLayers });
    const b = align16(dataBytes(f, rows, cols)) + (isQuantFormat(f) ? align16(scaleBytes(f, rows, cols)) : 0);
    byFamily.set(`${family} (${f})`, (byFamily.get(`${family} (${f})`) ?? 0) + b);
    weights += b;
    if (type) {
      const key = `${type} → ${f}`;
      const [fb, gb] = byStoredType.get(key) ?? [0, 0];
      byStoredType.set(key, [fb + ggufBytes(type, rows * cols), gb + b]);
    }
  };
  const vec = (n: number) => { const b = align16(n * 4); byFamily.set('norms, coefs (f32)', (byFamily.get('norms, coefs (f32)') ?? 0) + b); weights += b; };
  const LM = 'model.language_model.';
  mat(LM + 'embed_tokens.weight', V, D, 'embedding / LM head');
  mat(LM + 'per_layer_model_projection.weight', L * P, D, 'PLE projections');
  vec(P); vec(D);
  for (let i = 0; i < A - 1; i++) { mat(`${LM}altup_projections.${i}.weight`, D, D, 'AltUp'); mat(`${LM}altup_unembed_projections.${i}.weight`, D, D, 'AltUp'); }
  for (let l = 0; l < L; l++) {
    const p = `${LM}layers.${l}.`; const F = c.intermediateSize[l];
    mat(p + 'self_attn.q_proj.weight', H * dh, D, 'attention');
    if (c.kvSourceLayer[l] === l) { mat(p + 'self_attn.k_proj.weight', Hkv * dh, D, 'attention'); mat(p + 'self_attn.v_proj.weight', Hkv * dh, D, 'attention'); vec(dh); }
    mat(p + 'self_attn.o_proj.weight', D, H * dh, 'attention');
    mat(p + 'mlp.gate_proj.weight', F, D, 'MLP'); mat(p + 'mlp.up_proj.weight', F, D, 'MLP'); mat(p + 'mlp.down_proj.weight', D, F, 'MLP');
    mat(p + 'laurel.linear_left.weight', c.laurelRank, D, 'LAuReL'); mat(p + 'laurel.linear_right.weight', D, c.laurelRank, 'LAuReL');
    mat(p + 'per_layer_input_gate.weight', P, D, 'PLE projections'); mat(p + 'per_layer_projection.weight', D, P, 'PLE projections');
    mat(p + 'altup.modality_router.weight', A, D, 'AltUp');
    // 7 norms of D (input, post-attention, pre/post-feedforward, post-PLE, post-LAuReL, router) + correct_output_scale;
    // q_norm; the AltUp coefficients. (This counted 9 of D until the measured mode caught it: 240 KiB too many.)
    for (let i = 0; i < 8; i++) vec(D); vec(dh); vec(A * A * A); vec(A * A);
  }
  // The PLE table (int4 rows in q4 mode, f32 in float mode): host memory by default, GPU-resident with --ple-gpu.
  const LP = L * P;
  const pleName = 'model.language_model.embed_tokens_per_layer.weight';
  const pleType = storedType(pleName, [c.vocabSizePerLayerInput, LP]);
  // int4 rows in q4 mode, f16 in float mode, a GGUF's own blocks where they repack losslessly (src/model/ple-table.ts)
  const pleFormat = pleHostFormat(pleType && int8Path && pleType.endsWith('_K') ? `${pleType} (requantized)` : pleType, mode);
  const pleBytes = align16(dataBytes(pleFormat, c.vocabSizePerLayerInput, LP)) + (pleFormat === 'f16' ? 0 : align16(scaleBytes(pleFormat, c.vocabSizePerLayerInput, LP)));
  if (pleOnGpu) { byFamily.set(`PLE table (${pleFormat})`, pleBytes); weights += pleBytes; }
  // (Multimodal hard-token rows are precomputed into host memory and written into the embedding slot per step.)

  let kv = 0, kvLayers = 0;
  c.layerTypes.forEach((t, l) => {
    if (c.kvSourceLayer[l] !== l) return;
    kvLayers++;
    kv += KvCache.byteSizeFor({ kind: t === 'full_attention' ? 'full' : 'sliding', kvHeads: Hkv, headDim: dh, maxContext: context, window: c.slidingWindow, maxChunk: chunk, act: 'f32' });
  });
  // Scratch: the buffers of forward.ts, for `chunk` tokens, f32.
  const C = chunk;
  const scratchFloats = forwardScratchFloats(c, C);
  const up = uploadedRowsBytes(pleFormat, LP, C);
  const upload = up.data + up.scales;
  const scratch = scratchFloats * 4 + (pleOnGpu ? 0 : upload);
  const pleHost = pleOnGpu ? 0 : pleHostBytes(pleFormat, c.vocabSizePerLayerInput, LP);
  return { byFamily, weights, kv, kvLayers, scratch, pleHost, pleBytes, upload, byStoredType, pleFormat };
}

const MiB = (b: number) => (b / 2 ** 20).toFixed(1) + ' MiB';
const GB = (b: number) => (b / 1e9).toFixed(3) + ' GB';
let ctx: GpuContext | undefined;
let mismatch = false;
for (const [preset, size] of presets.flatMap((p) => sizes.map((z) => [p, z] as const))) {
  const whole = createRandomCheckpoint({ preset });
  const sliced = size === undefined ? undefined : sliceGemma3n(whole, size);
  const random = sliced?.checkpoint ?? whole;
  const c = parseGemma3nConfig(random.config).text;
  const checkpoint = mix === 'q4_k_m' ? asQ4KM(random, c.numLayers, int8Path) : random;
  const n = count(c);
  const source = mix === 'q4_k_m' ? `, tensors typed as llama.cpp's Q4_K_M file${int8Path ? ' loaded by the int8 path (K-quants requantized to q8)' : ' (K-quants kept natively)'}` : '';
  const title = `Gemma 3n ${preset.toUpperCase()}${size ? ` sliced to ${size}` : ''} text decoder (${c.numLayers} layers, vocabulary ${c.vocabSize}), weights=${mode}${source}, context ${context}, prefill chunk ${chunk}, f32 activations and KV cache, PLE table ${pleOnGpu ? 'on the GPU (--ple-gpu)' : 'in host memory'}`;
  console.log(`\n${title}`);
  console.log('GPU weights by family (counted):');
  for (const [k, v] of [...n.byFamily].sort((a, b) => b[1] - a[1])) console.log(`  ${k.padEnd(28)}${MiB(v).padStart(13)}`);
  if (n.byStoredType.size > 0) {
    console.log('\n| GPU-resident tensors by GGUF type → GPU format | bytes in the GGUF file | GPU bytes | GPU / file |\n|---|---|---|---|');
    let fileAll = 0, gpuAll = 0;
    for (const [k, [fb, gb]] of [...n.byStoredType].sort((a, b) => b[1][0] - a[1][0])) {
      console.log(`| ${k} | ${fb} (${GB(fb)}) | ${gb} (${GB(gb)}) | ${(gb / fb).toFixed(4)} |`);
      fileAll += fb;
      gpuAll += gb;
    }
    console.log(`| all GPU-resident weights | ${fileAll} (${GB(fileAll)}) | ${gpuAll} (${GB(gpuAll)}) | ${(gpuAll / fileAll).toFixed(4)} |`);
    if (!pleOnGpu) console.log(`(the PLE table, ${GB(ggufBytes(q4KMType('model.language_model.embed_tokens_per_layer.weight', [c.vocabSizePerLayerInput, c.numLayers * c.pleDim], c.numLayers), c.vocabSizePerLayerInput * c.numLayers * c.pleDim))} in the file, stays in host memory: ${GB(n.pleHost)} there)`);
  }
  let m: MemoryReport | undefined;
  let loadS = 0;
  if (measure) {
    ctx ??= await createNodeGpuContext();
    const t0 = performance.now();
    const model = await Gemma3nModel.load(ctx, checkpoint, { random: true, weights: mode, maxContext: context, chunk, pleOnGpu });
    await ctx.device.queue.onSubmittedWorkDone();
    loadS = (performance.now() - t0) / 1000;
    m = model.memory();
    model.dispose();
  }
  if (!printMemoryTable(`${preset.toUpperCase()}, context ${context}`, n, n.pleFormat, m)) mismatch = true;
  if (sliced) summary.push({ slice: sliced.slice, weights: m?.gpu.weights ?? n.weights, kv: m?.gpu.kvCache ?? n.kv, scratch: m?.gpu.scratch ?? n.scratch, gpu: m?.gpu.total ?? n.weights + n.kv + n.scratch, host: m?.host.total ?? n.pleHost, measured: m !== undefined });
  if (m) console.log(`measured by loading the random ${preset.toUpperCase()} model (random int4/int8 codes on the GPU, real vocabulary): ${loadS.toFixed(1)} s on ${ctx!.adapterName}`);
  console.log(`PLE table on the GPU would add ${MiB(n.pleBytes)} (${GB(n.pleBytes)}) and drop the ${MiB(n.upload)} upload slots`);
}
if (summary.length) {
  console.log(`\n| size | layers | effective params (ours / published) | MMLU PT | GPU weights | GPU KV cache | GPU scratch | GPU total | host PLE table |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of summary) {
    const p = r.slice.published;
    console.log(`| ${r.slice.name ?? 'custom'} | ${r.slice.layers} | ${(r.slice.effectiveParams / 1e9).toFixed(2)} B / ${p ? `${p.effectiveParamsB} B` : '—'} | ${p ? `${p.mmluPt.toFixed(1)} %` : '—'} | ${GB(r.weights)} | ${MiB(r.kv)} | ${MiB(r.scratch)} | ${GB(r.gpu)} | ${GB(r.host)} |`);
  }
  console.log(summary.every((r) => r.measured) ? '(GPU columns measured with model.memory(); they equal the counted bytes)' : '(counted only: --counted-only)');
}
if (mismatch) {
  console.error('FAIL: counted and measured bytes disagree (the sizing above no longer matches what the engine allocates)');
  process.exit(1);
}

if (!process.argv.includes('--no-fetch')) {
  const LP = 30 * 256; // E2B: 30 layers × 256 PLE values per token
  // Per-step cost of the host-resident table: pack the rows of T random ids (out of a 32,768-row table: rows are
  // 4,320 bytes apart from each other in memory either way) and upload them, median of many reps.
  const rows = 32768;
  const G = groupsPerRow(LP);
  const table: CpuTable = { format: 'q4', rows, cols: LP, data: new Uint8Array(dataBytes('q4', rows, LP)), scales: new Uint16Array(rows * G) };
  const words = new Uint32Array(table.data.buffer);
  let x = 0x9e3779b9;
  for (let i = 0; i < words.length; i++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; words[i] = x >>> 0; }
  table.scales!.fill(0x2e66);
  ctx ??= await createNodeGpuContext();
  const sizes = uploadedRowsBytes('q4', LP, 64);
  const dataBuf = ctx.device.createBuffer({ size: sizes.data, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const scaleBuf = ctx.device.createBuffer({ size: sizes.scales, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const median = (v: number[]) => v.sort((a, b) => a - b)[v.length >> 1];
  for (const T of [1, 64]) {
    const pack: number[] = [], both: number[] = [];
    for (let rep = 0; rep < 200; rep++) {
      const ids = Array.from({ length: T }, () => Math.floor(Math.random() * rows));
      const t0 = performance.now();
      const up = packRowsForUpload(table, ids);
      const t1 = performance.now();
      ctx.device.queue.writeBuffer(dataBuf, 0, up.data);
      ctx.device.queue.writeBuffer(scaleBuf, 0, up.scales!);
      await ctx.device.queue.onSubmittedWorkDone();
      pack.push(t1 - t0);
      both.push(performance.now() - t0);
    }
    const bytes = dataBytes('q4', T, LP) + T * G * 2;
    console.log(`PLE host fetch, ${String(T).padStart(2)} token(s): ${bytes} bytes; pack ${(median(pack) * 1000).toFixed(0)} µs, pack + upload (waited) ${(median(both) * 1000).toFixed(0)} µs (median of 200)`);
  }
  process.exit(0);
}
process.exit(0);
