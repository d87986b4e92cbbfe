/**
 * The bridge from checkpoint bytes to GpuWeights (weight-format.ts): rows are uploaded in bounded chunks and
 * converted / quantized on the GPU (src/kernels/quantize.ts), so the host never holds more than the staging
 * budget of a tensor, whatever its size. Tensors bigger than one storage binding are split by rows into parts.
 */
import type { GpuContext } from '../gpu/device.ts';
import { GemmaError } from '../errors.ts';
import { writeBuffer } from '../gpu/buffers.ts';
import { requireTensor, type Checkpoint } from '../io/checkpoint.ts';
import { QuantizeKernel, type OwnedDispatch, type SourceDType } from './quantize.ts';
import { dataBytes, isQuantFormat, scaleBytes, scaleHalvesPerRow, scalesAsWords, type GpuWeight, type PackedWeight, type QuantFormat, type WeightFormat, type WeightPart } from '../formats/weight-format.ts';
import { isKFormat } from '../formats/kquant.ts';

/** Source rows [rowStart, rowStart + rowCount) as raw bytes in `dtype` (row-major, rowCount * cols elements). */
export type RowReader = (rowStart: number, rowCount: number) => Promise<Uint8Array>;

export interface CreateWeightOptions {
  label: string;
  /** Out features (rows of W) and in features (cols). */
  rows: number;
  cols: number;
  format: WeightFormat;
  /** Element type of `bytes`: bf16 and f16 as raw little-endian 16-bit values (as safetensors stores them). */
  dtype: SourceDType;
  /** The whole tensor, or a reader called with bounded row ranges, in order. */
  bytes: Uint8Array | RowReader;
  /** Largest part (data or scales buffer) in bytes; default 1 MiB under the device's binding / buffer size limit. */
  maxPartBytes?: number;
  /** Host + GPU staging budget in bytes (two chunks in flight); default 64 MiB. */
  stagingBytes?: number;
}

export interface RandomWeightOptions {
  label?: string;
  rows: number;
  cols: number;
  format: WeightFormat;
  seed: number;
  /** Standard deviation of the normal the values are drawn from (before quantization). */
  std: number;
  maxPartBytes?: number;
  stagingBytes?: number;
  /**
   * q4/q8 only: draw uniform codes with one scale per tensor (std matched) instead of quantizing drawn normals.
   * Same bytes and layout, minutes faster on CPU adapters; for benchmarks and memory accounting.
   */
  codes?: boolean;
}

const DEFAULT_STAGING = 64 * 1024 * 1024;
const kernels = new WeakMap<GPUDevice, Promise<QuantizeKernel>>();

function quantizer(ctx: GpuContext): Promise<QuantizeKernel> {
  let k = kernels.get(ctx.device);
  if (!k) kernels.set(ctx.device, (k = QuantizeKernel.create(ctx)));
  return k;
}

const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);
const sourceBytes = (dtype: SourceDType) => (dtype === 'f32' ? 4 : 2);

/** Rows per part: as many as fit `maxBytes` in both buffers, rounded down to even (chunks start on even rows). */
function rowsPerPart(format: WeightFormat, rows: number, cols: number, maxBytes: number, label: string): number {
  const fits = (r: number) => align16(dataBytes(format, r, cols)) <= maxBytes && align16(scaleBytes(format, r, cols)) <= maxBytes;
  if (fits(rows)) return rows;
  let r = Math.floor(maxBytes / (dataBytes(format, 2, cols) / 2));
  while (r > 0 && !fits(r)) r--;
  r -= r % 2;
  if (r < 2) throw new Error(`${label}: one row pair of ${cols} columns (${format}) does not fit a ${maxBytes}-byte buffer`);
  return r;
}

