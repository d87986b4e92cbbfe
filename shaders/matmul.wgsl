// Linear layer: y[t, n] (+)= sum_k x[t, k] * W[n, k] for t < T, n < N_part, W in a weight-format.ts layout
// (f32, f16, q4, q8: group 32, f16 scales two per u32; q5: group 32, 3 16-bit scale units per group (d, fifth
// bits); q4k, q5k, q6k: ggml's K-quants in the layout of src/formats/kquant.ts). For a weight split into parts,
// one dispatch per part writes output columns n_offset .. n_offset + n_part.
// Bindings: 0 params (uniform), 1 x [T, K] act_t (from x_offset), 2 w array<vec4<u32>> (the part's data),
// 3 scales array<u32> (q4/q8 scales, q5 scale units, K-quant super-block headers; a dummy otherwise), 4 y [T, N]
// act_t (from y_offset, row stride N), 5 xq_scratch (gemv_rows_int8 only: its quantized x), 7 w2 and 8 scales2 (the GEMVs' second matrix; dummies otherwise), 9 y2 act_t
// (the second matrix's output, or the epilogue's multiplier v; a dummy otherwise).
// Overrides: FORMAT 0 f32, 1 f16, 2 q4, 3 q8, 4 q4k, 5 q5k, 6 q6k, 7 q5; ROWS x LANES the gemv workgroup; PAIR 1: the
// GEMVs read a second matrix (below); DOT the integer product of the int8-activation GEMVs (gemv_int8,
// gemv_rows_int8: x quantized to int8 by the GEMV's own workgroup, below). Float rows are read as vec4<u32>
// units when they start on 16 bytes (p.aligned), else element by element (odd test shapes). Only FORMAT makes
// pipelines: each costs seconds to compile on SwiftShader.
// Two matrices, one GEMV dispatch (decode; p.n_part2 > 0): W2 [n_part2, K] of the same format over the same x;
// workgroups index the concatenation of both matrices' rows (blocks 0 .. n_blocks1 − 1: W, the rest: W2, so every
// workgroup reads one matrix) and W2's rows go to y2 (y2_offset, row stride N2). Epilogues (p.epilogue): 1: a
// thread (gemv_rows) or workgroup (gemv) owns the same rows of W and W2 (n_part2 = n_part) and writes
// y = gelu_tanh(W x) · (W2 x) instead (a gated MLP's gate and up: one dispatch instead of three); 2 (one matrix):
// y = gelu_tanh(W x) · y2[t, n] (a vector multiplier: Gemma 3n's per-layer-input gate). These are uniforms; the
// override PAIR = 1 only enables W2's reads: with PAIR 0 the matrix choice folds away (a per-load branch costs a
// single-matrix GEMV ~1.3-2x on SwiftShader, which runs both sides of a branch it cannot prove uniform). The GEMMs
// read W only (the caller runs one per matrix and the epilogue apart).
// Accumulation is f32 in every variant; weights are dequantized to exactly q * scale (scale decoded exactly from
// its f16 bits), so the result is the matmul over weight-format.ts `dequantize` up to f32 summation order.
// q5: a unit is one group's low nibbles (as q4); its d and fifth bits come from the scales buffer.
// K-quants: a 16-byte unit is one 32-weight sub-block (its low code nibbles, as q4); the GEMV folds the sub-block's
// scale and min out of the sum (q4k / q5k d·sc·Σ(q − 8)x + (8·d·sc − dmin·m)·Σx; q6k d·sc·(Σqx − 32·Σx) per
// 16-weight half, q = nibble | high pair << 4 decoded whole), the GEMM
// dequantizes its tile to ggml's values exactly (d·sc·q − dmin·m, one rounding).
//
// gemv (decode, T <= a few): a workgroup owns ROWS output features x p.tb tokens; LANES threads share a row. Every
// weight read is one 16-byte vec4<u32> "unit" (q4: one 32-weight group, q8: half a group, f16: 8 weights, f32: 4),
// lanes take consecutive units, so a warp's loads are contiguous and each weight byte is read once per p.tb tokens.
// Lane partial sums (a vec4, one component per token) are reduced in workgroup memory (no subgroups needed: a
// subgroup reduction would only shorten this tail). x is re-read through the cache.
// gemm (prefill): 64 tokens x 64 features per workgroup of 16 x 16 threads, each thread 4 x 4 outputs strided by
// 16 (conflict-free vec4 reads of workgroup memory, coalesced y writes); K in steps of 32 (one quant group): the x
// tile and the dequantized weight tile (32 x 64 each, k-major vec4s, 16 KiB in all) live in workgroup memory.
// gemm_regs, gemm_quad (prefill on CPU adapters): the same tile in scalar layout, 8 x 8 / 16 x 8 outputs per thread
// (below; gemm_quad in shaders/matmul-quad.wgsl).
// Hot loops are written out straight-line: SwiftShader's Subzero JIT neither unrolls nor registers private arrays.

struct Params {
  T: u32,
  K: u32,
  N: u32,          // row stride of y (all features, over all parts)
  n_part: u32,     // rows of W in this part
  n_offset: u32,   // first output feature of this part
  x_offset: u32,   // elements
  y_offset: u32,   // elements
  accumulate: u32, // 1: y += W x
  groups: u32,     // groups (of 32) per row: q4/q8 blocks, K-quant sub-blocks per row
  grid_x: u32,     // workgroups per grid row (grids may be 2-D)
  n_blocks: u32,   // workgroups along the feature axis
  tb: u32,         // gemv: tokens per workgroup, 1..4 (a uniform, not an override: one pipeline serves all T)
  aligned: u32,    // float formats: rows start on 16 bytes (K % 4 == 0 for f32, K % 8 == 0 for f16)
  n_part2: u32,    // gemv: rows of the second matrix W2 (0: none)
  y2_offset: u32,  // elements: W2's output (or the epilogue-2 multiplier) in y2
  N2: u32,         // row stride of y2
  epilogue: u32,   // gemv: 0 none, 1 y = gelu(W x)·(W2 x), 2 y = gelu(W x)·y2
  n_blocks1: u32,  // gemv: workgroups of W's rows (the rest are W2's); n_blocks without W2
}

override FORMAT: u32 = 2u;
override ROWS: u32 = 8u;
override LANES: u32 = 32u;
override PAIR: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<act_t>;
@group(0) @binding(2) var<storage, read> w: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<act_t>;
// The GEMVs' second matrix (data, scales) and its output / the epilogue's multiplier.
@group(0) @binding(7) var<storage, read> w2: array<vec4<u32>>;
@group(0) @binding(8) var<storage, read> scales2: array<u32>;
@group(0) @binding(9) var<storage, read_write> y2: array<act_t>;

// f16_bits_to_f32 (exact, subnormals included; unpack2x16float may flush them): shaders/lib/f16-bits.wgsl.

// Matrix mat's (0: W, 1: W2) weight unit i and scales word i. The branch is uniform per workgroup in the
// concatenated layout and fixed per row slot in epilogue 1.
fn w_unit(mat: u32, i: u32) -> vec4<u32> {
  if (PAIR != 0u && mat != 0u) { return w2[i]; }
  return w[i];
}

fn scales_word(mat: u32, i: u32) -> u32 {
  if (PAIR != 0u && mat != 0u) { return scales2[i]; }
  return scales[i];
}

// 16-bit unit h of the scales buffer.
fn scale_half(mat: u32, h: u32) -> u32 {
  return (scales_word(mat, h >> 1u) >> ((h & 1u) * 16u)) & 0xffffu;
}

fn scale_at(mat: u32, s: u32) -> f32 {
  return f16_bits_to_f32(scale_half(mat, s));
}

// One u32 word of the weight data by word index (element access for unaligned float rows).
fn w_word(mat: u32, i: u32) -> u32 {
  return w_unit(mat, i >> 2u)[i & 3u];
}

// Weight element (n, k) of a float format, for unaligned rows.
fn w_float(mat: u32, n: u32, k: u32) -> f32 {
  let e = n * p.K + k;
  if (FORMAT == 0u) { return bitcast<f32>(w_word(mat, e)); }
  return unpack2x16float(w_word(mat, e >> 1u))[e & 1u];
}

// Elements per 16-byte unit.
fn unit_elems() -> u32 {
  switch FORMAT {
    case 0u: { return 4u; }
    case 1u: { return 8u; }
    case 3u: { return 16u; }
    default: { return 32u; }
  }
}

// 4 activations x[t, c .. c + 3], zero past K. Branch-free (the index is clamped, the value masked), so every
// unit has one code path: shader size, and so compile time on CPU adapters, stays small.
fn x4(t: u32, c: u32) -> vec4<f32> {
  let b = p.x_offset + t * p.K;
  let last = p.K - 1u;
  let v = vec4<f32>(f32(x[b + min(c, last)]), f32(x[b + min(c + 1u, last)]), f32(x[b + min(c + 2u, last)]), f32(x[b + min(c + 3u, last)]));
  return select(vec4<f32>(0.0), v, vec4<u32>(c) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.K));
}

// q4 nibbles / q8 bytes of one word as floats (without the scale). q4: code q in 0..15 stands for q - 8, which is
// the nibble q ^ 8 read as a signed 4-bit integer: flip the word's nibble top bits once (q4_signed), then each
// value is a shift left, an arithmetic shift right and a signed convert (no mask, no unsigned convert, no subtract).
fn q4_signed(word: u32) -> vec4<i32> { return bitcast<vec4<i32>>(vec4<u32>(word ^ 0x88888888u)); }
fn q4_lo(word: u32) -> vec4<f32> { return vec4<f32>((q4_signed(word) << vec4<u32>(28u, 24u, 20u, 16u)) >> vec4<u32>(28u)); }
fn q4_hi(word: u32) -> vec4<f32> { return vec4<f32>((q4_signed(word) << vec4<u32>(12u, 8u, 4u, 0u)) >> vec4<u32>(28u)); }
fn q8_4(word: u32) -> vec4<f32> { return vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(word) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u)); }
fn f16_8(wv: vec4<u32>) -> array<vec4<f32>, 2> {
  // f16 weights via unpack2x16float: works without shader-f16 (f16 subnormals, |w| < 6.1e-5, may flush).
  return array<vec4<f32>, 2>(vec4<f32>(unpack2x16float(wv.x), unpack2x16float(wv.y)), vec4<f32>(unpack2x16float(wv.z), unpack2x16float(wv.w)));
}

