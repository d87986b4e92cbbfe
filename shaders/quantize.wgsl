// Weight conversion on the GPU: f32 / bf16 / f16 source rows -> the GpuWeight layouts of
// src/kernels/weight-format.ts (q4, q8, f16, f32), plus a seeded random-normal generator for synthetic weights.
//
// Source: `src` is array<u32>; SRC = 0: f32 bits, one element per word; SRC = 1 (bf16) or 2 (f16): raw 16-bit
// values two per word, low half first (exactly the bytes safetensors stores). Element i of the chunk is at
// p.in_offset + i. Rows are [rows, cols] row-major; flat group f = r * G + g covers elements
// r * cols + 32 g .. + min(32, cols - 32 g) (the rest of the last group of a row is padding, quantized as 0).
//
// Entry points (bindings: 0 params uniform, 1 src array<u32>, 2 dst array<u32>, 3 scales array<u32>):
// - quantize_q4 / quantize_q8: one thread per PAIR of flat groups (2t, 2t + 1), because two f16 scales share one
//   u32 word; writing the whole word from one thread needs no atomics. Output group index = p.out_offset + f
//   (p.out_offset is even, so pairs never straddle words).
// - to_f16: one thread per output word (two f16 values; count = elements), dst word p.out_offset / 2 + t
//   (out_offset even).
// - to_f32: one thread per element (bf16 / f16 -> f32, exact).
// - random_f32: dst[p.out_offset + i] = std * N(0, 1) from a counter-based hash (pcg_hash, shaders/lib) of (seed, p.in_offset + i), so any
//   chunking of a tensor gives the same values. Binds `src` and `scales` too (unused) to keep one layout.
// Grids may be 2-D (more than 65535 workgroups): linear thread = (wg.y * p.grid_x + wg.x) * WG + local.
//
// Scale rules (measured with a CPU round trip of 640k weights, relative RMS error |w - deq(q(w))| / |w|):
//   q4: normal 0.0971 (absmax/7) vs 0.0860 (signed-max/-8); Laplace 0.121 vs 0.107; Student-t(4) 0.131 vs 0.116.
//   So q4 uses llama.cpp Q4_0's rule: d = m / -8 where m is the element of largest |w| (first one on ties), so m
//   itself maps to q = -8 exactly and all 16 levels are used; the price is that elements of the opposite sign near
//   |m| clip at q = +7 (error up to |d| instead of |d|/2), which the 11% lower RMS error outweighs.
//   q8: llama.cpp Q8_0's d = absmax / 127 (the extra level of /-128 would shrink the step by 0.8% only), so every
//   element is within |d| / 2.
// Bit-exactness: d is rounded to f16 first (round to nearest even of the exact quotient, saturating at 65504) and
// the values are quantized with the rounded d; q = round-half-even(w / d), clamped to the format's range. GPU
// division is only accurate to ~2.5 ulp in WGSL, so both roundings take the division's result as a first guess and
// correct it with exact comparisons: products of an f16 (11 significant bits) or an f16 midpoint (12) with a small
// integer (<= 9 bits) are exact in f32. So the result is the correctly rounded one on any conforming GPU, and
// equal bit for bit to the CPU reference (test/kernels/quantize.test.ts), except where a GPU flushes f32
// subnormal inputs (|w| < 1.2e-38) to zero. An all-zero group gets d = 0 and q = 0. f16 scales below 6.1e-5 are
// subnormal and coarser; clipping then can exceed |d| / 2 (the tests bound the error by max(|d|/2, |w| - qmax|d|)).

struct Params {
  count: u32,      // work items: groups (quantize_*), output words (to_f16) or elements (to_f32, random_f32)
  cols: u32,
  groups_per_row: u32,
  in_offset: u32,  // source element offset (random_f32: index of the first element in the whole tensor)
  out_offset: u32, // output group (quantize_*) or element (to_f16, to_f32, random_f32) offset in dst
  seed: u32,
  stddev: f32,
  grid_x: u32,     // workgroups per grid row
}

