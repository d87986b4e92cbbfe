/**
 * The GPU layouts of ggml's K-quants (Q4_K, Q5_K, Q6_K: super-blocks of 256 weights; docs/gemma3n-formats.md §3.5)
 * and their exact CPU definitions. A GGUF K-quant tensor repacks into them without changing any value (same f16
 * super-block scales, same 6-bit / 8-bit sub-block scales and mins, same integer codes: only the bit order moves),
 * and our own quantizer (shaders/quantize-k.wgsl) writes them too.
 *
 * A weight W is [rows, cols] (PyTorch order), cols a multiple of 32. Per row: G = cols / 32 sub-blocks of 32
 * weights, S = ceil(cols / 256) super-blocks (a row whose length is not a multiple of 256, which only our own
 * quantizer makes, ends in a partial super-block of G − 8(S − 1) sub-blocks). Each row has a `data` part and a
 * `scales` part, both whole u32 words, rows back to back in each buffer (so any row range is two contiguous slices):
 *
 * data row (weight codes):
 * - nibbles: G units of 4 words (16 bytes, one vec4<u32>, as our q4): unit j holds the low 4 bits of the codes of
 *   sub-block j, element 8i + k of the sub-block in bits 4k .. 4k + 3 of word i. A GEMV thread reads a sub-block
 *   with one coalesced 16-byte load.
 * - q5k then G words of fifth bits: bit e of word j = bit 4 of the code of element e of sub-block j.
 * - q6k then 2G words of high bit pairs: bits 2(e & 15) .. + 1 of word 2j + (e >> 4) = bits 4..5 of element e's code.
 * - padding to a multiple of 4 words (so every row's nibble units are 16-byte aligned; none when G % 4 == 0 for q5k,
 *   G even for q6k, i.e. never for GGUF tensors).
 * scales row (per super-block s):
 * - q4k / q5k: 4 words = ggml's first 16 bytes of the block, unchanged: f16 d (bits 0..15 of word 0), f16 dmin
 *   (bits 16..31), then `scales[12]` in ggml's packing of eight 6-bit scales sc_j and mins m_j (get_scale_min_k4:
 *   j < 4: sc = b[j] & 63, m = b[j + 4] & 63; j >= 4: sc = (b[j + 4] & 15) | (b[j − 4] >> 6) << 4,
 *   m = (b[j + 4] >> 4) | (b[j] >> 6) << 4).
 * - q6k: 4 words = the 16 signed 8-bit scales of the super-block's 16-weight sub-blocks (byte t for elements
 *   16t .. 16t + 15), for every super-block of the row; then ceil(S / 2) words of f16 d, two per word (low first).
 *   For odd S the last half word is padding (2 bytes per row; never for GGUF tensors of even S, e.g. all of E2B).
 *
 * Values (exactly ggml's dequantize_row_q*_K, see §3.5), with q the code of element e of sub-block j:
 * - q4k (q 0..15), q5k (q 0..31): w = f32(d·sc_j)·q − f32(dmin·m_j). d·sc_j (11 × 6 bits) and its product with q
 *   (≤ 22 bits) are exact in f32, so the only rounding is the subtraction's: contracting it into an FMA or not gives
 *   the same f32, on the CPU and on every GPU.
 * - q6k (q 0..63): w = f32(d·sc_t)·(q − 32), t = 2j + (e >> 4): exact in f32 (11 + 7 + 6 bits).
 * Bytes per 256 weights: q4k 128 + 16 = 144, q5k 160 + 16 = 176, q6k 192 + 16 + 2 = 210: ggml's block sizes.
 */

export type KFormat = 'q4k' | 'q5k' | 'q6k';

export const K_FORMATS: readonly KFormat[] = ['q4k', 'q5k', 'q6k'];
/** Weights per K-quant super-block (ggml's QK_K). */
export const SUPER_BLOCK = 256;
/** Weights per sub-block (one 16-byte nibble unit). */
export const SUB_BLOCK = 32;

