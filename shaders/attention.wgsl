// Causal grouped-query attention of T queries (positions p0..p0+T-1) over a KV cache, flash-style with an
// optional split over keys (flash-decoding):
//   out[t, h] = sum_s softmax_s(score(t, h, s)) * V[s, g],  score = cap(scale * q[t, h] . K[s, g]),  g = h / group
// visible keys: s <= p (full, window = 0) or p - window < s <= p (sliding: window keys including the current).
// Key s lives in slot s % capacity (ring for sliding caches). Softmax is online (running max) in f32.
// Bindings: 0 params (uniform); 1 q act_t (token t, head h at q_offset + t*q_stride + h*DH); 2 K cache,
// 3 V cache: vec4<act_t> [capacity, Hkv, DH/4]; 4 out act_t (out_offset + t*out_stride + h*DH);
// 5 part_o vec4<f32> [n_splits, T*H, DH/4] and 6 part_ml f32 [n_splits, T*H, 2] (running max, sum): split scratch.
// Tiling (entry `main`): workgroup (split, row block, kv head). The rows of kv head g are its T*group
// (token, query head) pairs, QB of them per workgroup, so K/V rows are read once for all heads of a group.
// Keys go in tiles of KT = WG/QB: thread (j, r) scores key j for row r (the QB threads of a key are adjacent,
// so their K loads are one broadcast), a tree reduction gives each row's tile max, then thread (r, d4)
// accumulates P.V for 4 output dims (coalesced V reads). With n_splits = 1 the workgroup normalises and writes
// `out`; otherwise it writes its unnormalised partial and running (max, sum), and entry `combine` (one
// workgroup per output row, one thread per 4 dims) merges the splits.

struct Params {
  t_count: u32,
  p0: u32,
  n_heads: u32,
  n_kv: u32,
  group: u32, // n_heads / n_kv
  window: u32, // 0 = full attention
  capacity: u32,
  scale: f32,
  softcap: f32, // 0 = none
  q_offset: u32,
  q_stride: u32,
  out_offset: u32,
  out_stride: u32,
  key_lo: u32, // first key position any query of this step can see
  split_len: u32, // keys per split (a multiple of KT)
  n_splits: u32,
  rows: u32, // t_count * group: query rows per kv head
}

override WG: u32 = 256;
override DH: u32 = 256; // head dim, a multiple of 4
override QB: u32 = 4; // query rows per workgroup: a power of two <= MAX_QB with QB * DH / 4 <= WG * MAX_NI
override KT: u32 = WG / QB; // keys per tile

const MAX_QB: u32 = 16u;
const MAX_NI: u32 = 2u; // output vec4s per thread
const NEG: f32 = -1e30; // "minus infinity" that survives subtraction (exp(NEG - m) == 0)
const MASKED: f32 = -5e29;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> q: array<act_t>;
@group(0) @binding(2) var<storage, read> kc: array<vec4<act_t>>;
@group(0) @binding(3) var<storage, read> vc: array<vec4<act_t>>;
@group(0) @binding(4) var<storage, read_write> out: array<act_t>;
@group(0) @binding(5) var<storage, read_write> part_o: array<vec4<f32>>;
@group(0) @binding(6) var<storage, read_write> part_ml: array<f32>;

// q rows padded by one vec4 so the QB rows read in the same step fall in different banks.
var<workgroup> qs: array<vec4<f32>, QB * (DH / 4u + 1u)>;
var<workgroup> probs: array<f32, WG>; // [j][r]: scores, then probabilities of the current tile
var<workgroup> red: array<f32, WG>; // tree-reduction scratch; red[r] = tile max of row r afterwards

