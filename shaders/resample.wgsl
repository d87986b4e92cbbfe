// Spatial resampling of channels-last (HWC) f32 tensors for MobileNet-V5's multi-scale fusion adapter:
//   entry `nearest`:  y[oy, ox, c_off + c] = x[oy / f, ox / f, c]   (integer upsampling factor f = OH / H; f = 1
//                     copies) into a channel slice of a wider output: channel concatenation is two such writes.
//                     PyTorch's nearest picks floor(dst * in / out), which is oy / f for integer factors.
//   entry `avg_pool`: y[oy, ox, c] = (sum_{dy, dx < f} x[oy * f + dy, ox * f + dx, c]) / (f * f)   (kernel = stride
//                     = f = H / OH, no padding: avg_pool2d when the output divides the input)
// Bindings: 0 params (uniform); 1 x array<vec4<f32>> [H * W * C / 4]; 2 y array<vec4<f32>>, output pixel m's
// channels at m * y_stride4 + y_offset4 (vec4 units). Requires C % 4 == 0. Math f32.
// Tiling: one invocation per (output pixel, 4 channels), channel fastest.

struct Params {
  H: u32,
  W: u32,
  C4: u32,
  OH: u32,
  OW: u32,
  f: u32,
  y_stride4: u32,
  y_offset4: u32,
  grid_x: u32, // workgroups per grid row (grids may be 2-D)
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> y: array<vec4<f32>>;

// The invocation's output item: (channel block, output pixel m, oy, ox); m >= OH * OW past the end.
fn item(wg: vec3<u32>, lid: u32) -> vec4<u32> {
  let g = (wg.y * p.grid_x + wg.x) * WG + lid;
  let m = g / p.C4;
  return vec4<u32>(g % p.C4, m, m / p.OW, m % p.OW);
}

@compute @workgroup_size(WG)
fn nearest(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let it = item(wg, lid);
  let c4 = it.x;
  let m = it.y;
  if (m >= p.OH * p.OW) { return; }
  y[m * p.y_stride4 + p.y_offset4 + c4] = x[((it.z / p.f) * p.W + it.w / p.f) * p.C4 + c4];
}

@compute @workgroup_size(WG)
fn avg_pool(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let it = item(wg, lid);
  let c4 = it.x;
  let m = it.y;
  if (m >= p.OH * p.OW) { return; }
  let oy = it.z;
  let ox = it.w;
  var s = vec4<f32>(0.0);
  for (var dy = 0u; dy < p.f; dy++) {
    for (var dx = 0u; dx < p.f; dx++) {
      s += x[((oy * p.f + dy) * p.W + ox * p.f + dx) * p.C4 + c4];
    }
  }
  y[m * p.y_stride4 + p.y_offset4 + c4] = s / f32(p.f * p.f);
}