export function isKFormat(format: string): format is KFormat {
  return format === 'q4k' || format === 'q5k' || format === 'q6k';
}

export function subBlocksPerRow(cols: number): number {
  return Math.ceil(cols / SUB_BLOCK);
}

export function superBlocksPerRow(cols: number): number {
  return Math.ceil(cols / SUPER_BLOCK);
}

/** u32 words of one data row (nibble units + high bits + padding to 4 words). */
export function kDataWordsPerRow(format: KFormat, cols: number): number {
  const G = subBlocksPerRow(cols);
  const extra = format === 'q4k' ? 0 : format === 'q5k' ? G : 2 * G;
  return Math.ceil((4 * G + extra) / 4) * 4;
}

/** u32 words of one scales row. */
export function kScaleWordsPerRow(format: KFormat, cols: number): number {
  const S = superBlocksPerRow(cols);
  return format === 'q6k' ? 4 * S + Math.ceil(S / 2) : 4 * S;
}

/** A K-quant weight on the host: `data` and `scales` words, rows back to back (see the header). */
export interface KPacked {
  data: Uint32Array;
  scales: Uint32Array;
}

/** ggml block bytes of each K type. */
export const GGML_K_BLOCK_BYTES: Record<KFormat, number> = { q4k: 144, q5k: 176, q6k: 210 };

/**
 * Repacks `rows` rows of ggml blocks (Q4_K / Q5_K / Q6_K for q4k / q5k / q6k; cols a multiple of 256, as ggml
 * requires) into our layout. Lossless: dequantizeK of the result equals ggml's dequantization bit for bit.
 */
export function repackGgmlK(format: KFormat, bytes: Uint8Array, rows: number, cols: number): KPacked {
  if (cols % SUPER_BLOCK !== 0) throw new Error(`repackGgmlK: rows of ${cols} elements are not whole ${SUPER_BLOCK}-element super-blocks`);
  const S = cols / SUPER_BLOCK, G = 8 * S;
  const blockBytes = GGML_K_BLOCK_BYTES[format];
  if (bytes.byteLength < rows * S * blockBytes) throw new Error(`repackGgmlK: ${bytes.byteLength} bytes for ${rows} rows of ${S} ${format} blocks`);
  const dw = kDataWordsPerRow(format, cols), sw = kScaleWordsPerRow(format, cols);
  const data = new Uint32Array(rows * dw);
  const scales = new Uint32Array(rows * sw);
  const scaleBytes = new Uint8Array(scales.buffer);
  const code = new Uint8Array(SUPER_BLOCK);
  for (let r = 0; r < rows; r++) {
    for (let s = 0; s < S; s++) {
      const o = (r * S + s) * blockBytes;
      if (format === 'q6k') {
        // ql[128] @0, qh[64] @128, i8 scales[16] @192, f16 d @208. Half h, l < 32: element 128h + 32k + l.
        for (let h = 0; h < 2; h++) {
          for (let l = 0; l < 32; l++) {
            const ql0 = bytes[o + 64 * h + l], ql1 = bytes[o + 64 * h + l + 32], qh = bytes[o + 128 + 32 * h + l];
            code[128 * h + l] = (ql0 & 15) | ((qh & 3) << 4);
            code[128 * h + l + 32] = (ql1 & 15) | (((qh >> 2) & 3) << 4);
            code[128 * h + l + 64] = (ql0 >> 4) | (((qh >> 4) & 3) << 4);
            code[128 * h + l + 96] = (ql1 >> 4) | (((qh >> 6) & 3) << 4);
          }
        }
        scaleBytes.set(bytes.subarray(o + 192, o + 208), (r * sw + 4 * s) * 4);
        const d = bytes[o + 208] | (bytes[o + 209] << 8);
        scales[r * sw + 4 * S + (s >> 1)] |= d << (16 * (s & 1));
      } else {
        // d, dmin, scales[12] @0..15; Q5_K: qh[32] @16, qs @48; Q4_K: qs @16. Chunk c = sub-blocks 2c (low nibbles of
        // qs[32c ..]) and 2c + 1 (high nibbles); Q5_K's fifth bit of element l of sub-block j is bit j of qh[l].
        const five = format === 'q5k';
        const qs = o + (five ? 48 : 16);
        for (let c = 0; c < 4; c++) {
          for (let l = 0; l < 32; l++) {
            const b = bytes[qs + 32 * c + l];
            let lo = b & 15, hi = b >> 4;
            if (five) {
              const qh = bytes[o + 16 + l];
              lo |= ((qh >> (2 * c)) & 1) << 4;
              hi |= ((qh >> (2 * c + 1)) & 1) << 4;
            }
            code[64 * c + l] = lo;
            code[64 * c + 32 + l] = hi;
          }
        }
        scaleBytes.set(bytes.subarray(o, o + 16), (r * sw + 4 * s) * 4);
      }
      writeCodes(format, data, r * dw, G, 8 * s, code);
    }
  }
  return { data, scales };
}

