/** Test helpers for GpuWeights: build one from CPU-packed data, read one back, decode rows, reference matmul. */
import type { GpuContext } from '../../src/gpu/device.ts';
import { readBuffer } from '../../src/gpu/buffers.ts';
import { dataBytes, dequantize, groupsPerRow, isQuantFormat, packQ4, packQ5, packQ8, scaleBytes, scaleHalvesPerRow, scalesAsWords, type GpuWeight, type QuantFormat, type WeightFormat } from '../../src/formats/weight-format.ts';
import { dequantizeK, isKFormat } from '../../src/formats/kquant.ts';
import { f16BitsToF32, f32ToF16Bits } from '../../src/io/half.ts';
import type { Rng } from './random.ts';
import { randomKPacked, scaleHalves } from './kquant.ts';

/** CPU form of a weight: `data` words (f32 bits, f16 pairs, q4/q8 blocks, K-quant rows) and the scales as 16-bit units. */
export interface HostWeight {
  format: WeightFormat;
  rows: number;
  cols: number;
  data: Uint32Array;
  scales?: Uint16Array;
}

const align16 = (n: number) => Math.max(16, Math.ceil(n / 16) * 16);

function bufferFrom(ctx: GpuContext, words: Uint32Array, byteSize: number, label: string): GPUBuffer {
  const buf = ctx.device.createBuffer({ label, size: align16(byteSize), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
  const bytes = new Uint8Array(buf.size);
  bytes.set(new Uint8Array(words.buffer, words.byteOffset, Math.min(words.byteLength, buf.size)));
  ctx.device.queue.writeBuffer(buf, 0, bytes);
  return buf;
}

/** Uploads a HostWeight, split into parts at `splitRows` (even, for f16 with odd cols), bypassing upload-weight.ts. */
export function uploadHostWeight(ctx: GpuContext, w: HostWeight, splitRows: number[] = []): GpuWeight {
  const bounds = [0, ...splitRows, w.rows];
  const parts = [];
  let bytes = 0;
  for (let i = 0; i + 1 < bounds.length; i++) {
    const r0 = bounds[i], n = bounds[i + 1] - r0;
    const d0 = dataBytes(w.format, r0, w.cols) / 4, dn = dataBytes(w.format, n, w.cols);
    const data = bufferFrom(ctx, w.data.subarray(d0, d0 + dn / 4), dn, `host-weight/part${i}`);
    bytes += data.size;
    let scales: GPUBuffer | undefined;
    if (w.scales && isQuantFormat(w.format)) {
      const G = scaleHalvesPerRow(w.format, w.cols);
      scales = bufferFrom(ctx, scalesAsWords(w.scales.subarray(r0 * G, (r0 + n) * G)), scaleBytes(w.format, n, w.cols), `host-weight/part${i}/scales`);
      bytes += scales.size;
    }
    parts.push({ rowStart: r0, rows: n, data, scales });
  }
  return { format: w.format, rows: w.rows, cols: w.cols, parts, bytes };
}

/** Reads a GpuWeight back into one HostWeight (parts concatenated). */
export async function downloadWeight(ctx: GpuContext, w: GpuWeight): Promise<HostWeight> {
  const data = new Uint32Array(dataBytes(w.format, w.rows, w.cols) / 4);
  const quant = isQuantFormat(w.format);
  const G = quant ? scaleHalvesPerRow(w.format as Parameters<typeof scaleHalvesPerRow>[0], w.cols) : 0;
  const scales = quant ? new Uint16Array(w.rows * G + 2) : undefined;
  for (const p of w.parts) {
    const n = dataBytes(w.format, p.rows, w.cols);
    data.set(new Uint32Array(await readBuffer(ctx.device, p.data, n)), dataBytes(w.format, p.rowStart, w.cols) / 4);
    if (scales && p.scales) {
      const s = new Uint16Array(await readBuffer(ctx.device, p.scales, scaleBytes(w.format, p.rows, w.cols)));
      scales.set(s.subarray(0, p.rows * G), p.rowStart * G);
    }
  }
  return { format: w.format, rows: w.rows, cols: w.cols, data, scales: scales?.subarray(0, w.rows * G) };
}

/** Decodes row n of a HostWeight to exact f32 values (weight-format.ts semantics) into `out` (length cols). */
export function decodeRow(w: HostWeight, n: number, out: Float64Array): Float64Array {
  const { cols } = w;
  const G = groupsPerRow(cols);
  if (isKFormat(w.format)) {
    const dw = dataBytes(w.format, 1, cols) / 4, sw = scaleBytes(w.format, 1, cols) / 4;
    const words = new Uint32Array(w.scales!.buffer, w.scales!.byteOffset + n * sw * 4, sw);
    const row = dequantizeK(w.format, { data: w.data.subarray(n * dw, (n + 1) * dw), scales: words }, 1, cols, f16BitsToF32);
    for (let c = 0; c < cols; c++) out[c] = row[c];
    return out;
  }
  switch (w.format) {
    case 'f32': {
      const f = new Float32Array(w.data.buffer, w.data.byteOffset + n * cols * 4, cols);
      for (let c = 0; c < cols; c++) out[c] = f[c];
      break;
    }
    case 'f16': {
      const h = new Uint16Array(w.data.buffer, w.data.byteOffset, w.data.length * 2);
      for (let c = 0; c < cols; c++) out[c] = f16BitsToF32(h[n * cols + c]);
      break;
    }
    case 'q4':
      for (let g = 0; g < G; g++) {
        const d = f16BitsToF32(w.scales![n * G + g]);
        for (let e = 0; e < 32 && g * 32 + e < cols; e++) {
          out[g * 32 + e] = (((w.data[(n * G + g) * 4 + (e >> 3)] >>> (4 * (e & 7))) & 15) - 8) * d;
        }
      }
      break;
    case 'q5': {
      const row = dequantize('q5', { data: w.data.subarray(n * G * 4, (n + 1) * G * 4), scales: w.scales!.subarray(3 * n * G, 3 * (n + 1) * G) }, 1, cols, f16BitsToF32);
      for (let c = 0; c < cols; c++) out[c] = row[c];
      break;
    }
    case 'q8': {
      const b = new Int8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength);
      for (let g = 0; g < G; g++) {
        const d = f16BitsToF32(w.scales![n * G + g]);
        for (let e = 0; e < 32 && g * 32 + e < cols; e++) out[g * 32 + e] = b[(n * G + g) * 32 + e] * d;
      }
      break;
    }
  }
  return out;
}

/**
 * float64 reference y[t, n] = sum_k x[t, k] W[n, k] for the listed output rows (default all), plus the per-element
 * error scale sum_k |x[t, k] W[n, k]| the tolerances are stated against. Results are [T, rows.length].
 */
export function refMatmul(x: Float32Array, T: number, w: HostWeight, rows?: number[]): { y: Float64Array; mag: Float64Array; rows: number[] } {
  const K = w.cols;
  const list = rows ?? Array.from({ length: w.rows }, (_, i) => i);
  const y = new Float64Array(T * list.length);
  const mag = new Float64Array(T * list.length);
  const wr = new Float64Array(K);
  list.forEach((n, j) => {
    decodeRow(w, n, wr);
    for (let t = 0; t < T; t++) {
      let s = 0, m = 0;
      const xo = t * K;
      for (let k = 0; k < K; k++) {
        const p = x[xo + k] * wr[k];
        s += p;
        m += Math.abs(p);
      }
      y[t * list.length + j] = s;
      mag[t * list.length + j] = m;
    }
  });
  return { y, mag, rows: list };
}

/** A random quantized weight (random codes and scales, every format's full code range), packed on the CPU. */
export function randomQuantWeight(rng: Rng, format: QuantFormat, rows: number, cols: number): HostWeight {
  if (format === 'q4k' || format === 'q5k' || format === 'q6k') {
    const k = randomKPacked(rng, format, rows, cols);
    return { format, rows, cols, data: k.data, scales: scaleHalves(k.scales) };
  }
  const G = groupsPerRow(cols);
  const d = new Uint16Array(rows * G).map(() => f32ToF16Bits((rng.next() < 0.5 ? -1 : 1) * rng.uniform(2e-3, 4e-2)));
  const max = format === 'q4' ? 16 : format === 'q5' ? 32 : 256;
  const q = Array.from({ length: rows * cols }, () => rng.int(0, max) - (format === 'q8' ? 128 : 0));
  const p = format === 'q4' ? packQ4(q, d, rows, cols) : format === 'q5' ? packQ5(q, d, rows, cols) : packQ8(q, d, rows, cols);
  return { format, rows, cols, data: p.data, scales: p.scales };
}
