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
import { GemmaError } from '../../errors.ts';
import { readF32, requireTensor, type Checkpoint } from '../../io/checkpoint.ts';
import { createWeight, createRandomWeight, uploadPackedWeight } from '../../kernels/upload-weight.ts';
import { isQuantFormat, type GpuWeight } from '../../formats/weight-format.ts';
import type { ConvertedTensor } from '../converted-tensor.ts';
import { destroyLoaded, loadTable, tableSpecs, type Loaded } from '../tensor-table.ts';
import type { Gemma3nConfig } from './config.ts';
import { formatForStored } from './quant-plan.ts';
import type { WeightMode } from '../family.ts';
import { PleTable } from './ple-table.ts';
import { PLE_TABLE, gemma3nTensorTable, type Gemma3nTensorTable } from './tensors.ts';

/** The decoder's tensors on the GPU (the table's structure: `w.layers[l].q`, …) plus what stays in host memory. */
export type ModelWeights = Loaded<Gemma3nTensorTable> & {
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
};

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
  /** Checked after every tensor: an aborted load frees what it made and rejects with GemmaError('aborted'). */
  signal?: AbortSignal;
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
  const L = c.numLayers, P = c.pleDim;
  const table = gemma3nTensorTable(c);
  let gpuBytes = 0;
  let done = 0;
  const total = tableSpecs(table).length + 1; // + the PLE table
  const tick = () => {
    if (opts.signal?.aborted) throw new GemmaError('aborted', `Loading ${ckpt.name} was aborted.`);
    opts.onTensor?.(++done, total);
  };
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
      if (packed) w = await uploadPackedWeight(ctx, name, packed);
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
      if (v.length !== length) throw new GemmaError('bad-file', `${ckpt.name}: ${name} has ${v.length} values, the config implies ${length}.`);
      await opts.onConverted?.({ kind: 'f32', name, shape: ckpt.tensor(name)!.shape, values: v });
    }
    if (transform) v = transform(v);
    const buf = uploadBuffer(ctx.device, v, name);
    gpuBytes += buf.size;
    tick();
    return buf;
  };

  const gpu = await loadTable(table, (spec) => (spec.kind === 'matrix' ? matrix(spec.name, ...spec.shape) : vector(spec.name, spec.length, spec.transform)));
  try {
    const hard = opts.random ? noHardRows(c) : await hardTokenRows(ckpt, cfg, opts.onConverted);
    // The PLE table: host rows in the plan's format (f32 in float mode; q4), or the GGUF's own (repacked losslessly
    // where a GPU format holds its type, else requantized to q8).
    const stored = formatForStored(PLE_TABLE, ckpt.tensor(PLE_TABLE)?.dtype, mode, false, { shape: [c.vocabSizePerLayerInput, L * P], layers: L });
    const pleFormat = stored === 'f16' ? 'f32' : stored;
    if (!opts.random) requireTensor(ckpt, PLE_TABLE);
    const pleHost = opts.random
      ? PleTable.placeholder(c.vocabSizePerLayerInput, L * P, pleFormat)
      : await PleTable.load(ckpt, PLE_TABLE, c.vocabSizePerLayerInput, L * P, pleFormat, Math.fround(Math.sqrt(P)));
    if (!opts.random) await opts.onConverted?.({ kind: 'ple', name: PLE_TABLE, shape: ckpt.tensor(PLE_TABLE)!.shape, table: pleHost.table });
    tick();
    const pleGpu = opts.pleOnGpu ? pleHost.toGpu(ctx, PLE_TABLE) : undefined;
    if (pleGpu) gpuBytes += pleGpu.bytes;
    return { ...gpu, ...hard, pleTable: pleGpu ? pleHost.withoutHostRows() : pleHost, pleGpu, gpuBytes };
  } catch (err) {
    destroyLoaded(gpu);
    throw err;
  }
}

type HardRows = Pick<ModelWeights, 'hardRows' | 'hardTokenBase' | 'hardTokenCount' | 'hardRowPresent'>;

/** No embedder rows (random weights): every hard id uses its own embed_tokens row. */
function noHardRows(c: Gemma3nConfig['text']): HardRows {
  const hardTokenCount = c.vocabSize - c.vocabSizePerLayerInput;
  return { hardRows: new Float32Array(Math.max(1, hardTokenCount) * c.hiddenSize), hardTokenBase: c.vocabSizePerLayerInput, hardTokenCount, hardRowPresent: new Uint8Array(Math.max(0, hardTokenCount)) };
}

/**
 * Multimodal hard tokens (ids ≥ vocab_size_per_layer_input): e = RMS0(W_proj · RMSNorm_hard(Emb[id − offset])),
 * computed once here in float64 (formats doc §2.2). Without an embedder (a text-only checkpoint, or a GGUF) a hard
 * id falls back to its own embed_tokens row.
 */
async function hardTokenRows(ckpt: Checkpoint, cfg: Gemma3nConfig, onConverted: LoadWeightsOptions['onConverted']): Promise<HardRows> {
  const c = cfg.text;
  const D = c.hiddenSize;
  const out = noHardRows(c);
  const { hardRows: hard, hardTokenBase, hardRowPresent } = out;
  for (const [prefix, range] of [['model.embed_vision.', cfg.vision], ['model.embed_audio.', cfg.audio]] as const) {
    if (!range || !ckpt.tensor(prefix + 'embedding.weight')) continue;
    const read = async (name: string) => {
      const values = await readF32(ckpt, name);
      await onConverted?.({ kind: 'f32', name, shape: ckpt.tensor(name)!.shape, values });
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
  return out;
}

/** Frees every GPU buffer of the weights. */
export function destroyWeights(w: ModelWeights): void {
  destroyLoaded(w);
}