// The activations one 16-byte weight unit multiplies (token t, columns c ..; zero past K), loaded once and reused
// for every row a thread owns: only the first 1 (f32), 2 (f16), 4 (q8) or 8 (q4) vec4s are used.
struct XUnit { a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>, e: vec4<f32>, f: vec4<f32>, g: vec4<f32>, h: vec4<f32> }

fn x_unit(t: u32, c: u32) -> XUnit {
  let z = vec4<f32>(0.0);
  switch FORMAT {
    case 2u, 4u, 5u, 6u, 7u: { return XUnit(x4(t, c), x4(t, c + 4u), x4(t, c + 8u), x4(t, c + 12u), x4(t, c + 16u), x4(t, c + 20u), x4(t, c + 24u), x4(t, c + 28u)); }
    case 3u: { return XUnit(x4(t, c), x4(t, c + 4u), x4(t, c + 8u), x4(t, c + 12u), z, z, z, z); }
    case 1u: { return XUnit(x4(t, c), x4(t, c + 4u), z, z, z, z, z, z); }
    default: { return XUnit(x4(t, c), z, z, z, z, z, z, z); }
  }
}

// Dot of one 16-byte weight unit with its activations (without the scale). Written out straight-line: some shader
// compilers (SwiftShader's Subzero JIT) neither unroll loops nor keep private arrays in registers. Per 4 weights:
// one vector shift, mask, convert, subtract (q4) and a dot.
fn unit_dot_x(wv: vec4<u32>, xu: XUnit) -> f32 {
  switch FORMAT {
    case 2u, 4u, 5u, 6u, 7u: {
      return dot(q4_lo(wv.x), xu.a) + dot(q4_hi(wv.x), xu.b) + dot(q4_lo(wv.y), xu.c) + dot(q4_hi(wv.y), xu.d)
           + dot(q4_lo(wv.z), xu.e) + dot(q4_hi(wv.z), xu.f) + dot(q4_lo(wv.w), xu.g) + dot(q4_hi(wv.w), xu.h);
    }
    case 3u: {
      return dot(q8_4(wv.x), xu.a) + dot(q8_4(wv.y), xu.b) + dot(q8_4(wv.z), xu.c) + dot(q8_4(wv.w), xu.d);
    }
    case 1u: {
      let h = f16_8(wv);
      return dot(h[0], xu.a) + dot(h[1], xu.b);
    }
    default: { return dot(bitcast<vec4<f32>>(wv), xu.a); }
  }
}

// Dequantization parameters of unit u of row n, loaded once per row and unit and reused for every token:
// q4/q8 s0 = the group scale; floats s0 = 1; q4k/q5k s0 = d·sc, s1 = dmin·m, hi.x = the fifth bits (q5k);
// q6k s0, s1 = d·sc of the sub-block's two 16-weight halves, hi = its two words of high bit pairs.
struct UnitMeta { s0: f32, s1: f32, hi: vec2<u32> }

// u32 words per data row of a K-quant weight (kquant.ts: nibble units, high bits, padding to 4 words).
fn k_row_words() -> u32 {
  switch FORMAT {
    case 5u: { return (5u * p.groups + 3u) & ~3u; }
    case 6u: { return (6u * p.groups + 3u) & ~3u; }
    default: { return 4u * p.groups; }
  }
}

// Row stride of the data in 16-byte units.
fn row_stride() -> u32 {
  if (FORMAT >= 4u) { return k_row_words() / 4u; }
  return units_per_row();
}

fn byte_of(word: u32, i: u32) -> u32 { return (word >> (8u * i)) & 255u; }

fn unit_meta(mat: u32, n: u32, u: u32) -> UnitMeta {
  let none = vec2<u32>(0u);
  if (FORMAT == 2u) { return UnitMeta(scale_at(mat, n * p.groups + u), 0.0, none); }
  if (FORMAT == 3u) { return UnitMeta(scale_at(mat, n * p.groups + (u >> 1u)), 0.0, none); }
  if (FORMAT == 7u) {
    let h = 3u * (n * p.groups + u);
    return UnitMeta(scale_at(mat, h), 0.0, vec2<u32>(scale_half(mat, h + 1u) | (scale_half(mat, h + 2u) << 16u), 0u));
  }
  if (FORMAT < 2u) { return UnitMeta(1.0, 0.0, none); }
  let S = (p.groups + 7u) / 8u;
  let s = u >> 3u;
  let hw = n * k_row_words() + 4u * p.groups; // first high-bit word of row n
  if (FORMAT == 6u) {
    let d = q6_d(mat, n, s);
    let pair = q6_scales_word(mat, n, u) >> (16u * (u & 1u)); // i8 scales of elements 0..15, 16..31
    let sc0 = f32(bitcast<i32>(pair << 24u) >> 24u);
    let sc1 = f32(bitcast<i32>(pair << 16u) >> 24u);
    let hp = w_unit(mat, (hw >> 2u) + (u >> 1u)); // high pairs of units u & ~1, u | 1 (hw is a multiple of 4)
    return UnitMeta(d * sc0, d * sc1, select(hp.xy, hp.zw, (u & 1u) != 0u));
  }
  // ggml's get_scale_min_k4 on the 12 scale bytes b (words hdr + 1 .. 3), k = j mod 4: j < 4: sc = b[j] & 63,
  // m = b[j + 4] & 63; j >= 4: sc = (b[j + 4] & 15) | (b[j - 4] >> 6) << 4, m = (b[j + 4] >> 4) | (b[j] >> 6) << 4.
  let hdr = n * 4u * S + 4u * s;
  let j = u & 7u;
  let k = j & 3u;
  let a = byte_of(scales_word(mat, hdr + 1u), k);
  let b = byte_of(scales_word(mat, hdr + 2u), k);
  let c = byte_of(scales_word(mat, hdr + 3u), k);
  let low = j < 4u;
  let sc = select((c & 15u) | ((a >> 6u) << 4u), a & 63u, low);
  let mn = select((c >> 4u) | ((b >> 6u) << 4u), b & 63u, low);
  let w0 = scales_word(mat, hdr);
  var hb = 0u;
  if (FORMAT == 5u) { hb = w_word(mat, hw + u); }
  return UnitMeta(f16_bits_to_f32(w0 & 0xffffu) * f32(sc), f16_bits_to_f32(w0 >> 16u) * f32(mn), vec2<u32>(hb, 0u));
}

// Sum of the 32 activations of a unit (the K-quant min and code-offset terms).
fn x_sum(xu: XUnit) -> f32 {
  return dot((xu.a + xu.b) + (xu.c + xu.d) + ((xu.e + xu.f) + (xu.g + xu.h)), vec4<f32>(1.0));
}

// Σ x over the elements whose bit is set in `bits` (bit e = element e of the unit's 32).
fn bits_dot(bits: u32, xu: XUnit) -> f32 {
  let b = vec4<u32>(bits);
  let one = vec4<u32>(1u);
  let s = vec4<u32>(0u, 1u, 2u, 3u);
  return dot(vec4<f32>((b >> s) & one), xu.a) + dot(vec4<f32>((b >> (s + 4u)) & one), xu.b)
       + dot(vec4<f32>((b >> (s + 8u)) & one), xu.c) + dot(vec4<f32>((b >> (s + 12u)) & one), xu.d)
       + dot(vec4<f32>((b >> (s + 16u)) & one), xu.e) + dot(vec4<f32>((b >> (s + 20u)) & one), xu.f)
       + dot(vec4<f32>((b >> (s + 24u)) & one), xu.g) + dot(vec4<f32>((b >> (s + 28u)) & one), xu.h);
}

