// Shared WGSL functions, prepended to the kernels that list them (PipelineSpec.libraries): no bindings.
// Exact conversions between f16 bit patterns (in the low 16 bits of a u32) and f32, needing no shader-f16.
// unpack2x16float may flush f16 subnormals to zero; weight scales can be subnormal (ggml's decoder keeps them), so
// the kernels that must reproduce stored values bit for bit decode through f16_bits_to_f32.

// f16 bits -> f32, exact for every pattern (subnormals, infinities, NaNs). Branch-free: every form is computed
// and one selected (a per-lane branch costs both sides on SIMD CPUs anyway).
fn f16_bits_to_f32(h: u32) -> f32 {
  let e = (h >> 10u) & 0x1fu;
  let m = h & 0x3ffu;
  let sign = (h & 0x8000u) << 16u;
  let subnormal = select(1.0, -1.0, sign != 0u) * f32(m) * 5.9604644775390625e-8; // m * 2^-24
  let normal = bitcast<f32>(sign | ((e + 112u) << 23u) | (m << 13u));
  let special = bitcast<f32>(sign | 0x7f800000u | (m << 13u));
  return select(select(normal, special, e == 31u), subnormal, e == 0u);
}

// f32 -> f16 bits, round to nearest even, overflow to inf (a port of src/io/half.ts f32ToF16Bits, so the two agree
// bit for bit; WGSL's own conversions may round either way).
fn f32_to_f16_bits(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 0x8000u;
  let ex = (x >> 23u) & 0xffu;
  var mant = x & 0x7fffffu;
  if (ex == 0xffu) { return sign | 0x7c00u | select(0u, 0x200u, mant != 0u); }
  var e = i32(ex) - 112; // - 127 + 15
  if (e >= 31) { return sign | 0x7c00u; }
  if (e <= 0) {
    if (e < -10) { return sign; }
    mant |= 0x800000u;
    let shift = u32(14 - e);
    let half = 1u << (shift - 1u);
    var r = mant >> shift;
    let rem = mant & ((1u << shift) - 1u);
    if (rem > half || (rem == half && (r & 1u) != 0u)) { r += 1u; }
    return sign | r;
  }
  var r = mant >> 13u;
  let rem = mant & 0x1fffu;
  if (rem > 0x1000u || (rem == 0x1000u && (r & 1u) != 0u)) {
    r += 1u;
    if (r == 0x400u) {
      r = 0u;
      e += 1;
      if (e >= 31) { return sign | 0x7c00u; }
    }
  }
  return sign | (u32(e) << 10u) | r;
}