/**
 * Writes the codes of up to 8 sub-blocks (`code[32 i + e]` for sub-block first + i) into a data row starting at word
 * `row` (G sub-blocks in the row): nibbles, then fifth bits (q5k) or high pairs (q6k). The words must be zero.
 */
export function writeCodes(format: KFormat, data: Uint32Array, row: number, G: number, first: number, code: ArrayLike<number>): void {
  const n = Math.min(8, G - first);
  for (let i = 0; i < n; i++) {
    const j = first + i;
    for (let e = 0; e < SUB_BLOCK; e++) {
      const q = code[SUB_BLOCK * i + e];
      data[row + 4 * j + (e >> 3)] |= (q & 15) << (4 * (e & 7));
      if (format === 'q5k') data[row + 4 * G + j] |= ((q >> 4) & 1) << e;
      else if (format === 'q6k') data[row + 4 * G + 2 * j + (e >> 4)] |= ((q >> 4) & 3) << (2 * (e & 15));
    }
  }
}

/** Code (0..15 / 0..31 / 0..63) of element e (0..31) of sub-block j of the data row starting at word `row`. */
export function readCode(format: KFormat, data: Uint32Array, row: number, G: number, j: number, e: number): number {
  let q = (data[row + 4 * j + (e >> 3)] >>> (4 * (e & 7))) & 15;
  if (format === 'q5k') q |= ((data[row + 4 * G + j] >>> e) & 1) << 4;
  else if (format === 'q6k') q |= ((data[row + 4 * G + 2 * j + (e >> 4)] >>> (2 * (e & 15))) & 3) << 4;
  return q;
}

/** Sub-block j's 6-bit scale and min from a super-block's 12 scale bytes (ggml's get_scale_min_k4). */
export function scaleMinK4(b: ArrayLike<number>, j: number): [sc: number, m: number] {
  if (j < 4) return [b[j] & 63, b[j + 4] & 63];
  return [(b[j + 4] & 15) | ((b[j - 4] >> 6) << 4), (b[j + 4] >> 4) | ((b[j] >> 6) << 4)];
}

/**
 * Dequantizes `rows` rows of a K-quant weight (the exact values the kernels use; equal bit for bit to ggml's
 * dequantization of the blocks it was repacked from). `f16ToF32` decodes f16 bits exactly (subnormals included).
 */