// q6k codes q (0..63) of elements 4g .. 4g + 3 of a 16-weight half as floats: their nibbles (word `word`, nibbles
// 4(g & 1) ..) with their high pairs (bits 8g .. 8g + 7 of `pairs`) on top; the caller takes 32 off via Σx.
fn q6_codes(word: u32, pairs: u32, g: u32) -> vec4<f32> {
  let nib = (vec4<u32>(word >> (16u * (g & 1u))) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(15u);
  let top = (vec4<u32>((pairs >> (8u * g)) << 4u) >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(48u);
  return vec4<f32>(bitcast<vec4<i32>>(nib | top));
}

// A q6k unit's dot with its activations: s0 · Σ (q − 32)·x over the first 16-weight half + s1 · the same over the
// second (pairs: the halves' high-pair words), q = nib | h << 4 decoded whole (q6_codes).
fn q6_unit_dot(wv: vec4<u32>, pairs: vec2<u32>, s0: f32, s1: f32, xu: XUnit) -> f32 {
  let lo = dot(q6_codes(wv.x, pairs.x, 0u), xu.a) + dot(q6_codes(wv.x, pairs.x, 1u), xu.b)
         + dot(q6_codes(wv.y, pairs.x, 2u), xu.c) + dot(q6_codes(wv.y, pairs.x, 3u), xu.d) - 32.0 * dot((xu.a + xu.b) + (xu.c + xu.d), vec4<f32>(1.0));
  let hi = dot(q6_codes(wv.z, pairs.y, 0u), xu.e) + dot(q6_codes(wv.z, pairs.y, 1u), xu.f)
         + dot(q6_codes(wv.w, pairs.y, 2u), xu.g) + dot(q6_codes(wv.w, pairs.y, 3u), xu.h) - 32.0 * dot((xu.e + xu.f) + (xu.g + xu.h), vec4<f32>(1.0));
  return s0 * lo + s1 * hi;
}

// One unit's contribution to y for one token: its (scaled) dot with the activations.
fn unit_contrib(wv: vec4<u32>, m: UnitMeta, xu: XUnit) -> f32 {
  switch FORMAT {
    case 4u, 5u: {
      // w = s0·q − s1 = s0·(q − 8) + (8·s0 − s1); q4_lo/q4_hi give q − 8 of the low nibbles.
      var qx = unit_dot_x(wv, xu);
      if (FORMAT == 5u) { qx += 16.0 * bits_dot(m.hi.x, xu); }
      return m.s0 * qx + (8.0 * m.s0 - m.s1) * x_sum(xu);
    }
    case 6u: { return q6_unit_dot(wv, m.hi, m.s0, m.s1, xu); }
    case 7u: {
      // w = d·(nib + 16·bit − 16) = d·((nib − 8) + 16·bit − 8).
      return m.s0 * (unit_dot_x(wv, xu) + 16.0 * bits_dot(m.hi.x, xu) - 8.0 * x_sum(xu));
    }
    default: { return m.s0 * unit_dot_x(wv, xu); }
  }
}

// Unaligned float rows: the same unit, element by element, masked at K.
fn unit_dot_unaligned(mat: u32, n: u32, u: u32, t: u32) -> f32 {
  let c0 = u * unit_elems();
  var s = 0.0;
  for (var i = 0u; i < unit_elems(); i++) {
    let c = c0 + i;
    if (c < p.K) { s += w_float(mat, n, c) * f32(x[p.x_offset + t * p.K + c]); }
  }
  return s;
}

fn units_per_row() -> u32 {
  switch FORMAT {
    case 0u: { return (p.K + 3u) / 4u; }
    case 1u: { return (p.K + 7u) / 8u; }
    case 3u: { return 2u * p.groups; }
    default: { return p.groups; }
  }
}

fn write_y(t: u32, n: u32, v: f32) {
  let i = p.y_offset + t * p.N + p.n_offset + n;
  var r = v;
  if (p.accumulate != 0u) { r += f32(y[i]); }
  y[i] = act_t(r);
}

// A GEMV result of matrix mat, row n, token t (plain, epilogue 2 or W2's output; epilogue 1 writes in the caller).
fn write_row(mat: u32, t: u32, n: u32, v: f32) {
  if (mat != 0u) {
    y2[p.y2_offset + t * p.N2 + n] = act_t(v);
  } else if (p.epilogue == 2u) {
    write_y(t, n, gelu_tanh(v) * f32(y2[p.y2_offset + t * p.N2 + n]));
  } else {
    write_y(t, n, v);
  }
}

// A GEMV row slot's matrix and first row: `block` is the workgroup's feature block, `per` the features a block
// covers per matrix, `off` the slot's offset in it; epilogue 1 puts W's rows in the first half of the slots (`upper`
// false) and the same rows of W2 in the second.
struct Slot { mat: u32, n: u32, rows: u32 }

fn row_slot(block: u32, per: u32, off: u32, upper: bool) -> Slot {
  if (p.epilogue == 1u) { return Slot(select(0u, 1u, upper), block * per + off, p.n_part); }
  if (block >= p.n_blocks1) { return Slot(1u, (block - p.n_blocks1) * per + off, p.n_part2); }
  return Slot(0u, block * per + off, p.n_part);
}

var<workgroup> red: array<vec4<f32>, 256>; // ROWS * LANES <= 256; one component per token (tb <= 4)

// A gemv thread's work: its row slot (lane 0 writes it), its lane, its workgroup's tokens t0 .. t0 + nt − 1.
struct GemvTask { sl: Slot, r: u32, lane: u32, live: bool, t0: u32, nt: u32 }

fn gemv_task(wg: vec3<u32>, lid: u32) -> GemvTask {
  let block = wg.y * p.grid_x + wg.x;
  let nb = block % p.n_blocks;
  let t0 = (block / p.n_blocks) * p.tb;
  let r = lid / LANES;
  // Epilogue 1: rows r and r + ROWS / 2 of a workgroup are the same feature of W and W2.
  let half = ROWS / 2u;
  var sl = row_slot(nb, ROWS, r, false);
  if (p.epilogue == 1u) { sl = row_slot(nb, half, r % half, r >= half); }
  // No early return for dead threads: every thread reaches the barriers.
  return GemvTask(sl, r, lid % LANES, sl.n < sl.rows && t0 < p.T, t0, min(p.tb, p.T - min(t0, p.T)));
}

// gemv's tail: the lanes' partial sums reduced in workgroup memory, lane 0 writes its row (or the gated pair).
fn gemv_finish(lid: u32, tk: GemvTask, acc: vec4<f32>) {
  red[lid] = acc;
  workgroupBarrier();
  for (var s = LANES / 2u; s > 0u; s >>= 1u) {
    if (tk.lane < s) { red[lid] += red[lid + s]; }
    workgroupBarrier();
  }
  if (tk.live && tk.lane == 0u) {
    let v = red[lid];
    let half = ROWS / 2u;
    if (p.epilogue == 1u) {
      if (tk.r < half) {
        let b = red[lid + half * LANES];
        for (var j = 0u; j < tk.nt; j++) { write_y(tk.t0 + j, tk.sl.n, gelu_tanh(v[j]) * b[j]); }
      }
    } else {
      for (var j = 0u; j < tk.nt; j++) { write_row(tk.sl.mat, tk.t0 + j, tk.sl.n, v[j]); }
    }
  }
}

@compute @workgroup_size(ROWS * LANES)
fn gemv(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tk = gemv_task(wg, lid);
  let n = tk.sl.n;
  var acc = vec4<f32>(0.0); // token t0 + j in component j
  if (tk.live) {
    let units = units_per_row();
    let row_units = n * row_stride(); // every format's rows are contiguous units when aligned
    let per = unit_elems();
    for (var u = tk.lane; u < units; u += LANES) {
      if (FORMAT < 2u && p.aligned == 0u) {
        for (var j = 0u; j < tk.nt; j++) { acc[j] += unit_dot_unaligned(tk.sl.mat, n, u, tk.t0 + j); }
        continue;
      }
      let wv = w_unit(tk.sl.mat, row_units + u);
      let um = unit_meta(tk.sl.mat, n, u);
      for (var j = 0u; j < tk.nt; j++) { acc[j] += unit_contrib(wv, um, x_unit(tk.t0 + j, u * per)); }
    }
  }
  gemv_finish(lid, tk, acc);
}

// gemv_int8 (quantized formats): gemv with int8 activations, staged by the workgroup (stage_xq, below) in
// chunks of XQ_SLOTS / tb blocks per token. Each lane walks the units of the plain gemv in the same order (u
// continues across chunks), so the sums are the same as from one pass over the whole row.
@compute @workgroup_size(ROWS * LANES)
fn gemv_int8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tk = gemv_task(wg, lid);
  let n = tk.sl.n;
  var acc = vec4<f32>(0.0);
  let row_units = n * row_stride();
  let cb = XQ_SLOTS / p.tb;
  var u = tk.lane;
  for (var b0 = 0u; b0 < p.groups; b0 += cb) {
    workgroupBarrier(); // the previous chunk is read
    stage_xq(lid, ROWS * LANES, tk.t0, tk.nt, b0, cb);
    workgroupBarrier();
    if (tk.live) {
      let ue = min(b0 + cb, p.groups) * units_per_block();
      for (; u < ue; u += LANES) {
        let wv = w_unit(tk.sl.mat, row_units + u);
        let um = unit_meta(tk.sl.mat, n, u);
        for (var j = 0u; j < tk.nt; j++) { acc[j] += int8_row_contrib(wv, um, xqs[j * cb + x_block_of(u) - b0], u); }
      }
    }
  }
  gemv_finish(lid, tk, acc);
}

// gemv_rows (CPU adapters: LANES = 1): each thread owns RPT = 4 whole rows (n0 + i * ROWS) and, token by token,
// walks them unit by unit, loading the unit's activations once for all 4 rows (x loads, not weight loads, dominate
// on a CPU, where every load is a per-lane gather). Tokens are the outer loop: a token loop inside the unit loop
// made SwiftShader's one-token GEMV 1.4-2x slower (its loops are masked SIMD loops: each value a loop body updates
// is merged per iteration), so T > 1 reloads the weights per token instead. No workgroup memory and no
// barrier: SwiftShader then runs the invocations as plain SIMD loops (barriers force its coroutine path, and
// workgroup memory is zeroed per workgroup). A workgroup covers ROWS * RPT rows; with epilogue 1, ROWS * 2 features
// (slots 0, 1: rows n0, n0 + ROWS of W; slots 2, 3: the same rows of W2).
const RPT = 4u;

// gemv_rows' sums: rows n0, n1 of matrix ma and n2, n3 of matrix mb, tokens t0 .. t0 + nt − 1 (component j).
struct RowsAcc { a0: vec4<f32>, a1: vec4<f32>, a2: vec4<f32>, a3: vec4<f32> }

// A gemv_rows thread's work (see gemv_rows): `ok` false for threads past the matrix or the tokens.
struct RowsTask { ok: bool, gated: bool, rows: u32, m01: u32, m23: u32, n0: u32, n1: u32, n2: u32, n3: u32, t0: u32, nt: u32 }

fn rows_task(wg: vec3<u32>, lid: u32) -> RowsTask {
  let block = wg.y * p.grid_x + wg.x;
  let nb = block % p.n_blocks;
  let t0 = (block / p.n_blocks) * p.tb;
  let gated = p.epilogue == 1u;
  let s0 = row_slot(nb, select(ROWS * RPT, ROWS * 2u, gated), lid, false);
  let n0 = s0.n;
  // Rows past the matrix are clamped to its last row for reading (in bounds, one code path) and never written.
  let last = max(s0.rows, 1u) - 1u;
  let n1 = min(n0 + ROWS, last);
  let n2 = select(min(n0 + 2u * ROWS, last), n0, gated);
  let n3 = select(min(n0 + 3u * ROWS, last), n1, gated);
  return RowsTask(n0 < s0.rows && t0 < p.T, gated, s0.rows, s0.mat, select(s0.mat, 1u, gated), n0, n1, n2, n3, t0,
                  min(p.tb, p.T - min(t0, p.T)));
}

// The 16-byte units u of the four rows and their dequantization parameters.
struct RowUnits { w0: vec4<u32>, w1: vec4<u32>, w2: vec4<u32>, w3: vec4<u32>, m0: UnitMeta, m1: UnitMeta, m2: UnitMeta, m3: UnitMeta }

fn row_units(ma: u32, mb: u32, n0: u32, n1: u32, n2: u32, n3: u32, u: u32) -> RowUnits {
  let stride = row_stride();
  return RowUnits(w_unit(ma, n0 * stride + u), w_unit(ma, n1 * stride + u), w_unit(mb, n2 * stride + u), w_unit(mb, n3 * stride + u),
                  unit_meta(ma, n0, u), unit_meta(ma, n1, u), unit_meta(mb, n2, u), unit_meta(mb, n3, u));
}

fn rows_acc(ma: u32, mb: u32, n0: u32, n1: u32, n2: u32, n3: u32, t0: u32, nt: u32) -> RowsAcc {
  if (FORMAT == 6u) { return rows_acc_q6k(ma, mb, n0, n1, n2, n3, t0, nt); }
  var a0 = vec4<f32>(0.0); // row n_i, token t0 + j in component j
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  let units = units_per_row();
  if (FORMAT < 2u && p.aligned == 0u) {
    for (var u = 0u; u < units; u++) {
      for (var j = 0u; j < nt; j++) {
        a0[j] += unit_dot_unaligned(ma, n0, u, t0 + j);
        a1[j] += unit_dot_unaligned(ma, n1, u, t0 + j);
        a2[j] += unit_dot_unaligned(mb, n2, u, t0 + j);
        a3[j] += unit_dot_unaligned(mb, n3, u, t0 + j);
      }
    }
  } else {
    // Tokens outermost (see gemv_rows).
    let per = unit_elems();
    for (var j = 0u; j < nt; j++) {
      var c0 = 0.0;
      var c1 = 0.0;
      var c2 = 0.0;
      var c3 = 0.0;
      for (var u = 0u; u < units; u++) {
        let ru = row_units(ma, mb, n0, n1, n2, n3, u);
        let xu = x_unit(t0 + j, u * per);
        c0 += unit_contrib(ru.w0, ru.m0, xu);
        c1 += unit_contrib(ru.w1, ru.m1, xu);
        c2 += unit_contrib(ru.w2, ru.m2, xu);
        c3 += unit_contrib(ru.w3, ru.m3, xu);
      }
      a0[j] = c0;
      a1[j] = c1;
      a2[j] = c2;
      a3[j] = c3;
    }
  }
  return RowsAcc(a0, a1, a2, a3);
}

// q6k in gemv_rows (f32 activations), shaped as rows_acc_int8_q6k (below): tokens outermost, two sub-blocks per
// step, d once per super-block (the i8 scales as f32 factors). Odd groups: sub-block u + 1 = groups reads the high
// area's first unit, and its x (past K) are zero, so it adds exactly 0.
fn q6_pair_dot(w: Q6Pair, xa: XUnit, xb: XUnit) -> f32 {
  let sc = vec4<f32>(bitcast<vec4<i32>>(vec4<u32>(w.scw) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u));
  return q6_unit_dot(w.a, w.hp.xy, sc.x, sc.y, xa) + q6_unit_dot(w.b, w.hp.zw, sc.z, sc.w, xb);
}

fn rows_acc_q6k(ma: u32, mb: u32, n0: u32, n1: u32, n2: u32, n3: u32, t0: u32, nt: u32) -> RowsAcc {
  let z = vec4<f32>(0.0);
  var a0 = z;
  var a1 = z;
  var a2 = z;
  var a3 = z;
  for (var j = 0u; j < nt; j++) {
    for (var s = 0u; 8u * s < p.groups; s++) {
      var s0 = 0.0;
      var s1 = 0.0;
      var s2 = 0.0;
      var s3 = 0.0;
      let ue = min(8u * s + 8u, p.groups);
      for (var u = 8u * s; u < ue; u += 2u) {
        let xa = x_unit(t0 + j, 32u * u);
        let xb = x_unit(t0 + j, 32u * u + 32u);
        s0 += q6_pair_dot(q6_pair(ma, n0, u), xa, xb);
        s1 += q6_pair_dot(q6_pair(ma, n1, u), xa, xb);
        s2 += q6_pair_dot(q6_pair(mb, n2, u), xa, xb);
        s3 += q6_pair_dot(q6_pair(mb, n3, u), xa, xb);
      }
      a0[j] += q6_d(ma, n0, s) * s0;
      a1[j] += q6_d(ma, n1, s) * s1;
      a2[j] += q6_d(mb, n2, s) * s2;
      a3[j] += q6_d(mb, n3, s) * s3;
    }
  }
  return RowsAcc(a0, a1, a2, a3);
}

fn rows_write(tk: RowsTask, acc: RowsAcc) {
  for (var j = 0u; j < tk.nt; j++) {
    if (tk.gated) {
      write_y(tk.t0 + j, tk.n0, gelu_tanh(acc.a0[j]) * acc.a2[j]);
      if (tk.n0 + ROWS < tk.rows) { write_y(tk.t0 + j, tk.n0 + ROWS, gelu_tanh(acc.a1[j]) * acc.a3[j]); }
    } else {
      write_row(tk.m01, tk.t0 + j, tk.n0, acc.a0[j]);
      if (tk.n0 + ROWS < tk.rows) { write_row(tk.m01, tk.t0 + j, tk.n0 + ROWS, acc.a1[j]); }
      if (tk.n0 + 2u * ROWS < tk.rows) { write_row(tk.m01, tk.t0 + j, tk.n0 + 2u * ROWS, acc.a2[j]); }
      if (tk.n0 + 3u * ROWS < tk.rows) { write_row(tk.m01, tk.t0 + j, tk.n0 + 3u * ROWS, acc.a3[j]); }
    }
  }
}

@compute @workgroup_size(ROWS)
fn gemv_rows(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tk = rows_task(wg, lid);
  if (!tk.ok) { return; } // no barriers here: returning early is fine
  // Epilogue 1 calls with literal matrices (W for slots 0, 1, W2 for 2, 3): inlined, the per-load matrix choice
  // folds away there too (PAIR 1 pipelines); the concatenated layout keeps a branch, uniform per workgroup.
  var acc: RowsAcc;
  if (PAIR != 0u && tk.gated) { acc = rows_acc(0u, 1u, tk.n0, tk.n1, tk.n2, tk.n3, tk.t0, tk.nt); }
  else { acc = rows_acc(tk.m01, tk.m23, tk.n0, tk.n1, tk.n2, tk.n3, tk.t0, tk.nt); }
  rows_write(tk, acc);
}

// gemv_rows with int8 activations, units u0 .. u1 − 1 of the rows, continuing the sums in `acc`; the
// activations of block b come from slot base + j · cb + b − b0 of xq_scratch (stage_xq_scratch).
fn rows_acc_int8(ma: u32, mb: u32, n0: u32, n1: u32, n2: u32, n3: u32, nt: u32, u0: u32, u1: u32, b0: u32, cb: u32, base: u32, acc: RowsAcc) -> RowsAcc {
  if (FORMAT == 6u) { return rows_acc_int8_q6k(ma, mb, n0, n1, n2, n3, nt, u0, u1, b0, cb, base, acc); }
  var a0 = acc.a0;
  var a1 = acc.a1;
  var a2 = acc.a2;
  var a3 = acc.a3;
  for (var j = 0u; j < nt; j++) {
    var c0 = 0.0;
    var c1 = 0.0;
    var c2 = 0.0;
    var c3 = 0.0;
    for (var u = u0; u < u1; u++) {
      let ru = row_units(ma, mb, n0, n1, n2, n3, u);
      let X = xq_scratch[base + j * cb + x_block_of(u) - b0];
      c0 += int8_row_contrib(ru.w0, ru.m0, X, u);
      c1 += int8_row_contrib(ru.w1, ru.m1, X, u);
      c2 += int8_row_contrib(ru.w2, ru.m2, X, u);
      c3 += int8_row_contrib(ru.w3, ru.m3, X, u);
    }
    a0[j] += c0;
    a1[j] += c1;
    a2[j] += c2;
    a3[j] += c3;
  }
  return RowsAcc(a0, a1, a2, a3);
}

// q6k in gemv_rows_int8 (the CPU adapters' decode GEMV of the LM head and the v / down projections, where 6-bit
// decoding, not memory, bounds it). Per row, two sub-blocks (64 weights) per step: their two nibble units, one unit
// of high bit pairs (words 2u .. 2u + 3 of the high area) and one scales word (their four i8 scales); d once per
// super-block. Each weight word's 8 codes become signed 6-bit values q − 32 (nibble | pair << 4, minus 32, two per
// u32 as the pair products in the header), so one packed multiply per 2 weights covers the whole code: per word the
// upper sum is at most 8·32·127 = 32512 and the lower 4·32·127, inside the 16 bits pair_total needs. The 16-weight
// sums times their i8 scales stay below 2^24 (2·128·65024), exact in i32 and f32; then sx and d in f32. Packed
// products whatever DOT says: this entry point is the CPU adapters' (the GPUs' is gemv_int8, which honours DOT).

// The high bit pairs of weight word i (0 or 1) of a 16-weight half, from the half's pairs word (element e at bits
// 2e): element m (< 4) of the word at bits 2m + 4, element m + 4 at bits 2m + 20, the nibbles' places shifted by 4.
fn q6_pairs(pairs: u32, i: u32) -> u32 {
  let q = pairs >> (16u * i);
  return ((q & 0xffu) | ((q & 0xff00u) << 8u)) << 4u;
}

// Σ (q − 32)·c over the 8 weights of nibble word `word` with their pairs (q6_pairs) against pairs `pr` (lanes m).
fn q6_word_sum(word: u32, hi: u32, pr: vec4<i32>) -> i32 {
  let nib = (vec4<u32>(word) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(0x000f000fu);
  let top = (vec4<u32>(hi) >> vec4<u32>(0u, 2u, 4u, 6u)) & vec4<u32>(0x00300030u);
  return pair_total(bitcast<vec4<i32>>((nib | top) - vec4<u32>(0x00200020u)) * pr);
}

// Σ (q − 32)·c of a q6k unit over its two 16-weight halves (pairs: the halves' high-pair words). DOT 1: packed
// products of signed codes (q6_word_sum); DOT 2: dot4I8Packed on the codes as bytes (0..63, the nibble bytes of
// nibble_sums with their pairs in bits 4..5), less 32·Σc.
fn q6_sums(wv: vec4<u32>, pairs: vec2<u32>, X: XQ) -> vec2<i32> {
  if (DOT == 2u) {
    return vec2<i32>(q6_dot4(wv.x, pairs.x, X.lo.x, X.lo.y) + q6_dot4(wv.y, pairs.x >> 16u, X.lo.z, X.lo.w) - 32 * X.s0,
                     q6_dot4(wv.z, pairs.y, X.hi.x, X.hi.y) + q6_dot4(wv.w, pairs.y >> 16u, X.hi.z, X.hi.w) - 32 * X.s1);
  }
  return q6_packed_sums(wv, pairs, X.p0, X.p1, X.p2, X.p3);
}

// q6_sums with packed products against a block's pairs p0 .. p3 (DOT 1).
fn q6_packed_sums(wv: vec4<u32>, pairs: vec2<u32>, p0: vec4<i32>, p1: vec4<i32>, p2: vec4<i32>, p3: vec4<i32>) -> vec2<i32> {
  return vec2<i32>(q6_word_sum(wv.x, q6_pairs(pairs.x, 0u), p0) + q6_word_sum(wv.y, q6_pairs(pairs.x, 1u), p1),
                   q6_word_sum(wv.z, q6_pairs(pairs.y, 0u), p2) + q6_word_sum(wv.w, q6_pairs(pairs.y, 1u), p3));
}

// Σ q·c of one weight word's 8 codes (nibble word `word`, its pairs in the low 16 bits of `pairs`, element e at bits
// 2e) against the even / odd code words ce, co: byte k of (pairs spread to bytes) holds the pairs of elements 2k, 2k + 1.
fn q6_dot4(word: u32, pairs: u32, ce: u32, co: u32) -> i32 {
  var b = pairs & 0xffffu;
  b = (b | (b << 8u)) & 0x00ff00ffu;
  b = (b | (b << 4u)) & 0x0f0f0f0fu;
  let m = 0x0f0f0f0fu;
  return dot4I8Packed((word & m) | ((b << 4u) & 0x30303030u), ce) + dot4I8Packed(((word >> 4u) & m) | ((b << 2u) & 0x30303030u), co);
}

// The pair products of one staged block (token slot `slot` of xq_scratch) and its scale: only what q6k reads.
struct XP { p0: vec4<i32>, p1: vec4<i32>, p2: vec4<i32>, p3: vec4<i32>, sx: f32 }

fn xp_at(slot: u32) -> XP {
  return XP(xq_scratch[slot].p0, xq_scratch[slot].p1, xq_scratch[slot].p2, xq_scratch[slot].p3, xq_scratch[slot].sx);
}

// Σ sc·Σ(q − 32)·c of a sub-block (nibble unit wv, its halves' pairs words, its scales in bytes 2k, 2k + 1 of `scw`).
fn q6_unit_sum(wv: vec4<u32>, pairs: vec2<u32>, scw: u32, k: u32, X: XP) -> i32 {
  let q = q6_packed_sums(wv, pairs, X.p0, X.p1, X.p2, X.p3);
  let sc0 = bitcast<i32>(scw << (24u - 16u * k)) >> 24u;
  let sc1 = bitcast<i32>(scw << (16u - 16u * k)) >> 24u;
  return sc0 * q.x + sc1 * q.y;
}

// Two sub-blocks u, u + 1 of one row: nibble units a, b, high pairs hp (a: .xy, b: .zw), scales word scw.
struct Q6Pair { a: vec4<u32>, b: vec4<u32>, hp: vec4<u32>, scw: u32 }

fn q6_pair(mat: u32, n: u32, u: u32) -> Q6Pair {
  let r = n * row_stride();
  // u + 1 = groups (odd groups) reads the high area's first unit: in bounds, its sum is dropped.
  return Q6Pair(w_unit(mat, r + u), w_unit(mat, r + u + 1u), w_unit(mat, r + p.groups + (u >> 1u)), q6_scales_word(mat, n, u));
}

// q6k's scales, per row: the i8 scales of its S = ceil(groups / 8) super-blocks (4 words each; word i holds the
// scales of sub-blocks 2i, 2i + 1), then their f16 d, two per word. The words of one row:
fn q6_row_scale_words() -> u32 {
  let S = (p.groups + 7u) / 8u;
  return 4u * S + (S + 1u) / 2u;
}

// The scales word of sub-blocks u & ~1 and u | 1 of row n (their four i8 scales).
fn q6_scales_word(mat: u32, n: u32, u: u32) -> u32 {
  return scales_word(mat, n * q6_row_scale_words() + 4u * (u >> 3u) + ((u & 7u) >> 1u));
}

// d of super-block s of row n.
fn q6_d(mat: u32, n: u32, s: u32) -> f32 {
  let S = (p.groups + 7u) / 8u;
  return f16_bits_to_f32((scales_word(mat, n * q6_row_scale_words() + 4u * S + (s >> 1u)) >> (16u * (s & 1u))) & 0xffffu);
}

// Contribution of a sub-block pair to one token (XA, XB: the blocks of u, u + 1; `two` false: u + 1 is past the row).
fn q6_pair_contrib(w: Q6Pair, XA: XP, XB: XP, two: bool) -> f32 {
  let a = XA.sx * f32(q6_unit_sum(w.a, w.hp.xy, w.scw, 0u, XA));
  let b = XB.sx * f32(q6_unit_sum(w.b, w.hp.zw, w.scw, 1u, XB));
  return a + select(0.0, b, two);
}

fn rows_acc_int8_q6k(ma: u32, mb: u32, n0: u32, n1: u32, n2: u32, n3: u32, nt: u32, u0: u32, u1: u32, b0: u32, cb: u32, base: u32, acc: RowsAcc) -> RowsAcc {
  var a0 = acc.a0;
  var a1 = acc.a1;
  var a2 = acc.a2;
  var a3 = acc.a3;
  // Tokens outermost (see gemv_rows; the decoding work is per token either way: the codes multiply packed activations).
  for (var j = 0u; j < nt; j++) {
    var c0 = 0.0;
    var c1 = 0.0;
    var c2 = 0.0;
    var c3 = 0.0;
    // Chunks start on super-blocks (XQ_SLOTS / tb is a multiple of 8).
    for (var s = u0 >> 3u; 8u * s < u1; s++) {
      var s0 = 0.0;
      var s1 = 0.0;
      var s2 = 0.0;
      var s3 = 0.0;
      let ue = min(8u * s + 8u, u1);
      for (var u = 8u * s; u < ue; u += 2u) {
        let slot = base + j * cb + u - b0;
        let XA = xp_at(slot);
        let XB = xp_at(slot + 1u);
        let two = u + 1u < ue;
        s0 += q6_pair_contrib(q6_pair(ma, n0, u), XA, XB, two);
        s1 += q6_pair_contrib(q6_pair(ma, n1, u), XA, XB, two);
        s2 += q6_pair_contrib(q6_pair(mb, n2, u), XA, XB, two);
        s3 += q6_pair_contrib(q6_pair(mb, n3, u), XA, XB, two);
      }
      c0 += q6_d(ma, n0, s) * s0;
      c1 += q6_d(ma, n1, s) * s1;
      c2 += q6_d(mb, n2, s) * s2;
      c3 += q6_d(mb, n3, s) * s3;
    }
    a0[j] += c0;
    a1[j] += c1;
    a2[j] += c2;
    a3[j] += c3;
  }
  return RowsAcc(a0, a1, a2, a3);
}

// gemv_rows_int8: gemv_rows with int8 activations. The workgroup quantizes x chunk by chunk into its slice of
// xq_scratch (two barriers per chunk of XQ_SLOTS / tb blocks: one chunk at K <= 3072 with one token); the rows'
// sums run in the order of one pass over the whole row.
@compute @workgroup_size(ROWS)
fn gemv_rows_int8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let tk = rows_task(wg, lid);
  let z = vec4<f32>(0.0);
  var acc = RowsAcc(z, z, z, z);
  let cb = XQ_SLOTS / p.tb;
  let base = (wg.y * p.grid_x + wg.x) * XQ_SLOTS; // this workgroup's slice of xq_scratch
  for (var b0 = 0u; b0 < p.groups; b0 += cb) {
    storageBarrier(); // the previous chunk is read
    stage_xq_scratch(base, lid, ROWS, tk.t0, tk.nt, b0, cb);
    storageBarrier();
    if (tk.ok) {
      let upb = units_per_block();
      let u1 = min(b0 + cb, p.groups) * upb;
      if (PAIR != 0u && tk.gated) { acc = rows_acc_int8(0u, 1u, tk.n0, tk.n1, tk.n2, tk.n3, tk.nt, b0 * upb, u1, b0, cb, base, acc); }
      else { acc = rows_acc_int8(tk.m01, tk.m23, tk.n0, tk.n1, tk.n2, tk.n3, tk.nt, b0 * upb, u1, b0, cb, base, acc); }
    }
  }
  if (tk.ok) { rows_write(tk, acc); }
}

// Weights (n, k .. k + 3) of a float format element by element, zero past K (unaligned rows). Straight-line, like
// write_tile_row: loops that index a vector dynamically triple the gemm's compile time on SwiftShader.
fn w_float4(n: u32, k: u32) -> vec4<f32> {
  let last = p.K - 1u;
  let v = vec4<f32>(w_float(0u, n, min(k, last)), w_float(0u, n, min(k + 1u, last)), w_float(0u, n, min(k + 2u, last)), w_float(0u, n, min(k + 3u, last)));
  return select(vec4<f32>(0.0), v, vec4<u32>(k) + vec4<u32>(0u, 1u, 2u, 3u) < vec4<u32>(p.K));
}

// gemm output: token mm, features nn, nn + 16, nn + 32, nn + 48 from the 4 components of v (masked to [T, n_part]).
fn write_tile_row(mm: u32, nn: u32, v: vec4<f32>) {
  if (mm >= p.T) { return; }
  if (nn < p.n_part) { write_y(mm, nn, v.x); }
  if (nn + 16u < p.n_part) { write_y(mm, nn + 16u, v.y); }
  if (nn + 32u < p.n_part) { write_y(mm, nn + 32u, v.z); }
  if (nn + 48u < p.n_part) { write_y(mm, nn + 48u, v.w); }
}

const BM = 64u;
const BN = 64u;
const BK = 32u;
// Tiles as vec4s so the inner loop is 2 workgroup loads + 4 vec4 FMAs per k: xs4[k * 16 + ty] holds x at tokens
// (ty, ty + 16, ty + 32, ty + 48), ws4[k * 16 + tx] the weights of features (tx, tx + 16, tx + 32, tx + 48).
// Consecutive threads read consecutive vec4s: no bank conflicts. 2 x 8 KiB.
var<workgroup> xs4: array<vec4<f32>, 512>;
var<workgroup> ws4: array<vec4<f32>, 512>;

// Eight dequantized weights: feature n (< n_part), k = kt * 32 + part * 8 .. + 7 (zero past K for float formats).
// m = tile_meta(n, kt) and word = tile_unit(n, kt)[part], so a caller dequantizing a whole 32-weight sub-block
// decodes its scale and min once. Values are exactly q * scale (K-quants: ggml's d·sc·q − dmin·m, one rounding).
struct W8 { a: vec4<f32>, b: vec4<f32> }

fn tile_meta(n: u32, kt: u32) -> UnitMeta {
  if (FORMAT == 3u) { return unit_meta(0u, n, 2u * kt); } // q8: unit 2kt is the group's first half
  return unit_meta(0u, n, kt);
}

// The 16-byte unit of sub-block (q4, q5: group) kt of row n (word `part` is w_part's `word`); unused by q8 and the
// float formats.
fn tile_unit(n: u32, kt: u32) -> vec4<u32> {
  if (FORMAT == 2u || FORMAT >= 4u) { return w[n * row_stride() + kt]; }
  return vec4<u32>(0u);
}

fn w_part(n: u32, kt: u32, part: u32, m: UnitMeta, word: u32) -> W8 {
  let k0 = kt * BK;
  if (FORMAT == 2u) { return W8(q4_lo(word) * m.s0, q4_hi(word) * m.s0); }
  if (FORMAT == 3u) {
    let blk = w[(n * p.groups + kt) * 2u + (part >> 1u)];
    let h = (part & 1u) * 2u;
    return W8(q8_4(blk[h]) * m.s0, q8_4(blk[h + 1u]) * m.s0);
  }
  if (FORMAT >= 4u) {
    // Sub-block (q5: group) kt, elements part * 8 .. + 7: codes q (nibble + high bits), then ggml's value exactly.
    let wv = vec4<u32>(word);
    let sh = vec4<u32>(0u, 4u, 8u, 12u);
    var qa = (wv >> sh) & vec4<u32>(15u);
    var qb = (wv >> (sh + 16u)) & vec4<u32>(15u);
    if (FORMAT == 5u || FORMAT == 7u) {
      let hb = vec4<u32>(m.hi.x >> (8u * part));
      let e = vec4<u32>(0u, 1u, 2u, 3u);
      qa |= ((hb >> e) & vec4<u32>(1u)) << vec4<u32>(4u);
      qb |= ((hb >> (e + 4u)) & vec4<u32>(1u)) << vec4<u32>(4u);
    }
    if (FORMAT == 6u) {
      let hp = vec4<u32>(select(m.hi.y, m.hi.x, part < 2u) >> (16u * (part & 1u)));
      let e = vec4<u32>(0u, 2u, 4u, 6u);
      qa |= ((hp >> e) & vec4<u32>(3u)) << vec4<u32>(4u);
      qb |= ((hp >> (e + 8u)) & vec4<u32>(3u)) << vec4<u32>(4u);
      let sc = select(m.s1, m.s0, part < 2u);
      return W8(sc * (vec4<f32>(qa) - 32.0), sc * (vec4<f32>(qb) - 32.0));
    }
    if (FORMAT == 7u) { return W8(m.s0 * (vec4<f32>(qa) - 16.0), m.s0 * (vec4<f32>(qb) - 16.0)); }
    return W8(m.s0 * vec4<f32>(qa) - m.s1, m.s0 * vec4<f32>(qb) - m.s1);
  }
  if (p.aligned != 0u && k0 + part * 8u + 8u <= p.K) {
    let e = n * p.K + k0 + part * 8u; // a multiple of 8 (f32: 4) elements: whole vec4 units
    if (FORMAT == 0u) { return W8(bitcast<vec4<f32>>(w[e >> 2u]), bitcast<vec4<f32>>(w[(e >> 2u) + 1u])); }
    let h = f16_8(w[e >> 3u]);
    return W8(h[0], h[1]);
  }
  return W8(w_float4(n, k0 + part * 8u), w_float4(n, k0 + part * 8u + 4u));
}

// Stages k-tile kt of the x tile (tokens m0 .. m0 + 63) and the dequantized weight tile (features n0 .. n0 + 63)
// into workgroup memory, as thread `vlid` (0..255) of the 256 loader roles: x: token ml = vlid / 4, 8 consecutive k
// from kx = (vlid % 4) * 8 (coalesced along k); weights: feature nl = vlid % 64, the quarter `part` = vlid / 64 of
// the 32 k (one q4 word, two q8 words).
fn stage_tile(vlid: u32, m0: u32, n0: u32, kt: u32) {
  let ml = vlid / 4u;
  let kx = (vlid % 4u) * 8u;
  let nl = vlid % BN;
  let part = vlid / BN;
  let n = n0 + nl;
  let nok = n < p.n_part;
  let m = m0 + ml;
  let k0 = kt * BK;
  // x tile, zero outside [T, K] so padding adds 0.
  var xa = vec4<f32>(0.0);
  var xb = vec4<f32>(0.0);
  if (m < p.T) {
    xa = x4(m, k0 + kx);
    xb = x4(m, k0 + kx + 4u);
  }
  let xi = kx * 16u + (ml % 16u);
  let xc = ml / 16u;
  xs4[xi][xc] = xa.x; xs4[xi + 16u][xc] = xa.y; xs4[xi + 32u][xc] = xa.z; xs4[xi + 48u][xc] = xa.w;
  xs4[xi + 64u][xc] = xb.x; xs4[xi + 80u][xc] = xb.y; xs4[xi + 96u][xc] = xb.z; xs4[xi + 112u][xc] = xb.w;
  // weight tile, dequantized to exactly q * scale; zero past n_part (and past K for float formats).
  var wq = W8(vec4<f32>(0.0), vec4<f32>(0.0));
  if (nok) { wq = w_part(n, kt, part, tile_meta(n, kt), tile_unit(n, kt)[part]); }
  let wa = wq.a;
  let wb = wq.b;
  let wi = part * 8u * 16u + (nl % 16u);
  let wc = nl / 16u;
  ws4[wi][wc] = wa.x; ws4[wi + 16u][wc] = wa.y; ws4[wi + 32u][wc] = wa.z; ws4[wi + 48u][wc] = wa.w;
  ws4[wi + 64u][wc] = wb.x; ws4[wi + 80u][wc] = wb.y; ws4[wi + 96u][wc] = wb.z; ws4[wi + 112u][wc] = wb.w;
}

@compute @workgroup_size(256)
fn gemm(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let block = wg.y * p.grid_x + wg.x;
  let n0 = (block % p.n_blocks) * BN;
  let m0 = (block / p.n_blocks) * BM;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc0 = vec4<f32>(0.0); // tokens ty + 16 i (acc_i), features tx + 16 j (component j)
  var acc1 = vec4<f32>(0.0);
  var acc2 = vec4<f32>(0.0);
  var acc3 = vec4<f32>(0.0);
  let k_tiles = (p.K + BK - 1u) / BK;
  for (var kt = 0u; kt < k_tiles; kt++) {
    stage_tile(lid, m0, n0, kt);
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let a = xs4[k * 16u + ty];
      let b = ws4[k * 16u + tx];
      acc0 += a.x * b;
      acc1 += a.y * b;
      acc2 += a.z * b;
      acc3 += a.w * b;
    }
    workgroupBarrier();
  }
  write_tile_row(m0 + ty, n0 + tx, acc0);
  write_tile_row(m0 + ty + 16u, n0 + tx, acc1);
  write_tile_row(m0 + ty + 32u, n0 + tx, acc2);
  write_tile_row(m0 + ty + 48u, n0 + tx, acc3);
}

