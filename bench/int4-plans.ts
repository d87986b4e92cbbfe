/**
 * Our own int4 against llama.cpp's Q4_K_M, on gemma3n-tiny-a: mean KL(golden ‖ ours) over every golden position
 * (73, the multimodal case included) and bits per weight, for format plans quantized on the CPU with the exact
 * layouts the GPU uses (test/helpers/quantized-reference.ts `quantizeHeld`: q4/q8 src/model/cpu-quant.ts; q5 and
 * K-quants test/helpers/quantize-search.ts, the search the GPU quantizer follows), run through the float64 CPU
 * reference (test/helpers/reference-gemma3n.ts).
 * The Q4_K_M row replaces every language-model tensor by the file's own dequantized values (the multimodal
 * embedders, which a text GGUF lacks, stay the checkpoint's): llama.cpp's Q4_K_M weights on the same footing.
 * Bits per weight: bytes of every text-decoder matrix in its format (GPU and host PLE table; norms and other 1-D
 * tensors in f32 for both, counted too) × 8 / their parameters; for the file, its tensor bytes over the same set.
 * Usage: node --import ./scripts/register.mjs bench/int4-plans.ts [--only NAME]
 */
import { join } from 'node:path';
import { openSafetensorsCheckpoint } from '../src/io/safetensors.ts';
import { openGemma3nGguf } from '../src/model/gemma3n/gguf.ts';
import { readGgufHeader } from '../src/io/gguf.ts';
import { directoryFiles } from '../src/node/checkpoint-files.ts';
import { fileSource } from '../src/node/file-source.ts';
import { parseGemma3nConfig } from '../src/model/gemma3n/config.ts';
import { familyOf, type Family } from '../src/model/gemma3n/quant-plan.ts';
import { quantizeHeld } from '../test/helpers/quantized-reference.ts';
import { dataBytes, scaleBytes, type WeightFormat } from '../src/formats/weight-format.ts';
import { f16BitsToF32 } from '../src/io/half.ts';
import { loadRefWeights, referenceForward, type RefWeights } from '../test/helpers/reference-gemma3n.ts';
import { fixtureDir, loadGolden, argmax, klDivergence } from '../test/helpers/fixtures.ts';

const only = process.argv.includes('--only') ? process.argv[process.argv.indexOf('--only') + 1] : undefined;
const dir = fixtureDir('gemma3n-tiny-a', ['model.safetensors', 'golden.json']);
const ggufDir = fixtureDir('gguf-gemma3n-tiny-a', ['gemma3n-tiny-a-Q4_K_M.gguf']);
const golden = loadGolden(dir);
const ckpt = await openSafetensorsCheckpoint(directoryFiles(dir));
const cfg = parseGemma3nConfig(ckpt.config);
const w = await loadRefWeights(ckpt);
const shape = (n: string) => ckpt.tensor(n)!.shape;
const LM = 'model.language_model.';
const text = [...w.keys()].filter((n) => n.startsWith(LM));
const L = cfg.text.numLayers;

/** A plan: the format of each tensor (undefined: kept f32 — 1-D tensors and the small family always are). */
type Plan = (name: string, family: Family) => WeightFormat;

/** llama.cpp's "use more bits" layers for attn_v / ffn_down (§3.4). */
const moreBits = (name: string) => {
  const m = /layers\.(\d+)\.(self_attn\.v_proj|mlp\.down_proj)\./.exec(name);
  if (!m) return false;
  const i = Number(m[1]), e = Math.floor(L / 8);
  return i < e || i >= Math.floor((7 * L) / 8) || (i - e) % 3 === 2;
};

function quantized(plan: Plan): { w: RefWeights; bytes: number; params: number } {
  const out: RefWeights = new Map(w);
  let bytes = 0, params = 0;
  for (const name of text) {
    const s = shape(name), values = w.get(name)!;
    params += values.length;
    const family = familyOf(name);
    const format = s.length === 2 && family !== 'small' && family !== 'embedders' ? plan(name, family) : 'f32';
    if (format === 'f32' || format === 'f16') {
      bytes += values.length * (format === 'f32' ? 4 : 2);
      if (format === 'f16') out.set(name, Float32Array.from(values, (v) => f16BitsToF32(f32ToF16(v))));
      continue;
    }
    const [rows, cols] = s;
    bytes += dataBytes(format, rows, cols) + scaleBytes(format, rows, cols);
    out.set(name, quantizeHeld(format, values, rows, cols));
  }
  return { w: out, bytes, params };
}

function f32ToF16(v: number): number {
  const f = new Float32Array([v]);
  const b = new Uint32Array(f.buffer)[0];
  const sign = (b >>> 16) & 0x8000, e = ((b >>> 23) & 255) - 112, m = b & 0x7fffff;
  if (e <= 0) return sign | Math.round((m | 0x800000) / 2 ** (14 - e));
  return sign | ((e << 10) + Math.round(m / 8192));
}

