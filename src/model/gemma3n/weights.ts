/**
 * Gemma 3n weights on the GPU: every matrix the text decoder uses, in the format quant-plan.ts picks for the mode
 * (or, for a pre-quantized GGUF tensor, the file's own quantization: `formatForStored`), plus the small f32 vectors
 * (norms, AltUp coefficients). The PLE table stays in host memory (ple-table.ts) unless asked to live on the GPU,
 * and the multimodal hard-token embeddings are precomputed in f32 at load into host memory (256 rows in E2B; the
 * forward pass writes a hard token's row straight into its embedding slot), so neither embedder runs on the GPU.
 * KV-shared layers' own k_proj / v_proj / k_norm are never read (formats doc §2.8, trap 9).
 */
import type { GpuContext } from '../../gpu/device.ts';
import { readF32, type Checkpoint } from '../../io/checkpoint.ts';
import type { GpuWeight } from '../../formats/weight-format.ts';
import { destroyLoaded, loadTable, tableSpecs, type Loaded } from '../tensor-table.ts';
import { TensorLoader, type TensorLoaderOptions } from '../tensor-loader.ts';
import type { Gemma3nConfig } from './config.ts';
import { formatForStored } from './quant-plan.ts';
import { PleTable } from '../ple-table.ts';
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

export interface LoadWeightsOptions extends TensorLoaderOptions {
  /** Keep the PLE table GPU-resident too (default: host memory only; rows uploaded per step). */
  pleOnGpu?: boolean;
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
  const formatOf = (name: string, dtype: string | undefined, shape: readonly number[]) => formatForStored(name, dtype, mode, ctx.f16, { shape, layers: L });
  const loader = new TensorLoader(ctx, ckpt, opts, { formatOf, randomVector }, tableSpecs(table).length + 1); // + the PLE table

  // Every tensor this load reads, in order: the checkpoint fetches them in a few large windows, and nothing else.
  loader.willRead(readOrder(c));
  const gpu = await loadTable(table, loader.load);
  try {
    const hard = opts.random ? noHardRows(c) : await hardTokenRows(ckpt, cfg, opts.onConverted);
    // The PLE table: host rows in blocks, int4 (q4 mode), f16 (float mode), or a GGUF's own blocks where a GPU format
    // holds them losslessly (other block types requantized; ple-table.ts `pleHostFormat`).
    const pleHost = await PleTable.forModel(ckpt, PLE_TABLE, c.vocabSizePerLayerInput, L * P, mode, Math.fround(Math.sqrt(P)), opts);
    loader.tick();
    const pleGpu = opts.pleOnGpu ? pleHost.toGpu(ctx, PLE_TABLE) : undefined;
    return { ...gpu, ...hard, pleTable: pleGpu ? pleHost.withoutHostRows() : pleHost, pleGpu, gpuBytes: loader.gpuBytes + (pleGpu?.bytes ?? 0) };
  } catch (err) {
    destroyLoaded(gpu);
    throw err;
  }
}

type HardRows = Pick<ModelWeights, 'hardRows' | 'hardTokenBase' | 'hardTokenCount' | 'hardRowPresent'>;

/** The embedder tensors `hardTokenRows` reads when the checkpoint has them (in its order). */
const HARD_ROW_TENSORS = ['model.embed_vision.', 'model.embed_audio.'].flatMap((p) => ['embedding.weight', 'hard_embedding_norm.weight', 'embedding_projection.weight'].map((n) => p + n));

/** Every tensor `loadWeights` may read, in the order it reads them (the read plan it announces). */
export function readOrder(c: Gemma3nConfig['text']): string[] {
  return [...tableSpecs(gemma3nTensorTable(c)).map((t) => t.name), ...HARD_ROW_TENSORS, PLE_TABLE];
}

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
