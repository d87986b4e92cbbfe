/**
 * Gemma 3n weights on the GPU: every matrix the text decoder uses, in the format quant-plan.ts picks for the mode
 * (or, for a pre-quantized GGUF tensor, the file's own quantization: `formatForStored`), plus the small f32 vectors
 * (norms, AltUp coefficients). The PLE table stays in host memory (ple-table.ts) unless asked to live on the GPU,
 * and the multimodal hard-token embeddings are precomputed in f32 at load into host memory (256 rows in E2B; the
 * forward pass writes a hard token's row straight into its embedding slot), so neither embedder runs on the GPU.
 * KV-shared layers' own k_proj / v_proj / k_norm are never read (formats doc §2.8, trap 9).
 */
import type { GpuContext } from '../../gpu/device.ts';
import { uploadBuffer } from '../../gpu/buffers.ts';
import { readF32, requireTensor, type Checkpoint, type PackedTensor } from '../../io/checkpoint.ts';
import { createWeight, createRandomWeight, destroyWeight } from '../../kernels/upload-weight.ts';
import { dataBytes, isQuantFormat, scaleHalvesPerRow, scalesAsWords, type GpuWeight } from '../../formats/weight-format.ts';
import type { Gemma3nConfig } from './config.ts';
import { formatForStored, type WeightMode } from './quant-plan.ts';
import { PleTable } from './ple-table.ts';
import type { CpuTable } from '../../kernels/gather.ts';

const LM = 'model.language_model.';

export interface LayerWeights {
  q: GpuWeight;
  /** Absent in KV-shared layers. */
  k?: GpuWeight;
  v?: GpuWeight;
  o: GpuWeight;
  gate: GpuWeight;
  up: GpuWeight;
  down: GpuWeight;
  laurelLeft: GpuWeight;
  laurelRight: GpuWeight;
  pleGate: GpuWeight;
  pleProjection: GpuWeight;
  /** altup.modality_router W_r (the router's input scale 1/D is applied by the AltUp kernels). */
  router: GpuWeight;
  inputNorm: GPUBuffer;
  postAttentionNorm: GPUBuffer;
  preFeedforwardNorm: GPUBuffer;
  postFeedforwardNorm: GPUBuffer;
  postPleNorm: GPUBuffer;
  postLaurelNorm: GPUBuffer;
  routerNorm: GPUBuffer;
  qNorm: GPUBuffer;
  kNorm?: GPUBuffer;
  correctOutputScale: GPUBuffer;
  /** [A², A] and [A, A], clamped to ±altup_coef_clip at load (as HF does). */
  predictionCoefs: GPUBuffer;
  correctionCoefs: GPUBuffer;
}

export interface ModelWeights {
  embed: GpuWeight;
  perLayerModelProjection: GpuWeight;
  perLayerProjectionNorm: GPUBuffer;
  altupProjections: GpuWeight[];
  altupUnembedProjections: GpuWeight[];
  finalNorm: GPUBuffer;
  layers: LayerWeights[];
  /** Multimodal hard-token embeddings, [hardTokenCount, D] f32 (host memory), row i = id hardTokenBase + i. */
  hardRows: Float32Array;
  hardTokenBase: number;
  hardTokenCount: number;
  /** 1 where an embedder row was computed; other ids ≥ hardTokenBase use their embed_tokens row. */
  hardRowPresent: Uint8Array;
  pleTable: PleTable;
  /** The PLE table on the GPU (only with `pleOnGpu`). */
  pleGpu?: GpuWeight;
  /** GPU bytes of everything above. */
  gpuBytes: number;
}

/**
 * A tensor in the form the model keeps it, handed to `onConverted` as soon as it exists (the offline cache writes
 * these, src/runtime/converted-cache.ts): GPU matrices after conversion, f32 vectors before any load-time transform
 * (they are re-read through the same code path), the host PLE table as packed rows.
 */
export type ConvertedTensor =
  | { kind: 'gpu'; name: string; shape: number[]; weight: GpuWeight }
  | { kind: 'f32'; name: string; shape: number[]; values: Float32Array }
  | { kind: 'ple'; name: string; shape: number[]; table: CpuTable };

export interface LoadWeightsOptions {
  mode: WeightMode;
  /** Sees each converted tensor once, in load order; awaited (so a slow consumer bounds memory, not grows it). */
  onConverted?: (t: ConvertedTensor) => Promise<void>;
  /** Report progress as (tensors done, tensors total). */
  onTensor?: (done: number, total: number) => void;
  /**
   * Synthetic weights (memory accounting at real sizes): every matrix drawn on the GPU, no tensor read, PLE table
   * not materialised. The checkpoint is then only used for its config.
   */
  random?: boolean;
  /** Keep the PLE table GPU-resident too (default: host memory only; rows uploaded per step). */
  pleOnGpu?: boolean;
}

