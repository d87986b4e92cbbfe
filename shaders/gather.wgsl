// Row gather with dequantization: y[t, c] = scale * W[row(t), c] for t < tokens, c < cols.
// Used for the token embedding (scale sqrt(D)) and the per-layer-embedding rows (scale 16).
// W is in one of the formats of src/formats/weight-format.ts, chosen by the FORMAT override
// (0 f32, 1 f16, 2 q4, 3 q8, 4 q4k, 5 q5k, 6 q6k: the K-quant layouts of src/formats/kquant.ts, 7 q5); data and scales are
// read as u32 words (f16 through unpack2x16float; K-quant super-block scales bit-exactly, subnormals included), so
// no variant needs shader-f16. K-quant values are ggml's exactly: d·sc·q and dmin·m are exact f32 products, so
// `d·sc·q − dmin·m` rounds once however the compiler contracts it.
// row(t): with identity = 1 (rows uploaded from the CPU for just these tokens) row t of the bound buffer;
// otherwise id = ids[ids_off + t], and ids >= limit are out of vocabulary: oov_mode 0 reads row `substitute`
// instead (HF's PLE uses row 0), 1 writes zeros, 2 leaves the output row untouched (the multimodal embedders
// write it). A table split into parts is gathered by one dispatch per part; each writes only the tokens whose
// row it holds (row_start <= row < row_start + part_rows), and the dispatch with writes_zero = 1 writes the
// zero rows, so every output row is written exactly once.
// Bindings: 0 params (uniform), 1 ids u32, 2 data u32 words, 3 scales u32 words (q4/q8 f16 pairs, K-quant headers),
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

// f16_bits_to_f32 (exact; unpack2x16float may flush f16 subnormals, ggml's decoder does not): shaders/lib/f16-bits.wgsl.

fn byte_at(word: u32, i: u32) -> u32 { return (word >> (8u * i)) & 255u; }

// Byte i (0..11) of a Q4_K/Q5_K super-block's packed 6-bit scales/mins (scale words hdr + 1 .. hdr + 3).
fn kscale_byte(hdr: u32, i: u32) -> u32 { return byte_at(scales[hdr + 1u + (i >> 2u)], i & 3u); }

// K-quant element c of `row`: G sub-blocks of 32, S super-blocks (kquant.ts layout).
fn load_k(row: u32, c: u32) -> f32 {
  let G = (p.cols + 31u) / 32u;
  let S = (p.cols + 255u) / 256u;
  let j = c >> 5u;
  let e = c & 31u;
  let s = j >> 3u;
  var dw = 4u * G;                        // data words per row
  if (FORMAT == 5u) { dw = (5u * G + 3u) & ~3u; }
  if (FORMAT == 6u) { dw = (6u * G + 3u) & ~3u; }
  let base = row * dw;
  var q = (data[base + 4u * j + (e >> 3u)] >> (4u * (e & 7u))) & 15u;
  if (FORMAT == 5u) { q |= ((data[base + 4u * G + j] >> e) & 1u) << 4u; }
  if (FORMAT == 6u) {
    q |= ((data[base + 4u * G + 2u * j + (e >> 4u)] >> (2u * (e & 15u))) & 3u) << 4u;
    let sw = 4u * S + (S + 1u) / 2u;
    let d = f16_bits_to_f32((scales[row * sw + 4u * S + (s >> 1u)] >> (16u * (s & 1u))) & 0xffffu);
    let t = 2u * (j & 7u) + (e >> 4u);
    let sc = f32(bitcast<i32>(byte_at(scales[row * sw + 4u * s + (t >> 2u)], t & 3u) << 24u) >> 24u);
    return (d * sc) * f32(i32(q) - 32);
  }
  let hdr = row * 4u * S + 4u * s;
  let w0 = scales[hdr];
  let jj = j & 7u;
  var sc: u32;
  var m: u32;
  if (jj < 4u) {
    sc = kscale_byte(hdr, jj) & 63u;
    m = kscale_byte(hdr, jj + 4u) & 63u;
  } else {
    sc = (kscale_byte(hdr, jj + 4u) & 15u) | ((kscale_byte(hdr, jj - 4u) >> 6u) << 4u);
    m = (kscale_byte(hdr, jj + 4u) >> 4u) | ((kscale_byte(hdr, jj) >> 6u) << 4u);
  }
  return (f16_bits_to_f32(w0 & 0xffffu) * f32(sc)) * f32(q) - f16_bits_to_f32(w0 >> 16u) * f32(m);
}

fn scale_half(h: u32) -> u32 { return (scales[h >> 1u] >> (16u * (h & 1u))) & 0xffffu; }

fn load(row: u32, c: u32) -> f32 {
  if (FORMAT == 7u) {
    let block = row * ((p.cols + 31u) / 32u) + (c >> 5u);
    let e = c & 31u;
    let bits = scale_half(3u * block + 1u) | (scale_half(3u * block + 2u) << 16u);
    let q = ((data[block * 4u + (e >> 3u)] >> (4u * (e & 7u))) & 15u) | (((bits >> e) & 1u) << 4u);
    return f32(i32(q) - 16) * f16_bits_to_f32(scale_half(3u * block));
  }
  if (FORMAT >= 4u) { return load_k(row, c); }
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
