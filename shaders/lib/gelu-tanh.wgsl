// Shared WGSL function, prepended to the kernels that list it (PipelineSpec.libraries): no bindings.
// gelu_tanh(x) = 0.5 x (1 + tanh(k (x + 0.044715 x^3))), k = sqrt(2/pi), evaluated as the identical
// x / (1 + exp(-2 k (x + 0.044715 x^3))): no tanh (which is NaN for large arguments on some implementations),
// no cancellation in 1 + tanh for negative x, and the exponent is clamped so nothing overflows (exactly 0
// far left, x far right).
fn gelu_tanh(x: f32) -> f32 {
  let u = 1.5957691216057308 * (x + 0.044715 * x * x * x); // 2 sqrt(2/pi) (...)
  // Below u = -80 the true value is < |x| e^-80: 0. The clamp keeps exp finite (and inf out of it).
  return select(x / (1.0 + exp(-clamp(u, -80.0, 80.0))), 0.0, u < -80.0);
}
