/**
 * Bytes moved by a MatFormer slice of E4B vs loading E4B whole: the random E4B-shaped checkpoint
 * (src/model/gemma3n/random-checkpoint.ts: real shapes, bf16) served as one virtual `model.safetensors` through a
 * byte counter, opened with the real safetensors reader, cut with the real slicer, and read exactly as the Gemma 3n
 * loader reads it (src/model/gemma3n/weights.ts: every tensor of the tensor table whole, the hard-token embedders,
 * the PLE table in the same row chunks as PleTable.load). No GPU and no conversion: the bytes and requests are the
 * load's, the data are zeros.
 *
 * Per readGap (ByteSource.readGap: gaps a strided read reads through instead of starting another read): 0 = only
 * the slice's bytes, one read per row run of a strided tensor (memory); 64 KiB = local files (Blob, Node file);
 * 256 KiB = HTTP (src/io/http-source.ts; one request per 16 MiB chunk of a read). 4 KiB shows the middle ground.
 * Usage: node --import ./scripts/register.mjs bench/matformer-bytes.ts [--sizes E4B,E2B,E2.54B] [--gaps 0,4096,65536,262144]
 */
import type { ByteSource } from '../src/io/byte-source.ts';
import { memorySource } from '../src/io/byte-source.ts';
import { openSafetensorsCheckpoint, type CheckpointFiles } from '../src/io/safetensors.ts';
import type { Checkpoint } from '../src/io/checkpoint.ts';
import { tableSpecs } from '../src/model/tensor-table.ts';
import { parseGemma3nConfig } from '../src/model/gemma3n/config.ts';
import { gemma3nTensorTable, PLE_TABLE } from '../src/model/gemma3n/tensors.ts';
import { sliceGemma3n } from '../src/model/gemma3n/matformer.ts';
import { createRandomCheckpoint } from '../src/model/gemma3n/random-checkpoint.ts';

const arg = (k: string, d: string) => { const i = process.argv.indexOf(`--${k}`); return i > 0 ? process.argv[i + 1] : d; };
const sizes = arg('sizes', 'E4B,E2B,E2.54B').split(',');
const gaps = arg('gaps', '0,4096,65536,262144').split(',').map(Number);
const HTTP_CHUNK = 16 * 1024 * 1024;

/** The checkpoint as one safetensors file: a real header, zero data. */
function virtualSafetensors(ckpt: Checkpoint): { bytes: number; source: (gap: number, count: Counter) => ByteSource } {
  const header: Record<string, unknown> = {};
  let offset = 0;
  for (const name of ckpt.tensorNames()) {
    const { shape } = ckpt.tensor(name)!;
    const n = shape.reduce((a, b) => a * b, 1) * 2;
    header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + n] };
    offset += n;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8);
  const head = new Uint8Array(8 + json.length);
  new DataView(head.buffer).setBigUint64(0, BigInt(json.length), true);
  head.set(new TextEncoder().encode(json), 8);
  const size = head.length + offset;
  return {
    bytes: offset,
    source: (gap, count) => ({
      name: 'model.safetensors',
      readGap: gap,
      size: async () => size,
      read: async (o, n) => {
        const out = new Uint8Array(n);
        if (o < head.length) out.set(head.subarray(o, Math.min(head.length, o + n)));
        else {
          count.reads++;
          count.requests += Math.ceil(n / HTTP_CHUNK);
          count.bytes += n;
        }
        return out;
      },
    }),
  };
}

interface Counter {
  reads: number;
  requests: number;
  bytes: number;
}

/** Reads what loadWeights reads, in its order and granularity. */
async function loaderReads(ckpt: Checkpoint): Promise<void> {
  const c = parseGemma3nConfig(ckpt.config).text;
  for (const spec of tableSpecs(gemma3nTensorTable(c))) await ckpt.read(spec.name);
  for (const prefix of ['model.embed_vision.', 'model.embed_audio.']) {
    for (const n of ['embedding.weight', 'hard_embedding_norm.weight', 'embedding_projection.weight']) if (ckpt.tensor(prefix + n)) await ckpt.read(prefix + n);
  }
  const cols = ckpt.tensor(PLE_TABLE)!.shape[1];
  const chunk = Math.max(1, Math.floor((32 * 1024 * 1024) / (cols * 4)));
  for (let r = 0; r < c.vocabSizePerLayerInput; r += chunk) await ckpt.read(PLE_TABLE, { start: r, count: Math.min(chunk, c.vocabSizePerLayerInput - r) });
}

const random = createRandomCheckpoint({ preset: 'e4b' });
const file = virtualSafetensors(random);
const GB = (b: number) => (b / 1e9).toFixed(2);
console.log(`random E4B as bf16 safetensors: ${GB(file.bytes)} GB of tensors (text decoder + hard-token embedders; the real repo adds the audio and vision towers, which no text load reads)`);
console.log('\n| size | readGap | bytes read | vs E4B whole | reads | HTTP requests (16 MiB chunks) | time |');
console.log('|---|---|---|---|---|---|---|');
const whole = new Map<number, number>();
for (const size of sizes) {
  for (const gap of gaps) {
    const count: Counter = { reads: 0, requests: 0, bytes: 0 };
    const files: CheckpointFiles = {
      name: 'random-e4b',
      exists: async (p) => p === 'config.json' || p === 'model.safetensors',
      open: (p) => (p === 'config.json' ? memorySource(p, new TextEncoder().encode(JSON.stringify(random.config))) : file.source(gap, count)),
    };
    const t0 = performance.now();
    const opened = await openSafetensorsCheckpoint(files);
    const ckpt = size === 'whole' ? opened : sliceGemma3n(opened, size).checkpoint;
    await loaderReads(ckpt);
    const s = (performance.now() - t0) / 1000;
    if (size === 'E4B' || size === 'whole') whole.set(gap, count.bytes);
    const ratio = whole.has(gap) ? `${((100 * count.bytes) / whole.get(gap)!).toFixed(1)} %` : '—';
    console.log(`| ${size} | ${gap} | ${GB(count.bytes)} GB (${count.bytes}) | ${ratio} | ${count.reads} | ${count.requests} | ${s.toFixed(1)} s |`);
  }
}
