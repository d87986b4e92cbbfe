// Shared WGSL function, prepended to the kernels that list it (PipelineSpec.libraries): no bindings.
// tanh that is finite for every finite input (some implementations return NaN for large |x|) and keeps its
// relative accuracy near 0, where AltUp's router arguments (r / 2048) live (Cephes tanhf: odd polynomial below
// 0.625, 1 - 2 / (e^2x + 1) above).
fn tanh_f32(x: f32) -> f32 {
  let ax = min(abs(x), 10.0); // tanh(10) rounds to 1 in f32
  var r: f32;
  if (ax < 0.625) {
    let z = ax * ax;
    r = ax + ax * z * ((((-5.70498872745e-3 * z + 2.06390887954e-2) * z - 5.37397155531e-2) * z + 1.33314422036e-1) * z - 3.33332819422e-1);
  } else {
    r = 1.0 - 2.0 / (exp(2.0 * ax) + 1.0);
  }
  return select(r, -r, x < 0.0);
}
