/**
 * One checkpoint matrix onto the GPU in a weight format, streamed by rows: the host holds one chunk of rows (tens of
 * MB) at a time, never the tensor. This is what keeps every weight mode under a 1 GiB allocation: E4B's bf16 token
 * embedding is 1.25 GiB, and a Q6_K one dequantized to f32 would be 2.1 GB in one array (over Chrome's ~2 GiB
 * typed-array limit). Family-neutral; the family decides the format.
 *
 * - Stored in the format already (GGUF Q4_0 → q4 or q8, Q8_0 → q8; a cached q4/q8 tensor): its blocks are repacked
 *   and uploaded chunk by chunk (`readPackedAs` with row ranges).
 * - Otherwise its rows are read as floats (F32/F16/BF16 as stored; other block types dequantized by the container),
 *   chunk by chunk, and converted or quantized on the GPU (kernels/upload-weight.ts `createWeight` with a row reader).
 */
import type { GpuContext } from '../gpu/device.ts';
import type { Checkpoint } from '../io/checkpoint.ts';
import { isFloatDtype } from '../io/checkpoint.ts';
import { createWeight, uploadPackedRows } from '../kernels/upload-weight.ts';
import { dataBytes, type GpuWeight, type WeightFormat } from '../formats/weight-format.ts';
import type { SourceDType } from '../kernels/quantize.ts';

/** Packed bytes per read of a pre-quantized tensor (the float path's chunk is the upload staging budget, 32 MiB). */
const PACKED_CHUNK_BYTES = 32 * 1024 * 1024;

const SOURCE_DTYPE: Record<string, SourceDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/** Uploads `name` ([rows, cols], shape already checked) as `format`, streaming rows (see the header). */
export async function uploadCheckpointMatrix(ctx: GpuContext, ckpt: Checkpoint, name: string, rows: number, cols: number, format: WeightFormat): Promise<GpuWeight> {
  if ((format === 'q4' || format === 'q8') && ckpt.readPackedAs) {
    let chunkRows = Math.max(2, Math.floor(PACKED_CHUNK_BYTES / dataBytes(format, 1, cols)));
    chunkRows -= chunkRows % 2;
    const first = await ckpt.readPackedAs(name, format, { start: 0, count: Math.min(rows, chunkRows) });
    if (first) {
      return uploadPackedRows(ctx, {
        label: name,
        format,
        rows,
        cols,
        chunkBytes: PACKED_CHUNK_BYTES,
        read: async (start, count) => {
          if (start === 0 && count === first.rows) return first;
          const p = await ckpt.readPackedAs!(name, format, { start, count });
          if (!p) throw new Error(`${name}: rows ${start}+${count} could not be read in ${format}`);
          return p;
        },
      });
    }
  }
  const stored = ckpt.tensor(name)?.dtype ?? 'F32';
  // Block-quantized types come back dequantized to f32 from the container (Checkpoint.read).
  const dtype = isFloatDtype(stored) ? SOURCE_DTYPE[stored] : 'f32';
  return createWeight(ctx, {
    label: name,
    rows,
    cols,
    format,
    dtype,
    bytes: async (start, count) => {
      const t = await ckpt.read(name, { start, count });
      if (SOURCE_DTYPE[t.dtype] !== dtype) throw new Error(`${name}: rows came back as ${t.dtype}, expected ${dtype}`);
      return t.bytes;
    },
  });
}
