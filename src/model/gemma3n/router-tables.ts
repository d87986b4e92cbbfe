/**
 * The AltUp router tables: per layer one [5, D] f32 buffer holding router_norm's weight w_r, then W_r's 4 rows
 * (dequantized from whatever format the router arrived in: the Q4_K_M plan's q8, a GGUF's own type, a converted
 * checkpoint's). The row kernels that hold the router's input row read it (altup predict for x_0, residual-norm's
 * projected out for the layer output g) and write the logits r = W_r · RMSNorm_{w_r}(v) themselves, so the decode
 * step has no router GEMV. Built once on the GPU when the forward pass is made (the gather dequantizes every
 * format): 5·D floats per layer, 1.2 MB at E2B's 30 layers of D = 2048.
 */
import type { GpuContext } from '../../gpu/device.ts';
import { createStorageBuffer, writeBuffer } from '../../gpu/buffers.ts';
import type { GatherKernel } from '../../kernels/gather.ts';
import type { GpuWeight } from '../../formats/weight-format.ts';

export interface RouterWeights {
  /** altup.modality_router W_r [4, D], any GPU format. */
  router: GpuWeight;
  /** altup.router_norm's weight [D] f32. */
  routerNorm: GPUBuffer;
}

/** Rows of W_r: the AltUp streams (altup_num_inputs is 4 in every Gemma 3n). */
const ROUTER_ROWS = 4;

/**
 * f32 values of one layer's table: w_r then W_r's rows. A decode step reads it whole twice per layer (altup predict,
 * and the residual-norm that writes the correction's logits).
 */
export function routerTableFloats(dim: number): number {
  return (1 + ROUTER_ROWS) * dim;
}

/** One router table per layer (see above), labelled `router-table/<l>`; the caller owns and destroys them. */
export function buildRouterTables(ctx: GpuContext, gather: GatherKernel, layers: RouterWeights[], dim: number): GPUBuffer[] {
  const { device } = ctx;
  const rows = ROUTER_ROWS;
  const ids = createStorageBuffer(device, rows * 4, 'router-table/ids');
  writeBuffer(device, ids, Uint32Array.from({ length: rows }, (_, i) => i));
  const encoder = device.createCommandEncoder({ label: 'router-tables' });
  const pass = encoder.beginComputePass({ label: 'router-tables' });
  const tables = layers.map((lw, l) => {
    if (lw.router.rows !== rows || lw.router.cols !== dim) throw new Error(`router of layer ${l} is [${lw.router.rows}, ${lw.router.cols}], expected [${rows}, ${dim}]`);
    const table = createStorageBuffer(device, routerTableFloats(dim) * 4, `router-table/${l}`);
    gather.bind({ table: lw.router, ids, y: { buffer: table, offset: dim }, tokens: rows }).encode(pass);
    return table;
  });
  pass.end();
  layers.forEach((lw, l) => encoder.copyBufferToBuffer(lw.routerNorm, 0, tables[l], 0, dim * 4));
  device.queue.submit([encoder.finish()]);
  ids.destroy(); // valid once submitted: the queued work still reads it
  return tables;
}
