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
// - random_f32: dst[p.out_offset + i] = std * N(0, 1) from a counter-based hash of (seed, p.in_offset + i), so any
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

// PCG-style integer hash (Jarzynski & Olano 2020), good enough for synthetic weights.
fn pcg(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}

@compute @workgroup_size(WG)
fn random_f32(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = thread_id(wg, lid);
  if (t >= p.count) { return; }
  let i = p.in_offset + t;
  let a = pcg(i ^ pcg(p.seed));
  let b = pcg(a ^ 0x9e3779b9u);
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
  if (t < p.count) { dst[p.out_offset + t] = pcg((p.in_offset + t) ^ pcg(p.seed)); }
  if (t < p.cols) {
    let h = f32_to_f16_bits(p.stddev);
    scales[t] = h | (h << 16u);
  }
  if (t == 0xffffffffu) { dst[0] = src[0]; } // keep `src` in the interface (see random_f32)
}
