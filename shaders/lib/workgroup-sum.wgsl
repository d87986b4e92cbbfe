// Shared WGSL, prepended to the kernels that list it (PipelineSpec.libraries); no bindings. It uses the kernel's
// `override WG: u32` (the workgroup size, a power of two): WGSL resolves module-scope names in any order.
// workgroup_sum(t, v): the f32 sum of v over the workgroup's WG threads (t = local_invocation_index), a tree
// reduction in workgroup memory; every thread gets the total. Call it in uniform control flow (it has barriers).
var<workgroup> wg_sum_partial: array<f32, WG>;

fn workgroup_sum(t: u32, v: f32) -> f32 {
  wg_sum_partial[t] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (t < s) { wg_sum_partial[t] += wg_sum_partial[t + s]; }
    workgroupBarrier();
  }
  let total = wg_sum_partial[0];
  workgroupBarrier(); // every thread has read slot 0 before a later call may overwrite it
  return total;
}

// workgroup_sum_and4(t, s, v): the sums of s and of v over the workgroup in one tree (one set of barriers, which
// cost more than the adds on CPU adapters); every thread gets both. Same rules as workgroup_sum.
struct WorkgroupSums {
  s: f32,
  v: vec4<f32>,
}

var<workgroup> wg_sum4_partial: array<vec4<f32>, WG>;

fn workgroup_sum_and4(t: u32, s: f32, v: vec4<f32>) -> WorkgroupSums {
  wg_sum_partial[t] = s;
  wg_sum4_partial[t] = v;
  workgroupBarrier();
  for (var k = WG / 2u; k > 0u; k >>= 1u) {
    if (t < k) {
      wg_sum_partial[t] += wg_sum_partial[t + k];
      wg_sum4_partial[t] += wg_sum4_partial[t + k];
    }
    workgroupBarrier();
  }
  let total = WorkgroupSums(wg_sum_partial[0], wg_sum4_partial[0]);
  workgroupBarrier();
  return total;
}