export function dequantizeK(format: KFormat, packed: KPacked, rows: number, cols: number, f16ToF32: (h: number) => number): Float32Array {
  const G = subBlocksPerRow(cols), S = superBlocksPerRow(cols);
  const dw = kDataWordsPerRow(format, cols), sw = kScaleWordsPerRow(format, cols);
  const out = new Float32Array(rows * cols);
  const sb = new Uint8Array(packed.scales.buffer, packed.scales.byteOffset, packed.scales.byteLength);
  const fr = Math.fround;
  for (let r = 0; r < rows; r++) {
    for (let j = 0; j < G; j++) {
      const s = j >> 3;
      const hdr = r * sw + 4 * s;
      if (format === 'q6k') {
        const d = f16ToF32((packed.scales[r * sw + 4 * S + (s >> 1)] >>> (16 * (s & 1))) & 0xffff);
        for (let e = 0; e < SUB_BLOCK && 32 * j + e < cols; e++) {
          const t = 2 * (j & 7) + (e >> 4);
          const sc = (sb[4 * hdr + t] << 24) >> 24;
          out[r * cols + 32 * j + e] = fr(d * sc) * (readCode(format, packed.data, r * dw, G, j, e) - 32);
        }
      } else {
        const w0 = packed.scales[hdr];
        const d = f16ToF32(w0 & 0xffff), dmin = f16ToF32(w0 >>> 16);
        const [sc, m] = scaleMinK4(sb.subarray(4 * hdr + 4, 4 * hdr + 16), j & 7);
        const ds = fr(d * sc), mm = fr(dmin * m);
        for (let e = 0; e < SUB_BLOCK && 32 * j + e < cols; e++) {
          out[r * cols + 32 * j + e] = fr(ds * readCode(format, packed.data, r * dw, G, j, e) - mm);
        }
      }
    }
  }
  return out;
}

/**
 * The super-blocks under column runs `runs` of every row of a K-quant weight, as a weight of Σ run counts columns
 * (a MatFormer slice's `down_proj` prefix from a cached K-quant matrix). Each run must start on a super-block and
 * hold whole super-blocks (undefined otherwise: the caller reads floats): a super-block keeps its scales, mins and
 * codes whatever the row's width, so the result is exactly the K-quant of those columns.
 */
export function pickKColumns(format: KFormat, packed: KPacked, rows: number, cols: number, runs: readonly { start: number; count: number }[]): KPacked | undefined {
  if (runs.some((r) => r.start % SUPER_BLOCK !== 0 || r.count % SUPER_BLOCK !== 0)) return undefined;
  const width = runs.reduce((s, r) => s + r.count, 0);
  const G = subBlocksPerRow(cols), S = superBlocksPerRow(cols), G2 = width / SUB_BLOCK, S2 = width / SUPER_BLOCK;
  const dw = kDataWordsPerRow(format, cols), sw = kScaleWordsPerRow(format, cols);
  const dw2 = kDataWordsPerRow(format, width), sw2 = kScaleWordsPerRow(format, width);
  const data = new Uint32Array(rows * dw2);
  const scales = new Uint32Array(rows * sw2);
  const highWords = format === 'q4k' ? 0 : format === 'q5k' ? 1 : 2; // high-bit words per sub-block
  for (let r = 0; r < rows; r++) {
    const src = r * dw, dst = r * dw2, ssrc = r * sw, sdst = r * sw2;
    let j2 = 0; // output sub-block
    for (const run of runs) {
      const j = run.start / SUB_BLOCK, n = run.count / SUB_BLOCK;
      data.set(packed.data.subarray(src + 4 * j, src + 4 * (j + n)), dst + 4 * j2);
      if (highWords) data.set(packed.data.subarray(src + 4 * G + highWords * j, src + 4 * G + highWords * (j + n)), dst + 4 * G2 + highWords * j2);
      const s = j / 8, s2 = j2 / 8, m = n / 8;
      scales.set(packed.scales.subarray(ssrc + 4 * s, ssrc + 4 * (s + m)), sdst + 4 * s2);
      if (format === 'q6k') {
        for (let i = 0; i < m; i++) {
          const d = (packed.scales[ssrc + 4 * S + ((s + i) >> 1)] >>> (16 * ((s + i) & 1))) & 0xffff;
          scales[sdst + 4 * S2 + ((s2 + i) >> 1)] |= d << (16 * ((s2 + i) & 1));
        }
      }
      j2 += n;
    }
  }
  return { data, scales };
}
