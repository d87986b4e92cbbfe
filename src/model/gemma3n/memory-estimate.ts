/**
 * What loading a Gemma 3n checkpoint will allocate, from its config and stored dtypes alone (no weight read): the
 * pre-flight check's input (src/runtime/loading/preflight.ts). Counted from the same tensor table, format rules
 * (quant-plan.ts `formatForStored`, ple-table.ts `pleHostFormat`), weight layouts, KV-cache sizing and scratch
 * buffers (forward.ts) the load uses; test/model/memory-estimate.test.ts holds it to model.memory() of a real load.
 * It leaves out the buffers the kernels own (memory().gpu.kernels: dispatch parameters, placeholders, the kernels'
 * scratch: attention's split partials, the samplers' candidates and, on CPU adapters only, the int8 GEMV's staged x
 * sized for the LM head); bench:memory measures them (README "Memory").
 */
import type { Checkpoint } from '../../io/checkpoint.ts';
import { dataBytes, scaleBytes } from '../../formats/weight-format.ts';
import { uploadedRowsBytes } from '../../kernels/gather.ts';
import { KvCache } from '../../kernels/kv-cache.ts';
import type { MemoryEstimate, WeightMode } from '../family.ts';
import { tableSpecs } from '../tensor-table.ts';
import { parseGemma3nConfig, type Gemma3nTextConfig } from './config.ts';
import { pleHostBytes, pleHostFormat } from '../ple-table.ts';
import { formatForStored } from './quant-plan.ts';
import { routerTableFloats } from './router-tables.ts';
import { PLE_TABLE, gemma3nTensorTable } from './tensors.ts';

const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);

export interface EstimateOptions {
  weights: WeightMode;
  /** KV positions asked for (capped at the checkpoint's limit, as the load does). */
  maxContext: number;
  /** Prefill chunk (tokens per step). */
  chunk: number;
  /** The adapter has shader-f16 (float mode then stores matrices in f16). */
  f16: boolean;
  /** Per-buffer limit of the adapter (tensors above it are split into parts, as the upload does). */
  maxBufferBytes?: number;
}

/**
 * The 4-byte words of forward.ts's scratch buffers for a chunk of C tokens (see its "state" section): ids ×2, the
 * embedding, AltUp streams and predictions, PLE projection + per-layer inputs, router logits, the
 * [o | LAuReL | n] block, LAuReL's rank, q/k/v (normed in place by the fused kernels), attention out, h, MLP in, the
 * gate/up/act rows, down, u, the PLE gate out/act and output, the unembedding mean, final normed, all logits; then
 * the last hidden row, last logits, the next token, the sampler's token mask (one bit per vocabulary id) and the
 * AltUp router tables (router-tables.ts).
 */
export function forwardScratchFloats(c: Gemma3nTextConfig, C: number): number {
  const D = c.hiddenSize, P = c.pleDim, A = c.altupNumInputs, LP = c.numLayers * P;
  const H = c.numHeads, Hkv = c.numKvHeads, dh = c.headDim, V = c.vocabSize;
  const Fmax = Math.max(...c.intermediateSize);
  return C * (2 + D + 2 * A * D + 2 * LP + A + D + c.laurelRank + D + H * dh + 2 * Hkv * dh + H * dh + D + 3 * D + 3 * Fmax + D + D + 2 * P + D + D + D + V) + D + V + 4 + Math.ceil(V / 32) + c.numLayers * routerTableFloats(D);
}

export function estimateGemma3nMemory(ckpt: Checkpoint, o: EstimateOptions): MemoryEstimate {
  const cfg = parseGemma3nConfig(ckpt.config);
  const c = cfg.text;
  const D = c.hiddenSize, L = c.numLayers, P = c.pleDim, A = c.altupNumInputs;
  const H = c.numHeads, Hkv = c.numKvHeads, dh = c.headDim, V = c.vocabSize;
  const maxContext = Math.min(o.maxContext, c.maxPositionEmbeddings);
  const C = Math.min(o.chunk, maxContext);
  const limit = o.maxBufferBytes ?? Infinity;
  let weights = 0;
  let largest = 0;
  for (const spec of tableSpecs(gemma3nTensorTable(c))) {
    if (spec.kind === 'vector') {
      weights += align16(spec.length * 4);
      continue;
    }
    const [rows, cols] = spec.shape;
    const format = formatForStored(spec.name, ckpt.tensor(spec.name)?.dtype, o.weights, o.f16, { shape: spec.shape, layers: L });
    const data = dataBytes(format, rows, cols), scales = scaleBytes(format, rows, cols);
    // Split into parts under the buffer limit: about the same bytes, a few more 16-byte alignments.
    const parts = Math.max(1, Math.ceil(Math.max(data, scales) / limit));
    weights += data + scales + 32 * parts;
    largest = Math.max(largest, Math.min(Math.max(data, scales), limit));
  }
  let kvCache = 0;
  c.layerTypes.forEach((t, l) => {
    if (c.kvSourceLayer[l] !== l) return;
    kvCache += KvCache.byteSizeFor({ kind: t === 'full_attention' ? 'full' : 'sliding', kvHeads: Hkv, headDim: dh, maxContext, window: c.slidingWindow, maxChunk: C, act: 'f32' });
  });
  // forward.ts's buffers for a chunk of C tokens, plus the PLE upload slots.
  const LP = L * P;
  const floats = forwardScratchFloats(c, C);
  const pleFormat = pleHostFormat(ckpt.tensor(PLE_TABLE)?.dtype, o.weights);
  const upload = uploadedRowsBytes(pleFormat, LP, C);
  const scratch = floats * 4 + upload.data + upload.scales;
  largest = Math.max(largest, C * V * 4);
  const hardRows = Math.max(1, V - c.vocabSizePerLayerInput) * D * 4;
  const gpuBytes = weights + kvCache + scratch;
  return { gpuBytes, hostBytes: pleHostBytes(pleFormat, c.vocabSizePerLayerInput, LP) + hardRows, largestGpuBuffer: largest, weightBytes: weights };
}
