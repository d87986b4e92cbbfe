// Token sampling on the GPU over logits [B, V] (f32, row b at logits_offset + b * logits_stride); ids >= valid
// (Gemma's pad rows 262144..262399, say) are never chosen. Only out[b] (one u32 per row) goes back to the CPU.
//   greedy (temperature 0, or top_k 1): argmax, ties -> lowest id.
//   otherwise: keep the top_k largest logits (every logit equal to the k-th is kept too, as in HF, up to the
//   candidate capacity), softmax(x / temperature) over them, keep the smallest prefix (by descending logit)
//   whose mass reaches top_p, renormalise and draw with u = hash(seed, row, step) (pcg_hash, shaders/lib: deterministic for
//   a seed, a different stream per row and step).
// Bindings: 0 params (uniform), 1 logits f32, 2 cand_key u32 / 3 cand_idx u32 [B, n_chunks, chunk_cap],
// 4 cand_count u32 [B, n_chunks], 5 out u32 [B], 6 allowed u32 [ceil(vocab / 32)] (read when MASKED).
// MASKED (override): a packed vocabulary bitmask (bit id & 31 of word id >> 5; constrained decoding, one mask
// shared by the batch) removes the ids whose bit is 0 before anything else, exactly as ids >= valid are removed:
// top-k, top-p, the softmax and argmax then run within the allowed set. Unmasked pipelines fold the test away.
// Two passes. `partial`, grid (n_chunks, B): a workgroup holds a chunk of CH = 256 * 16 logits in registers,
// turned into order-preserving u32 keys, and finds the chunk's k-th largest key by radix select (4 passes of
// 8-bit digits: workgroup histogram, block sums, pick the digit); it emits the keys >= that as candidates.
// `finish`, one workgroup per row: radix select again over all candidates for the row's k-th key, gathers the
// <= KMAX survivors in workgroup memory, bitonic-sorts them, scans the softmax weights, cuts at top_p and
// draws. Greedy uses `partial_greedy` (each chunk's argmax) and `finish_greedy` (argmax of those).
// Cost at V = 262,400: one read of the logits spread over 65 workgroups per row, then work ~ 65 * top_k.

struct Params {
  batch: u32,
  vocab: u32,
  valid: u32, // ids >= valid are never chosen
  top_k: u32, // 1..chunk_cap
  top_p: f32, // >= 1: no nucleus cut
  inv_temp: f32,
  seed: u32,
  step: u32,
  n_chunks: u32,
  chunk_cap: u32,
  logits_offset: u32,
  logits_stride: u32,
}

const WG: u32 = 256u;
const EPT: u32 = 16u;
const CH: u32 = WG * EPT;
override KMAX: u32 = 1024u; // survivors `finish` can hold: a power of two in 256..1024, >= top_k
const MAX_PER: u32 = 4u;
override PER: u32 = KMAX / WG; // survivors per thread in the scans

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read_write> cand_key: array<u32>;
@group(0) @binding(3) var<storage, read_write> cand_idx: array<u32>;
@group(0) @binding(4) var<storage, read_write> cand_count: array<u32>;
@group(0) @binding(5) var<storage, read_write> out: array<u32>;
@group(0) @binding(6) var<storage, read> allowed: array<u32>;

override MASKED: bool = false;

var<workgroup> hist: array<atomic<u32>, WG>;
var<workgroup> sfx: array<u32, 16>; // per-16-bin block sums
var<workgroup> sel: vec2<u32>;
var<workgroup> cnt: array<atomic<u32>, 2>;
var<workgroup> rk: array<u32, WG>; // argmax reduction (greedy entry points only)
var<workgroup> ri: array<u32, WG>;
var<workgroup> skey: array<u32, KMAX>;
var<workgroup> sidx: array<u32, KMAX>;
var<workgroup> cum: array<f32, KMAX>;
var<workgroup> tot: array<f32, WG>;
var<workgroup> blk: array<f32, 16>;

// Order-preserving map f32 -> u32 (larger float, larger key). Key 0 is a NaN pattern: used for "no element".
fn f2key(x: f32) -> u32 {
  let b = bitcast<u32>(x);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}

