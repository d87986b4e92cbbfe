/**
 * What loading a Gemma 4 checkpoint will allocate, from its config and stored dtypes alone (no weight read): the
 * pre-flight check's input (src/runtime/loading/preflight.ts), and `bench/memory.ts --family gemma4`'s counted
 * column. Counted from the same tensor table, format rules (quant-plan.ts `formatForStored`, ple-table.ts
 * `pleHostFormat`), weight layouts, KV-cache sizing (per layer type: 256 / 512 per head) and scratch buffers
 * (forward.ts) the load uses; the bench holds it to model.memory() of a real-size load to the byte, and
 * test/model/memory-estimate.test.ts to the tiny fixture's loads. Like Gemma 3n's, it leaves out the buffers the
 * kernels own (memory().gpu.kernels), which depend on the adapter.
 */
import type { Checkpoint } from '../../io/checkpoint.ts';
import { dataBytes, scaleBytes } from '../../formats/weight-format.ts';
import { uploadedRowsBytes } from '../../kernels/gather.ts';
import { KvCache } from '../../kernels/kv-cache.ts';
import type { MemoryEstimate, WeightMode } from '../family.ts';
import { pleHostBytes, pleHostFormat } from '../ple-table.ts';
import { tableSpecs } from '../tensor-table.ts';
import { parseGemma4Config, type Gemma4TextConfig } from './config.ts';
import { formatForStored } from './quant-plan.ts';
import { PLE_TABLE, gemma4TensorTable } from './tensors.ts';

const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
/** An f32 buffer of `floats` values as forward.ts makes it (at least 16 bytes). */
const vecBytes = (floats: number) => Math.max(16, floats * 4);

export interface Gemma4EstimateOptions {
  weights: WeightMode;
  /** KV positions asked for (capped at the checkpoint's limit, as the load does). */
  maxContext: number;
  /** Prefill chunk (tokens per step). */
  chunk: number;
  /** The adapter has shader-f16 (float mode then stores matrices in f16). */
  f16: boolean;
  /** Per-buffer limit of the adapter (tensors above it are split into parts, as the upload does). */
  maxBufferBytes?: number;
  /** The PLE table GPU-resident too (LoadOptions.pleOnGpu); default host memory only. */
  pleOnGpu?: boolean;
  /** Stored dtype of a tensor (default: none, i.e. float weights, as for random checkpoints). */
  dtypeOf?: (name: string) => string | undefined;
}

/** The parts of the count (the bench prints them side by side with what a load measures). */
export interface Gemma4MemoryCount {
  weights: number;
  kvCache: number;
  kvLayers: number;
  scratch: number;
  /** Host PLE table (0 with pleOnGpu). */
  pleHost: number;
  /** The PLE table's bytes as a GPU weight (included in `weights` with pleOnGpu). */
  pleGpu: number;
  largestGpuBuffer: number;
}

/** Counts what Gemma4Model.load allocates for `c` (see the header). */
export function countGemma4Memory(c: Gemma4TextConfig, o: Gemma4EstimateOptions): Gemma4MemoryCount {
  const limit = o.maxBufferBytes ?? Infinity;
  let weights = 0;
  let largest = 0;
  for (const spec of tableSpecs(gemma4TensorTable(c))) {
    if (spec.kind === 'vector') {
      // layer_scalar [1] is broadcast to [D] at load.
      weights += vecBytes(spec.name.endsWith('layer_scalar') ? c.hiddenSize : spec.length);
      continue;
    }
    const [rows, cols] = spec.shape;
    const format = formatForStored(spec.name, o.dtypeOf?.(spec.name), o.weights, o.f16, { shape: spec.shape, layers: c.numLayers });
    const data = dataBytes(format, rows, cols), scales = scaleBytes(format, rows, cols);
    // Split into parts under the buffer limit: about the same bytes, a few more 16-byte alignments.
    const parts = Math.max(1, Math.ceil(Math.max(data, scales) / limit));
    weights += align16(data) + (scales ? align16(scales) : 0) + 32 * (parts - 1);
    largest = Math.max(largest, Math.min(Math.max(data, scales), limit));
  }
  const L = c.numLayers, P = c.pleDim, LP = L * P;
  const pleFormat = pleHostFormat(o.dtypeOf?.(PLE_TABLE), o.weights);
  const pleData = dataBytes(pleFormat, c.vocabSizePerLayerInput, LP), pleScales = pleFormat === 'f16' ? 0 : scaleBytes(pleFormat, c.vocabSizePerLayerInput, LP);
  const pleGpu = align16(pleData) + (pleScales ? align16(pleScales) : 0);
  if (o.pleOnGpu) {
    weights += pleGpu;
    largest = Math.max(largest, Math.min(Math.max(pleData, pleScales), limit));
  }

  const maxContext = Math.min(o.maxContext, c.maxPositionEmbeddings);
  const C = Math.min(o.chunk, maxContext);
  let kvCache = 0, kvLayers = 0;
  c.layerTypes.forEach((t, l) => {
    if (c.kvSourceLayer[l] !== l) return;
    kvLayers++;
    kvCache += KvCache.byteSizeFor({ kind: t === 'full_attention' ? 'full' : 'sliding', kvHeads: c.numKvHeads, headDim: c.layerHeadDim[l], maxContext, window: c.slidingWindow, maxChunk: C, act: 'f32' });
  });
  // Scratch: forward.ts's buffers for C tokens, f32.
  const D = c.hiddenSize, H = c.numHeads, Hkv = c.numKvHeads, V = c.vocabSize;
  const dMax = Math.max(...c.layerHeadDim), Fmax = Math.max(...c.intermediateSize);
  const buffers = [
    C, C * D, C * LP, C * LP, // embed ids, residual, PLE projection, per-layer inputs
    C * D, C * H * dMax, C * Hkv * dMax, C * Hkv * dMax, C * H * dMax, // normed, q, k, v (normed in place by the fused kernels), attention out
    C * D, C * D, C * Fmax, C * Fmax, C * Fmax, C * D, // o, MLP in, gate/up/act, down
    C * P, C * P, C * D, C * D, D, V, C * V, 4, // PLE gate/act, PLE out, final normed, last hidden, last logits, all logits, next token
    Math.ceil(V / 32), // the sampler's token mask (one bit per vocabulary id)
  ].map(vecBytes);
  const up = uploadedRowsBytes(pleFormat, LP, C);
  const scratch = buffers.reduce((a, b) => a + b, 0) + (o.pleOnGpu ? vecBytes(C) : vecBytes(up.data / 4) + (up.scales ? vecBytes(Math.ceil(up.scales / 4)) : 0));
  largest = Math.max(largest, C * V * 4);
  const pleHost = o.pleOnGpu ? 0 : pleHostBytes(pleFormat, c.vocabSizePerLayerInput, LP);
  return { weights, kvCache, kvLayers, scratch, pleHost, pleGpu, largestGpuBuffer: largest };
}

/** ModelFamily.estimateMemory for Gemma 4: the count above for an opened checkpoint. */
export function estimateGemma4Memory(ckpt: Checkpoint, o: Gemma4EstimateOptions): MemoryEstimate {
  const c = parseGemma4Config(ckpt.config).text;
  const n = countGemma4Memory(c, { ...o, dtypeOf: (name) => ckpt.tensor(name)?.dtype });
  return { gpuBytes: n.weights + n.kvCache + n.scratch, hostBytes: n.pleHost, largestGpuBuffer: n.largestGpuBuffer, weightBytes: n.weights };
}