function uploadPacked(ctx: GpuContext, label: string, p: PackedTensor): GpuWeight {
  const { device } = ctx;
  // 1 MiB under the limit, as upload-weight.ts does (SwiftShader cannot allocate exactly maxBufferSize).
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) - 2 ** 20;
  const rowBytes = dataBytes(p.format, 1, p.cols);
  const G = scaleHalvesPerRow(p.format, p.cols);
  // Parts start on even rows so two f16 scales never straddle parts (the kernels' part contract).
  let perPart = Math.max(2, Math.floor(limit / Math.max(rowBytes, 2 * G)));
  perPart = perPart >= p.rows ? p.rows : perPart - (perPart % 2);
  const bytes = new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.byteLength);
  const parts: GpuWeight['parts'] = [];
  let total = 0;
  for (let rowStart = 0; rowStart < p.rows; rowStart += perPart) {
    const n = Math.min(perPart, p.rows - rowStart);
    const data = uploadBuffer(device, bytes.subarray(rowStart * rowBytes, (rowStart + n) * rowBytes), `${label}/part@${rowStart}/data`);
    const scales = uploadBuffer(device, scalesAsWords(p.scales.subarray(rowStart * G, (rowStart + n) * G)), `${label}/part@${rowStart}/scales`);
    parts.push({ rowStart, rows: n, data, scales });
    total += data.size + scales.size;
  }
  return { format: p.format, rows: p.rows, cols: p.cols, parts, bytes: total };
}

/**
 * A small f32 vector for random weights, on the host (a few KB): norms and scales 1; the AltUp coefficients small
 * (uniform, std 0.05, deterministic) — all-ones prediction coefficients would multiply the streams by ~5 per layer.
 */
function randomVector(name: string, length: number): Float32Array {
  const v = new Float32Array(length).fill(1);
  if (!name.includes('coefs')) return v;
  let s = 0x9e3779b9;
  for (let i = 0; i < name.length; i++) s = Math.imul(s ^ name.charCodeAt(i), 16777619) >>> 0;
  const half = 0.05 * Math.sqrt(3);
  for (let i = 0; i < length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    v[i] = -half + ((s >>> 0) / 4294967296) * 2 * half;
  }
  return v;
}

