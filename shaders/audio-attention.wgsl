// Chunked local self-attention of Gemma 3n's audio conformer (HF Gemma3nAudioAttention with its relative position
// embedding), for query t and head n. Time is cut into blocks of W = chunk queries; block u = t / W sees the
// C = W + P + R keys s = u W - P + c, c = 0 .. C - 1 (P = max past horizon = context_left - 1, R = context_right);
// query i = t % W of the block may use key c when i <= c <= i + P + R (so t - P <= s <= t + R), 0 <= s < T and
// valid[s] != 0. Over those C context slots:
//   qs[d]    = q[t, n, d] * q_scale[d]                        (q_scale = head_dim^-0.5 / softplus(0) * softplus(per_dim_scale))
//   logit[c] = cap * tanh((qs . k[s, n] + qs . rel[c - i, n]) / cap)  for usable slots, else -FLT_MAX (HF: finfo.min)
//   p = softmax(logit) over all C slots;  out[t, n, d] = sum_c p[c] * v[s, n, d]  (v = 0 outside [0, T))
// rel[f] (f = 0 .. P + R) is the projected sinusoid of relative position P - f (= t - s), computed at load: this is
// HF's term_bd after its relative shift. A query whose every slot is masked gets HF's answer: all logits equal
// -FLT_MAX, a uniform softmax over the C slots (zeros outside [0, T) included).
// Bindings: 0 params (uniform); 1 q, 2 k, 3 v act_t [T, heads * head_dim]; 4 rel f32 [P + R + 1, heads * head_dim];
// 5 q_scale f32 [head_dim]; 6 valid u32 [T]; 7 out act_t [T, heads * head_dim].
// Tiling: one workgroup per (t, n) (2-D grid: x over t, y over heads); thread c scores slot c (loops when C > WG),
// every thread then reads the C scores for max and sum (C is small: 24 in E2B), thread c turns its score into a
// probability, and threads stride over head_dim for the output. q is staged scaled in workgroup memory
// (head_dim <= MAX_HD, C <= MAX_C). Math in f32; tanh_f32 from shaders/lib/tanh.wgsl.

struct Params {
  T: u32,
  heads: u32,
  head_dim: u32,
  chunk: u32,
  past: u32,
  future: u32,
  context: u32,
  cap: f32,
}

override WG: u32 = 64;
const MAX_HD: u32 = 512u;
const MAX_C: u32 = 256u;
const NEG_MAX: f32 = -3.40282346638528859812e38;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<act_t>;
@group(0) @binding(2) var<storage, read> k: array<act_t>;
@group(0) @binding(3) var<storage, read> v: array<act_t>;
@group(0) @binding(4) var<storage, read> rel: array<f32>;
@group(0) @binding(5) var<storage, read> q_scale: array<f32>;
@group(0) @binding(6) var<storage, read> valid: array<u32>;
@group(0) @binding(7) var<storage, read_write> out: array<act_t>;

var<workgroup> qs: array<f32, MAX_HD>;
var<workgroup> logits: array<f32, MAX_C>;

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let t = wg.x;
  let n = wg.y;
  let H = p.head_dim;
  let width = p.heads * H;
  let row = t * width + n * H;
  for (var d = lid; d < H; d += WG) { qs[d] = f32(q[row + d]) * q_scale[d]; }
  workgroupBarrier();

  let u = t / p.chunk;
  let i = t - u * p.chunk;
  for (var c = lid; c < p.context; c += WG) {
    let s = i32(u * p.chunk + c) - i32(p.past);
    var logit = NEG_MAX;
    if (c >= i && c <= i + p.past + p.future && s >= 0 && s < i32(p.T) && valid[u32(s)] != 0u) {
      let kb = u32(s) * width + n * H;
      let rb = (c - i) * width + n * H;
      var ac = 0.0;
      var bd = 0.0;
      for (var d = 0u; d < H; d++) {
        ac += qs[d] * f32(k[kb + d]);
        bd += qs[d] * rel[rb + d];
      }
      logit = p.cap * tanh_f32((ac + bd) / p.cap);
    }
    logits[c] = logit;
  }
  workgroupBarrier();

  var mx = NEG_MAX;
  for (var c = 0u; c < p.context; c++) { mx = max(mx, logits[c]); }
  var sum = 0.0;
  for (var c = 0u; c < p.context; c++) { sum += exp(logits[c] - mx); }
  workgroupBarrier(); // every thread has read the logits: overwrite them with the probabilities
  for (var c = lid; c < p.context; c += WG) { logits[c] = exp(logits[c] - mx) / sum; }
  workgroupBarrier();
  for (var d = lid; d < H; d += WG) {
    var acc = 0.0;
    for (var c = 0u; c < p.context; c++) {
      let s = i32(u * p.chunk + c) - i32(p.past);
      if (s >= 0 && s < i32(p.T)) { acc += logits[c] * f32(v[u32(s) * width + n * H + d]); }
    }
    out[row + d] = act_t(acc);
  }
}
