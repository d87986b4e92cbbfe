// Small elementwise ops over a rows x cols block, selected by the `OP` override (one pipeline per op):
//   OP 0 lincomb:  y = alpha * a + beta * b      (add: 1, 1; axpy: 1, s)
//   OP 1 scale:    y = alpha * a                  (copy: alpha = 1, exact)
//   OP 2 mul_row:  y = alpha * a * w[col]         (row-broadcast vector, w f32)
//   OP 3 softcap:  y = alpha * tanh(a / alpha)    (alpha = cap; a / cap divides, as HF does; tanh_f32 from shaders/lib/tanh.wgsl)
//   OP 4 silu:     y = a / (1 + exp(-a))          (= a * sigmoid(a); exp overflow gives -0 far left, no NaN)
// Bindings: 0 params (uniform), 1 a act_t, 2 b act_t, 3 w f32, 4 y act_t (read_write). Unused inputs are bound
// to a dummy. WebGPU forbids binding one buffer both read-only and writable, so when a (or b) IS the output
// buffer the launcher sets A_IN_Y (B_IN_Y) and the operand is read through the y binding (its own offset and
// stride still apply; regions must then be identical or disjoint).
// Layout: element (r, c) of operand X is at X.offset + r * X.stride + c (strided slices of bigger buffers).
// Tiling: one thread per element, 1-D over a possibly 2-D grid of WG-thread workgroups. Math in f32.

struct Params {
  rows: u32,
  cols: u32,
  a_off: u32,
  a_stride: u32,
  b_off: u32,
  b_stride: u32,
  y_off: u32,
  y_stride: u32,
  alpha: f32,
  beta: f32,
  groups_x: u32,
}

override OP: u32 = 0u;
override A_IN_Y: bool = false;
override B_IN_Y: bool = false;
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<act_t>;
@group(0) @binding(2) var<storage, read> b: array<act_t>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<act_t>;


fn load_a(i: u32) -> f32 {
  if (A_IN_Y) { return f32(y[i]); }
  return f32(a[i]);
}

fn load_b(i: u32) -> f32 {
  if (B_IN_Y) { return f32(y[i]); }
  return f32(b[i]);
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wg.y * p.groups_x + wg.x) * WG + lid;
  if (idx >= p.rows * p.cols) { return; }
  let r = idx / p.cols;
  let c = idx - r * p.cols;
  let av = load_a(p.a_off + r * p.a_stride + c);
  var v: f32;
  switch (OP) {
    case 0u: { v = p.alpha * av + p.beta * load_b(p.b_off + r * p.b_stride + c); }
    case 1u: { v = p.alpha * av; }
    case 2u: { v = p.alpha * av * w[c]; }
    case 3u: { v = p.alpha * tanh_f32(av / p.alpha); }
    default: { v = av / (1.0 + exp(-av)); }
  }
  y[p.y_off + r * p.y_stride + c] = act_t(v);
}