function score(weights: RefWeights): { top1: number; kl: number; n: number } {
  let agree = 0, kl = 0, n = 0;
  for (const gc of golden.cases) {
    const { logits } = referenceForward(cfg, weights, gc.input_ids);
    gc.logits.forEach((g, t) => {
      agree += argmax(logits[t]) === argmax(g) ? 1 : 0;
      kl += klDivergence(g, logits[t]);
      n++;
    });
  }
  return { top1: agree / n, kl: kl / n, n };
}

const report = (name: string, s: { top1: number; kl: number; n: number }, bpw: number, ms?: number) =>
  console.log(`| ${name} | ${bpw.toFixed(3)} | ${s.top1.toFixed(3)} | ${s.kl.toFixed(4)} |${ms === undefined ? '' : ` ${(ms / 1000).toFixed(1)} s CPU quantization |`}`);

console.log(`gemma3n-tiny-a, ${text.length} text tensors; KL over all golden positions\n\n| plan | bits/weight | top-1 | mean KL |\n|---|---|---|---|`);

// llama.cpp's Q4_K_M file.
if (!only || only === 'Q4_K_M') {
  const g = await openGemma3nGguf(await readGgufHeader(fileSource(join(ggufDir, 'gemma3n-tiny-a-Q4_K_M.gguf'))));
  const file: RefWeights = new Map(w);
  let bytes = 0, params = 0;
  for (const name of text) {
    const t = g.tensors.get(name)!;
    file.set(name, await g.readF32(name));
    bytes += t.byteLength;
    params += w.get(name)!.length;
  }
  report("llama.cpp's Q4_K_M file (weights only)", score(file), (8 * bytes) / params);
}

const plans: Record<string, Plan> = {
  'the plan before (q4 attn/mlp/PLE, q8 rest)': (_, f) => ({ attn: 'q4', mlp: 'q4', pleTable: 'q4' } as Record<string, WeightFormat>)[f] ?? 'q8',
  'q4k attn/mlp/PLE, q8 rest': (_, f) => (f === 'attn' || f === 'mlp' || f === 'pleTable' ? 'q4k' : 'q8'),
  'Q4_K_M-like: q4k, v/down more-bits q6k, embed q6k, PLE q6k, altup/laurel/pleProj q8': (n, f) =>
    f === 'embed' || f === 'pleTable' ? 'q6k' : f === 'altup' || f === 'laurel' || f === 'pleProj' ? 'q8' : moreBits(n) ? 'q6k' : 'q4k',
  'Q4_K_M-like, embed q8': (n, f) =>
    f === 'embed' ? 'q8' : f === 'pleTable' ? 'q6k' : f === 'altup' || f === 'laurel' || f === 'pleProj' ? 'q8' : moreBits(n) ? 'q6k' : 'q4k',
  'Q4_K_M-like, PLE q4k': (n, f) =>
    f === 'embed' ? 'q6k' : f === 'pleTable' ? 'q4k' : f === 'altup' || f === 'laurel' || f === 'pleProj' ? 'q8' : moreBits(n) ? 'q6k' : 'q4k',
  'mirror of Q4_K_M incl. its shape fallback (q4k / q5, q6k / q8), altup/laurel/pleProj q8': (n, f) => {
    const whole = shape(n)[1] % 256 === 0;
    if (f === 'altup' || f === 'laurel' || f === 'pleProj') return 'q8';
    if (f === 'embed' || f === 'pleTable' || moreBits(n)) return whole ? 'q6k' : 'q8';
    return whole ? 'q4k' : 'q5';
  },
  'mirror, PLE q4 (absmax, host)': (n, f) => {
    const whole = shape(n)[1] % 256 === 0;
    if (f === 'pleTable') return 'q4';
    if (f === 'altup' || f === 'laurel' || f === 'pleProj') return 'q8';
    if (f === 'embed' || moreBits(n)) return whole ? 'q6k' : 'q8';
    return whole ? 'q4k' : 'q5';
  },
  'mirror, no more-bits layers': (n, f) => {
    const whole = shape(n)[1] % 256 === 0;
    if (f === 'altup' || f === 'laurel' || f === 'pleProj') return 'q8';
    if (f === 'embed' || f === 'pleTable') return whole ? 'q6k' : 'q8';
    return whole ? 'q4k' : 'q5';
  },
  'mirror, altup/laurel/pleProj f16': (n, f) => {
    const whole = shape(n)[1] % 256 === 0;
    if (f === 'altup' || f === 'laurel' || f === 'pleProj') return 'f16';
    if (f === 'embed' || f === 'pleTable' || moreBits(n)) return whole ? 'q6k' : 'q8';
    return whole ? 'q4k' : 'q5';
  },
  'q5k attn/mlp, embed q6k, PLE q6k, rest q8': (_, f) => (f === 'embed' || f === 'pleTable' ? 'q6k' : f === 'attn' || f === 'mlp' ? 'q5k' : 'q8'),
};
for (const [name, plan] of Object.entries(plans)) {
  if (only && !name.includes(only)) continue;
  const t0 = performance.now();
  const q = quantized(plan);
  const ms = performance.now() - t0;
  report(name, score(q.w), (8 * q.bytes) / q.params, ms);
}
