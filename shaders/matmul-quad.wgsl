// The CPU tiling of the prefill GEMM in matmul.wgsl (compiled after it, with `enable subgroups`: this file only adds
// the entry point `gemm_quad` and uses matmul.wgsl's params, bindings, weight tile ws and its staging stage_w).
// Assumes quads are 4 consecutive local invocation indices (lid & ~3) whose quad lane is sid & 3 = lid & 3:
// SwiftShader's SIMD lanes; the launcher uses this entry point on CPU adapters with subgroups only (as conv2d-quad).
//
// gemm_quad: 64 x 64 tiles (N_TILES of them along the features per workgroup, below), K in steps of 64 (two
// sub-blocks of 32 staged per barrier pair: the launcher sets WS_DEPTH 64, the 16 KiB the x tile left; 6-12 % less
// CPU time for q6k / q8 at 2048->2048, q4 / q4k unchanged), of 32 invocations (8 quads); quad q owns tokens 16 (q /
// 2) .. + 15 and features 32 (q % 2) .. + 31 of the tile, its lane l (= lid & 3) the features 32 (q % 2) + l + 4 j, j
// = 0..7: 16 x 8 outputs per invocation (32 vec4 accumulators). Per k each lane loads 4 x values (tokens 16 (q / 2) +
// 4 r + l, distinct across the quad) and its own 8 weights, and quadBroadcast (a register swizzle on a CPU) hands
// each x value to the quad: 12 loads and 16 swizzles per 128 FMAs, every loaded value used, where `gemm_regs` loads
// 16 per 64 FMAs, half of them the same x value in all 4 lanes. x is read straight from its buffer, not staged (only
// the dequantized weights are): staging cost a load and a workgroup store per value on top of the workgroup load,
// each a per-lane masked gather / scatter on SwiftShader. Measured (bench/prefill-gemm.ts, 64 tokens, CPU time, one
// run): q4 / q4k 27-38 % -> 43-46 % of the FMA ceiling at 2048->2048 and 2048->8192.
// Why (measured on SwiftShader; interleaved runs at 2048->2048, 128 tokens, GFLOP per second of process CPU time):
// every workgroup-memory load there is a per-lane masked gather, and the inner loop, not the staging, is the cost.
// This tiling did 1.95 / 1.88 GFLOP per CPU-second (q4 / q4k) where gemm_regs did 1.54 / 1.48; the same quad scheme
// with 16 x 4 outputs per invocation (64 invocations) 1.63 / 1.51, with 8 x 4 (128 invocations) 1.09 / 0.98, with
// 32 x 8 (16 invocations) 1.37 / 1.33. At E2B shapes with 64 tokens (bench/prefill-gemm.ts, README "Prefill GEMM")
// its first version (x staged, 32 deep, one tile per workgroup) reached 36-42 % of the FMA ceiling for q4 / q4k /
// q8, 31-36 % for q6k (whose tile dequantization costs more).
// Every invocation reaches every quadBroadcast: tokens and features past the edges are clamped (rows past T or the
// part are read in bounds, never written); k past K is never read (the k loop stops at K).

// Outputs of token mm, features nn, nn + 4, nn + 8, nn + 12 (components of v), masked to [T, n_part].
fn write_quad4(mm: u32, nn: u32, v: vec4<f32>) {
  if (mm >= p.T) { return; }
  if (nn < p.n_part) { write_y(mm, nn, v.x); }
  if (nn + 4u < p.n_part) { write_y(mm, nn + 4u, v.y); }
  if (nn + 8u < p.n_part) { write_y(mm, nn + 8u, v.z); }
  if (nn + 12u < p.n_part) { write_y(mm, nn + 12u, v.w); }
}

// Outputs of token mm, features nn + 4 j (j = 0..7: the components of lo, then hi), masked to [T, n_part].
fn write_quad8(mm: u32, nn: u32, lo: vec4<f32>, hi: vec4<f32>) {
  write_quad4(mm, nn, lo);
  write_quad4(mm, nn + 16u, hi);
}

