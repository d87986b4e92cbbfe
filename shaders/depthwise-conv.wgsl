// Depthwise 2-D convolution (groups = channels) over channels-last (HWC) f32 activations:
//   y[oy, ox, c] = sum_{ky, kx} x[oy * stride - pad_top + ky, ox * stride - pad_left + kx, c] * w[ky, kx, c]
// with x = 0 outside the image (the launcher computes TensorFlow/timm "SAME" padding: the odd row/column after).
// Bindings: 0 params (uniform); 1 x array<vec4<f32>> [H * W * C / 4]; 2 w array<vec4<f32>> [K * K * C / 4] (PyTorch's
// [C, 1, K, K] repacked to [K, K, C], f32: these weights are tiny); 3 y array<vec4<f32>> [OH * OW * C / 4].
// Requires C % 4 == 0. Math f32.
// Tiling: one invocation per (output pixel, 4 channels), channel fastest (neighbouring invocations read
// neighbouring bytes); taps outside the image are masked without branches (branchy hot loops compile very slowly
// on SwiftShader).

struct Params {
  H: u32,
  W: u32,
  C4: u32,
  OH: u32,
  OW: u32,
  K: u32,
  stride: u32,
  pad_top: u32,
  pad_left: u32,
  grid_x: u32, // workgroups per grid row (grids may be 2-D)
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = (wg.y * p.grid_x + wg.x) * WG + lid;
  let c4 = g % p.C4;
  let m = g / p.C4;
  if (m >= p.OH * p.OW) { return; }
  let oy = m / p.OW;
  let ox = m % p.OW;
  var acc = vec4<f32>(0.0);
  for (var ky = 0u; ky < p.K; ky++) {
    let iy = i32(oy * p.stride + ky) - i32(p.pad_top);
    for (var kx = 0u; kx < p.K; kx++) {
      let ix = i32(ox * p.stride + kx) - i32(p.pad_left);
      let inside = (iy >= 0) & (ix >= 0) & (iy < i32(p.H)) & (ix < i32(p.W));
      let xi = select(0u, (u32(iy) * p.W + u32(ix)) * p.C4 + c4, inside);
      acc += select(vec4<f32>(0.0), x[xi], inside) * w[(ky * p.K + kx) * p.C4 + c4];
    }
  }
  y[m * p.C4 + c4] = acc;
}
