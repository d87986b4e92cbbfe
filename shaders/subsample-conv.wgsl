// 2-D convolution of Gemma 3n's audio sub-sampler (SSCP), time x frequency, channels last, no bias:
//   y[t, f, o] = sum_{i < KH, j < KW, c < CI} w[i, j, c, o] * x[t * SH + i, f * SW + j - pad_f, c]
// with x = 0 outside [0, t_in) x [0, f_in): HF pads time by (0, KH - 1) at the END ("reverse causal") and frequency
// by (pad_f, pad_f); so t_out = (t_in + KH - 1 - KH) / SH + 1, f_out = (f_in + 2 pad_f - KW) / SW + 1.
// Bindings: 0 params (uniform); 1 x act_t [t_in, f_in, ci]; 2 w vec4<f32> [kh, kw, ci, co4] (PyTorch's
// [co, ci, kh, kw] transposed at load, co padded with zero weights to co4 = 4 * ceil(co / 4)); 3 y act_t
// [t_out, f_out, co].
// Tiling: one thread per (t, f, 4 consecutive output channels), channel blocks fastest: per tap and input channel a
// thread loads one x value (a broadcast within the workgroup) and one vec4 of weights (contiguous across threads)
// for 4 FMAs; it writes the channels < co. 1-D over a possibly 2-D grid of WG-thread workgroups. f32 accumulation.

struct Params {
  t_in: u32,
  f_in: u32,
  ci: u32,
  t_out: u32,
  f_out: u32,
  co: u32,
  kh: u32,
  kw: u32,
  sh: u32,
  sw: u32,
  pad_f: u32,
  grid_x: u32,
}

override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<act_t>;
@group(0) @binding(2) var<storage, read> w: array<vec4<f32>>;
@group(0) @binding(3) var<storage, read_write> y: array<act_t>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wg.y * p.grid_x + wg.x) * WG + lid;
  let co4 = (p.co + 3u) / 4u;
  if (idx >= p.t_out * p.f_out * co4) { return; }
  let o4 = idx % co4;
  let tf = idx / co4;
  let f = tf % p.f_out;
  let t = tf / p.f_out;
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < p.kh; i++) {
    let ti = t * p.sh + i;
    if (ti >= p.t_in) { break; } // the end padding: every later tap is padding too
    for (var j = 0u; j < p.kw; j++) {
      let fj = i32(f * p.sw + j) - i32(p.pad_f);
      if (fj < 0 || fj >= i32(p.f_in)) { continue; }
      let xb = (ti * p.f_in + u32(fj)) * p.ci;
      let wb = (i * p.kw + j) * p.ci * co4 + o4;
      for (var c = 0u; c < p.ci; c++) {
        acc = fma(vec4<f32>(f32(x[xb + c])), w[wb + c * co4], acc);
      }
    }
  }
  let yb = tf * p.co + 4u * o4;
  for (var k = 0u; k < 4u; k++) {
    if (4u * o4 + k < p.co) { y[yb + k] = act_t(acc[k]); }
  }
}
