// GLU then causal depthwise 1-D convolution: the middle of Gemma 3n's audio light-conv module (HF
// Gemma3nAudioConformerLightConv1d: glu(linear_start(x)) -> pad (K - 1, 0) -> depthwise conv, no bias):
//   g[s, d] = a[s, d] * sigmoid(a[s, D + d])                       (torch glu: first half gated by the second)
//   y[t, d] = sum_{j < K} w[d, j] * g[t - (K - 1) + j, d]          (g = 0 before the clip: causal zero padding)
// Bindings: 0 params (uniform); 1 a act_t [T, 2D] (the linear_start output); 2 w f32 [D, K] (PyTorch's [D, 1, K]);
// 3 y act_t [T, D].
// Tiling: one thread per output element (d fastest: coalesced reads of a and y); the K gated inputs of a column are
// recomputed by each of the K outputs that use them (K = 5; cheaper than a pass over memory). 1-D over a possibly
// 2-D grid of WG-thread workgroups. f32.

struct Params {
  T: u32,
  D: u32,
  K: u32,
  grid_x: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<act_t>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<act_t>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wg.y * p.grid_x + wg.x) * WG + lid;
  if (idx >= p.T * p.D) { return; }
  let t = idx / p.D;
  let d = idx - t * p.D;
  var acc = 0.0;
  for (var j = 0u; j < p.K; j++) {
    let s = i32(t + j) - i32(p.K - 1u);
    if (s < 0) { continue; }
    let row = u32(s) * 2u * p.D;
    let gate = f32(a[row + p.D + d]);
    acc += w[d * p.K + j] * (f32(a[row + d]) / (1.0 + exp(-gate)));
  }
  y[idx] = act_t(acc);
}
