// AltUp (Gemma 3n's four residual streams) and the per-layer-input combine; spec §2.3-2.6. All f32.
// Streams are stored stream-major in one buffer: stream i, token t, dim d at i * stream_stride + t * dim + d
// (stream_stride = capacity * dim, so T can shrink below the capacity without moving anything).
// Router logits r [4] per token are W_r . RMSNorm_{w_r}(v): predict computes them itself from x_0 (it holds the row),
// correct reads those of v = g that residual-norm wrote with the layer's output ([T, 4], its out_projected). Both
// take W_r as a router table [5, D] f32: w_r, then W_r's 4 rows (so r = inv_rms(v) * W_r . (w_r * v), one pass).
// The kernels apply HF's 1/D input scale (router_scale) and the f32 tanh (tanh_f32 from shaders/lib/tanh.wgsl).
// Coefficient matrices may be clamped to +-coef_clip (has_clip).
//
// Entry points (each its own pipeline; bindings per entry below):
//  predict:  r = W_r . RMSNorm_{w_r}(x_0), c = W_pred tanh(r / D) (16), x^_i = x_i + sum_k c[4i + k] x_k, and the
//            layer's input norm of the active stream, n = RMSNorm_w(x^_0) (norms: times w directly, eps for both,
//            f32 sums by workgroup_sum).
//            1 x streams (read), 2 router table [5, D], 3 W_pred [16, 4], 4 x^ streams (write), 5 w [D], 6 n [T, D]
//            at norm_off (write).
//  correct:  k = W_corr tanh(r'[t] / D) + 1 (4), x~_i = x^_i + k_i (g - x^_0); optionally u = x~_0 * s.
//            1 x^ streams, 2 r' [T, 4], 3 W_corr [4, 4], 4 g [T, D], 5 s [D], 6 x~ streams (write), 7 u [T, D] (write).
//  rescale:  for targets y_i (n_targets consecutive streams of y from stream y_first):
//            y_i <- y_i * rms(ref) / sqrt(max(mean(y_i^2), 1e-5)) per token row (rms without epsilon), in place,
//            or with write_mean the mean (ref + sum_i y_i) / (1 + n_targets) goes to `mean` [T, D] instead.
//            ref is a [T, D] block at ref_off, in its own buffer or (ref_in_y) in y.
//            1 ref (read), 2 y streams (read_write), 3 mean [T, D] (write).
//  ple_combine: per row of `dim` (T * L rows of 256): z = (RMSNorm_w(pre_scale * proj) + z) * out_scale, z in place.
//            1 proj [rows, dim], 2 w [dim], 3 z [rows, dim] (read_write).
// Tiling: correct: grid (ceil(D / WG), T), one thread per (t, d) doing all four streams; predict: grid (1, T), one
// workgroup per token whose threads stride over d (the router and the norm need the whole row); the 16 (4)
// coefficients of token t are computed once per workgroup into workgroup memory.
// rescale / ple_combine: one workgroup per row (2-D grid when rows > 65535), f32 tree reductions.

override WG: u32 = 256;


struct CoefParams {
  tokens: u32,
  dim: u32,
  stream_stride: u32,
  has_clip: u32,
  router_scale: f32,
  coef_clip: f32,
  has_u: u32,
  eps: f32,      // predict's input norm
  norm_off: u32, // predict: element offset of n's token 0
}


@group(0) @binding(0) var<uniform> cp: CoefParams;
@group(0) @binding(1) var<storage, read> c_x: array<f32>;
@group(0) @binding(2) var<storage, read> c_router: array<f32>;
@group(0) @binding(2) var<storage, read> p_router: array<f32>;
@group(0) @binding(3) var<storage, read> c_coefs: array<f32>;
@group(0) @binding(4) var<storage, read_write> p_out: array<f32>;
@group(0) @binding(4) var<storage, read> c_g: array<f32>;
@group(0) @binding(5) var<storage, read> c_s: array<f32>;
@group(0) @binding(6) var<storage, read_write> c_out: array<f32>;
@group(0) @binding(7) var<storage, read_write> c_u: array<f32>;
@group(0) @binding(5) var<storage, read> p_norm_w: array<f32>;
@group(0) @binding(6) var<storage, read_write> p_normed: array<f32>;