fn key2f(k: u32) -> f32 {
  return bitcast<f32>(select(~k, k & 0x7fffffffu, (k & 0x80000000u) != 0u));
}

// a ranks before b: larger logit, then lower id.
fn better(ka: u32, ia: u32, kb: u32, ib: u32) -> bool {
  return ka > kb || (ka == kb && ia < ib);
}

fn uniform01(row: u32) -> f32 {
  let h = pcg_hash(pcg_hash(pcg_hash(p.seed) + row) + p.step * 0x9e3779b9u);
  return f32(h >> 8u) * (1.0 / 16777216.0);
}

// Workgroup argmax of each thread's (key, id); the winner ends in rk[0], ri[0].
fn wg_argmax(lid: u32, key: u32, idx: u32) {
  rk[lid] = key;
  ri[lid] = idx;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s && better(rk[lid + s], ri[lid + s], rk[lid], ri[lid])) {
      rk[lid] = rk[lid + s];
      ri[lid] = ri[lid + s];
    }
    workgroupBarrier();
  }
}

// After `hist` holds this pass's digit counts: the digit d whose suffix count first reaches `rem` (the rank,
// from the top, of the wanted key among the keys still matching the prefix), and the rank within digit d.
// 16 threads each own 16 bins (sums, then a walk down from the top): two barriers instead of a log-step scan.
fn pick_digit(lid: u32, rem: u32) -> vec2<u32> {
  if (lid < 16u) {
    var s = 0u;
    for (var j = 0u; j < 16u; j++) { s += atomicLoad(&hist[lid * 16u + j]); }
    sfx[lid] = s;
  }
  workgroupBarrier();
  if (lid < 16u) {
    var run = 0u; // keys in higher blocks
    for (var b = lid + 1u; b < 16u; b++) { run += sfx[b]; }
    if (run < rem && run + sfx[lid] >= rem) {
      for (var j = 15i; j >= 0i; j--) {
        let d = lid * 16u + u32(j);
        let h = atomicLoad(&hist[d]);
        if (run + h >= rem) {
          sel = vec2<u32>(d, rem - run);
          break;
        }
        run += h;
      }
    }
  }
  return workgroupUniformLoad(&sel);
}

fn clear_hist(lid: u32) {
  atomicStore(&hist[lid], 0u);
  workgroupBarrier();
}

fn hist_add(key: u32, prefix: u32, pmask: u32, shift: u32) {
  if (key != 0u && (key & pmask) == prefix) { atomicAdd(&hist[(key >> shift) & 255u], 1u); }
}

// Entry points are split by mode so each declares only the workgroup memory it uses (it is zeroed per
// workgroup, which costs real time on software adapters).
fn load_chunk(c: u32, b: u32, lid: u32) -> array<u32, EPT> {
  let base = c * CH;
  let row = p.logits_offset + b * p.logits_stride;
  var keys: array<u32, EPT>;
  for (var e = 0u; e < EPT; e++) {
    let i = base + e * WG + lid; // coalesced
    if (i < p.valid && (!MASKED || ((allowed[i >> 5u] >> (i & 31u)) & 1u) != 0u)) { keys[e] = f2key(logits[row + i]); }
  }
  return keys;
}

// Greedy pass 1: the chunk's argmax as its one candidate.
@compute @workgroup_size(WG)
fn partial_greedy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wg.x;
  let b = wg.y;
  let keys = load_chunk(c, b, lid);
  let slot0 = (b * p.n_chunks + c) * p.chunk_cap;
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var e = 0u; e < EPT; e++) {
    if (keys[e] > bk) { bk = keys[e]; bi = c * CH + e * WG + lid; } // strict: first (lowest) id wins ties
  }
  wg_argmax(lid, bk, bi);
  if (lid == 0u) {
    cand_key[slot0] = rk[0];
    cand_idx[slot0] = ri[0];
    cand_count[b * p.n_chunks + c] = select(0u, 1u, rk[0] != 0u);
  }
}

