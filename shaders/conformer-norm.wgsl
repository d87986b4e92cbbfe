// The normalisation step of Gemma 3n's audio conformer (USM), fused with what surrounds it there, per row r:
//   v = clamp(select(0, x[r], m[r] != 0) if MASK > 0 else x[r], -clip, clip)   (clip: gradient_clipping, 1e10)
//   n = v / sqrt(mean(v^2) + eps) * w                                            (Gemma RMSNorm: w, not 1 + w)
//   n = silu(n) = n / (1 + exp(-n))  if ACT == 1                                 (the light conv's conv_norm)
//   OUT 0: y[r] = n;  OUT 1: y[r] += alpha * n (residual: 0.5 after a half-step FFN, 1 after attention);
//   OUT 2: x[r] = n in place (the block's final norm)
//   MASK 2 also writes the masked row back, x[r] = select(0, x[r], m[r] != 0) (the light conv module's masked input
//   is its own residual).
// Bindings: 0 params (uniform); 1 x act_t (read_write: OUT 2 and MASK 2 write it), row r at x_offset + r * x_stride
// (x_stride > dim reads every k-th row: the time reduction); 2 w f32 [dim]; 3 m u32 [rows] (unread when MASK 0);
// 4 y act_t (read_write), row r at y_offset + r * dim (unused when OUT 2).
// Tiling: one workgroup per row (2-D grid past 65535 rows); WG threads stride over the row; the sum of squares is
// workgroup_sum (shaders/lib/workgroup-sum.wgsl), in f32. Each element is read and written by the same thread, so OUT 2 and
// MASK 2 are safe in place.

struct Params {
  rows: u32,
  dim: u32,
  x_offset: u32,
  x_stride: u32,
  y_offset: u32,
  grid_x: u32,
  eps: f32,
  clip: f32,
  alpha: f32,
}

override WG: u32 = 256;
override OUT: u32 = 0u;
override ACT: u32 = 0u;
override MASK: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<act_t>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> m: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<act_t>;

fn load(i: u32, keep: bool) -> f32 {
  return clamp(select(0.0, f32(x[i]), keep), -p.clip, p.clip);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wg.y * p.grid_x + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup
  let keep = MASK == 0u || m[row] != 0u;
  let base_x = p.x_offset + row * p.x_stride;
  var sum = 0.0;
  for (var i = t; i < p.dim; i += WG) {
    let v = load(base_x + i, keep);
    sum += v * v;
  }
  let inv = inverseSqrt(workgroup_sum(t, sum) / f32(p.dim) + p.eps);
  let base_y = p.y_offset + row * p.dim;
  for (var i = t; i < p.dim; i += WG) {
    var n = load(base_x + i, keep) * inv * w[i];
    if (ACT == 1u) { n = n / (1.0 + exp(-n)); }
    if (MASK == 2u && !keep) { x[base_x + i] = act_t(0.0); }
    switch (OUT) {
      case 0u: { y[base_y + i] = act_t(n); }
      case 1u: { y[base_y + i] = act_t(f32(y[base_y + i]) + p.alpha * n); }
      default: { x[base_x + i] = act_t(n); }
    }
  }
}
