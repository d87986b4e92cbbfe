// Row gather with dequantization: y[t, c] = scale * W[row(t), c] for t < tokens, c < cols.
// Used for the token embedding (scale sqrt(D)) and the per-layer-embedding rows (scale 16).
// W is in one of the formats of src/kernels/weight-format.ts, chosen by the FORMAT override
// (0 f32, 1 f16, 2 q4, 3 q8); data and scales are read as u32 words (f16 through unpack2x16float), so no
// variant needs shader-f16.
// row(t): with identity = 1 (rows uploaded from the CPU for just these tokens) row t of the bound buffer;
// otherwise id = ids[ids_off + t], and ids >= limit are out of vocabulary: oov_mode 0 reads row `substitute`
// instead (HF's PLE uses row 0), 1 writes zeros, 2 leaves the output row untouched (the multimodal embedders
// write it). A table split into parts is gathered by one dispatch per part; each writes only the tokens whose
// row it holds (row_start <= row < row_start + part_rows), and the dispatch with writes_zero = 1 writes the
// zero rows, so every output row is written exactly once.
// Bindings: 0 params (uniform), 1 ids u32, 2 data u32 words, 3 scales u32 words (f16 pairs; q4/q8 only),
// 4 y act_t (read_write), element (t, c) at y_off + t * y_stride + c.
// Tiling: one thread per output element, 1-D over a possibly 2-D grid. q4/q8 threads of one group read the
// same 16/32-byte block, so a warp's loads coalesce.

struct Params {
  tokens: u32,
  cols: u32,
  row_start: u32,
  part_rows: u32,
  limit: u32,
  oov_mode: u32,
  substitute: u32,
  writes_zero: u32,
  identity: u32,
  ids_off: u32,
  y_off: u32,
  y_stride: u32,
  scale: f32,
  groups_x: u32,
}

override FORMAT: u32 = 0u;
override WG: u32 = 256;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> ids: array<u32>;
@group(0) @binding(2) var<storage, read> data: array<u32>;
@group(0) @binding(3) var<storage, read> scales: array<u32>;
@group(0) @binding(4) var<storage, read_write> y: array<act_t>;

fn group_scale(s: u32) -> f32 {
  return unpack2x16float(scales[s >> 1u])[s & 1u];
}

fn load(row: u32, c: u32) -> f32 {
  switch (FORMAT) {
    case 0u: { return bitcast<f32>(data[row * p.cols + c]); }
    case 1u: {
      let i = row * p.cols + c;
      return unpack2x16float(data[i >> 1u])[i & 1u];
    }
    case 2u: {
      let block = row * ((p.cols + 31u) / 32u) + (c >> 5u);
      let e = c & 31u;
      let q = (data[block * 4u + (e >> 3u)] >> (4u * (e & 7u))) & 15u;
      return (f32(q) - 8.0) * group_scale(block);
    }
    default: {
      let block = row * ((p.cols + 31u) / 32u) + (c >> 5u);
      let e = c & 31u;
      let b = (data[block * 8u + (e >> 2u)] >> (8u * (e & 3u))) & 255u;
      return f32(bitcast<i32>(b << 24u) >> 24u) * group_scale(block);
    }
  }
}

@compute @workgroup_size(WG)
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wg.y * p.groups_x + wg.x) * WG + lid;
  if (idx >= p.tokens * p.cols) { return; }
  let t = idx / p.cols;
  let c = idx - t * p.cols;
  let out = p.y_off + t * p.y_stride + c;
  var row = t;
  if (p.identity == 0u) {
    var id = ids[p.ids_off + t];
    if (id >= p.limit) {
      if (p.oov_mode == 1u) {
        if (p.writes_zero != 0u) { y[out] = act_t(0.0); }
        return;
      }
      if (p.oov_mode == 2u) { return; }
      id = p.substitute;
    }
    if (id < p.row_start || id - p.row_start >= p.part_rows) { return; }
    row = id - p.row_start;
  }
  y[out] = act_t(p.scale * load(row, c));
}