// gemm_regs (CPU adapters without subgroups) and gemm_quad (CPU adapters with them: shaders/matmul-quad.wgsl): 64 x 64
// tiles, K in steps of 32, staged into scalar tiles xs[k * 64 + token], ws[k * 64 + feature] by stage_x / stage_w:
// one token's 32 activations and one feature's whole dequantized sub-block per thread (its scale and min decoded
// once, where stage_tile decodes them per 8 weights), every store consecutive across lanes. gemm_regs: 64 threads;
// thread (tx, ty) = (lid % 8, lid / 8) owns tokens 8 ty .. 8 ty + 7 and features tx + 8 j (8 x 8 outputs, 16 vec4
// accumulators: 16 workgroup loads per 64 FMAs). On SwiftShader (bench/prefill-gemm.ts, 64 tokens, GFLOP per CPU-
// second) 6-18 % faster than the same 8 x 8 threads over `gemm`'s vec4 tiles and staging (q4, q4k, q6k, q8).
// On GPUs this layout would bank-conflict: `gemm` stays theirs.
// fma() explicitly: a compiler that does not contract `c += a * b` (SwiftShader's) would spend two instructions.
var<workgroup> xs: array<f32, 2048>;
// The weight tile's depth in k (a multiple of BK): gemm_quad stages two sub-blocks at a time (64).
override WS_DEPTH: u32 = 32u;
var<workgroup> ws: array<f32, WS_DEPTH * 64u>;

