/**
 * Gemma 4 weights on the GPU: every matrix of the text decoder's tensor table in the format quant-plan.ts picks for
 * the mode (or a GGUF's own quantization), the small f32 vectors (norms, layer scalars), and the PLE table in host
 * memory (src/model/ple-table.ts, in blocks; E2B's is 262144 × 8960, 4.7 GB in bf16) unless asked to live on the
 * GPU. KV-shared layers' own k_proj / v_proj / k_norm are never read (tensors.ts).
 */
import type { GpuContext } from '../../gpu/device.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import type { GpuWeight } from '../../formats/weight-format.ts';
import { destroyLoaded, loadTable, tableSpecs, type Loaded } from '../tensor-table.ts';
import { TensorLoader, type TensorLoaderOptions } from '../tensor-loader.ts';
import { PleTable } from '../ple-table.ts';
import type { Gemma4Config } from './config.ts';
import { formatForStored } from './quant-plan.ts';
import { PLE_TABLE, gemma4TensorTable, type Gemma4TensorTable } from './tensors.ts';

/** The decoder's tensors on the GPU (the table's structure: `w.layers[l].q`, …) plus the host-resident PLE table. */
export type Gemma4Weights = Loaded<Gemma4TensorTable> & {
  pleTable: PleTable;
  /** The PLE table on the GPU (only with `pleOnGpu`). */
  pleGpu?: GpuWeight;
  /** GPU bytes of everything above. */
  gpuBytes: number;
};

export interface LoadGemma4WeightsOptions extends TensorLoaderOptions {
  /** Keep the PLE table GPU-resident too (default: host memory only; rows uploaded per step). */
  pleOnGpu?: boolean;
}

export async function loadGemma4Weights(ctx: GpuContext, ckpt: Checkpoint, cfg: Gemma4Config, opts: LoadGemma4WeightsOptions): Promise<Gemma4Weights> {
  const c = cfg.text;
  const { mode } = opts;
  const table = gemma4TensorTable(c);
  const L = c.numLayers, P = c.pleDim;
  const formatOf = (name: string, dtype: string | undefined, shape: readonly number[]) => formatForStored(name, dtype, mode, ctx.f16, { shape, layers: L });
  const loader = new TensorLoader(ctx, ckpt, opts, { formatOf }, tableSpecs(table).length + 1); // + the PLE table
  // Every tensor this load reads, in order: the checkpoint fetches them in a few large windows, and nothing else.
  loader.willRead([...tableSpecs(table).map((t) => t.name), PLE_TABLE]);
  const gpu = await loadTable(table, loader.load);
  try {
    // Host rows in blocks: int4 in q4 mode, f16 in float mode, or a GGUF's own blocks where a GPU format holds them
    // losslessly (other block types requantized; ple-table.ts `pleHostFormat`).
    const pleHost = await PleTable.forModel(ckpt, PLE_TABLE, c.vocabSizePerLayerInput, L * P, mode, Math.fround(Math.sqrt(P)), opts);
    loader.tick();
    const pleGpu = opts.pleOnGpu ? pleHost.toGpu(ctx, PLE_TABLE) : undefined;
    return { ...gpu, pleTable: pleGpu ? pleHost.withoutHostRows() : pleHost, pleGpu, gpuBytes: loader.gpuBytes + (pleGpu?.bytes ?? 0) };
  } catch (err) {
    destroyLoaded(gpu);
    throw err;
  }
}

export function destroyGemma4Weights(w: Gemma4Weights): void {
  destroyLoaded(w);
}
