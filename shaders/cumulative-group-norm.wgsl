// Cumulative group norm + ReLU of Gemma 3n's audio sub-sampler (HF Gemma3nAudioCumulativeGroupNorm, one group),
// on x [T, G] (G = freq x channels, channels last, c = g % C), statistics accumulated over time from t = 0:
//   count_t = (t + 1) G
//   mean_t  = (sum_{s <= t} sum_g x[s, g]) / count_t
//   var_t   = (sum_{s <= t} sum_g (x[s, g] - mean_s)^2) / count_t     (each step centred on ITS OWN running mean)
//   y[t, g] = relu((x[t, g] - mean_t) / sqrt(var_t + eps) * w[c])
// HF ignores the padding mask here (every frame counts), and so do we.
// Five phases, one pipeline each (override PHASE), dispatched in order:
//   0 row_sum:    one workgroup per t: stats[t] = sum_g x[t, g]                      (workgroup_sum, f32)
//   1 scan_mean:  one thread: stats[T + t] = running sum / count_t                   (sequential, like cumsum)
//   2 row_sqdiff: one workgroup per t: stats[t] = sum_g (x[t, g] - stats[T + t])^2
//   3 scan_rstd:  one thread: stats[2T + t] = 1 / sqrt(running sum / count_t + eps)
//   4 apply:      one workgroup per t, in place: x[t, g] = relu((x[t, g] - mean_t) * rstd_t * w[g % C])
// Bindings: 0 params (uniform); 1 x act_t [T, G] (read_write); 2 w f32 [C]; 3 stats f32 [3T] (read_write).

struct Params {
  T: u32,
  G: u32,
  C: u32,
  grid_x: u32,
  eps: f32,
}

override WG: u32 = 256;
override PHASE: u32 = 0u;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> x: array<act_t>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> stats: array<f32>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g_id = wg.y * p.grid_x + wg.x;
  if (PHASE == 0u || PHASE == 2u) {
    let row = g_id;
    if (row >= p.T) { return; } // uniform per workgroup
    let base = row * p.G;
    var sum = 0.0;
    if (PHASE == 0u) {
      for (var i = lid; i < p.G; i += WG) { sum += f32(x[base + i]); }
    } else {
      let mean = stats[p.T + row];
      for (var i = lid; i < p.G; i += WG) {
        let d = f32(x[base + i]) - mean;
        sum += d * d;
      }
    }
    let total = workgroup_sum(lid, sum);
    if (lid == 0u) { stats[row] = total; }
  } else if (PHASE == 1u || PHASE == 3u) {
    if (g_id != 0u || lid != 0u) { return; }
    var running = 0.0;
    for (var t = 0u; t < p.T; t++) {
      running += stats[t];
      let avg = running / (f32(t + 1u) * f32(p.G));
      if (PHASE == 1u) { stats[p.T + t] = avg; } else { stats[2u * p.T + t] = 1.0 / sqrt(avg + p.eps); }
    }
  } else {
    let row = g_id;
    if (row >= p.T) { return; }
    let mean = stats[p.T + row];
    let rstd = stats[2u * p.T + row];
    let base = row * p.G;
    for (var i = lid; i < p.G; i += WG) {
      let v = (f32(x[base + i]) - mean) * rstd * w[i % p.C];
      x[base + i] = act_t(max(v, 0.0));
    }
  }
}