/** Loads the decoder's weights for `cfg` from `ckpt`. */
export async function loadWeights(ctx: GpuContext, ckpt: Checkpoint, cfg: Gemma3nConfig, opts: LoadWeightsOptions): Promise<ModelWeights> {
  const c = cfg.text;
  const { mode } = opts;
  const D = c.hiddenSize, L = c.numLayers, P = c.pleDim, A = c.altupNumInputs;
  const H = c.numHeads, Hkv = c.numKvHeads, dh = c.headDim;
  let gpuBytes = 0;
  let done = 0;
  // Per layer 12 matrices + 12 vectors; KV-shared layers skip k_proj, v_proj and k_norm (3 fewer).
  let total = 5 + 2 * (A - 1);
  for (let l = 0; l < L; l++) total += c.kvSourceLayer[l] === l ? 24 : 21;
  const tick = () => opts.onTensor?.(++done, total);
  let seed = 1;

  /** A matrix [rows, cols] in the mode's (or the file's) format. */
  const matrix = async (name: string, rows: number, cols: number): Promise<GpuWeight> => {
    const format = formatForStored(name, ckpt.tensor(name)?.dtype, mode, ctx.f16, { shape: [rows, cols], layers: L });
    let w: GpuWeight;
    if (opts.random) {
      // q4/q8: uniform codes written straight into the layout (codes: true), seconds for all of E2B on SwiftShader
      // where drawing normals and quantizing took minutes per layer. std 1/√cols: unit-variance inputs give
      // unit-variance outputs, so 30 layers of random weights keep activations (and the logits) finite.
      w = await createRandomWeight(ctx, { label: name, rows, cols, format, seed: seed++, std: 1 / Math.sqrt(cols), codes: true });
    } else {
      requireTensor(ckpt, name, [rows, cols]);
      const packed = isQuantFormat(format) && ckpt.readPackedAs ? await ckpt.readPackedAs(name, format) : null;
      if (packed) w = uploadPacked(ctx, name, packed);
      else {
        const t = await ckpt.read(name);
        const dtype = t.dtype === 'F32' ? 'f32' : t.dtype === 'F16' ? 'f16' : 'bf16';
        w = await createWeight(ctx, { label: name, rows, cols, format, dtype, bytes: t.bytes });
      }
    }
    gpuBytes += w.bytes;
    if (opts.onConverted && !opts.random) await opts.onConverted({ kind: 'gpu', name, shape: [rows, cols], weight: w });
    tick();
    return w;
  };
  /** A small f32 vector (norm weights, coefficients). */
  const vector = async (name: string, length: number, transform?: (v: Float32Array) => Float32Array): Promise<GPUBuffer> => {
    let v: Float32Array;
    if (opts.random) v = randomVector(name, length);
    else {
      requireTensor(ckpt, name);
      v = await readF32(ckpt, name);
      if (v.length !== length) throw new Error(`${name}: ${v.length} values, expected ${length}`);
      await opts.onConverted?.({ kind: 'f32', name, shape: ckpt.tensor(name)!.shape, values: v });
    }
    if (transform) v = transform(v);
    const buf = uploadBuffer(ctx.device, v, name);
    gpuBytes += buf.size;
    tick();
    return buf;
  };
  const clip = (v: Float32Array) => (c.altupCoefClip === null ? v : v.map((x) => Math.min(c.altupCoefClip!, Math.max(-c.altupCoefClip!, x))));

  const embed = await matrix(LM + 'embed_tokens.weight', c.vocabSize, D);
  const perLayerModelProjection = await matrix(LM + 'per_layer_model_projection.weight', L * P, D);
  const perLayerProjectionNorm = await vector(LM + 'per_layer_projection_norm.weight', P);
  const altupProjections: GpuWeight[] = [];
  const altupUnembedProjections: GpuWeight[] = [];
  for (let i = 0; i < A - 1; i++) altupProjections.push(await matrix(`${LM}altup_projections.${i}.weight`, D, D));
  for (let i = 0; i < A - 1; i++) altupUnembedProjections.push(await matrix(`${LM}altup_unembed_projections.${i}.weight`, D, D));
  const finalNorm = await vector(LM + 'norm.weight', D);

  const layers: LayerWeights[] = [];
  for (let l = 0; l < L; l++) {
    const p = `${LM}layers.${l}.`;
    const F = c.intermediateSize[l];
    const ownsKv = c.kvSourceLayer[l] === l;
    layers.push({
      q: await matrix(p + 'self_attn.q_proj.weight', H * dh, D),
      k: ownsKv ? await matrix(p + 'self_attn.k_proj.weight', Hkv * dh, D) : undefined,
      v: ownsKv ? await matrix(p + 'self_attn.v_proj.weight', Hkv * dh, D) : undefined,
      o: await matrix(p + 'self_attn.o_proj.weight', D, H * dh),
      gate: await matrix(p + 'mlp.gate_proj.weight', F, D),
      up: await matrix(p + 'mlp.up_proj.weight', F, D),
      down: await matrix(p + 'mlp.down_proj.weight', D, F),
      laurelLeft: await matrix(p + 'laurel.linear_left.weight', c.laurelRank, D),
      laurelRight: await matrix(p + 'laurel.linear_right.weight', D, c.laurelRank),
      pleGate: await matrix(p + 'per_layer_input_gate.weight', P, D),
      pleProjection: await matrix(p + 'per_layer_projection.weight', D, P),
      router: await matrix(p + 'altup.modality_router.weight', A, D),
      inputNorm: await vector(p + 'input_layernorm.weight', D),
      postAttentionNorm: await vector(p + 'post_attention_layernorm.weight', D),
      preFeedforwardNorm: await vector(p + 'pre_feedforward_layernorm.weight', D),
      postFeedforwardNorm: await vector(p + 'post_feedforward_layernorm.weight', D),
      postPleNorm: await vector(p + 'post_per_layer_input_norm.weight', D),
      postLaurelNorm: await vector(p + 'laurel.post_laurel_norm.weight', D),
      routerNorm: await vector(p + 'altup.router_norm.weight', D),
      qNorm: await vector(p + 'self_attn.q_norm.weight', dh),
      kNorm: ownsKv ? await vector(p + 'self_attn.k_norm.weight', dh) : undefined,
      correctOutputScale: await vector(p + 'altup.correct_output_scale', D),
      predictionCoefs: await vector(p + 'altup.prediction_coefs.weight', A * A * A, clip),
      correctionCoefs: await vector(p + 'altup.correction_coefs.weight', A * A, clip),
    });
  }

  // Multimodal hard tokens (ids ≥ vocab_size_per_layer_input): e = RMS0(W_proj · RMSNorm_hard(Emb[id − offset])),
  // computed once here in float64 (formats doc §2.2).
  const hardTokenBase = c.vocabSizePerLayerInput;
  const hardTokenCount = c.vocabSize - hardTokenBase;
  const hard = new Float32Array(Math.max(1, hardTokenCount) * D);
  const hardRowPresent = new Uint8Array(Math.max(0, hardTokenCount));
  if (!opts.random) {
    for (const [prefix, range] of [['model.embed_vision.', cfg.vision], ['model.embed_audio.', cfg.audio]] as const) {
      if (!range || !ckpt.tensor(prefix + 'embedding.weight')) continue;
      const read = async (name: string) => {
        const values = await readF32(ckpt, name);
        await opts.onConverted?.({ kind: 'f32', name, shape: ckpt.tensor(name)!.shape, values });
        return values;
      };
      const emb = await read(prefix + 'embedding.weight');
      const hardNorm = await read(prefix + 'hard_embedding_norm.weight');
      const proj = await read(prefix + 'embedding_projection.weight');
      const E = range.hiddenSize;
      const end = cfg.audio && range === cfg.vision ? cfg.audio.vocabOffset : range.vocabOffset + range.vocabSize;
      for (let id = range.vocabOffset; id < Math.min(end, range.vocabOffset + range.vocabSize); id++) {
        if (id < hardTokenBase || id >= c.vocabSize) continue;
        const row = emb.subarray((id - range.vocabOffset) * E, (id - range.vocabOffset + 1) * E);
        let ss = 0;
        for (let j = 0; j < E; j++) ss += row[j] * row[j];
        const inv = 1 / Math.sqrt(ss / E + range.rmsNormEps);
        const normed = Float64Array.from(row, (x, j) => x * inv * hardNorm[j]);
        const y = new Float64Array(D);
        for (let i = 0; i < D; i++) {
          let s = 0;
          for (let j = 0; j < E; j++) s += proj[i * E + j] * normed[j];
          y[i] = s;
        }
        let ss2 = 0;
        for (let i = 0; i < D; i++) ss2 += y[i] * y[i];
        const inv2 = 1 / Math.sqrt(ss2 / D + range.rmsNormEps);
        for (let i = 0; i < D; i++) hard[(id - hardTokenBase) * D + i] = y[i] * inv2;
        hardRowPresent[id - hardTokenBase] = 1;
      }
    }
  }
  // Without an embedder (a text-only checkpoint, or a GGUF) a hard id falls back to its own embed_tokens row.

  // The PLE table: host rows in the plan's format (f32 in float mode; q4), or the GGUF's own (repacked losslessly
  // where a GPU format holds its type, else requantized to q8).
  const pleName = LM + 'embed_tokens_per_layer.weight';
  const stored = formatForStored(pleName, ckpt.tensor(pleName)?.dtype, mode, false, { shape: [c.vocabSizePerLayerInput, L * P], layers: L });
  const pleFormat = stored === 'f16' ? 'f32' : stored;
  if (!opts.random) requireTensor(ckpt, pleName);
  const pleHost = opts.random
    ? PleTable.placeholder(c.vocabSizePerLayerInput, L * P, pleFormat)
    : await PleTable.load(ckpt, pleName, c.vocabSizePerLayerInput, L * P, pleFormat, Math.fround(Math.sqrt(P)));
  if (!opts.random) await opts.onConverted?.({ kind: 'ple', name: pleName, shape: ckpt.tensor(pleName)!.shape, table: pleHost.table });
  const pleGpu = opts.pleOnGpu ? pleHost.toGpu(ctx, pleName) : undefined;
  if (pleGpu) gpuBytes += pleGpu.bytes;
  const pleTable = pleGpu ? pleHost.withoutHostRows() : pleHost;
  tick();

  return {
    embed,
    perLayerModelProjection,
    perLayerProjectionNorm,
    altupProjections,
    altupUnembedProjections,
    finalNorm,
    layers,
    hardRows: hard,
    hardTokenBase,
    hardTokenCount,
    hardRowPresent,
    pleTable,
    pleGpu,
    gpuBytes,
  };
}

/** Frees every GPU buffer of the weights. */
export function destroyWeights(w: ModelWeights): void {
  const mats = [w.embed, w.perLayerModelProjection, ...w.altupProjections, ...w.altupUnembedProjections];
  const vecs = [w.perLayerProjectionNorm, w.finalNorm];
  if (w.pleGpu) mats.push(w.pleGpu);
  for (const l of w.layers) {
    mats.push(l.q, l.o, l.gate, l.up, l.down, l.laurelLeft, l.laurelRight, l.pleGate, l.pleProjection, l.router);
    if (l.k) mats.push(l.k);
    if (l.v) mats.push(l.v);
    vecs.push(l.inputNorm, l.postAttentionNorm, l.preFeedforwardNorm, l.postFeedforwardNorm, l.postPleNorm, l.postLaurelNorm, l.routerNorm, l.qNorm, l.correctOutputScale, l.predictionCoefs, l.correctionCoefs);
    if (l.kNorm) vecs.push(l.kNorm);
  }
  mats.forEach(destroyWeight);
  vecs.forEach((b) => b.destroy());
}
