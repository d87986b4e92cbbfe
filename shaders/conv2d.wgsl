// 2-D convolution as an implicit GEMM over channels-last (HWC) f32 activations; with a 1x1 kernel on a 1 x M
// "image" it is a plain GEMM (pointwise convolutions, the vision attention's q.k and p.v, projections):
//   y[m, n] (+)= scale[n] * sum_{ky, kx, c} x[iy, ix, c] * W(n, ky, kx, c) + bias[n]
//   m = oy * OW + ox, iy = oy * stride - pad_top + ky, ix = ox * stride - pad_left + kx; x is 0 outside the image
//   (TensorFlow/timm "SAME" padding is pad_top = floor(total / 2) with the odd row at the bottom: the launcher's job).
// Bindings: 0 params (uniform); 1 x array<vec4<f32>> [H * W * C] from x_offset (elements), pixel-major;
// 2 w array<vec2<u32>>: W_KMAJOR = false: W(n, k) at n * K + k, k = (ky * KW + kx) * C + c (PyTorch's
// [out, in, kh, kw] repacked to [out, kh, kw, in]); W_KMAJOR = true: W(n, k) at k * N + n (e.g. V in p.V);
// 3 bias array<f32> [N] (read when has_bias); 4 y array<f32>, y[m, n] at y_offset + m * y_stride + n;
// 5 scale array<f32> [N] (read when has_scale: a layer scale applied before a residual add, as timm orders it).
// Overrides: W_FORMAT 0 f32 (2 words per vec2), 1 f16, 2 bf16 (4 weights per vec2, decoded exactly to f32 in
// registers: bf16 is a 16-bit shift); W_KMAJOR; POINTWISE (1x1, stride 1, no padding: every tap is inside the
// image, so the x loads need no mask: 77 % of the tower's MACs). Requires C % 4 == 0 and N % 4 == 0 (launcher-checked; the stem's 3
// input channels are zero-padded to 4). Math and accumulation are f32.
// Tilings (entry points; the launcher picks one from the adapter, src/kernels/conv2d.ts):
// - `main` (GPUs): one invocation owns 8 output pixels x 4 output channels (8 vec4 accumulators), no workgroup
//   memory and no barrier; per 4 input channels it loads 8 x vec4s and 4 weight vec4s for 32 dot products.
//   Invocations are ordered channel-block fastest, so the 64 invocations of a workgroup share their 8 x rows
//   through the cache.
// - `main_quad` (CPU adapters with subgroups, e.g. SwiftShader, whose SIMD lanes are quads of 4 invocations): one
//   invocation owns 16 pixels x 4 channels and the 4 invocations of a quad share the 16 pixels: each loads 4 of
//   them and quadBroadcast (a register swizzle on a CPU) hands them to the others, so the quad does 16 x loads
//   per 4 input channels instead of 64. On SwiftShader every storage load is a per-lane masked gather that costs
//   ~10 instructions per component; this tile reads ~3x fewer x components per multiply-add and ran 1.7x faster
//   than `main` there (bench/vision.ts --profile). Channel blocks are padded to a multiple of 4 per pixel tile
//   (n_blocks), so a quad always shares its pixels; padded lanes compute clamped channels and store nothing.
//   Quads past the last pixel compute clamped pixels and store nothing: no invocation leaves before the
//   quadBroadcasts (they need the whole quad).
// Both hot loops are written out straight-line (SwiftShader's JIT neither unrolls loops nor keeps private arrays
// in registers).

struct Params {
  H: u32,
  W: u32,
  C: u32,
  OH: u32,
  OW: u32,
  N: u32,
  KH: u32,
  KW: u32,
  stride: u32,
  pad_top: u32,
  pad_left: u32,
  x_offset: u32,   // elements, a multiple of 4
  y_offset: u32,   // elements
  y_stride: u32,   // elements between output pixels (>= N)
  has_bias: u32,
  has_scale: u32,
  accumulate: u32, // 1: y += conv(x)
  n_blocks: u32,   // channel blocks per pixel tile: N / 4 (`main`), padded up to a multiple of 4 (`main_quad`)
  grid_x: u32,     // workgroups per grid row (grids may be 2-D)
}

override W_FORMAT: u32 = 2u;
override W_KMAJOR: bool = false;
override POINTWISE: bool = false;
override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> w: array<vec2<u32>>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;
@group(0) @binding(5) var<storage, read> scale: array<f32>;

// 4 consecutive weights starting at element e (a multiple of 4).
fn w4(e: u32) -> vec4<f32> {
  if (W_FORMAT == 0u) {
    let i = e >> 1u;
    return bitcast<vec4<f32>>(vec4<u32>(w[i], w[i + 1u]));
  }
  let v = w[e >> 2u];
  if (W_FORMAT == 1u) {
    return vec4<f32>(unpack2x16float(v.x), unpack2x16float(v.y));
  }
  return bitcast<vec4<f32>>(vec4<u32>(v.x << 16u, v.x & 0xffff0000u, v.y << 16u, v.y & 0xffff0000u));
}

// Input vec4 index of pixel (iy, ix), channel 0 (in vec4 units), or 0xffffffff when outside the image.
fn tap(oy: u32, ox: u32, ky: u32, kx: u32) -> u32 {
  if (POINTWISE) { return (p.x_offset >> 2u) + (oy * p.OW + ox) * (p.C >> 2u); }
  let iy = i32(oy * p.stride + ky) - i32(p.pad_top);
  let ix = i32(ox * p.stride + kx) - i32(p.pad_left);
  let inside = (iy >= 0) & (ix >= 0) & (iy < i32(p.H)) & (ix < i32(p.W)); // & not &&: no branches (SwiftShader compiles branchy code very slowly)
  return select(0xffffffffu, (p.x_offset >> 2u) + (u32(iy) * p.W + u32(ix)) * (p.C >> 2u), inside);
}