// Sampling pass 1: the chunk's top_k candidates.
@compute @workgroup_size(WG)
fn partial(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c = wg.x;
  let b = wg.y;
  let base = c * CH;
  let keys = load_chunk(c, b, lid);
  let slot0 = (b * p.n_chunks + c) * p.chunk_cap;

  let n_valid = min(CH, max(p.valid, base) - base);
  var thr = 1u; // emit keys >= thr: every valid key unless the chunk has more than top_k
  if (n_valid > p.top_k) {
    var prefix = 0u;
    var pmask = 0u;
    var rem = p.top_k;
    for (var pass_i = 0u; pass_i < 4u; pass_i++) {
      let shift = 24u - 8u * pass_i;
      clear_hist(lid);
      for (var e = 0u; e < EPT; e++) { hist_add(keys[e], prefix, pmask, shift); }
      workgroupBarrier();
      let s = pick_digit(lid, rem);
      prefix |= s.x << shift;
      pmask |= 255u << shift;
      rem = s.y;
    }
    thr = prefix;
  }
  if (lid == 0u) { atomicStore(&cnt[0], 0u); }
  workgroupBarrier();
  for (var e = 0u; e < EPT; e++) {
    if (keys[e] != 0u && keys[e] >= thr) {
      let slot = atomicAdd(&cnt[0], 1u);
      if (slot < p.chunk_cap) {
        cand_key[slot0 + slot] = keys[e];
        cand_idx[slot0 + slot] = base + e * WG + lid;
      }
    }
  }
  workgroupBarrier();
  if (lid == 0u) { cand_count[b * p.n_chunks + c] = min(atomicLoad(&cnt[0]), p.chunk_cap); }
}

// Greedy pass 2: the best of the chunk argmaxes.
@compute @workgroup_size(WG)
fn finish_greedy(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wg.x;
  let cap = p.chunk_cap;
  let cbase = b * p.n_chunks * cap;
  let count_base = b * p.n_chunks;
  var bk = 0u;
  var bi = 0xffffffffu;
  for (var c = lid; c < p.n_chunks; c += WG) {
    if (cand_count[count_base + c] != 0u) {
      let k = cand_key[cbase + c * cap];
      let i = cand_idx[cbase + c * cap];
      if (better(k, i, bk, bi)) { bk = k; bi = i; }
    }
  }
  wg_argmax(lid, bk, bi);
  if (lid == 0u) { out[b] = ri[0]; }
}