fn first_visible(pos: u32) -> u32 {
  if (p.window == 0u || pos + 1u < p.window) { return 0u; }
  return pos + 1u - p.window;
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let split = wg.x;
  let row0 = wg.y * QB;
  let g = wg.z;
  let D4 = DH / 4u;
  let QS = D4 + 1u;

  for (var i = lid; i < QB * D4; i += WG) {
    let r = i / D4;
    let d4 = i % D4;
    let rr = row0 + r;
    var v = vec4<f32>(0.0);
    if (rr < p.rows) {
      let t = rr / p.group;
      let h = g * p.group + rr % p.group;
      let b = p.q_offset + t * p.q_stride + h * DH + d4 * 4u;
      v = vec4<f32>(f32(q[b]), f32(q[b + 1u]), f32(q[b + 2u]), f32(q[b + 3u]));
    }
    qs[r * QS + d4] = v;
  }

  // Keys this workgroup visits: the union of its rows' windows, cut to its split.
  let row_last = min(row0 + QB, p.rows) - 1u;
  let blk_lo = first_visible(p.p0 + row0 / p.group);
  let blk_hi = p.p0 + row_last / p.group + 1u;
  let s_lo = max(blk_lo, p.key_lo + split * p.split_len);
  let s_hi = min(blk_hi, p.key_lo + (split + 1u) * p.split_len);

  // Scoring role: key j of the tile for row r.
  let j = lid / QB;
  let r = lid % QB;
  let my_row = row0 + r;
  let my_valid = my_row < p.rows;
  let my_pos = p.p0 + my_row / p.group;
  let my_lo = first_visible(my_pos);

  var m_run: array<f32, MAX_QB>;
  for (var i = 0u; i < QB; i++) { m_run[i] = NEG; }
  var acc: array<vec4<f32>, MAX_NI>;
  var l_acc: array<f32, MAX_NI>;
  let NI = (QB * D4 + WG - 1u) / WG;

  workgroupBarrier();
  for (var s0 = s_lo; s0 < s_hi; s0 += KT) {
    let s = s0 + j;
    var score = NEG;
    if (my_valid && s < s_hi && s >= my_lo && s <= my_pos) {
      let kb = ((s % p.capacity) * p.n_kv + g) * D4;
      let qb = r * QS;
      var dotv = vec4<f32>(0.0);
      for (var d = 0u; d < D4; d++) {
        dotv += qs[qb + d] * vec4<f32>(kc[kb + d]);
      }
      score = (dotv.x + dotv.y + dotv.z + dotv.w) * p.scale;
      if (p.softcap > 0.0) { score = p.softcap * tanh(score / p.softcap); }
    }
    red[lid] = score;
    workgroupBarrier();
    for (var st = KT / 2u; st > 0u; st >>= 1u) {
      if (j < st) { red[lid] = max(red[lid], red[lid + st * QB]); }
      workgroupBarrier();
    }
    let m_mine = max(m_run[r], red[r]);
    // Masked keys get exactly 0 (not exp(NEG - NEG) = 1 when a row has seen nothing yet).
    probs[lid] = select(exp(score - m_mine), 0.0, score < MASKED);
    workgroupBarrier();

    let n_keys = min(KT, s_hi - s0);
    for (var k = 0u; k < NI; k++) {
      let item = lid + k * WG;
      if (item < QB * D4) {
        let rr = item / D4;
        let d4 = item % D4;
        let m_new = max(m_run[rr], red[rr]);
        let alpha = exp(m_run[rr] - m_new);
        var a = acc[k] * alpha;
        var l = l_acc[k] * alpha;
        var vb = ((s0 % p.capacity) * p.n_kv + g) * D4 + d4;
        let wrap = p.capacity * p.n_kv * D4;
        let step = p.n_kv * D4;
        for (var jj = 0u; jj < n_keys; jj++) {
          let pw = probs[jj * QB + rr];
          a += pw * vec4<f32>(vc[vb]);
          l += pw;
          vb += step;
          if (vb >= wrap) { vb -= wrap; }
        }
        acc[k] = a;
        l_acc[k] = l;
      }
    }
    for (var i = 0u; i < QB; i++) { m_run[i] = max(m_run[i], red[i]); }
    workgroupBarrier(); // probs and red are rewritten by the next tile
  }

  let rows_all = p.t_count * p.n_heads;
  for (var k = 0u; k < NI; k++) {
    let item = lid + k * WG;
    if (item >= QB * D4) { continue; }
    let rr = item / D4;
    let d4 = item % D4;
    let row = row0 + rr;
    if (row >= p.rows) { continue; }
    let t = row / p.group;
    let h = g * p.group + row % p.group;
    if (p.n_splits == 1u) {
      let o = acc[k] / l_acc[k];
      let b = p.out_offset + t * p.out_stride + h * DH + d4 * 4u;
      out[b] = act_t(o.x);
      out[b + 1u] = act_t(o.y);
      out[b + 2u] = act_t(o.z);
      out[b + 3u] = act_t(o.w);
    } else {
      let prow = split * rows_all + t * p.n_heads + h;
      part_o[prow * D4 + d4] = acc[k];
      if (d4 == 0u) {
        part_ml[prow * 2u] = m_run[rr];
        part_ml[prow * 2u + 1u] = l_acc[k];
      }
    }
  }
}

override CWG: u32 = 64;

// Merges the splits of one output row (t, h): o = sum_i e^(m_i - M) o_i / sum_i e^(m_i - M) l_i.
@compute @workgroup_size(CWG)
fn combine(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wg.x;
  let rows_all = p.t_count * p.n_heads;
  if (row >= rows_all) { return; }
  let D4 = DH / 4u;
  var m = NEG;
  for (var i = 0u; i < p.n_splits; i++) { m = max(m, part_ml[(i * rows_all + row) * 2u]); }
  var l = 0.0;
  for (var i = 0u; i < p.n_splits; i++) {
    let b = (i * rows_all + row) * 2u;
    l += part_ml[b + 1u] * exp(part_ml[b] - m);
  }
  let t = row / p.n_heads;
  let h = row % p.n_heads;
  for (var d4 = lid; d4 < D4; d4 += CWG) {
    var o = vec4<f32>(0.0);
    for (var i = 0u; i < p.n_splits; i++) {
      let w = exp(part_ml[(i * rows_all + row) * 2u] - m);
      o += w * part_o[(i * rows_all + row) * D4 + d4];
    }
    o /= l;
    let b = p.out_offset + t * p.out_stride + h * DH + d4 * 4u;
    out[b] = act_t(o.x);
    out[b + 1u] = act_t(o.y);
    out[b + 2u] = act_t(o.z);
    out[b + 3u] = act_t(o.w);
  }
}
