// KV-cache write: T new key and value rows for positions p0..p0+T-1 go into their cache slots, slot = position %
// capacity (a ring for sliding layers; for full layers capacity >= max context so the modulo never wraps), with the
// per-head steps before it optionally fused in (the k/v projections' outputs go straight into the cache):
//   k' = RoPE(RMSNorm_wk(k))   (k_norm: per-head RMSNorm times w_k directly; rope: rotate-half, as shaders/rope.wgsl)
//   v' = RMS0(v)               (v_norm: the scale-free per-head RMSNorm)
// each off by its flag (a plain copy with all three off).
// Bindings: 0 params (uniform), 1 k_src act_t, 2 v_src act_t (token t's row starts at *_offset + t * *_stride,
// row = [Hkv, dh] contiguous), 3 k_cache act_t [capacity, Hkv, dh], 4 v_cache act_t [capacity, Hkv, dh],
// 5 inv_freq [dh/2] f32 (see src/kernels/rope.ts), 6 w_k [dh] f32 (unread without k_norm / rope).
// Tiling: one workgroup of WG threads per (t, k|v, head) row, grid (T * 2 * Hkv) folded into 2-D past 65535; each
// thread strides over the pairs (i, i + dh/2). Norm sums in f32 (workgroup_sum, shaders/lib/workgroup-sum.wgsl);
// angles from cos_sin (shaders/lib/rope-angle.wgsl). The caches are bound read_write, so no other dispatch may read
// them in the same dispatch (WebGPU orders dispatches within a pass, which is what the attention kernel relies on).

struct Params {
  t_count: u32,
  p0: u32,
  heads: u32,     // Hkv
  half_dim: u32,  // dh / 2
  capacity: u32,
  k_offset: u32,
  k_stride: u32,
  v_offset: u32,
  v_stride: u32,
  groups_x: u32,  // workgroups per grid row (2-D grids)
  k_norm: u32,
  v_norm: u32,
  rope: u32,
  eps: f32,
}

override WG: u32 = 64;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k_src: array<act_t>;
@group(0) @binding(2) var<storage, read> v_src: array<act_t>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<act_t>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<act_t>;
@group(0) @binding(5) var<storage, read> inv_freq: array<f32>;
@group(0) @binding(6) var<storage, read> w_k: array<f32>;

fn load(is_k: bool, i: u32) -> f32 {
  if (is_k) { return f32(k_src[i]); }
  return f32(v_src[i]);
}

fn store(is_k: bool, i: u32, v: f32) {
  if (is_k) { k_cache[i] = act_t(v); } else { v_cache[i] = act_t(v); }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = wg.y * p.groups_x + wg.x;
  if (r >= p.t_count * 2u * p.heads) { return; } // uniform per workgroup, so the barriers below stay uniform
  let t = r / (2u * p.heads);
  let rem = r - t * 2u * p.heads;
  let is_k = rem < p.heads;
  let h = select(rem - p.heads, rem, is_k);
  let dh = 2u * p.half_dim;
  let src = select(p.v_offset + t * p.v_stride, p.k_offset + t * p.k_stride, is_k) + h * dh;
  let dst = ((p.p0 + t) % p.capacity) * p.heads * dh + h * dh;
  let normed = select(p.v_norm, p.k_norm, is_k) != 0u;
  let weighted = is_k && p.k_norm != 0u;
  let rotated = is_k && p.rope != 0u;
  var inv = 1.0;
  if (normed) {
    var ss = 0.0;
    for (var i = lid; i < dh; i += WG) {
      let v = load(is_k, src + i);
      ss += v * v;
    }
    inv = inverseSqrt(workgroup_sum(lid, ss) / f32(dh) + p.eps);
  }
  let pos = f32(p.p0 + t);
  for (var i = lid; i < p.half_dim; i += WG) {
    var x0 = load(is_k, src + i);
    var x1 = load(is_k, src + i + p.half_dim);
    if (normed) {
      x0 *= inv;
      x1 *= inv;
    }
    if (weighted) {
      x0 *= w_k[i];
      x1 *= w_k[i + p.half_dim];
    }
    if (rotated) {
      let cs = cos_sin(pos * inv_freq[i]);
      let y0 = x0 * cs.x - x1 * cs.y;
      x1 = x1 * cs.x + x0 * cs.y;
      x0 = y0;
    }
    store(is_k, dst + i, x0);
    store(is_k, dst + i + p.half_dim, x1);
  }
}