// Sampling pass 2.
@compute @workgroup_size(WG)
fn finish(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wg.x;
  let cap = p.chunk_cap;
  let slots = p.n_chunks * cap;
  let cbase = b * slots;
  let count_base = b * p.n_chunks;

  // Total candidates of the row.
  if (lid == 0u) { atomicStore(&cnt[0], 0u); atomicStore(&cnt[1], 0u); }
  workgroupBarrier();
  var mine = 0u;
  for (var c = lid; c < p.n_chunks; c += WG) { mine += cand_count[count_base + c]; }
  atomicAdd(&cnt[0], mine);
  workgroupBarrier();
  if (lid == 0u) { sel = vec2<u32>(atomicLoad(&cnt[0]), 0u); atomicStore(&cnt[0], 0u); }
  let n_cand = workgroupUniformLoad(&sel).x;

  var thr = 1u;
  if (n_cand > p.top_k) {
    var prefix = 0u;
    var pmask = 0u;
    var rem = p.top_k;
    for (var pass_i = 0u; pass_i < 4u; pass_i++) {
      let shift = 24u - 8u * pass_i;
      clear_hist(lid);
      for (var i = lid; i < slots; i += WG) {
        if (i % cap < cand_count[count_base + i / cap]) { hist_add(cand_key[cbase + i], prefix, pmask, shift); }
      }
      workgroupBarrier();
      let s = pick_digit(lid, rem);
      prefix |= s.x << shift;
      pmask |= 255u << shift;
      rem = s.y;
    }
    thr = prefix;
  }

  // Gather the survivors (cnt[0] was reset above, before the barrier inside workgroupUniformLoad).
  for (var i = lid; i < slots; i += WG) {
    if (i % cap < cand_count[count_base + i / cap]) {
      let k = cand_key[cbase + i];
      if (k >= thr) {
        let slot = atomicAdd(&cnt[0], 1u);
        if (slot < KMAX) {
          skey[slot] = k;
          sidx[slot] = cand_idx[cbase + i];
        }
      }
    }
  }
  workgroupBarrier();
  if (lid == 0u) { sel = vec2<u32>(min(atomicLoad(&cnt[0]), KMAX), 0u); }
  let n = workgroupUniformLoad(&sel).x;
  var np = 1u;
  while (np < n) { np <<= 1u; }
  for (var i = n + lid; i < np; i += WG) {
    skey[i] = 0u;
    sidx[i] = 0xffffffffu;
  }
  workgroupBarrier();

  // Bitonic sort, best first.
  for (var size = 2u; size <= np; size <<= 1u) {
    for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
      for (var i = lid; i < np; i += WG) {
        let j = i ^ stride;
        if (j > i) {
          let ki = skey[i];
          let kj = skey[j];
          let ii = sidx[i];
          let ij = sidx[j];
          if (better(kj, ij, ki, ii) == ((i & size) == 0u)) {
            skey[i] = kj;
            skey[j] = ki;
            sidx[i] = ij;
            sidx[j] = ii;
          }
        }
      }
      workgroupBarrier();
    }
  }

  // Inclusive prefix sums of w_i = exp((x_i - x_0) / temperature): thread lid owns PER consecutive entries.
  let x0 = key2f(skey[0]);
  var local: array<f32, MAX_PER>;
  var run = 0.0;
  for (var e = 0u; e < PER; e++) {
    let i = lid * PER + e;
    if (i < n) { run += exp((key2f(skey[i]) - x0) * p.inv_temp); }
    local[e] = run;
  }
  // Scan of the 256 thread totals: 16 serial block scans, then the 16 block totals (3 barriers).
  tot[lid] = run;
  workgroupBarrier();
  if (lid < 16u) {
    var acc = 0.0;
    for (var j = 0u; j < 16u; j++) {
      acc += tot[lid * 16u + j];
      tot[lid * 16u + j] = acc;
    }
  }
  workgroupBarrier();
  if (lid == 0u) {
    var acc = 0.0;
    for (var b = 0u; b < 16u; b++) {
      blk[b] = acc;
      acc += tot[b * 16u + 15u];
    }
  }
  workgroupBarrier();
  let before = blk[lid / 16u] + select(0.0, tot[max(lid, 1u) - 1u], lid % 16u != 0u);
  for (var e = 0u; e < PER; e++) { cum[lid * PER + e] = local[e] + before; }
  workgroupBarrier();

  // Nucleus: entry i is kept when the mass strictly before it is < top_p (entry 0 always).
  var m = n;
  if (p.top_p < 1.0) {
    let cut = p.top_p * cum[n - 1u];
    var kept = 0u;
    for (var e = 0u; e < PER; e++) {
      let i = lid * PER + e;
      if (i < n && (i == 0u || cum[i - 1u] < cut)) { kept += 1u; }
    }
    atomicAdd(&cnt[1], kept);
    workgroupBarrier();
    if (lid == 0u) { sel = vec2<u32>(max(atomicLoad(&cnt[1]), 1u), 0u); atomicStore(&cnt[1], 0u); }
    m = workgroupUniformLoad(&sel).x;
  }

  // Inverse CDF: the first kept entry whose inclusive sum exceeds u * (kept mass).
  let goal = uniform01(b) * cum[m - 1u];
  var below = 0u;
  for (var e = 0u; e < PER; e++) {
    let i = lid * PER + e;
    if (i < m && cum[i] <= goal) { below += 1u; }
  }
  atomicAdd(&cnt[1], below);
  workgroupBarrier();
  if (lid == 0u) { out[b] = sidx[min(atomicLoad(&cnt[1]), m - 1u)]; }
}
