/**
 * The per-layer-embedding (PLE) table, kept OFF the GPU (DESIGN.md; E2B's is 262144 × 7680, 4 GB in bf16): rows
 * live in host memory — f32 in float mode, int4 rows (q4 layout, group 32, f16 scales; 1.1 GB for E2B) in q4 mode —
 * and each step dequantizes just the rows of the tokens at hand (L·P values each) for upload. Ids at or above the
 * table's row count (multimodal hard tokens) read row 0, as HF's multimodal model does (formats doc §2.3).
 */
import { readF32, type Checkpoint } from '../../io/checkpoint.ts';
import { f16BitsToF32 } from '../../io/half.ts';
import { GROUP, groupsPerRow, type PackedWeight } from '../../kernels/weight-format.ts';
import { quantizeCpu } from './cpu-quant.ts';

/** Rows read (and quantized) per chunk at load: bounds the transient host memory. */
const LOAD_CHUNK_BYTES = 32 * 1024 * 1024;

export class PleTable {
  private constructor(
    readonly rows: number,
    readonly cols: number,
    /** √P, applied when rows are produced. */
    private readonly scale: number,
    private readonly f32?: Float32Array,
    private readonly q4?: { data: Uint32Array; scales: Uint16Array },
  ) {}

  static async load(ckpt: Checkpoint, name: string, rows: number, cols: number, mode: 'float' | 'q4', scale: number, onRows?: (done: number) => void): Promise<PleTable> {
    const chunk = Math.max(1, Math.floor(LOAD_CHUNK_BYTES / (cols * 4)));
    if (mode === 'float') {
      const all = new Float32Array(rows * cols);
      for (let r = 0; r < rows; r += chunk) {
        const n = Math.min(chunk, rows - r);
        all.set(await readF32(ckpt, name, { start: r, count: n }), r * cols);
        onRows?.(r + n);
      }
      return new PleTable(rows, cols, scale, all);
    }
    const G = groupsPerRow(cols);
    const data = new Uint32Array(rows * G * 4);
    const scales = new Uint16Array(rows * G);
    for (let r = 0; r < rows; r += chunk) {
      const n = Math.min(chunk, rows - r);
      const packed: PackedWeight = quantizeCpu('q4', await readF32(ckpt, name, { start: r, count: n }), n, cols);
      data.set(packed.data, r * G * 4);
      scales.set(packed.scales, r * G);
      onRows?.(r + n);
    }
    return new PleTable(rows, cols, scale, undefined, { data, scales });
  }

  /** A table of the right size that holds nothing (memory accounting with synthetic weights); rows read as 0. */
  static placeholder(rows: number, cols: number, mode: 'float' | 'q4'): PleTable {
    const t = new PleTable(rows, cols, 0);
    t.virtualBytes = mode === 'float' ? rows * cols * 4 : rows * groupsPerRow(cols) * (16 + 2);
    return t;
  }

  private virtualBytes = 0;

  /** Host bytes held (for a placeholder: the bytes the real table would hold). */
  get bytes(): number {
    if (this.f32) return this.f32.byteLength;
    if (this.q4) return this.q4.data.byteLength + this.q4.scales.byteLength;
    return this.virtualBytes;
  }

  /** Writes √P · row(id) (row 0 for ids ≥ rows) for each id into out[t * cols ...]. */
  gather(ids: ArrayLike<number>, out: Float32Array): void {
    const { cols, scale } = this;
    const G = groupsPerRow(cols);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t] >= 0 && ids[t] < this.rows ? ids[t] : 0;
      const o = t * cols;
      if (!this.f32 && !this.q4) {
        out.fill(0, o, o + cols);
        continue;
      }
      if (this.f32) {
        for (let c = 0; c < cols; c++) out[o + c] = this.f32[id * cols + c] * scale;
        continue;
      }
      const { data, scales } = this.q4!;
      for (let g = 0; g < G; g++) {
        const s = f16BitsToF32(scales[id * G + g]) * scale;
        const base = (id * G + g) * 4;
        const n = Math.min(GROUP, cols - g * GROUP);
        for (let e = 0; e < n; e++) out[o + g * GROUP + e] = (((data[base + (e >> 3)] >>> (4 * (e & 7))) & 15) - 8) * s;
      }
    }
  }
}