override WG: u32 = 256;
// 0: f32, 1: bf16, 2: f16.
override SRC: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<u32>;
@group(0) @binding(2) var<storage, read_write> dst: array<u32>;
@group(0) @binding(3) var<storage, read_write> scales: array<u32>;

fn thread_id(wg: vec3<u32>, lid: u32) -> u32 {
  return (wg.y * p.grid_x + wg.x) * WG + lid;
}

// f16_bits_to_f32 / f32_to_f16_bits: shaders/lib/f16-bits.wgsl.

// The f16 nearest (ties to even) to the exact quotient a / div, for a >= 0 and small integer div; saturates at
// 65504. The first guess may be one f16 off (inexact division, double rounding); exact midpoint tests fix it.
fn f16_quotient(a: f32, div: f32) -> u32 {
  var h = f32_to_f16_bits(a / div);
  if (h >= 0x7c00u) { h = 0x7bffu; }
  let v = f16_bits_to_f32(h);
  if (h < 0x7bffu) {
    let up = 0.5 * (v + f16_bits_to_f32(h + 1u)); // 12 significant bits: exact, and up * div is exact
    if (a > up * div || (a == up * div && (h & 1u) != 0u)) { return h + 1u; }
  }
  if (h > 0u) {
    let down = 0.5 * (v + f16_bits_to_f32(h - 1u));
    if (a < down * div || (a == down * div && (h & 1u) != 0u)) { return h - 1u; }
  }
  return h;
}

// round-half-even(w / d) exactly, for d > 0 and |w / d| <= ~256: guess, then compare with the exact half-way points
// (2k +- 1) * d / 2 (a <= 9-bit integer times an f16: exact).
fn round_div(w: f32, d: f32) -> i32 {
  var k = i32(round(w / d));
  let hi = f32(2 * k + 1) * d * 0.5;
  let lo = f32(2 * k - 1) * d * 0.5;
  if (w > hi || (w == hi && (k & 1) != 0)) { k += 1; }
  else if (w < lo || (w == lo && (k & 1) != 0)) { k -= 1; }
  return k;
}

fn load_src(i: u32) -> f32 {
  let j = p.in_offset + i;
  if (SRC == 0u) { return bitcast<f32>(src[j]); }
  let h = (src[j >> 1u] >> ((j & 1u) * 16u)) & 0xffffu;
  if (SRC == 1u) { return bitcast<f32>(h << 16u); }
  return f16_bits_to_f32(h);
}

// Quantizes flat group f into dst (q4: 4 words, q8: 8 words at block p.out_offset + f); returns the f16 scale bits.
fn quantize_group(f: u32, q4: bool) -> u32 {
  let r = f / p.groups_per_row;
  let g = f % p.groups_per_row;
  let c0 = g * 32u;
  let n = min(32u, p.cols - c0);
  let base = r * p.cols + c0;
  var vals: array<f32, 32>;
  var amax = 0.0;
  var smax = 0.0;
  for (var i = 0u; i < 32u; i++) {
    var v = 0.0;
    if (i < n) { v = load_src(base + i); }
    vals[i] = v;
    if (abs(v) > amax) { amax = abs(v); smax = v; }
  }
  var hbits: u32;
  var qmin: i32;
  var qmax: i32;
  if (q4) {
    // d = smax / -8: negative when smax > 0, so that smax maps to q = -8.
    hbits = f16_quotient(amax, 8.0) | select(0u, 0x8000u, smax > 0.0);
    qmin = -8; qmax = 7;
  } else {
    hbits = f16_quotient(amax, 127.0);
    qmin = -128; qmax = 127;
  }
  let d = f16_bits_to_f32(hbits);
  let ad = abs(d);
  let flip = select(1.0, -1.0, d < 0.0);
  let words = select(8u, 4u, q4);
  let out = (p.out_offset + f) * words;
  for (var w = 0u; w < words; w++) {
    var word = 0u;
    let per = select(4u, 8u, q4); // elements per word
    for (var e = 0u; e < per; e++) {
      var q = 0;
      if (ad > 0.0) { q = clamp(round_div(vals[w * per + e] * flip, ad), qmin, qmax); }
      if (q4) { word |= u32(q + 8) << (4u * e); }
      else { word |= (u32(q) & 0xffu) << (8u * e); }
    }
    dst[out + w] = word;
  }
  return hbits;
}

