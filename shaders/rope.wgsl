// RoPE, Gemma's rotate-half (NeoX) layout over the whole head, applied IN PLACE, optionally after the per-head
// RMSNorm (has_norm: q_norm / k_norm, times w directly, Gemma's convention):
//   x_n          = has_norm ? x / sqrt(mean(x^2) + eps) * w : x        (over the head's dh elements)
//   for i < dh/2: phi = pos * inv_freq[i]   (f32 product, as HF computes it)
//   x'[i]        = x_n[i] cos(phi) - x_n[i + dh/2] sin(phi)
//   x'[i + dh/2] = x_n[i + dh/2] cos(phi) + x_n[i] sin(phi)
// Token t (0 <= t < tokens) is at position pos0 + t. Partial ("proportional") RoPE, Gemma 4's full layers, is the
// same kernel with inv_freq[i] = 0 for the angles that do not rotate: cos_sin(0) = (1, 0) exactly, so those pairs
// pass through bit for bit.
// Bindings: 0 params (uniform), 1 inv_freq [dh/2] f32 (computed on the CPU in f32 exactly as HF does, see
// src/kernels/rope.ts), 2 x act_t, read_write, 3 w [dh] f32 (the norm's weight; unread without has_norm).
// Layout: element (t, h, i) of x is at offset + t * row_stride + h * dh + i, so q and k can be rotated where they
// sit inside a fused QKV row (row_stride = the QKV row length) or in their own [T, heads, dh] buffer.
// Tiling: one workgroup of WG threads per (t, h) head row (grid (T * heads) folded into 2-D past 65535); each thread
// strides over the pairs (i, i + dh/2), so it rewrites only what it read. Norm sums in f32 (workgroup_sum,
// shaders/lib/workgroup-sum.wgsl). Angles: cos_sin from shaders/lib/rope-angle.wgsl (accurate to ~1e-7 for
// positions < ~2e5).

struct Params {
  tokens: u32,
  heads: u32,
  half_dim: u32,   // dh / 2
  row_stride: u32, // elements from one token's row to the next
  offset: u32,     // element offset of (t = 0, h = 0, i = 0)
  pos0: u32,
  groups_x: u32,   // workgroups per grid row (2-D grids)
  has_norm: u32,
  eps: f32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(2) var<storage, read_write> x: array<act_t>;
@group(0) @binding(3) var<storage, read> w: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.y * p.groups_x + wg.x;
  if (r >= p.tokens * p.heads) { return; } // uniform per workgroup, so the barriers below stay uniform
  let t = r / p.heads;
  let h = r - t * p.heads;
  let base = p.offset + t * p.row_stride + h * 2u * p.half_dim;
  var inv = 1.0;
  if (p.has_norm != 0u) {
    var ss = 0.0;
    for (var i = lid; i < 2u * p.half_dim; i += WG) {
      let v = f32(x[base + i]);
      ss += v * v;
    }
    inv = inverseSqrt(workgroup_sum(lid, ss) / f32(2u * p.half_dim) + p.eps);
  }
  let pos = f32(p.pos0 + t);
  for (var i = lid; i < p.half_dim; i += WG) {
    let lo = base + i;
    let hi = lo + p.half_dim;
    var x0 = f32(x[lo]);
    var x1 = f32(x[hi]);
    if (p.has_norm != 0u) {
      x0 = x0 * inv * w[i];
      x1 = x1 * inv * w[i + p.half_dim];
    }
    let cs = cos_sin(pos * inv_freq[i]);
    x[lo] = act_t(x0 * cs.x - x1 * cs.y);
    x[hi] = act_t(x1 * cs.x + x0 * cs.y);
  }
}