/** Allocates the part buffers; rejects (freeing what was made) if the device is out of memory. */
async function allocate(ctx: GpuContext, label: string, format: WeightFormat, rows: number, cols: number, maxPartBytes?: number): Promise<GpuWeight> {
  const { device } = ctx;
  if (!Number.isInteger(rows) || !Number.isInteger(cols) || rows <= 0 || cols <= 0) throw new Error(`${label}: bad shape [${rows}, ${cols}]`);
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize);
  // 1 MiB under the limit by default: SwiftShader fails to allocate a buffer of exactly maxBufferSize (1 GiB).
  const perPart = rowsPerPart(format, rows, cols, Math.min(maxPartBytes ?? limit - 2 ** 20, limit), label);
  const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const parts: WeightPart[] = [];
  let bytes = 0;
  device.pushErrorScope('out-of-memory');
  for (let rowStart = 0, i = 0; rowStart < rows; rowStart += perPart, i++) {
    const n = Math.min(perPart, rows - rowStart);
    const data = device.createBuffer({ label: `${label}/part${i}/data`, size: align16(dataBytes(format, n, cols)), usage });
    bytes += data.size;
    let scales: GPUBuffer | undefined;
    if (isQuantFormat(format)) {
      scales = device.createBuffer({ label: `${label}/part${i}/scales`, size: align16(scaleBytes(format, n, cols)), usage });
      bytes += scales.size;
    }
    parts.push({ rowStart, rows: n, data, scales });
  }
  const weight: GpuWeight = { format, rows, cols, parts, bytes };
  const oom = await device.popErrorScope();
  if (oom) {
    destroyWeight(weight);
    throw new GemmaError('limit-too-small', `${label}: the GPU is out of memory for ${(bytes / 2 ** 20).toFixed(1)} MiB (${format} [${rows}, ${cols}]): ${oom.message.split('\n')[0]}`);
  }
  return weight;
}

/** Frees a weight's GPU buffers. */
export function destroyWeight(weight: GpuWeight): void {
  for (const p of weight.parts) {
    p.data.destroy();
    p.scales?.destroy();
  }
  weight.parts = [];
  weight.bytes = 0;
}

/**
 * Visits the weight in chunks of at most `chunkRows` (even) rows, never crossing a part, with two staging slots:
 * `fill(slot, ...)` returns the dispatches for a chunk; a slot is reused only once its previous chunk completed,
 * which bounds the memory Dawn / the browser hold for queued writes.
 */
async function forEachChunk(
  ctx: GpuContext,
  weight: GpuWeight,
  chunkRows: number,
  fill: (slot: number, part: WeightPart, localRow: number, globalRow: number, n: number) => Promise<OwnedDispatch[]>,
): Promise<void> {
  const { queue } = ctx.device;
  const inFlight: Array<Promise<void> | undefined> = [undefined, undefined];
  let chunk = 0;
  for (const part of weight.parts) {
    for (let local = 0; local < part.rows; local += chunkRows, chunk++) {
      const slot = chunk % 2;
      await inFlight[slot];
      const n = Math.min(chunkRows, part.rows - local);
      const dispatches = await fill(slot, part, local, part.rowStart + local, n);
      if (dispatches.length > 0) {
        const encoder = ctx.device.createCommandEncoder({ label: 'upload-weight' });
        const pass = encoder.beginComputePass({ label: 'upload-weight' });
        for (const d of dispatches) d.encode(pass);
        pass.end();
        queue.submit([encoder.finish()]);
      }
      inFlight[slot] = queue.onSubmittedWorkDone().then(() => dispatches.forEach((d) => d.destroy()));
    }
  }
  await Promise.all(inFlight);
}

/** Quantizes `n` source rows in `src` into rows local .. local + n of a part. */
function quantizeChunk(q: QuantizeKernel, format: QuantFormat, src: GPUBuffer, srcDType: SourceDType, part: WeightPart, local: number, n: number, cols: number): Promise<OwnedDispatch> {
  if (format === 'q5k') throw new Error(`no GPU quantizer into ${format} (only GGUF Q5_K tensors load as q5k)`);
  return q.quantize({ src, srcDType, rows: n, cols, format, data: part.data, scales: part.scales!, outRow: local });
}