// Outputs of token mm, features nn + 8 j (j = 0..7: the components of lo, then hi), masked to [T, n_part].
fn write_rows8(mm: u32, nn: u32, lo: vec4<f32>, hi: vec4<f32>) {
  if (mm >= p.T) { return; }
  if (nn < p.n_part) { write_y(mm, nn, lo.x); }
  if (nn + 8u < p.n_part) { write_y(mm, nn + 8u, lo.y); }
  if (nn + 16u < p.n_part) { write_y(mm, nn + 16u, lo.z); }
  if (nn + 24u < p.n_part) { write_y(mm, nn + 24u, lo.w); }
  if (nn + 32u < p.n_part) { write_y(mm, nn + 32u, hi.x); }
  if (nn + 40u < p.n_part) { write_y(mm, nn + 40u, hi.y); }
  if (nn + 48u < p.n_part) { write_y(mm, nn + 48u, hi.z); }
  if (nn + 56u < p.n_part) { write_y(mm, nn + 56u, hi.w); }
}

// Stages k-tile kt into xs / ws as thread lid of 64: token mr's 32 activations (mr = the tile's token m0 + lid,
// clamped to T - 1: rows past T are never written) and the dequantized sub-block kt of feature row nr (likewise
// clamped to the part), every store consecutive across lanes. The sub-block's scale and min are decoded once.
fn stage_rows(lid: u32, mr: u32, nr: u32, kt: u32) {
  stage_x(lid, mr, kt);
  stage_w(lid, nr, kt);
}

