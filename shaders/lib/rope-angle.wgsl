// Shared WGSL, prepended to the kernels that list it (PipelineSpec.libraries); no bindings.
// cos_sin(phi): (cos(phi), sin(phi)) of a RoPE angle, for the rope and kv-cache kernels.
// Angles: positions reach 1e5 radians, where the spec of WGSL's cos/sin promises nothing (their error bound
// only holds on [-pi, pi]) and real GPUs reduce the argument poorly. So we reduce phi mod pi/2 ourselves
// (Cody-Waite, pi/2 split in four parts: the first three have 7 significant bits so k * part is exact for
// k < 2^17, i.e. phi < ~2e5) and evaluate Cephes' single-precision minimax sin/cos polynomials on
// [-pi/4, pi/4]. Emulated in f32 against double cos/sin over all positions 0..140000 of both bases, the max
// error is 9.3e-8.

const TWO_OVER_PI: f32 = 0.636619772367581;
const PIO2_1: f32 = 1.5625;
const PIO2_2: f32 = 0.0081787109375;
const PIO2_3: f32 = 0.00011730194091796875;
const PIO2_4: f32 = 3.1391647326017846e-7;

// (cos(phi), sin(phi)) to ~1e-7 absolute for |phi| < 2e5.
fn cos_sin(phi: f32) -> vec2<f32> {
  let k = round(phi * TWO_OVER_PI);
  var r = phi - k * PIO2_1;
  r = r - k * PIO2_2;
  r = r - k * PIO2_3;
  r = r - k * PIO2_4;
  let z = r * r;
  let s = r + r * z * ((-1.9515295891e-4 * z + 8.3321608736e-3) * z - 1.6666654611e-1);
  let c = 1.0 - 0.5 * z + z * z * ((2.443315711809948e-5 * z - 1.388731625493765e-3) * z + 4.166664568298827e-2);
  switch (u32(i32(k) & 3)) {
    case 0u: { return vec2<f32>(c, s); }
    case 1u: { return vec2<f32>(-s, c); }
    case 2u: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}
