// RMSNorm over rows: y[r, i] = x[r, i] / sqrt(mean_i(x[r, :]^2) + eps) * (w[i] if has_weight else 1).
// Gemma 3n multiplies by w directly (no 1 + w). With has_weight = 0 it is the scale-free RMS0 (the value norm).
// Per-head use: a [T, H * dh] tensor is rows = T * H of dim = dh.
// Bindings: 0 params (uniform), 1 x [rows * dim] act_t, 2 w [dim] f32 (unread when has_weight = 0), 3 y [rows * dim] act_t.
// Tiling: one workgroup per row (grid may be 2-D when rows > 65535); WG threads stride over the row, f32 sums
// reduced by workgroup_sum (shaders/lib/workgroup-sum.wgsl). Accumulation is always f32.

struct Params {
  rows: u32,
  dim: u32,
  eps: f32,
  has_weight: u32,
  x_offset: u32, // element offsets, so a slice of a larger buffer can be normed
  y_offset: u32,
  row_stride_groups: u32, // workgroups per grid row (for 2-D grids)
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<act_t>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<act_t>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wg.y * p.row_stride_groups + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup, so the barriers below stay uniform
  let base_x = p.x_offset + row * p.dim;
  var sum = 0.0;
  for (var i = t; i < p.dim; i += WG) {
    let v = f32(x[base_x + i]);
    sum += v * v;
  }
  let inv = inverseSqrt(workgroup_sum(t, sum) / f32(p.dim) + p.eps);
  let base_y = p.y_offset + row * p.dim;
  for (var i = t; i < p.dim; i += WG) {
    var v = f32(x[base_x + i]) * inv;
    if (p.has_weight != 0u) { v *= w[i]; }
    y[base_y + i] = act_t(v);
  }
}
