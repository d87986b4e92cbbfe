// RMS norm over the channels of each pixel of a channels-last (HWC) f32 tensor, with a fused epilogue:
//   v = alpha * x[m, :];  n[c] = v[c] / sqrt(mean_c(v^2) + eps) * (w[c] if has_weight else 1)
//   EPI 0: y[m, c] = n[c];  EPI 1: y[m, c] = gelu_tanh(n[c]);  EPI 2: y[m, c] += n[c] (residual add into y)
// This is timm's RmsNorm2d (no mean subtraction, weight used as is, eps 1e-6 in MobileNet-V5) followed by what
// comes after every norm of the vision tower: GELU (tanh approximation, tanh_f32 from shaders/lib/tanh.wgsl, which
// clamps its argument), nothing, or the residual sum (a layer scale is folded into w by the caller). alpha scales
// the input before the norm (Gemma 3n's soft tokens are features * sqrt(2048), rounded to f32, then normed).
// Bindings: 0 params (uniform); 1 x array<vec4<f32>> [pixels * C / 4] from x_offset4; 2 w array<vec4<f32>> [C / 4];
// 3 y array<vec4<f32>> [pixels * C / 4] from y_offset4. IN_PLACE: x is y (read through binding 3; WebGPU forbids
// binding one buffer both read-only and writable). Requires C % 4 == 0. Accumulation f32.
// Tiling: one invocation per pixel, two passes over its C / 4 vec4s (sum of squares, then normalise and write).

struct Params {
  pixels: u32,
  C4: u32,
  eps: f32,
  alpha: f32,
  has_weight: u32,
  x_offset4: u32,
  y_offset4: u32,
  grid_x: u32, // workgroups per grid row (grids may be 2-D)
}

override EPI: u32 = 0u;
override IN_PLACE: bool = false;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4<f32>>;

fn load(i: u32) -> vec4<f32> {
  if (IN_PLACE) { return p.alpha * y[p.y_offset4 + i]; }
  return p.alpha * x[p.x_offset4 + i];
}

fn gelu_tanh(v: vec4<f32>) -> vec4<f32> {
  let z = 0.7978845608028654 * (v + 0.044715 * v * v * v);
  return 0.5 * v * (1.0 + vec4<f32>(tanh_f32(z.x), tanh_f32(z.y), tanh_f32(z.z), tanh_f32(z.w)));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m = (wg.y * p.grid_x + wg.x) * WG + lid;
  if (m >= p.pixels) { return; }
  let base = m * p.C4;
  var ss = vec4<f32>(0.0);
  for (var c = 0u; c < p.C4; c++) {
    let v = load(base + c);
    ss += v * v;
  }
  let inv = inverseSqrt((ss.x + ss.y + ss.z + ss.w) / f32(p.C4 * 4u) + p.eps);
  for (var c = 0u; c < p.C4; c++) {
    var v = load(base + c) * inv;
    if (p.has_weight != 0u) { v *= w[c]; }
    let o = p.y_offset4 + base + c;
    switch EPI {
      case 1u: { y[o] = gelu_tanh(v); }
      case 2u: { y[o] += v; }
      default: { y[o] = v; }
    }
  }
}