fn quantize_pair(t: u32, q4: bool) {
  let f = 2u * t;
  if (f >= p.count) { return; }
  let lo = quantize_group(f, q4);
  var hi = 0u;
  if (f + 1u < p.count) { hi = quantize_group(f + 1u, q4); }
  scales[(p.out_offset + f) >> 1u] = lo | (hi << 16u);
}

@compute @workgroup_size(WG)
fn quantize_q4(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  quantize_pair(thread_id(wg, lid), true);
}

@compute @workgroup_size(WG)
fn quantize_q8(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  quantize_pair(thread_id(wg, lid), false);
}

@compute @workgroup_size(WG)
fn to_f16(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  if (2u * t >= p.count) { return; }
  let lo = f32_to_f16_bits(load_src(2u * t));
  var hi = 0u; // the last word of an odd-sized tensor is half padding
  if (2u * t + 1u < p.count) { hi = f32_to_f16_bits(load_src(2u * t + 1u)); }
  dst[(p.out_offset >> 1u) + t] = lo | (hi << 16u);
  if (t == 0xffffffffu) { scales[0] = 0u; } // see random_f32
}

@compute @workgroup_size(WG)
fn to_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  if (t >= p.count) { return; }
  dst[p.out_offset + t] = bitcast<u32>(load_src(t));
  if (t == 0xffffffffu) { scales[0] = 0u; } // see random_f32
}

@compute @workgroup_size(WG)
fn random_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  if (t >= p.count) { return; }
  let i = p.in_offset + t;
  let a = pcg_hash(i ^ pcg_hash(p.seed));
  let b = pcg_hash(a ^ 0x9e3779b9u);
  let u1 = (f32(a >> 8u) + 1.0) * (1.0 / 16777216.0); // (0, 1]
  let u2 = f32(b >> 8u) * (1.0 / 16777216.0);
  let z = sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
  dst[p.out_offset + t] = bitcast<u32>(p.stddev * z);
  // Keep `src` and `scales` in this entry point's interface so every entry shares one bind group layout.
  if (t == 0xffffffffu) { scales[0] = src[0]; }
}

// random_codes: uniform random q4/q8 codes straight into a quantized weight (dst: p.count data words from word
// p.out_offset) and one f16 scale p.stddev for every group (scales: p.cols words), for benchmarks and memory
// accounting at model size, where quantizing drawn normals would take minutes on a CPU adapter.
@compute @workgroup_size(WG)
fn random_codes(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  if (t < p.count) { dst[p.out_offset + t] = pcg_hash((p.in_offset + t) ^ pcg_hash(p.seed)); }
  if (t < p.cols) {
    let h = f32_to_f16_bits(p.stddev);
    scales[t] = h | (h << 16u);
  }
  if (t == 0xffffffffu) { dst[0] = src[0]; } // keep `src` in the interface (see random_f32)
}

// ---------------------------------------------------------------------------------------------------------------
// Error-minimising quantizers into q5 and the K-quant layouts (test/helpers/quantize-search.ts is the CPU definition
// they follow step for step: the candidates, the weights and the fits; not bit for bit, as the GPU divides to
// ~2.5 ulp and sums in another order, which can tip a near-tie between two candidates). The chunk's rows are
// p.count / (work items per row) rows starting at output row p.out_offset of the part (q5: output group
// p.out_offset, even). Values past a row's end (a partial last group) read as 0.

// Row r, element c (c < cols) of the chunk, or 0 past the row.
fn src_at(r: u32, c: u32) -> f32 {
  if (c >= p.cols) { return 0.0; }
  return load_src(r * p.cols + c);
}