// Store 4 (x) / 8 (w) consecutive k of column at % 64 (a token / a feature) of a scalar tile, from k = at / 64.
fn store_x4(at: u32, v: vec4<f32>) {
  xs[at] = v.x; xs[at + 64u] = v.y; xs[at + 128u] = v.z; xs[at + 192u] = v.w;
}

fn store_w8(at: u32, v: W8) {
  ws[at] = v.a.x; ws[at + 64u] = v.a.y; ws[at + 128u] = v.a.z; ws[at + 192u] = v.a.w;
  ws[at + 256u] = v.b.x; ws[at + 320u] = v.b.y; ws[at + 384u] = v.b.z; ws[at + 448u] = v.b.w;
}

fn stage_x(lid: u32, mr: u32, kt: u32) {
  let k0 = kt * BK;
  store_x4(0u + lid, x4(mr, k0 + 0u));
  store_x4(256u + lid, x4(mr, k0 + 4u));
  store_x4(512u + lid, x4(mr, k0 + 8u));
  store_x4(768u + lid, x4(mr, k0 + 12u));
  store_x4(1024u + lid, x4(mr, k0 + 16u));
  store_x4(1280u + lid, x4(mr, k0 + 20u));
  store_x4(1536u + lid, x4(mr, k0 + 24u));
  store_x4(1792u + lid, x4(mr, k0 + 28u));
}