// x vec4 at tap base b (from tap()) plus c4; zero for a tap outside the image (the index is clamped to 0).
fn xv(b: u32, c4: u32) -> vec4<f32> {
  if (POINTWISE) { return x[b + c4]; }
  let ok = b != 0xffffffffu;
  return select(vec4<f32>(0.0), x[select(0u, b + c4, ok)], ok);
}

fn store(m: u32, n: u32, v: vec4<f32>) {
  let M = p.OH * p.OW;
  if (m >= M) { return; }
  let i = p.y_offset + m * p.y_stride + n;
  var r = v;
  if (p.has_scale != 0u) { r *= vec4<f32>(scale[n], scale[n + 1u], scale[n + 2u], scale[n + 3u]); }
  if (p.has_bias != 0u) { r += vec4<f32>(bias[n], bias[n + 1u], bias[n + 2u], bias[n + 3u]); }
  if (p.accumulate != 0u) { r += vec4<f32>(y[i], y[i + 1u], y[i + 2u], y[i + 3u]); }
  y[i] = r.x;
  y[i + 1u] = r.y;
  y[i + 2u] = r.z;
  y[i + 3u] = r.w;
}

// Dot products of one x vec4 (4 input channels of a pixel) with the 4 channel blocks' weights: n-major weights
// are vec4s over k (one per output channel), k-major ones vec4s over n (one per input channel).
fn mac(xv4: vec4<f32>, a: vec4<f32>, b: vec4<f32>, c: vec4<f32>, d: vec4<f32>) -> vec4<f32> {
  if (W_KMAJOR) { return xv4.x * a + xv4.y * b + xv4.z * c + xv4.w * d; }
  return vec4<f32>(dot(xv4, a), dot(xv4, b), dot(xv4, c), dot(xv4, d));
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = (wg.y * p.grid_x + wg.x) * WG + lid;
  let nb = g % p.n_blocks;
  let m0 = (g / p.n_blocks) * 8u;
  let M = p.OH * p.OW;
  if (m0 >= M) { return; }
  let n0 = nb * 4u;
  let K = p.KH * p.KW * p.C;
  let C4 = p.C >> 2u;
  // Output pixels of this invocation; those past M are clamped to the last one (read, never written).
  var oy: array<u32, 8>;
  var ox: array<u32, 8>;
  for (var i = 0u; i < 8u; i++) {
    let m = min(m0 + i, M - 1u);
    oy[i] = m / p.OW;
    ox[i] = m % p.OW;
  }
  var a0 = vec4<f32>(0.0);
  var a1 = vec4<f32>(0.0);
  var a2 = vec4<f32>(0.0);
  var a3 = vec4<f32>(0.0);
  var a4 = vec4<f32>(0.0);
  var a5 = vec4<f32>(0.0);
  var a6 = vec4<f32>(0.0);
  var a7 = vec4<f32>(0.0);
  for (var ky = 0u; ky < p.KH; ky++) {
    for (var kx = 0u; kx < p.KW; kx++) {
      let b0 = tap(oy[0], ox[0], ky, kx);
      let b1 = tap(oy[1], ox[1], ky, kx);
      let b2 = tap(oy[2], ox[2], ky, kx);
      let b3 = tap(oy[3], ox[3], ky, kx);
      let b4 = tap(oy[4], ox[4], ky, kx);
      let b5 = tap(oy[5], ox[5], ky, kx);
      let b6 = tap(oy[6], ox[6], ky, kx);
      let b7 = tap(oy[7], ox[7], ky, kx);
      let k0 = (ky * p.KW + kx) * p.C;
      for (var c4 = 0u; c4 < C4; c4++) {
        let k = k0 + c4 * 4u;
        var wa: vec4<f32>;
        var wb: vec4<f32>;
        var wc: vec4<f32>;
        var wd: vec4<f32>;
        if (W_KMAJOR) {
          wa = w4(k * p.N + n0);
          wb = w4((k + 1u) * p.N + n0);
          wc = w4((k + 2u) * p.N + n0);
          wd = w4((k + 3u) * p.N + n0);
        } else {
          wa = w4(n0 * K + k);
          wb = w4((n0 + 1u) * K + k);
          wc = w4((n0 + 2u) * K + k);
          wd = w4((n0 + 3u) * K + k);
        }
        a0 += mac(xv(b0, c4), wa, wb, wc, wd);
        a1 += mac(xv(b1, c4), wa, wb, wc, wd);
        a2 += mac(xv(b2, c4), wa, wb, wc, wd);
        a3 += mac(xv(b3, c4), wa, wb, wc, wd);
        a4 += mac(xv(b4, c4), wa, wb, wc, wd);
        a5 += mac(xv(b5, c4), wa, wb, wc, wd);
        a6 += mac(xv(b6, c4), wa, wb, wc, wd);
        a7 += mac(xv(b7, c4), wa, wb, wc, wd);
      }
    }
  }
  store(m0, n0, a0);
  store(m0 + 1u, n0, a1);
  store(m0 + 2u, n0, a2);
  store(m0 + 3u, n0, a3);
  store(m0 + 4u, n0, a4);
  store(m0 + 5u, n0, a5);
  store(m0 + 6u, n0, a6);
  store(m0 + 7u, n0, a7);
}