// Feature tiles per workgroup, one after another (the launcher's grid has ceil(n_blocks / N_TILES) workgroups per
// token block). Why: on SwiftShader a workgroup has a fixed cost independent of K (CPU time at 64 tokens, N = 2048,
// K = 1024..8192 fits a + b·K per workgroup with a ≈ 1.9 ms, about a quarter of a K = 2048 workgroup's time), which
// is what made 2048->2048 and 2048->8192 slower per FLOP than 8192->2048. Two tiles per workgroup halve that share:
// 2048->2048 q4 / q4k 282 / 352 -> 218 / 240 CPU-ms, 2048->8192 950 / 981 -> 876 / 964 (one interleaved run, load
// 5-8). More tiles would leave too few workgroups for the cores at small N.
const N_TILES = 2u;

@compute @workgroup_size(32)
fn gemm_quad(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sid: u32) {
  let block = wg.y * p.grid_x + wg.x;
  let groups = (p.n_blocks + N_TILES - 1u) / N_TILES; // workgroups per token block
  let m0 = (block / groups) * BM;
  let nb0 = (block % groups) * N_TILES;
  let q = lid / 4u;
  let lane = sid & 3u;
  let tq = 16u * (q / 2u);        // the quad's tokens tq .. tq + 15
  let fq = 32u * (q % 2u) + lane; // this lane's features fq + 4 j, j = 0..7
  // x rows of this lane's tokens tq + lane + 4 r (clamped to T - 1: read in bounds, never written)
  let xr0 = p.x_offset + min(m0 + tq + lane, p.T - 1u) * p.K;
  let xr1 = p.x_offset + min(m0 + tq + lane + 4u, p.T - 1u) * p.K;
  let xr2 = p.x_offset + min(m0 + tq + lane + 8u, p.T - 1u) * p.K;
  let xr3 = p.x_offset + min(m0 + tq + lane + 12u, p.T - 1u) * p.K;
  for (var nb = nb0; nb < min(nb0 + N_TILES, p.n_blocks); nb++) {
    let n0 = nb * BN;
    let nr0 = min(n0 + lid, p.n_part - 1u);
    let nr1 = min(n0 + lid + 32u, p.n_part - 1u);
    var c00 = vec4<f32>(0.0); var c01 = vec4<f32>(0.0);
    var c10 = vec4<f32>(0.0); var c11 = vec4<f32>(0.0);
    var c20 = vec4<f32>(0.0); var c21 = vec4<f32>(0.0);
    var c30 = vec4<f32>(0.0); var c31 = vec4<f32>(0.0);
    var c40 = vec4<f32>(0.0); var c41 = vec4<f32>(0.0);
    var c50 = vec4<f32>(0.0); var c51 = vec4<f32>(0.0);
    var c60 = vec4<f32>(0.0); var c61 = vec4<f32>(0.0);
    var c70 = vec4<f32>(0.0); var c71 = vec4<f32>(0.0);
    var c80 = vec4<f32>(0.0); var c81 = vec4<f32>(0.0);
    var c90 = vec4<f32>(0.0); var c91 = vec4<f32>(0.0);
    var c100 = vec4<f32>(0.0); var c101 = vec4<f32>(0.0);
    var c110 = vec4<f32>(0.0); var c111 = vec4<f32>(0.0);
    var c120 = vec4<f32>(0.0); var c121 = vec4<f32>(0.0);
    var c130 = vec4<f32>(0.0); var c131 = vec4<f32>(0.0);
    var c140 = vec4<f32>(0.0); var c141 = vec4<f32>(0.0);
    var c150 = vec4<f32>(0.0); var c151 = vec4<f32>(0.0);
    let k_tiles = (p.K + BK - 1u) / BK;
    for (var kt = 0u; kt < k_tiles; kt += 2u) {
      stage_w(lid, nr0, kt);
      stage_w(lid + 32u, nr1, kt);
      if (kt + 1u < k_tiles) {
        stage_w(lid + 2048u, nr0, kt + 1u);
        stage_w(lid + 2080u, nr1, kt + 1u);
      }
      workgroupBarrier();
      let k0 = kt * BK;
      let kn = min(2u * BK, p.K - k0);
      for (var k = 0u; k < kn; k++) {
        let x0 = f32(x[xr0 + k0 + k]);
        let x1 = f32(x[xr1 + k0 + k]);
        let x2 = f32(x[xr2 + k0 + k]);
        let x3 = f32(x[xr3 + k0 + k]);
        let wb = k * 64u + fq;
        let b0 = vec4<f32>(ws[wb], ws[wb + 4u], ws[wb + 8u], ws[wb + 12u]);
        let b1 = vec4<f32>(ws[wb + 16u], ws[wb + 20u], ws[wb + 24u], ws[wb + 28u]);
        let a0 = vec4<f32>(quadBroadcast(x0, 0u)); c00 = fma(a0, b0, c00); c01 = fma(a0, b1, c01);
        let a1 = vec4<f32>(quadBroadcast(x0, 1u)); c10 = fma(a1, b0, c10); c11 = fma(a1, b1, c11);
        let a2 = vec4<f32>(quadBroadcast(x0, 2u)); c20 = fma(a2, b0, c20); c21 = fma(a2, b1, c21);
        let a3 = vec4<f32>(quadBroadcast(x0, 3u)); c30 = fma(a3, b0, c30); c31 = fma(a3, b1, c31);
        let a4 = vec4<f32>(quadBroadcast(x1, 0u)); c40 = fma(a4, b0, c40); c41 = fma(a4, b1, c41);
        let a5 = vec4<f32>(quadBroadcast(x1, 1u)); c50 = fma(a5, b0, c50); c51 = fma(a5, b1, c51);
        let a6 = vec4<f32>(quadBroadcast(x1, 2u)); c60 = fma(a6, b0, c60); c61 = fma(a6, b1, c61);
        let a7 = vec4<f32>(quadBroadcast(x1, 3u)); c70 = fma(a7, b0, c70); c71 = fma(a7, b1, c71);
        let a8 = vec4<f32>(quadBroadcast(x2, 0u)); c80 = fma(a8, b0, c80); c81 = fma(a8, b1, c81);
        let a9 = vec4<f32>(quadBroadcast(x2, 1u)); c90 = fma(a9, b0, c90); c91 = fma(a9, b1, c91);
        let a10 = vec4<f32>(quadBroadcast(x2, 2u)); c100 = fma(a10, b0, c100); c101 = fma(a10, b1, c101);
        let a11 = vec4<f32>(quadBroadcast(x2, 3u)); c110 = fma(a11, b0, c110); c111 = fma(a11, b1, c111);
        let a12 = vec4<f32>(quadBroadcast(x3, 0u)); c120 = fma(a12, b0, c120); c121 = fma(a12, b1, c121);
        let a13 = vec4<f32>(quadBroadcast(x3, 1u)); c130 = fma(a13, b0, c130); c131 = fma(a13, b1, c131);
        let a14 = vec4<f32>(quadBroadcast(x3, 2u)); c140 = fma(a14, b0, c140); c141 = fma(a14, b1, c141);
        let a15 = vec4<f32>(quadBroadcast(x3, 3u)); c150 = fma(a15, b0, c150); c151 = fma(a15, b1, c151);
      }
      workgroupBarrier();
    }
    write_quad8(m0 + tq + 0u, n0 + fq, c00, c01);
    write_quad8(m0 + tq + 1u, n0 + fq, c10, c11);
    write_quad8(m0 + tq + 2u, n0 + fq, c20, c21);
    write_quad8(m0 + tq + 3u, n0 + fq, c30, c31);
    write_quad8(m0 + tq + 4u, n0 + fq, c40, c41);
    write_quad8(m0 + tq + 5u, n0 + fq, c50, c51);
    write_quad8(m0 + tq + 6u, n0 + fq, c60, c61);
    write_quad8(m0 + tq + 7u, n0 + fq, c70, c71);
    write_quad8(m0 + tq + 8u, n0 + fq, c80, c81);
    write_quad8(m0 + tq + 9u, n0 + fq, c90, c91);
    write_quad8(m0 + tq + 10u, n0 + fq, c100, c101);
    write_quad8(m0 + tq + 11u, n0 + fq, c110, c111);
    write_quad8(m0 + tq + 12u, n0 + fq, c120, c121);
    write_quad8(m0 + tq + 13u, n0 + fq, c130, c131);
    write_quad8(m0 + tq + 14u, n0 + fq, c140, c141);
    write_quad8(m0 + tq + 15u, n0 + fq, c150, c151);
  }
}
