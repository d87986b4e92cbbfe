// The CPU tiling of conv2d.wgsl (compiled after it, with `enable subgroups`: this file only adds the entry point
// `main_quad` and uses conv2d.wgsl's params, bindings and helpers). See conv2d.wgsl's header, "Tilings".
// Assumes quads are 4 consecutive local invocation indices (lid & ~3): SwiftShader's SIMD lanes; the launcher
// uses this entry point on CPU adapters only.

@compute @workgroup_size(WG)
fn main_quad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
  let g = (wg.y * p.grid_x + wg.x) * WG + lid;
  let nb = g % p.n_blocks;
  let m0 = (g / p.n_blocks) * 16u;
  let M = p.OH * p.OW;
  let real_blocks = p.N >> 2u;
  let n0 = min(nb, real_blocks - 1u) * 4u; // padded blocks compute the last real one and store nothing
  let K = p.KH * p.KW * p.C;
  let C4 = p.C >> 2u;
  // This lane loads pixels m0 + 4 * lane .. + 3 (clamped to the last one) for the whole quad.
  let mine = m0 + (sid & 3u) * 4u;
  var oy: array<u32, 4>;
  var ox: array<u32, 4>;
  for (var i = 0u; i < 4u; i++) {
    let m = min(mine + i, M - 1u);
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
  var a8 = vec4<f32>(0.0);
  var a9 = vec4<f32>(0.0);
  var a10 = vec4<f32>(0.0);
  var a11 = vec4<f32>(0.0);
  var a12 = vec4<f32>(0.0);
  var a13 = vec4<f32>(0.0);
  var a14 = vec4<f32>(0.0);
  var a15 = vec4<f32>(0.0);
  for (var ky = 0u; ky < p.KH; ky++) {
    for (var kx = 0u; kx < p.KW; kx++) {
      let b0 = tap(oy[0], ox[0], ky, kx);
      let b1 = tap(oy[1], ox[1], ky, kx);
      let b2 = tap(oy[2], ox[2], ky, kx);
      let b3 = tap(oy[3], ox[3], ky, kx);
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
        let l0 = xv(b0, c4);
        let l1 = xv(b1, c4);
        let l2 = xv(b2, c4);
        let l3 = xv(b3, c4);
        a0 += mac(quadBroadcast(l0, 0u), wa, wb, wc, wd);
        a1 += mac(quadBroadcast(l1, 0u), wa, wb, wc, wd);
        a2 += mac(quadBroadcast(l2, 0u), wa, wb, wc, wd);
        a3 += mac(quadBroadcast(l3, 0u), wa, wb, wc, wd);
        a4 += mac(quadBroadcast(l0, 1u), wa, wb, wc, wd);
        a5 += mac(quadBroadcast(l1, 1u), wa, wb, wc, wd);
        a6 += mac(quadBroadcast(l2, 1u), wa, wb, wc, wd);
        a7 += mac(quadBroadcast(l3, 1u), wa, wb, wc, wd);
        a8 += mac(quadBroadcast(l0, 2u), wa, wb, wc, wd);
        a9 += mac(quadBroadcast(l1, 2u), wa, wb, wc, wd);
        a10 += mac(quadBroadcast(l2, 2u), wa, wb, wc, wd);
        a11 += mac(quadBroadcast(l3, 2u), wa, wb, wc, wd);
        a12 += mac(quadBroadcast(l0, 3u), wa, wb, wc, wd);
        a13 += mac(quadBroadcast(l1, 3u), wa, wb, wc, wd);
        a14 += mac(quadBroadcast(l2, 3u), wa, wb, wc, wd);
        a15 += mac(quadBroadcast(l3, 3u), wa, wb, wc, wd);
      }
    }
  }
  if (nb >= real_blocks) { return; }
  store(m0, n0, a0);
  store(m0 + 1u, n0, a1);
  store(m0 + 2u, n0, a2);
  store(m0 + 3u, n0, a3);
  store(m0 + 4u, n0, a4);
  store(m0 + 5u, n0, a5);
  store(m0 + 6u, n0, a6);
  store(m0 + 7u, n0, a7);
  store(m0 + 8u, n0, a8);
  store(m0 + 9u, n0, a9);
  store(m0 + 10u, n0, a10);
  store(m0 + 11u, n0, a11);
  store(m0 + 12u, n0, a12);
  store(m0 + 13u, n0, a13);
  store(m0 + 14u, n0, a14);
  store(m0 + 15u, n0, a15);
}