// Symmetric search (q5: n = 32, nmax 16, weights 1; q6k: n = 16, nmax 32, weights w²): the least-squares scale s
// of the best of the candidates −(nmax + 0.1 k) / max, k = −9 .. 9 (max = the element of largest magnitude). The
// values are read once into `v` (a private array: one load per value instead of one per candidate).
fn fit_sym(r: u32, c0: u32, n: u32, nmax: f32, squared: bool) -> f32 {
  var v: array<f32, 32>;
  var mx = 0.0;
  for (var i = 0u; i < n; i++) {
    v[i] = src_at(r, c0 + i);
    if (abs(v[i]) > abs(mx)) { mx = v[i]; }
  }
  if (mx == 0.0) { return 0.0; }
  var best_s = -mx / nmax;
  var best_score = -1.0;
  for (var k = -9; k <= 9; k++) {
    let iscale = -(nmax + 0.1 * f32(k)) / mx;
    var sxl = 0.0;
    var sl2 = 0.0;
    for (var i = 0u; i < n; i++) {
      let q = clamp(round(iscale * v[i]), -nmax, nmax - 1.0);
      let w = select(1.0, v[i] * v[i], squared);
      sxl += w * v[i] * q;
      sl2 += w * q * q;
    }
    if (sl2 > 0.0 && sxl * sxl > best_score * sl2) {
      best_score = sxl * sxl / sl2;
      best_s = sxl / sl2;
    }
  }
  return best_s;
}

// Asymmetric search of one 32-weight sub-block (codes 0..nmax): returns (s, m), w ≈ s·q − m, m ≥ 0. Candidates:
// the plain min/max scale, then s = (max − min) / (nmax − 1 + 0.1 k), k = 0 .. 20, each refitted by weighted least
// squares on its codes (weights |w| + the sub-block's RMS; m clipped at 0). The weighted squared error of a fit
// (s, b) comes from the same sums: Σw(sq + b − x)² = s²Σwq² + 2sbΣwq + b²Σw − 2sΣwxq − 2bΣwx + Σwx².
fn fit_scale_min(r: u32, c0: u32, nmax: f32) -> vec2<f32> {
  var v: array<f32, 32>;
  var lo = 3.4e38;
  var hi = -3.4e38;
  var ss = 0.0;
  for (var i = 0u; i < 32u; i++) {
    v[i] = src_at(r, c0 + i);
    lo = min(lo, v[i]);
    hi = max(hi, v[i]);
    ss += v[i] * v[i];
  }
  lo = min(lo, 0.0);
  if (hi == lo) { return vec2<f32>(0.0, -lo); }
  let rms = sqrt(ss / 32.0);
  var swx2 = 0.0;
  for (var i = 0u; i < 32u; i++) { swx2 += (rms + abs(v[i])) * v[i] * v[i]; }
  var best = vec2<f32>((hi - lo) / nmax, -lo);
  var best_err = 3.4e38;
  for (var k = -1; k <= 20; k++) {
    var iscale = (nmax - 1.0 + 0.1 * f32(k)) / (hi - lo);
    if (k < 0) { iscale = nmax / (hi - lo); }
    var sw = 0.0; var sl = 0.0; var sl2 = 0.0; var sx = 0.0; var sxl = 0.0;
    for (var i = 0u; i < 32u; i++) {
      let q = clamp(round(iscale * (v[i] - lo)), 0.0, nmax);
      let w = rms + abs(v[i]);
      sw += w; sl += w * q; sl2 += w * q * q; sx += w * v[i]; sxl += w * v[i] * q;
    }
    var s = 1.0 / iscale;
    var b = lo;
    if (k >= 0) {
      let det = sw * sl2 - sl * sl;
      if (!(det > 0.0)) { continue; }
      s = (sw * sxl - sx * sl) / det;
      b = (sl2 * sx - sl * sxl) / det;
      if (b > 0.0) { b = 0.0; s = sxl / sl2; }
    }
    let err = s * s * sl2 + 2.0 * s * b * sl + b * b * sw - 2.0 * s * sxl - 2.0 * b * sx + swx2;
    if (err < best_err) { best_err = err; best = vec2<f32>(max(s, 0.0), -b); }
  }
  return best;
}

