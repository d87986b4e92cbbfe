// Residual update with its norms, one token row per workgroup (the decoder block's small ops between GEMVs, fused):
//   y_i = (alpha * (base_i + RMSNorm_wx(x) + plain) + beta * RMSNorm_wx2(x2)) * s      for i < count
//   out = RMSNorm_wout(y_0)                                                            (has_out; count = 1)
//   out = P . RMSNorm_wout(y_0)                                                        (has_out, out_projected)
// The first is the next consumer's input norm; out_projected writes only the 4 dots of the normed row with P's rows
// (Gemma 3n: AltUp's router logits W_r . RMSNorm(g) for the correction, so no GEMV has to read the normed row back).
// Absent terms drop out (has_x2, has_plain; has_scale: s = 1). The norms multiply by w directly (Gemma: no 1 + w).
// Uses: Gemma 3n's post-attention norm + LAuReL + combine + pre-FFN norm, its post-FFN norm + add + router logits and
// its post-PLE norm added to streams 1..3 (count = 3); Gemma 4's residual adds with the following norm.
// Bindings: 0 params (uniform), 1 xs f32 (x, x2 and plain: rows of `dim` at their own element offsets, one row per
// token), 2 base f32 (unread when base_in_y: base is then read from y at base_off), 3 w_x, 4 w_x2, 5 w_out, 6 s
// ([dim] f32 each; a dummy when unused; with out_projected w_out is [5, dim]: the norm weight, then P's 4 rows),
// 7 y f32 (read_write; target i of token t at y_off + i * stream_stride + t * dim), 8 out f32 at out_off ([T, dim],
// or [T, 4] with out_projected). 8 storage buffers: all WebGPU guarantees per stage.
// Tiling: one workgroup of WG threads per token (grid (T, 1)); each thread strides over the row, so of the y
// elements written here it re-reads only those it wrote itself. Sums of squares (and the projected dots) in f32, reduced by
// workgroup_sum / workgroup_sum_and4 (shaders/lib/workgroup-sum.wgsl).

struct Params {
  tokens: u32,
  dim: u32,
  eps: f32,
  alpha: f32,
  beta: f32,
  x_off: u32,
  x2_off: u32,
  plain_off: u32,
  base_off: u32,
  y_off: u32,
  out_off: u32,
  stream_stride: u32,
  count: u32,
  has_x2: u32,
  has_plain: u32,
  has_scale: u32,
  has_out: u32,
  base_in_y: u32,
  out_projected: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> xs: array<f32>;
@group(0) @binding(2) var<storage, read> base: array<f32>;
@group(0) @binding(3) var<storage, read> w_x: array<f32>;
@group(0) @binding(4) var<storage, read> w_x2: array<f32>;
@group(0) @binding(5) var<storage, read> w_out: array<f32>;
@group(0) @binding(6) var<storage, read> s: array<f32>;
@group(0) @binding(7) var<storage, read_write> y: array<f32>;
@group(0) @binding(8) var<storage, read_write> out: array<f32>;

fn inv_rms(t: u32, sum_sq: f32) -> f32 {
  return inverseSqrt(workgroup_sum(t, sum_sq) / f32(p.dim) + p.eps);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x;
  if (t >= p.tokens) { return; } // uniform per workgroup, so the barriers below stay uniform
  let row = t * p.dim;
  var ss_x = 0.0;
  var ss_x2 = 0.0;
  for (var d = lid; d < p.dim; d += WG) {
    let a = xs[p.x_off + row + d];
    ss_x += a * a;
    if (p.has_x2 != 0u) {
      let b = xs[p.x2_off + row + d];
      ss_x2 += b * b;
    }
  }
  let inv_x = inv_rms(lid, ss_x);
  let inv_x2 = inv_rms(lid, ss_x2);
  for (var i = 0u; i < p.count; i++) {
    let y0 = p.y_off + i * p.stream_stride + row;
    let b0 = p.base_off + i * p.stream_stride + row;
    for (var d = lid; d < p.dim; d += WG) {
      var b: f32;
      if (p.base_in_y != 0u) { b = y[b0 + d]; } else { b = base[b0 + d]; }
      var h = b + xs[p.x_off + row + d] * inv_x * w_x[d];
      if (p.has_plain != 0u) { h += xs[p.plain_off + row + d]; }
      h *= p.alpha;
      if (p.has_x2 != 0u) { h += p.beta * (xs[p.x2_off + row + d] * inv_x2 * w_x2[d]); }
      if (p.has_scale != 0u) { h *= s[d]; }
      y[y0 + d] = h;
    }
  }
  if (p.has_out == 0u) { return; } // uniform
  var ss_y = 0.0;
  if (p.out_projected != 0u) { // uniform
    // P . RMSNorm_w(v) = inv_rms(v) * P . (w * v): one pass for the sum of squares and the 4 dots
    var dots = vec4<f32>(0.0);
    for (var d = lid; d < p.dim; d += WG) {
      let v = y[p.y_off + row + d];
      ss_y += v * v;
      let wv = w_out[d] * v;
      dots += wv * vec4<f32>(w_out[p.dim + d], w_out[2u * p.dim + d], w_out[3u * p.dim + d], w_out[4u * p.dim + d]);
    }
    let sums = workgroup_sum_and4(lid, ss_y, dots);
    let logits = sums.v * inverseSqrt(sums.s / f32(p.dim) + p.eps);
    if (lid < 4u) { out[p.out_off + t * 4u + lid] = logits[lid]; }
    return;
  }
  for (var d = lid; d < p.dim; d += WG) {
    let v = y[p.y_off + row + d];
    ss_y += v * v;
  }
  let inv_y = inv_rms(lid, ss_y);
  for (var d = lid; d < p.dim; d += WG) {
    out[p.out_off + row + d] = y[p.y_off + row + d] * inv_y * w_out[d];
  }
}
