// Row softmax in place: y[r, :] = softmax(alpha * y[r, :]) over `cols` columns (row-major, row stride cols).
// The vision tower's attention probabilities: rows = (query pixel, head) pairs, cols = keys, alpha = the query
// scale d^-0.5 (applied to the logits instead of the queries: equal up to f32 rounding, exact for d = 64).
// The row max is subtracted before exp. Bindings: 0 params (uniform); 1 y array<vec4<f32>> (read_write).
// Requires cols % 4 == 0. Math f32.
// Tiling: one invocation per row, three passes over it (max, sum of exponentials, normalise).

struct Params {
  rows: u32,
  cols4: u32,
  alpha: f32,
  grid_x: u32, // workgroups per grid row (grids may be 2-D)
}

override WG: u32 = 64u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> y: array<vec4<f32>>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let r = (wg.y * p.grid_x + wg.x) * WG + lid;
  if (r >= p.rows) { return; }
  let base = r * p.cols4;
  var mx = vec4<f32>(-3.0e38);
  for (var c = 0u; c < p.cols4; c++) { mx = max(mx, p.alpha * y[base + c]); }
  let m = max(max(mx.x, mx.y), max(mx.z, mx.w));
  var s = vec4<f32>(0.0);
  for (var c = 0u; c < p.cols4; c++) { s += exp(p.alpha * y[base + c] - m); }
  let total = s.x + s.y + s.z + s.w;
  for (var c = 0u; c < p.cols4; c++) { y[base + c] = exp(p.alpha * y[base + c] - m) / total; }
}