function chunkRowsFor(bytesPerRow: number, staging: number): number {
  const r = Math.floor(staging / 2 / bytesPerRow);
  return Math.max(2, r - (r % 2));
}

/**
 * Uploads a tensor that is already in a quantized layout (a GGUF tensor repacked losslessly: Q4_0, Q8_0, Q5_0,
 * K-quants; or a cached converted one): the same parts as every other weight, filled by plain writes.
 */
export async function uploadPackedWeight(ctx: GpuContext, label: string, packed: PackedWeight & { format: QuantFormat; rows: number; cols: number }): Promise<GpuWeight> {
  const { format, rows, cols } = packed;
  const weight = await allocate(ctx, label, format, rows, cols);
  const G = scaleHalvesPerRow(format, cols);
  const bytes = new Uint8Array(packed.data.buffer, packed.data.byteOffset, packed.data.byteLength);
  for (const part of weight.parts) {
    writeBuffer(ctx.device, part.data, bytes.subarray(dataBytes(format, part.rowStart, cols), dataBytes(format, part.rowStart + part.rows, cols)));
    writeBuffer(ctx.device, part.scales!, scalesAsWords(packed.scales.subarray(part.rowStart * G, (part.rowStart + part.rows) * G)));
  }
  return weight;
}

/**
 * A checkpoint's [rows, cols] matrix as a GpuWeight in `format`, streamed by rows: the host holds one chunk of rows
 * (tens of MB) at a time, never the tensor. This keeps every weight mode under a 1 GiB allocation: E4B's bf16 token
 * embedding is 1.25 GiB, and a Q6_K one dequantized to f32 would be 2.1 GB in one array (over Chrome's ~2 GiB
 * typed-array limit).
 * - Already in that q4/q8 layout (a GGUF's Q4_0/Q8_0, the offline cache's converted entries): its blocks are uploaded
 *   as they are, chunk by chunk (`readPackedAs` with row ranges).
 * - Otherwise its rows are read as floats (F32/F16/BF16 as stored; other block types dequantized by the container),
 *   chunk by chunk, and converted or quantized on the GPU (`createWeight` with a row reader).
 */
