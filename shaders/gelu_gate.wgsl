// Gated MLP activation with Gemma 3n's optional activation sparsity, per token row t of width F:
//   if sparse: mu = mean(g[t, :]), sigma = sqrt(mean((g[t, :] - mu)^2))   (population std, f32)
//              g' = max(0, g - (mu + sigma * kappa))                        (shift then ReLU, not a mask)
//   else:      g' = g
//   y[t, j] = gelu_tanh(g'[j]) * up[t, j]
// gelu_tanh: shaders/lib/gelu-tanh.wgsl (shared with the matmul GEMV's gated epilogue).
// Bindings: 0 params (uniform), 1 gate act_t, 2 up act_t (may be the same buffer as gate, e.g. a fused
// [T, 2F] matmul output with gate at offset 0 and up at offset F, row stride 2F), 3 y act_t (read_write).
// Layout: element (t, j) of each operand at off + t * stride + j.
// Tiling: one workgroup per token row (the cutoff needs the whole row): WG threads stride over F for the
// two statistic passes (mean first, then the centred sum of squares, as torch.std does; f32 tree reductions
// in workgroup memory) and once more for the output. The dense path skips the statistics.

struct Params {
  rows: u32,
  cols: u32,
  g_off: u32,
  g_stride: u32,
  u_off: u32,
  u_stride: u32,
  y_off: u32,
  y_stride: u32,
  sparse: u32,
  kappa: f32,
  groups_x: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gate: array<act_t>;
@group(0) @binding(2) var<storage, read> up: array<act_t>;
@group(0) @binding(3) var<storage, read_write> y: array<act_t>;

var<workgroup> partial: array<f32, WG>;

// Sum of `v` over the workgroup; every thread gets the total. Called uniformly.
fn wg_sum(t: u32, v: f32) -> f32 {
  partial[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { partial[t] += partial[t + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier(); // partial is reused by the next call
  return total;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {
  let row = wg.y * p.groups_x + wg.x;
  if (row >= p.rows) { return; } // uniform per workgroup
  let gb = p.g_off + row * p.g_stride;
  var cutoff = 0.0;
  if (p.sparse != 0u) {
    var s = 0.0;
    for (var j = t; j < p.cols; j += WG) { s += f32(gate[gb + j]); }
    let mu = wg_sum(t, s) / f32(p.cols);
    var s2 = 0.0;
    for (var j = t; j < p.cols; j += WG) {
      let d = f32(gate[gb + j]) - mu;
      s2 += d * d;
    }
    let sigma = sqrt(wg_sum(t, s2) / f32(p.cols));
    cutoff = mu + sigma * p.kappa;
  }
  let ub = p.u_off + row * p.u_stride;
  let yb = p.y_off + row * p.y_stride;
  for (var j = t; j < p.cols; j += WG) {
    var g = f32(gate[gb + j]);
    if (p.sparse != 0u) { g = max(0.0, g - cutoff); }
    y[yb + j] = act_t(gelu_tanh(g) * f32(up[ub + j]));
  }
}