fn stage_w(lid: u32, nr: u32, kt: u32) {
  let um = tile_meta(nr, kt);
  let wu = tile_unit(nr, kt);
  store_w8(0u + lid, w_part(nr, kt, 0u, um, wu.x));
  store_w8(512u + lid, w_part(nr, kt, 1u, um, wu.y));
  store_w8(1024u + lid, w_part(nr, kt, 2u, um, wu.z));
  store_w8(1536u + lid, w_part(nr, kt, 3u, um, wu.w));
}

@compute @workgroup_size(64)
fn gemm_regs(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let block = wg.y * p.grid_x + wg.x;
  let n0 = (block % p.n_blocks) * BN;
  let m0 = (block / p.n_blocks) * BM;
  let tx = lid % 8u;
  let ty = lid / 8u;
  let mr = min(m0 + lid, p.T - 1u); // tokens past T read the last token (in bounds) and are never written
  let nr = min(n0 + lid, p.n_part - 1u); // features past the part read its last row (in bounds) and are never written
  // c{i}{h}: token 8 ty + i, features tx + 8 (4 h + j) in component j.
  var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0);
  var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
  var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0);
  var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
  var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0);
  var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
  var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0);
  var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);
  let k_tiles = (p.K + BK - 1u) / BK;
  for (var kt = 0u; kt < k_tiles; kt++) {
    stage_rows(lid, mr, nr, kt);
    workgroupBarrier();
    for (var k = 0u; k < BK; k++) {
      let xb = k * 64u + 8u * ty;
      let wb = k * 64u + tx;
      let a0 = vec4<f32>(xs[xb], xs[xb + 1u], xs[xb + 2u], xs[xb + 3u]);
      let a1 = vec4<f32>(xs[xb + 4u], xs[xb + 5u], xs[xb + 6u], xs[xb + 7u]);
      let b0 = vec4<f32>(ws[wb], ws[wb + 8u], ws[wb + 16u], ws[wb + 24u]);
      let b1 = vec4<f32>(ws[wb + 32u], ws[wb + 40u], ws[wb + 48u], ws[wb + 56u]);
      c00 = fma(vec4<f32>(a0.x), b0, c00); c01 = fma(vec4<f32>(a0.x), b1, c01);
      c10 = fma(vec4<f32>(a0.y), b0, c10); c11 = fma(vec4<f32>(a0.y), b1, c11);
      c20 = fma(vec4<f32>(a0.z), b0, c20); c21 = fma(vec4<f32>(a0.z), b1, c21);
      c30 = fma(vec4<f32>(a0.w), b0, c30); c31 = fma(vec4<f32>(a0.w), b1, c31);
      c40 = fma(vec4<f32>(a1.x), b0, c40); c41 = fma(vec4<f32>(a1.x), b1, c41);
      c50 = fma(vec4<f32>(a1.y), b0, c50); c51 = fma(vec4<f32>(a1.y), b1, c51);
      c60 = fma(vec4<f32>(a1.z), b0, c60); c61 = fma(vec4<f32>(a1.z), b1, c61);
      c70 = fma(vec4<f32>(a1.w), b0, c70); c71 = fma(vec4<f32>(a1.w), b1, c71);
    }
    workgroupBarrier();
  }
  write_rows8(m0 + 8u * ty + 0u, n0 + tx, c00, c01);
  write_rows8(m0 + 8u * ty + 1u, n0 + tx, c10, c11);
  write_rows8(m0 + 8u * ty + 2u, n0 + tx, c20, c21);
  write_rows8(m0 + 8u * ty + 3u, n0 + tx, c30, c31);
  write_rows8(m0 + 8u * ty + 4u, n0 + tx, c40, c41);
  write_rows8(m0 + 8u * ty + 5u, n0 + tx, c50, c51);
  write_rows8(m0 + 8u * ty + 6u, n0 + tx, c60, c61);
  write_rows8(m0 + 8u * ty + 7u, n0 + tx, c70, c71);
}

// ---------------------------------------------------------------------------------------------------------------
// Decode GEMV with int8 activations (llama.cpp's quantized dot products): the GEMV's workgroup quantizes x [T, K]
// into int8 codes per block of 32 with one f32 scale (sx = absmax / 127, c = round(x / sx), so x ≈ sx·c), gemv_int8
// into its workgroup memory (stage_xq), gemv_rows_int8 into its own slice of a storage buffer (stage_xq_scratch:
// CPU adapters, where workgroup-memory loads are slow), then they multiply the weights' integer codes by c in integer
// arithmetic, exact i32 sums per 16 weights, and apply the weight scales and sx in f32. The only error added is x's
// rounding to 8 bits (~0.5 % of y's RMS). No dispatch of its own: every workgroup quantizes the x it reads (K
// reads per workgroup of 256 rows (gemv_rows) or 8 rows (gemv), against K / 2 weight bytes per row).
// A staged block (XQ): lo, hi: the codes as bytes, words (2i, 2i + 1) holding elements (8i, 8i + 2, 8i + 4, 8i + 6)
// and (8i + 1, 8i + 3, 8i + 5, 8i + 7), matching the even / odd nibbles of word i of a 32-weight unit
// (word & 0x0f0f0f0f, (word >> 4) & 0x0f0f0f0f), so dot4I8Packed needs no shuffle; p0 .. p3 the pairs (packed
// multiplies): pair j = 4i + m is c[8i + m]·2^16 + c[8i + m + 4]; sx; s0, s1 the sums of the two 16-element halves.
// Products (DOT 1, software adapters): a weight word's nibbles m and m + 4 masked into the two 16-bit halves of one
// u32 (word >> 4m & 0x000f000f) times pair 4i + m: the product's upper half is n_m·c_m + n_{m+4}·c_{m+4} (the lower
// half, n_m·c_{m+4}, stays below 2^15 in magnitude over 8 products, 8·15·127, and is removed exactly by
// sign-extending it), so one 32-bit multiply does two products and a vec4 multiply eight. Per 16 weights the upper
// sum is at most 16·15·127 < 2^15. q5 / q5k fifth bits the same way. DOT 2 (GPUs): dot4I8Packed on the nibble
// bytes; fifth bits as DOT 1. q6k: whole 6-bit codes (nibble | high pair << 4) in both (q6_sums): DOT 1 packs
// q − 32 two per u32, DOT 2 takes the codes as bytes. q8 weights: i32 dot products of unpacked bytes.

override DOT: u32 = 1u;

// One block of quantized activations: packed code words (lo: words 0..3, hi: words 4..7), the 16 pairs (p_i: pairs
// 4i .. 4i + 3, for weight word i), the scale and the half sums. 112 bytes.
struct XQ { lo: vec4<u32>, hi: vec4<u32>, p0: vec4<i32>, p1: vec4<i32>, p2: vec4<i32>, p3: vec4<i32>, sx: f32, s0: i32, s1: i32 }

