// Gemma 3n glue kernels that no general kernel family covers (f32 activations; the model keeps its residual
// streams in f32, formats doc §2.11). Entry points, all with the same bindings:
//   0 params (uniform), 1 a: array<f32>, 2 b: array<f32>, 3 c: array<f32>, 4 out: array<f32> (read_write),
//   5 words: array<u32>, 6 scales: array<u32>
// Streams are stored stream-major: stream i, token t, element d at (i * p.stream_rows + t) * p.dim + d.
//
// - embed_gather: out[t, :] = scale * row ids[t] of a GpuWeight part (format FMT: 0 f32, 1 f16, 2 q4, 3 q8; layout
//   in src/kernels/weight-format.ts; `words` = part data, `scales` = part scales, `a` unused); ids come in `b` as
//   u32 bits. An id with the top bit set takes row (id & 0x7fffffff) of `c` instead (precomputed multimodal
//   hard-token embeddings), unscaled. Rows outside [row_start, row_start + rows) are left alone (one dispatch per
//   part). One thread per (t, d).
// - altup_predict: a = streams [A, T, D], b = router logits [T, A] (before tanh), c = prediction coefs [A*A, A];
//   out = predictions: x̂_i = x_i + Σ_k C[i][k] x_k, C = reshape(W_pred · tanh(logits), A x A), row = output stream.
//   One thread per (t, d).
// - altup_correct: a = predictions with A + 1 stream slots (slot A holds the layer output g, written there by the
//   layer's last residual add), b = router logits of g [T, A] (before tanh), c = correction coefs [A, A];
//   out_i = x̂_i + (W_corr · tanh(logits) + 1)_i · (g − x̂_0) (note the +1). One thread per (t, d).
// - rescale: out rows [T, D] at out_offset (stride D) are scaled in place by rms(a row at a_offset) /
//   sqrt(max(mean(out²), 1e-5)) (AltUp stream magnitude matching, §2.4/§2.6). One workgroup per row.
// - argmax: out_u32 = index of the largest a[a_offset .. a_offset + dim) (first on ties); one workgroup; the
//   result is written as u32 bits into out[out_offset].

struct Params {
  tokens: u32,
  dim: u32,
  stream_rows: u32,  // rows between streams (the chunk capacity)
  streams: u32,      // A
  scale: f32,
  row_start: u32,
  rows: u32,
  groups_per_row: u32,
  a_offset: u32,
  out_offset: u32,
}

override FMT: u32 = 0u;
const WG: u32 = 256u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> c: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read> words: array<u32>;
@group(0) @binding(6) var<storage, read> scales: array<u32>;

fn weight_at(r: u32, col: u32) -> f32 {
  if (FMT == 0u) { return bitcast<f32>(words[r * p.dim + col]); }
  if (FMT == 1u) {
    let i = r * p.dim + col;
    return unpack2x16float(words[i >> 1u])[i & 1u];
  }
  let g = col >> 5u;
  let e = col & 31u;
  let blk = r * p.groups_per_row + g;
  let s = unpack2x16float(scales[blk >> 1u])[blk & 1u];
  if (FMT == 2u) {
    let q = (words[blk * 4u + (e >> 3u)] >> (4u * (e & 7u))) & 15u;
    return (f32(q) - 8.0) * s;
  }
  let byte = (words[blk * 8u + (e >> 2u)] >> (8u * (e & 3u))) & 255u;
  return f32(i32(byte << 24u) >> 24u) * s;
}

@compute @workgroup_size(WG)
fn embed_gather(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.tokens * p.dim) { return; }
  let t = i / p.dim;
  let d = i % p.dim;
  let id = bitcast<u32>(b[t]);
  if ((id & 0x80000000u) != 0u) {
    out[i] = c[(id & 0x7fffffffu) * p.dim + d];
    return;
  }
  if (id < p.row_start || id >= p.row_start + p.rows) { return; }
  out[i] = p.scale * weight_at(id - p.row_start, d);
}

fn stream_at(i: u32, t: u32, d: u32) -> u32 {
  return (i * p.stream_rows + t) * p.dim + d;
}

@compute @workgroup_size(WG)
fn altup_predict(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.tokens * p.dim) { return; }
  let t = i / p.dim;
  let d = i % p.dim;
  let A = p.streams;
  var m: array<f32, 4>;
  for (var j = 0u; j < A; j++) { m[j] = tanh(b[t * A + j]); }
  var x: array<f32, 4>;
  for (var k = 0u; k < A; k++) { x[k] = a[stream_at(k, t, d)]; }
  for (var s = 0u; s < A; s++) {
    var acc = x[s];
    for (var k = 0u; k < A; k++) {
      var coef = 0.0;
      for (var j = 0u; j < A; j++) { coef += c[(s * A + k) * A + j] * m[j]; }
      acc += coef * x[k];
    }
    out[stream_at(s, t, d)] = acc;
  }
}

@compute @workgroup_size(WG)
fn altup_correct(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let i = gid.y * nwg.x * WG + gid.x;
  if (i >= p.tokens * p.dim) { return; }
  let t = i / p.dim;
  let d = i % p.dim;
  let A = p.streams;
  // Stream slot A of `a` holds the layer output g.
  let innovation = a[stream_at(A, t, d)] - a[stream_at(0u, t, d)];
  for (var s = 0u; s < A; s++) {
    var coef = 1.0;
    for (var j = 0u; j < A; j++) { coef += c[s * A + j] * tanh(b[t * A + j]); }
    out[stream_at(s, t, d)] = a[stream_at(s, t, d)] + coef * innovation;
  }
}

var<workgroup> sums: array<vec2<f32>, WG>;

@compute @workgroup_size(WG)
fn rescale(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  if (row >= p.tokens) { return; }
  let ya = p.out_offset + row * p.dim;
  let ra = p.a_offset + row * p.dim;
  var acc = vec2<f32>(0.0, 0.0);
  for (var d = lid; d < p.dim; d += WG) {
    let y = out[ya + d];
    let r = a[ra + d];
    acc += vec2<f32>(r * r, y * y);
  }
  sums[lid] = acc;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { sums[lid] += sums[lid + s]; }
    workgroupBarrier();
  }
  let ms = sums[0] / f32(p.dim);
  let factor = sqrt(ms.x) / sqrt(max(ms.y, 1e-5));
  for (var d = lid; d < p.dim; d += WG) { out[ya + d] = out[ya + d] * factor; }
}

var<workgroup> best_v: array<f32, WG>;
var<workgroup> best_i: array<u32, WG>;

@compute @workgroup_size(WG)
fn argmax(@builtin(local_invocation_index) lid: u32) {
  var bv = -3.4e38;
  var bi = 0xffffffffu;
  for (var i = lid; i < p.dim; i += WG) {
    let v = a[p.a_offset + i];
    if (v > bv) { bv = v; bi = i; }
  }
  best_v[lid] = bv;
  best_i[lid] = bi;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let ov = best_v[lid + s];
      let oi = best_i[lid + s];
      if (ov > best_v[lid] || (ov == best_v[lid] && oi < best_i[lid])) { best_v[lid] = ov; best_i[lid] = oi; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) { out[p.out_offset] = bitcast<f32>(best_i[0]); }
}
