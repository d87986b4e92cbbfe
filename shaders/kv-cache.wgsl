// KV-cache write: copies T new key and value rows (already k-normed + RoPE'd, v RMS0'd) for positions
// p0..p0+T-1 into their cache slots, slot = position % capacity (a ring for sliding layers; for full layers
// capacity >= max context so the modulo never wraps).
// Bindings: 0 params (uniform), 1 k_src act_t, 2 v_src act_t (token t's row starts at *_offset + t * *_stride,
// row = [Hkv, dh] contiguous), 3 k_cache act_t [capacity, Hkv, dh], 4 v_cache act_t [capacity, Hkv, dh].
// Tiling: one thread per element of the T x (Hkv*dh) block, 1-D grid folded into 2-D when it exceeds 65535
// workgroups. Pure copy; the caches are bound read_write, so no other dispatch may read them in the same
// dispatch (WebGPU orders dispatches within a pass, which is what the attention kernel relies on).

struct Params {
  t_count: u32,
  p0: u32,
  row_elems: u32, // Hkv * dh
  capacity: u32,
  k_offset: u32,
  k_stride: u32,
  v_offset: u32,
  v_stride: u32,
  groups_x: u32, // workgroups per grid row (2-D grids)
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> k_src: array<act_t>;
@group(0) @binding(2) var<storage, read> v_src: array<act_t>;
@group(0) @binding(3) var<storage, read_write> k_cache: array<act_t>;
@group(0) @binding(4) var<storage, read_write> v_cache: array<act_t>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wg.y * p.groups_x + wg.x) * WG + lid;
  if (i >= p.t_count * p.row_elems) { return; }
  let t = i / p.row_elems;
  let e = i % p.row_elems;
  let dst = ((p.p0 + t) % p.capacity) * p.row_elems + e;
  k_cache[dst] = k_src[p.k_offset + t * p.k_stride + e];
  v_cache[dst] = v_src[p.v_offset + t * p.v_stride + e];
}