// Staged blocks of one chunk: slot j · cb + (b − b0) holds token t0 + j's block b, cb = XQ_SLOTS / tb. 96 slots
// (10.5 KiB) with gemv's 4 KiB reduction stay inside WebGPU's guaranteed 16 KiB of workgroup memory; one token's
// chunk covers 3072 activations.
const XQ_SLOTS = 96u;
var<workgroup> xqs: array<XQ, XQ_SLOTS>;
// gemv_rows_int8 stages into a slice of XQ_SLOTS blocks per workgroup of a storage buffer instead: SwiftShader's
// workgroup-memory loads made that GEMV 1.4-1.6x slower than reading the same blocks from a storage buffer (q4 / q4k
// 2048 -> 8192, same run).
@group(0) @binding(5) var<storage, read_write> xq_scratch: array<XQ>;

fn absmax4(v: vec4<f32>) -> f32 {
  let a = abs(v);
  return max(max(a.x, a.y), max(a.z, a.w));
}

fn codes4(v: vec4<f32>, inv: f32) -> vec4<i32> {
  return vec4<i32>(clamp(round(v * inv), vec4<f32>(-127.0), vec4<f32>(127.0)));
}

// Bytes (a.x, a.z, b.x, b.z) (`odd`: a.y, a.w, b.y, b.w) of two code vectors in one word.
fn code_bytes(a: vec4<i32>, b: vec4<i32>, odd: u32) -> u32 {
  let v = bitcast<vec4<u32>>(select(vec4<i32>(a.x, a.z, b.x, b.z), vec4<i32>(a.y, a.w, b.y, b.w), odd != 0u)) & vec4<u32>(255u);
  return v.x | (v.y << 8u) | (v.z << 16u) | (v.w << 24u);
}

// Token t's block b of x quantized (elements past K are zero: code 0).
fn quantize_block(t: u32, b: u32) -> XQ {
  let c0 = 32u * b;
  let v0 = x4(t, c0); let v1 = x4(t, c0 + 4u); let v2 = x4(t, c0 + 8u); let v3 = x4(t, c0 + 12u);
  let v4 = x4(t, c0 + 16u); let v5 = x4(t, c0 + 20u); let v6 = x4(t, c0 + 24u); let v7 = x4(t, c0 + 28u);
  let amax = max(max(max(absmax4(v0), absmax4(v1)), max(absmax4(v2), absmax4(v3))), max(max(absmax4(v4), absmax4(v5)), max(absmax4(v6), absmax4(v7))));
  let sx = amax / 127.0;
  let inv = select(0.0, 127.0 / amax, amax > 0.0);
  let a0 = codes4(v0, inv); let b0 = codes4(v1, inv); let a1 = codes4(v2, inv); let b1 = codes4(v3, inv);
  let a2 = codes4(v4, inv); let b2 = codes4(v5, inv); let a3 = codes4(v6, inv); let b3 = codes4(v7, inv);
  let one = vec4<i32>(1);
  return XQ(vec4<u32>(code_bytes(a0, b0, 0u), code_bytes(a0, b0, 1u), code_bytes(a1, b1, 0u), code_bytes(a1, b1, 1u)),
            vec4<u32>(code_bytes(a2, b2, 0u), code_bytes(a2, b2, 1u), code_bytes(a3, b3, 0u), code_bytes(a3, b3, 1u)),
            a0 * 65536 + b0, a1 * 65536 + b1, a2 * 65536 + b2, a3 * 65536 + b3, sx,
            dot((a0 + b0) + (a1 + b1), one), dot((a2 + b2) + (a3 + b3), one));
}

// Stages blocks b0 .. b0 + cb − 1 of tokens t0 .. t0 + nt − 1 into xqs, `threads` threads of the workgroup sharing
// the blocks. Call from uniform control flow between two barriers.
fn stage_xq(lid: u32, threads: u32, t0: u32, nt: u32, b0: u32, cb: u32) {
  for (var s = lid; s < nt * cb; s += threads) {
    let b = b0 + s % cb;
    if (b < p.groups) { xqs[s] = quantize_block(t0 + s / cb, b); }
  }
}

// stage_xq into slice `base` of xq_scratch (gemv_rows_int8). Call between two storage barriers.
fn stage_xq_scratch(base: u32, lid: u32, threads: u32, t0: u32, nt: u32, b0: u32, cb: u32) {
  for (var s = lid; s < nt * cb; s += threads) {
    let b = b0 + s % cb;
    if (b < p.groups) { xq_scratch[base + s] = quantize_block(t0 + s / cb, b); }
  }
}

// Weight units per activation block: q8 units hold 16 weights, the other quantized formats' 32.
fn units_per_block() -> u32 { return select(1u, 2u, FORMAT == 3u); }

// The upper-half sum of packed pair products (see the header): sign-extend the lower half, remove it, shift.
fn pair_total(v: vec4<i32>) -> i32 {
  let s = (v.x + v.y) + (v.z + v.w);
  let lo = (s << 16u) >> 16u;
  return (s - lo) >> 16u;
}

// Σ n·c over the 8 weights of nibble word `word` (weight word i of its unit) against pairs `pr` (lanes m = 0..3).
fn nib_products(word: u32, pr: vec4<i32>) -> vec4<i32> {
  return bitcast<vec4<i32>>((vec4<u32>(word) >> vec4<u32>(0u, 4u, 8u, 12u)) & vec4<u32>(0x000f000fu)) * pr;
}

// The same for 1-bit values (bit e of `bits` = element e of the unit; word i covers elements 8i .. 8i + 7).
fn bit_products(bits: u32, i: u32, pr: vec4<i32>) -> vec4<i32> {
  let v = vec4<u32>(bits) >> (vec4<u32>(0u, 1u, 2u, 3u) + 8u * i);
  return bitcast<vec4<i32>>((v & vec4<u32>(1u)) | ((v << vec4<u32>(12u)) & vec4<u32>(0x10000u))) * pr;
}


// Σ n·c of a unit's nibbles (n unsigned 0..15) over its two 16-weight halves.
fn nibble_sums(wv: vec4<u32>, X: XQ) -> vec2<i32> {
  if (DOT == 2u) {
    let m = 0x0f0f0f0fu;
    return vec2<i32>(dot4I8Packed(wv.x & m, X.lo.x) + dot4I8Packed((wv.x >> 4u) & m, X.lo.y) + dot4I8Packed(wv.y & m, X.lo.z) + dot4I8Packed((wv.y >> 4u) & m, X.lo.w),
                     dot4I8Packed(wv.z & m, X.hi.x) + dot4I8Packed((wv.z >> 4u) & m, X.hi.y) + dot4I8Packed(wv.w & m, X.hi.z) + dot4I8Packed((wv.w >> 4u) & m, X.hi.w));
  }
  return vec2<i32>(pair_total(nib_products(wv.x, X.p0) + nib_products(wv.y, X.p1)), pair_total(nib_products(wv.z, X.p2) + nib_products(wv.w, X.p3)));
}

// Σ b·c of a unit's fifth bits over its two halves (q5 / q5k: hi.x).
fn high_sums(m: UnitMeta, X: XQ) -> vec2<i32> {
  return vec2<i32>(pair_total(bit_products(m.hi.x, 0u, X.p0) + bit_products(m.hi.x, 1u, X.p1)), pair_total(bit_products(m.hi.x, 2u, X.p2) + bit_products(m.hi.x, 3u, X.p3)));
}

fn unpack_i8(word: u32) -> vec4<i32> {
  return bitcast<vec4<i32>>(vec4<u32>(word) << vec4<u32>(24u, 16u, 8u, 0u)) >> vec4<u32>(24u);
}

// q8: Σ q·c of a 16-weight unit (natural byte order) against block half `half` of X (even / odd code words).
fn q8_sum(wv: vec4<u32>, X: XQ, half: u32) -> i32 {
  let c = select(X.hi, X.lo, half == 0u);
  let a = unpack_i8(wv.x);
  let b = unpack_i8(wv.y);
  let d = unpack_i8(wv.z);
  let e = unpack_i8(wv.w);
  return dot(vec4<i32>(a.x, a.z, b.x, b.z), unpack_i8(c.x)) + dot(vec4<i32>(a.y, a.w, b.y, b.w), unpack_i8(c.y))
       + dot(vec4<i32>(d.x, d.z, e.x, e.z), unpack_i8(c.z)) + dot(vec4<i32>(d.y, d.w, e.y, e.w), unpack_i8(c.w));
}

// Contribution of unit u (weights wv, meta m) of one row to one token's y, from that token's X (q8: the block of
// half the unit; the caller passes the block u >> 1). Values (with n the nibble, b the high bits, c the codes):
// q4 d·(n − 8); q4k s0·n − s1; q5k s0·(n + 16b) − s1; q5 d·(n + 16b − 16); q6k s·(n + 16b − 32) per half.
fn int8_row_contrib(wv: vec4<u32>, m: UnitMeta, X: XQ, u: u32) -> f32 {
  if (FORMAT == 3u) { return X.sx * m.s0 * f32(q8_sum(wv, X, u & 1u)); }
  if (FORMAT == 6u) {
    let q = q6_sums(wv, m.hi, X);
    return X.sx * (m.s0 * f32(q.x) + m.s1 * f32(q.y));
  }
  let n = nibble_sums(wv, X);
  let c = f32(X.s0 + X.s1);
  switch FORMAT {
    case 4u: { return X.sx * (m.s0 * f32(n.x + n.y) - m.s1 * c); }
    case 5u: {
      let h = high_sums(m, X);
      return X.sx * (m.s0 * f32(n.x + n.y + 16 * (h.x + h.y)) - m.s1 * c);
    }
    case 7u: {
      let h = high_sums(m, X);
      return X.sx * m.s0 * f32(n.x + n.y + 16 * (h.x + h.y) - 16 * (X.s0 + X.s1));
    }
    default: { return X.sx * m.s0 * f32(n.x + n.y - 8 * (X.s0 + X.s1)); } // q4
  }
}

// The activations block of unit u.
fn x_block_of(u: u32) -> u32 { return select(u, u >> 1u, FORMAT == 3u); }