// q5: one thread per pair of groups (their 6 scale units fill 3 words). Codes recomputed with the f16 d.
@compute @workgroup_size(WG)
fn quantize_q5(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  let f0 = 2u * t;
  if (f0 >= p.count) { return; }
  var units: array<u32, 6>;
  for (var k = 0u; k < 2u; k++) {
    let f = f0 + k;
    var dbits = 0u;
    var bits = 0u;
    if (f < p.count) {
      let r = f / p.groups_per_row;
      let c0 = (f % p.groups_per_row) * 32u;
      dbits = f32_to_f16_bits(fit_sym(r, c0, 32u, 16.0, false));
      let d = f16_bits_to_f32(dbits);
      for (var w = 0u; w < 4u; w++) {
        var word = 0u;
        for (var e = 0u; e < 8u; e++) {
          let i = 8u * w + e;
          var q = 16u;
          if (d != 0.0) { q = u32(i32(clamp(round(src_at(r, c0 + i) / d), -16.0, 15.0)) + 16); }
          word |= (q & 15u) << (4u * e);
          bits |= (q >> 4u) << i;
        }
        dst[(p.out_offset + f) * 4u + w] = word;
      }
    }
    units[3u * k] = dbits;
    units[3u * k + 1u] = bits & 0xffffu;
    units[3u * k + 2u] = bits >> 16u;
  }
  let o = 3u * ((p.out_offset + f0) >> 1u);
  scales[o] = units[0] | (units[1] << 16u);
  scales[o + 1u] = units[2] | (units[3] << 16u);
  scales[o + 2u] = units[4] | (units[5] << 16u);
}

// Words of one K-quant data row (kquant.ts: nibble units, then fifth bits / high pairs, padded to 4 words).
fn k_row_words(extra_per_group: u32) -> u32 {
  return (4u * p.groups_per_row + extra_per_group * p.groups_per_row + 3u) & ~3u;
}

// q4k: one thread per super-block (row r = t / S of the chunk, super-block s = t % S).
@compute @workgroup_size(WG)
fn quantize_q4k(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  if (t >= p.count) { return; }
  let G = p.groups_per_row;
  let S = (G + 7u) / 8u;
  let r = t / S;
  let s = t % S;
  let n = min(8u, G - 8u * s);
  var sm: array<vec2<f32>, 8>;
  var max_s = 0.0;
  var max_m = 0.0;
  for (var j = 0u; j < n; j++) {
    sm[j] = fit_scale_min(r, 32u * (8u * s + j), 15.0);
    max_s = max(max_s, sm[j].x);
    max_m = max(max_m, sm[j].y);
  }
  let dbits = f32_to_f16_bits(max_s / 63.0);
  let mbits = f32_to_f16_bits(max_m / 63.0);
  let d = f16_bits_to_f32(dbits);
  let dmin = f16_bits_to_f32(mbits);
  var b: array<u32, 12>;
  for (var j = 0u; j < 12u; j++) { b[j] = 0u; }
  let row = p.out_offset + r;
  for (var j = 0u; j < 8u; j++) {
    var sc = 0u;
    var mn = 0u;
    if (j < n) {
      if (d != 0.0) { sc = u32(min(63.0, round(sm[j].x / d))); }
      if (dmin != 0.0) { mn = u32(min(63.0, round(sm[j].y / dmin))); }
      let step = d * f32(sc);
      let mnv = dmin * f32(mn);
      let c0 = 32u * (8u * s + j);
      for (var w = 0u; w < 4u; w++) {
        var word = 0u;
        for (var e = 0u; e < 8u; e++) {
          var q = 0u;
          if (step != 0.0) { q = u32(clamp(round((src_at(r, c0 + 8u * w + e) + mnv) / step), 0.0, 15.0)); }
          word |= q << (4u * e);
        }
        dst[row * k_row_words(0u) + 4u * (8u * s + j) + w] = word;
      }
    }
    // ggml's get_scale_min_k4 packing, inverted.
    if (j < 4u) {
      b[j] |= sc;
      b[j + 4u] |= mn;
    } else {
      b[j + 4u] = (sc & 15u) | ((mn & 15u) << 4u);
      b[j - 4u] |= (sc >> 4u) << 6u;
      b[j] |= (mn >> 4u) << 6u;
    }
  }
  let h = row * 4u * S + 4u * s;
  scales[h] = dbits | (mbits << 16u);
  scales[h + 1u] = b[0] | (b[1] << 8u) | (b[2] << 16u) | (b[3] << 24u);
  scales[h + 2u] = b[4] | (b[5] << 8u) | (b[6] << 16u) | (b[7] << 24u);
  scales[h + 3u] = b[8] | (b[9] << 8u) | (b[10] << 16u) | (b[11] << 24u);
}