fn clip_coef(w: f32) -> f32 {
  if (cp.has_clip != 0u) { return clamp(w, -cp.coef_clip, cp.coef_clip); }
  return w;
}

var<workgroup> coef: array<f32, 16>;

@compute @workgroup_size(WG)
fn predict(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  if (t >= cp.tokens) { return; } // uniform per workgroup
  let ss = cp.stream_stride;
  let row = t * cp.dim;
  let dim = cp.dim;
  // r = inv_rms(x_0) * W_r . (w_r * x_0): the sum of squares and the 4 dots in one pass over x_0
  var ss0 = 0.0;
  var dots = vec4<f32>(0.0);
  for (var d = lid; d < dim; d += WG) {
    let v = c_x[row + d];
    ss0 += v * v;
    let wv = p_router[d] * v;
    dots += wv * vec4<f32>(p_router[dim + d], p_router[2u * dim + d], p_router[3u * dim + d], p_router[4u * dim + d]);
  }
  let sums = workgroup_sum_and4(lid, ss0, dots);
  let r = sums.v * inverseSqrt(sums.s / f32(dim) + cp.eps);
  if (lid < 16u) {
    var c = 0.0;
    for (var k = 0u; k < 4u; k++) {
      c += clip_coef(c_coefs[lid * 4u + k]) * tanh_f32(r[k] * cp.router_scale);
    }
    coef[lid] = c;
  }
  workgroupBarrier();
  var sum_sq = 0.0;
  for (var d = lid; d < cp.dim; d += WG) {
    let base = row + d;
    let x = vec4<f32>(c_x[base], c_x[base + ss], c_x[base + 2u * ss], c_x[base + 3u * ss]);
    for (var i = 0u; i < 4u; i++) {
      let mix = coef[4u * i] * x.x + coef[4u * i + 1u] * x.y + coef[4u * i + 2u] * x.z + coef[4u * i + 3u] * x.w;
      let v = x[i] + mix;
      p_out[base + i * ss] = v;
      if (i == 0u) { sum_sq += v * v; }
    }
  }
  let inv = inverseSqrt(workgroup_sum(lid, sum_sq) / f32(cp.dim) + cp.eps);
  for (var d = lid; d < cp.dim; d += WG) {
    p_normed[cp.norm_off + row + d] = p_out[row + d] * inv * p_norm_w[d]; // x^_0 as this thread wrote it
  }
}

@compute @workgroup_size(WG)
fn correct(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y;
  if (t >= cp.tokens) { return; }
  if (lid < 4u) {
    var c = 0.0;
    for (var k = 0u; k < 4u; k++) {
      c += clip_coef(c_coefs[lid * 4u + k]) * tanh_f32(c_router[t * 4u + k] * cp.router_scale);
    }
    coef[lid] = c + 1.0;
  }
  workgroupBarrier();
  let d = wg.x * WG + lid;
  if (d >= cp.dim) { return; }
  let ss = cp.stream_stride;
  let base = t * cp.dim + d;
  let x0 = c_x[base];
  let delta = c_g[base] - x0;
  let y0 = delta * coef[0] + x0;
  c_out[base] = y0;
  for (var i = 1u; i < 4u; i++) {
    c_out[base + i * ss] = delta * coef[i] + c_x[base + i * ss];
  }
  if (cp.has_u != 0u) { c_u[base] = y0 * c_s[d]; }
}

