// RoPE, Gemma's rotate-half (NeoX) layout over the whole head, applied IN PLACE:
//   for i < dh/2: phi = pos * inv_freq[i]   (f32 product, as HF computes it)
//   x'[i]        = x[i] cos(phi) - x[i + dh/2] sin(phi)
//   x'[i + dh/2] = x[i + dh/2] cos(phi) + x[i] sin(phi)
// Token t (0 <= t < tokens) is at position pos0 + t. Partial ("proportional") RoPE, Gemma 4's full layers, is the
// same kernel with inv_freq[i] = 0 for the angles that do not rotate: cos_sin(0) = (1, 0) exactly, so those pairs
// pass through bit for bit.
// Bindings: 0 params (uniform), 1 inv_freq [dh/2] f32 (computed on the CPU in f32 exactly as HF does, see
// src/kernels/rope.ts), 2 x act_t, read_write.
// Layout: element (t, h, i) of x is at offset + t * row_stride + h * dh + i, so q and k can be rotated where they
// sit inside a fused QKV row (row_stride = the QKV row length) or in their own [T, heads, dh] buffer.
// Tiling: one thread per (t, h, i < dh/2) pair, 1-D over a possibly 2-D grid of WG-thread workgroups.
// Angles: positions reach 1e5 radians, where the spec of WGSL's cos/sin promises nothing (their error bound
// only holds on [-pi, pi]) and real GPUs reduce the argument poorly. So we reduce phi mod pi/2 ourselves
// (Cody-Waite, pi/2 split in four parts: the first three have 7 significant bits so k * part is exact for
// k < 2^17, i.e. phi < ~2e5) and evaluate Cephes' single-precision minimax sin/cos polynomials on
// [-pi/4, pi/4]. Emulated in f32 against double cos/sin over all positions 0..140000 of both bases, the max
// error is 9.3e-8.

struct Params {
  tokens: u32,
  heads: u32,
  half_dim: u32,   // dh / 2
  row_stride: u32, // elements from one token's row to the next
  offset: u32,     // element offset of (t = 0, h = 0, i = 0)
  pos0: u32,
  groups_x: u32,   // workgroups per grid row (2-D grids)
}

override WG: u32 = 64;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<act_t>;

const TWO_OVER_PI: f32 = 0.636619772367581;
const PIO2_1: f32 = 1.5625;
const PIO2_2: f32 = 0.0081787109375;
const PIO2_3: f32 = 0.00011730194091796875;
const PIO2_4: f32 = 3.1391647326017846e-7;

// (cos(phi), sin(phi)) to ~1e-7 absolute for |phi| < 2e5.
fn cos_sin(phi: f32) -> vec2<f32> {
  let k = round(phi * TWO_OVER_PI);
  var r = phi - k * PIO2_1;
  r = r - k * PIO2_2;
  r = r - k * PIO2_3;
  r = r - k * PIO2_4;
  let z = r * r;
  let s = r + r * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
  let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
  switch (u32(i32(k) & 3)) {
    case 0u: { return vec2<f32>(c, s); }
    case 1u: { return vec2<f32>(-s, c); }
    case 2u: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wg.y * p.groups_x + wg.x) * WG + lid;
  let per_token = p.heads * p.half_dim;
  if (idx >= p.tokens * per_token) { return; }
  let t = idx / per_token;
  let rem = idx - t * per_token;
  let h = rem / p.half_dim;
  let i = rem - h * p.half_dim;
  let cs = cos_sin(f32(p.pos0 + t) * inv_freq[i]);
  let lo = p.offset + t * p.row_stride + h * 2u * p.half_dim + i;
  let hi = lo + p.half_dim;
  let x0 = f32(x[lo]);
  let x1 = f32(x[hi]);
  x[lo] = act_t(x0 * cs.x - x1 * cs.y);
  x[hi] = act_t(x1 * cs.x + x0 * cs.y);
}