export async function weightFromCheckpoint(ctx: GpuContext, ckpt: Checkpoint, name: string, rows: number, cols: number, format: WeightFormat): Promise<GpuWeight> {
  requireTensor(ckpt, name, [rows, cols]);
  if (isQuantFormat(format) && ckpt.readPackedAs) {
    const chunkRows = chunkRowsFor(dataBytes(format, 1, cols), DEFAULT_STAGING);
    const first = await ckpt.readPackedAs(name, format, { start: 0, count: Math.min(rows, chunkRows) });
    if (first) {
      return uploadPackedRows(ctx, {
        label: name,
        format,
        rows,
        cols,
        chunkBytes: DEFAULT_STAGING / 2,
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
  const dtype = CHECKPOINT_DTYPE[stored] ?? 'f32';
  return createWeight(ctx, {
    label: name,
    rows,
    cols,
    format,
    dtype,
    bytes: async (start, count) => {
      const t = await ckpt.read(name, { start, count });
      if (CHECKPOINT_DTYPE[t.dtype] !== dtype) throw new Error(`${name}: rows came back as ${t.dtype}, expected ${dtype}`);
      return t.bytes;
    },
  });
}

/** Float dtypes a checkpoint stores, as upload source types. */
const CHECKPOINT_DTYPE: Record<string, SourceDType> = { F32: 'f32', F16: 'f16', BF16: 'bf16' };

/**
 * Uploads a [rows, cols] tensor given in `dtype` as a GpuWeight in `format`, converting or quantizing on the GPU.
 * f32 -> f32 and f16 -> f16 are plain copies; everything else goes through a staging buffer and quantize.ts.
 */
export async function createWeight(ctx: GpuContext, o: CreateWeightOptions): Promise<GpuWeight> {
  const { device } = ctx;
  const elem = sourceBytes(o.dtype);
  const rowBytes = o.cols * elem;
  if (o.bytes instanceof Uint8Array && o.bytes.byteLength !== o.rows * rowBytes) {
    throw new Error(`${o.label}: ${o.bytes.byteLength} bytes given, [${o.rows}, ${o.cols}] ${o.dtype} is ${o.rows * rowBytes}`);
  }
  const weight = await allocate(ctx, o.label, o.format, o.rows, o.cols, o.maxPartBytes);
  const read = async (row: number, n: number): Promise<Uint8Array> => {
    const b = o.bytes instanceof Uint8Array ? o.bytes.subarray(row * rowBytes, (row + n) * rowBytes) : await o.bytes(row, n);
    if (b.byteLength !== n * rowBytes) throw new Error(`${o.label}: reader returned ${b.byteLength} bytes for rows ${row}+${n}, expected ${n * rowBytes}`);
    return b;
  };
  const chunkRows = chunkRowsFor(rowBytes, o.stagingBytes ?? DEFAULT_STAGING);
  try {
    const direct = o.format === o.dtype; // f32 -> f32, f16 -> f16
    const q = await quantizer(ctx);
    const staging = direct
      ? []
      : [0, 1].map((i) => device.createBuffer({ label: `${o.label}/staging${i}`, size: align16(Math.min(chunkRows, o.rows) * rowBytes), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST }));
    try {
      await forEachChunk(ctx, weight, chunkRows, async (slot, part, local, row, n) => {
        const bytes = await read(row, n);
        if (direct) {
          writeBuffer(device, part.data, bytes, local * rowBytes); // local is even, so the offset is 4-aligned
          return [];
        }
        const src = staging[slot];
        writeBuffer(device, src, bytes);
        const count = n * o.cols;
        switch (o.format) {
          case 'f16':
            return [await q.toF16({ src, srcDType: o.dtype, count, dst: part.data, outOffset: local * o.cols })];
          case 'f32':
            return [await q.toF32({ src, srcDType: o.dtype, count, dst: part.data, outOffset: local * o.cols })];
          default:
            return [await quantizeChunk(q, o.format, src, o.dtype, part, local, n, o.cols)];
        }
      });
    } finally {
      staging.forEach((b) => b.destroy());
    }
  } catch (err) {
    destroyWeight(weight);
    throw err;
  }
  return weight;
}

/**
 * A weight of normal(0, std) values drawn on the GPU (then converted / quantized like a real one): for memory
 * accounting at real model sizes and for benchmarks, with no large host arrays. Values depend only on the seed.
 */
export async function createRandomWeight(ctx: GpuContext, o: RandomWeightOptions): Promise<GpuWeight> {
  const label = o.label ?? `random[${o.rows}x${o.cols} ${o.format}]`;
  const weight = await allocate(ctx, label, o.format, o.rows, o.cols, o.maxPartBytes);
  const q = await quantizer(ctx);
  if (o.codes && isQuantFormat(o.format)) {
    const ds = weight.parts.map(async (p) => {
      const dataWords = dataBytes(o.format, p.rows, o.cols) / 4;
      // K-quants: every header word is this f16 twice (d = dmin = scale, 6-bit scales and mins from its bytes):
      // the bytes and layout of the real thing, values of no particular distribution.
      const scale = o.std / (o.format === 'q4' ? Math.sqrt(255 / 12) : isKFormat(o.format) ? 256 : Math.sqrt(65535 / 12));
      return q.randomCodes({ data: p.data, dataWords, scales: p.scales!, scaleWords: scaleBytes(o.format, p.rows, o.cols) / 4, seed: o.seed, scale, firstIndex: dataBytes(o.format, p.rowStart, o.cols) / 4 });
    });
    const dispatches = await Promise.all(ds);
    const encoder = ctx.device.createCommandEncoder({ label });
    const pass = encoder.beginComputePass();
    dispatches.forEach((d) => d.encode(pass));
    pass.end();
    ctx.device.queue.submit([encoder.finish()]);
    await ctx.device.queue.onSubmittedWorkDone();
    dispatches.forEach((d) => d.destroy());
    return weight;
  }
  const chunkRows = chunkRowsFor(o.cols * 4, o.stagingBytes ?? DEFAULT_STAGING);
  const scratch =
    o.format === 'f32'
      ? []
      : [0, 1].map((i) => ctx.device.createBuffer({ label: `${label}/scratch${i}`, size: align16(Math.min(chunkRows, o.rows) * o.cols * 4), usage: GPUBufferUsage.STORAGE }));
  try {
    await forEachChunk(ctx, weight, chunkRows, async (slot, part, local, row, n) => {
      const count = n * o.cols;
      const common = { count, seed: o.seed, std: o.std, firstIndex: row * o.cols };
      if (o.format === 'f32') return [await q.random({ ...common, dst: part.data, outOffset: local * o.cols })];
      const src = scratch[slot];
      const gen = await q.random({ ...common, dst: src });
      if (o.format === 'f16') return [gen, await q.toF16({ src, srcDType: 'f32', count, dst: part.data, outOffset: local * o.cols })];
      return [gen, await quantizeChunk(q, o.format, src, 'f32', part, local, n, o.cols)];
    });
  } catch (err) {
    destroyWeight(weight);
    throw err;
  } finally {
    scratch.forEach((b) => b.destroy());
  }
  return weight;
}

/** Rows [start, start + count) of a tensor already in a quantized layout (a GGUF tensor repacked losslessly, a cached one). */
export type PackedRowReader = (start: number, count: number) => Promise<PackedWeight>;

export interface UploadPackedRowsOptions {
  label: string;
  format: QuantFormat;
  rows: number;
  cols: number;
  /** Called with bounded row ranges, in order. */
  read: PackedRowReader;
  /** Packed data bytes per read (default 32 MiB). */
  chunkBytes?: number;
  maxPartBytes?: number;
}

/**
 * Uploads a quantized tensor read in row chunks, so the host never holds the whole tensor (E2B's token embedding is
 * 570 MB in Q8_0): the same parts as every other weight, each chunk written at its rows' offset and waited for
 * before the next is read.
 */
export async function uploadPackedRows(ctx: GpuContext, o: UploadPackedRowsOptions): Promise<GpuWeight> {
  const { format, rows, cols } = o;
  const weight = await allocate(ctx, o.label, format, rows, cols, o.maxPartBytes);
  const G = scaleHalvesPerRow(format, cols); // 16-bit scale units per row
  const rowBytes = dataBytes(format, 1, cols);
  // Even row counts: a chunk then starts on an even row, so its scales start on a whole u32 word.
  let chunkRows = Math.max(2, Math.floor((o.chunkBytes ?? DEFAULT_STAGING / 2) / rowBytes));
  chunkRows -= chunkRows % 2;
  try {
    for (const part of weight.parts) {
      for (let local = 0; local < part.rows; local += chunkRows) {
        const n = Math.min(chunkRows, part.rows - local);
        const p = await o.read(part.rowStart + local, n);
        if (p.data.byteLength < n * rowBytes || p.scales.length < n * G) {
          throw new Error(`${o.label}: reader returned ${p.data.byteLength} data bytes and ${p.scales.length} scale units for ${n} rows, expected ${n * rowBytes} and ${n * G}`);
        }
        writeBuffer(ctx.device, part.data, new Uint8Array(p.data.buffer, p.data.byteOffset, n * rowBytes), dataBytes(format, local, cols));
        writeBuffer(ctx.device, part.scales!, scalesAsWords(p.scales.subarray(0, n * G)), local * G * 2);
        await ctx.device.queue.onSubmittedWorkDone(); // bounds what the queue holds to one chunk
      }
    }
  } catch (err) {
    destroyWeight(weight);
    throw err;
  }
  return weight;
}