// q6k: one thread per pair of super-blocks of a row (their f16 d share a word): t -> row t / P, pair t % P.
@compute @workgroup_size(WG)
fn quantize_q6k(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  if (t >= p.count) { return; }
  let G = p.groups_per_row;
  let S = (G + 7u) / 8u;
  let P = (S + 1u) / 2u;
  let r = t / P;
  let row = p.out_offset + r;
  let sw = 4u * S + P;
  let dw = k_row_words(2u);
  var dword = 0u;
  for (var k = 0u; k < 2u; k++) {
    let s = 2u * (t % P) + k;
    if (s >= S) { break; }
    let n = min(8u, G - 8u * s); // sub-blocks of 32 (2n scales of 16)
    var sc: array<f32, 16>;
    var mx = 0.0;
    for (var i = 0u; i < 2u * n; i++) {
      sc[i] = fit_sym(r, 256u * s + 16u * i, 16u, 32.0, true);
      if (abs(sc[i]) > abs(mx)) { mx = sc[i]; }
    }
    var dbits = 0u;
    if (mx != 0.0) { dbits = f32_to_f16_bits(-mx / 128.0); }
    let d = f16_bits_to_f32(dbits);
    var q8: array<u32, 16>;
    for (var i = 0u; i < 16u; i++) {
      var qs = 0;
      if (i < 2u * n && d != 0.0) { qs = i32(clamp(round(sc[i] / d), -128.0, 127.0)); }
      q8[i] = u32(qs) & 255u;
      if (i < 2u * n) {
        let step = d * f32(qs);
        let j = 8u * s + i / 2u;       // sub-block of 32
        let half = i % 2u;             // its elements 16 half .. + 15
        var hi_word = 0u;
        for (var w = 0u; w < 2u; w++) {
          var word = 0u;
          for (var e = 0u; e < 8u; e++) {
            let el = 16u * half + 8u * w + e;
            var q = 32u;
            if (step != 0.0) { q = u32(i32(clamp(round(src_at(r, 32u * j + el) / step), -32.0, 31.0)) + 32); }
            word |= (q & 15u) << (4u * e);
            hi_word |= (q >> 4u) << (2u * (8u * w + e));
          }
          dst[row * dw + 4u * j + 2u * half + w] = word;
        }
        dst[row * dw + 4u * G + 2u * j + half] = hi_word;
      }
    }
    let h = row * sw + 4u * s;
    for (var w = 0u; w < 4u; w++) {
      scales[h + w] = q8[4u * w] | (q8[4u * w + 1u] << 8u) | (q8[4u * w + 2u] << 16u) | (q8[4u * w + 3u] << 24u);
    }
    dword |= dbits << (16u * k);
  }
  scales[row * sw + 4u * S + (t % P)] = dword;
}
