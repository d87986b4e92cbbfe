// Shared WGSL function, prepended to the kernels that list it (PipelineSpec.libraries): no bindings.
// PCG-style integer hash (Jarzynski & Olano 2020, "Hash Functions for GPU Rendering"): one 32-bit word to a
// well-mixed word. The sampler draws its uniforms from it (deterministic per seed, row and step) and the quantize
// kernels their synthetic random weights.
fn pcg_hash(v: u32) -> u32 {
  let state = v * 747796405u + 2891336453u;
  let word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
  return (word >> 22u) ^ word;
}