struct RescaleParams {
  tokens: u32,
  dim: u32,
  stream_stride: u32,
  n_targets: u32,
  y_first: u32,   // stream index of the first target in y
  ref_off: u32,   // element offset of ref's token 0 (in ref, or in y when ref_in_y)
  ref_in_y: u32,
  write_mean: u32,
  groups_x: u32,
}

@group(0) @binding(0) var<uniform> rp: RescaleParams;
@group(0) @binding(1) var<storage, read> r_ref: array<f32>;
@group(0) @binding(2) var<storage, read_write> r_y: array<f32>;
@group(0) @binding(3) var<storage, read_write> r_mean: array<f32>;

var<workgroup> part4: array<vec4<f32>, WG>;

fn load_ref(i: u32) -> f32 {
  if (rp.ref_in_y != 0u) { return r_y[i]; }
  return r_ref[i];
}

fn sq_target(y0: u32, i: u32, d: u32) -> f32 {
  if (i >= rp.n_targets) { return 0.0; }
  let v = r_y[y0 + i * rp.stream_stride + d];
  return v * v;
}

@compute @workgroup_size(WG)
fn rescale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.y * rp.groups_x + wg.x;
  if (t >= rp.tokens) { return; }
  let row = t * rp.dim;
  let y0 = rp.y_first * rp.stream_stride + row;
  // Sums of squares: .x of ref, .y/.z/.w of targets 0..2.
  var acc = vec4<f32>(0.0);
  for (var d = lid; d < rp.dim; d += WG) {
    let r = load_ref(rp.ref_off + row + d);
    acc.x += r * r;
    acc.y += sq_target(y0, 0u, d);
    acc.z += sq_target(y0, 1u, d);
    acc.w += sq_target(y0, 2u, d);
  }
  part4[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { part4[lid] += part4[lid + s]; }
    workgroupBarrier();
  }
  let n = f32(rp.dim);
  let tot = part4[0];
  let target_mag = sqrt(tot.x / n);
  let new_mag = array<f32, 3>(sqrt(max(tot.y / n, 1e-5)), sqrt(max(tot.z / n, 1e-5)), sqrt(max(tot.w / n, 1e-5)));
  for (var d = lid; d < rp.dim; d += WG) {
    var sum = load_ref(rp.ref_off + row + d);
    for (var i = 0u; i < rp.n_targets; i++) {
      let at = y0 + i * rp.stream_stride + d;
      let v = r_y[at] * target_mag / new_mag[i];
      if (rp.write_mean != 0u) { sum += v; } else { r_y[at] = v; }
    }
    if (rp.write_mean != 0u) { r_mean[row + d] = sum / f32(1u + rp.n_targets); }
  }
}

struct PleParams {
  rows: u32,
  dim: u32,
  pre_scale: f32,
  eps: f32,
  out_scale: f32,
  groups_x: u32,
}

@group(0) @binding(0) var<uniform> lp: PleParams;
@group(0) @binding(1) var<storage, read> l_proj: array<f32>;
@group(0) @binding(2) var<storage, read> l_w: array<f32>;
@group(0) @binding(3) var<storage, read_write> l_z: array<f32>;

var<workgroup> partial: array<f32, WG>;

@compute @workgroup_size(WG)
fn ple_combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.y * lp.groups_x + wg.x;
  if (row >= lp.rows) { return; }
  let base = row * lp.dim;
  var ss = 0.0;
  for (var d = lid; d < lp.dim; d += WG) {
    let v = lp.pre_scale * l_proj[base + d];
    ss += v * v;
  }
  partial[lid] = ss;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { partial[lid] += partial[lid + s]; }
    workgroupBarrier();
  }
  let inv = inverseSqrt(partial[0] / f32(lp.dim) + lp.eps);
  for (var d = lid; d < lp.dim; d += WG) {
    let v = lp.pre_scale * l_proj[base + d];
    l_z[base + d] = (v * inv * l_w[d] + l_z[base + d]) * lp.out_scale;
  }
}
