/**
 * MatFormer slicing without a GPU (src/model/gemma3n/matformer.ts, src/io/checkpoint-view.ts, strided reads):
 * - every slice of gemma3n-matformer-tiny-a recomputes exactly the README's text_config_after, and each view tensor
 *   holds exactly the README's rule applied to the full tensor (gate/up row prefixes, down column prefix, the kept
 *   layers' PLE column groups and projection row groups, renumbered layers), from safetensors and from the F32 GGUF;
 * - a slice of a slice equals the slice of the original (what serving a size from a cached bigger slice relies on);
 * - refusals, each a GemmaError naming the problem: a KV producer skipped, a width off the block (32; 256 for a
 *   K-quant ffn_down), more (or fewer) widths than kept layers, a published E4B size on a 6-layer model, a layer a
 *   cached slice does not hold;
 * - the published table: 16 configurations, our effective-parameter count reproduces E2B's and E4B's published
 *   1.91 B / 3.98 B and lies within 0.02 B of every other row;
 * - strided reads: the bytes equal picking from whole rows, runs closer than the source's readGap are read in one
 *   request, and column runs of quantized GGUF blocks (Q8_0 PLE groups of 16 inside 32-blocks) dequantize exactly.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { openGgufCheckpoint } from '../../src/model/registry.ts';
import { readF32, type Checkpoint } from '../../src/io/checkpoint.ts';
import { readStrided } from '../../src/io/strided-read.ts';
import type { ByteSource } from '../../src/io/byte-source.ts';
import { GemmaError } from '../../src/errors.ts';
import { sliceGemma3n, effectiveParams } from '../../src/model/gemma3n/matformer.ts';
import { E4B_SLICING_CONFIGS } from '../../src/model/gemma3n/matformer-configs.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { randomGemma3nConfig } from '../../src/model/gemma3n/random-checkpoint.ts';
import { fixtureDir } from '../helpers/fixtures.ts';

interface SliceGolden {
  name: string;
  skip_layers: number[];
  kept_layers: number[];
  ffn_widths: number[];
  text_config_after: Record<string, unknown>;
}

const tinyDir = fixtureDir('gemma3n-tiny-a', ['model.safetensors', 'config.json']);
const slices = (JSON.parse(readFileSync(join(fixtureDir('gemma3n-matformer-tiny-a', ['golden.json']), 'golden.json'), 'utf8')) as { slices: SliceGolden[] }).slices;
const ggufDir = fixtureDir('gguf-gemma3n-tiny-a', ['gemma3n-tiny-a-F32.gguf', 'gemma3n-tiny-a-Q8_0.gguf', 'gemma3n-tiny-a-Q4_K_M.gguf']);
const LM = 'model.language_model.';

const openTiny = () => openSafetensorsCheckpoint(directoryFiles(tinyDir));
const openGguf = (type: string) => openGgufCheckpoint(fileSource(join(ggufDir, `gemma3n-tiny-a-${type}.gguf`)));
const sizeOf = (s: SliceGolden) => ({ skipLayers: s.skip_layers, ffnWidths: s.ffn_widths });
const textOf = (config: unknown) => {
  const c = config as Record<string, unknown>;
  return (c.model_type === 'gemma3n' ? c.text_config : c) as Record<string, unknown>;
};

/** Expected values of a sliced tensor, cut from the full one by the README's rules. */
async function expected(full: Checkpoint, s: SliceGolden, name: string): Promise<Float32Array> {
  const P = 16;
  const layer = /^model\.language_model\.layers\.(\d+)\.(.+)$/.exec(name);
  if (layer) {
    const i = Number(layer[1]);
    const old = s.kept_layers[i];
    const w = s.ffn_widths[i];
    const src = `${LM}layers.${old}.${layer[2]}`;
    const v = await readF32(full, src);
    const [rows, cols] = full.tensor(src)!.shape;
    if (layer[2] === 'mlp.gate_proj.weight' || layer[2] === 'mlp.up_proj.weight') return v.slice(0, w * cols);
    if (layer[2] === 'mlp.down_proj.weight') return Float32Array.from({ length: rows * w }, (_, k) => v[Math.floor(k / w) * cols + (k % w)]);
    return v;
  }
  const v = await readF32(full, name);
  if (name === `${LM}embed_tokens_per_layer.weight`) {
    const [rows, cols] = full.tensor(name)!.shape;
    const width = s.kept_layers.length * P;
    return Float32Array.from({ length: rows * width }, (_, k) => {
      const r = Math.floor(k / width), c = k % width;
      return v[r * cols + s.kept_layers[Math.floor(c / P)] * P + (c % P)];
    });
  }
  if (name === `${LM}per_layer_model_projection.weight`) {
    const D = full.tensor(name)!.shape[1];
    return Float32Array.from({ length: s.kept_layers.length * P * D }, (_, k) => {
      const r = Math.floor(k / D), c = k % D;
      return v[(s.kept_layers[Math.floor(r / P)] * P + (r % P)) * D + c];
    });
  }
  return v;
}

for (const [label, open] of [['safetensors', openTiny], ['F32 GGUF', () => openGguf('F32')]] as const) {
  test(`${label}: every fixture slice recomputes text_config_after and cuts every tensor by the README's rules`, async () => {
    const full = await open();
    for (const s of slices) {
      const { checkpoint, slice } = sliceGemma3n(full, sizeOf(s));
      const t = textOf(checkpoint.config);
      for (const [k, v] of Object.entries(s.text_config_after)) assert.deepEqual(t[k], v, `${s.name}: ${k}`);
      assert.deepEqual(slice.skippedLayers, s.skip_layers);
      assert.deepEqual(slice.ffnWidths, s.ffn_widths);
      assert.equal(slice.layers, s.kept_layers.length);
      assert.equal(slice.effectiveParams, effectiveParams(parseGemma3nConfig(checkpoint.config).text));
      const names = checkpoint.tensorNames();
      assert.equal(names.filter((n) => n.startsWith(`${LM}layers.`)).length, full.tensorNames().filter((n) => n.startsWith(`${LM}layers.`)).length / 6 * s.kept_layers.length);
      for (const name of names) {
        const got = await readF32(checkpoint, name);
        const want = await expected(full, s, name);
        assert.equal(got.length, want.length, `${s.name} ${name}: length`);
        assert.ok(got.every((x, i) => x === want[i]), `${s.name} ${name}: values`);
        assert.equal(got.length, checkpoint.tensor(name)!.shape.reduce((a, b) => a * b, 1), `${s.name} ${name}: shape`);
      }
      // Row ranges of a sliced table read the same values as the whole (the PLE table is loaded in row chunks).
      const ple = `${LM}embed_tokens_per_layer.weight`;
      const cols = checkpoint.tensor(ple)!.shape[1];
      const whole = await readF32(checkpoint, ple);
      const part = await readF32(checkpoint, ple, { start: 100, count: 37 });
      assert.deepEqual(part, whole.slice(100 * cols, 137 * cols));
    }
  });
}

test('a slice of a slice is the slice of the original (sizes stay in the original numbering)', async () => {
  const full = await openTiny();
  const outer = sliceGemma3n(full, { skipLayers: [1], ffnWidths: [96, 192, 256, 192, 128] });
  const inner = sliceGemma3n(outer.checkpoint, { skipLayers: [1, 4], ffnWidths: [64, 128, 128, 96] }, { exact: true });
  const direct = sliceGemma3n(full, { skipLayers: [1, 4], ffnWidths: [64, 128, 128, 96] });
  assert.deepEqual(inner.slice, direct.slice);
  assert.deepEqual(inner.checkpoint.config, direct.checkpoint.config);
  for (const name of direct.checkpoint.tensorNames()) {
    assert.deepEqual(await readF32(inner.checkpoint, name), await readF32(direct.checkpoint, name), name);
  }
  // Not inside the outer slice: layer 1 is gone, layer 0 was cut to 96.
  assert.throws(() => sliceGemma3n(outer.checkpoint, sizeOf(slices[0])), /holds layers \[0,2,3,4,5\].*not layer 1/);
  assert.throws(() => sliceGemma3n(outer.checkpoint, { skipLayers: [1], ffnWidths: [128, 192, 256, 192, 128] }), /wider than the 96/);
});

const refuses = (fn: () => unknown, pattern: RegExp) =>
  assert.throws(fn, (e: unknown) => e instanceof GemmaError && e.code === 'invalid-argument' && pattern.test(e.message), `expected a GemmaError matching ${pattern}`);

test('refusals: KV producer, widths off the block, width counts, unknown and E4B-only sizes', async () => {
  const full = await openTiny();
  // tiny-a: layers 4 and 5 share the caches of 3 (sliding) and 2 (full).
  refuses(() => sliceGemma3n(full, { skipLayers: [3] }), /skips layer 3, whose K\/V cache layer 4 reads/);
  refuses(() => sliceGemma3n(full, { skipLayers: [2] }), /skips layer 2, whose K\/V cache layer 5 reads/);
  // Skipping a producer whose every consumer is skipped too is fine; so is a non-producer.
  assert.equal(sliceGemma3n(full, { skipLayers: [3, 4] }).slice.layers, 4);
  assert.equal(sliceGemma3n(full, { skipLayers: [1] }).slice.layers, 5);
  refuses(() => sliceGemma3n(full, { ffnWidths: [100, 160, 192, 256, 192, 128] }), /ffnWidths\[0\] = 100 \(layer 0\) is not a multiple of 32/);
  refuses(() => sliceGemma3n(full, { skipLayers: [4], ffnWidths: [64, 160, 128, 128, 96, 64] }), /6 widths for 5 kept layers/);
  refuses(() => sliceGemma3n(full, { ffnWidths: [64, 64] }), /2 widths for 6 kept layers/);
  refuses(() => sliceGemma3n(full, { ffnWidths: [160, 160, 192, 256, 192, 128] }), /wider than the original layer's 128/);
  refuses(() => sliceGemma3n(full, { skipLayers: [6] }), /layer 6 does not exist/);
  refuses(() => sliceGemma3n(full, { skipLayers: [1, 1] }), /twice/);
  refuses(() => sliceGemma3n(full, 'E9B'), /not a published Gemma 3n configuration/);
  refuses(() => sliceGemma3n(full, 'E2B'), /slice of Gemma 3n E4B \(35 layers, FFN 16384\); this model has 6 layers/);
  // K-quant ffn_down (blk.3 in Q4_K_M is Q4_K: 256-value blocks): 128 is refused there, fine in Q8_0.
  const q4km = await openGguf('Q4_K_M');
  refuses(() => sliceGemma3n(q4km, sizeOf(slices.find((s) => s.name === 'widths')!)), /ffnWidths\[3\] = 128 \(layer 3\) is not a multiple of 256: this file stores that layer's ffn_down as Q4_K/);
  assert.equal(sliceGemma3n(q4km, sizeOf(slices[0])).slice.layers, 6);
  assert.equal(sliceGemma3n(await openGguf('Q8_0'), sizeOf(slices.find((s) => s.name === 'widths')!)).slice.layers, 6);
});

test('published table: 16 configurations; E2B inside a random E4B; our parameter count vs the published one', () => {
  assert.equal(E4B_SLICING_CONFIGS.length, 16);
  const e4b: Checkpoint = { name: 'E4B config', config: randomGemma3nConfig('e4b'), tensor: () => undefined, tensorNames: () => [], read: () => Promise.reject(new Error('no data')) };
  for (const c of E4B_SLICING_CONFIGS) {
    assert.equal(c.ffnWidths.length + c.skipLayers.length, 35, c.id);
    const { slice, checkpoint } = sliceGemma3n(e4b, c.id);
    assert.equal(slice.name, c.id);
    const ours = slice.effectiveParams / 1e9;
    assert.ok(Math.abs(ours - c.effectiveParamsB) <= 0.02, `${c.id}: counted ${ours.toFixed(3)} B, published ${c.effectiveParamsB} B`);
    if (c.id === 'E2B' || c.id === 'E4B') assert.equal(ours.toFixed(2), c.effectiveParamsB.toFixed(2), c.id);
    if (c.id === 'E2B') {
      const t = textOf(checkpoint.config);
      assert.equal(t.num_kv_shared_layers, 10); // 15 − the five skipped shared layers
      assert.deepEqual(t.layer_types, textOf(randomGemma3nConfig('e2b')).layer_types);
      assert.deepEqual(t.activation_sparsity_pattern, [...Array(10).fill(0.95), ...Array(20).fill(0)]);
    }
  }
  assert.equal(sliceGemma3n(e4b, 'config for E2.98B (block-level)').slice.name, 'E2.98B-block');
});

/** A memory source that counts reads. */
function countingSource(bytes: Uint8Array, readGap?: number): ByteSource & { reads: number; bytesRead: number } {
  const s = {
    name: 'mem',
    readGap,
    reads: 0,
    bytesRead: 0,
    size: async () => bytes.length,
    read: async (o: number, n: number) => {
      s.reads++;
      s.bytesRead += n;
      return bytes.subarray(o, o + n);
    },
  };
  return s;
}

test('strided reads: same bytes as picking from whole rows; gaps under readGap are read through', async () => {
  const bytes = Uint8Array.from({ length: 64 * 1000 + 7 }, (_, i) => (i * 7 + 3) & 255);
  const region = { offset: 7, stride: 1000, rows: 64, runs: [{ start: 10, length: 300 }, { start: 320, length: 100 }, { start: 900, length: 100 }] };
  const want = new Uint8Array(64 * 500);
  for (let r = 0, at = 0; r < 64; r++) for (const run of region.runs) for (let i = 0; i < run.length; i++) want[at++] = bytes[7 + r * 1000 + run.start + i];
  const exact = countingSource(bytes);
  assert.deepEqual(await readStrided(exact, region), want);
  // Gap 0: only touching runs would merge; none touch here.
  assert.equal(exact.reads, 64 * 3);
  assert.equal(exact.bytesRead, 64 * 500);
  const merged = countingSource(bytes, 20);
  assert.deepEqual(await readStrided(merged, region), want);
  // 10-byte gaps merge (within a row, and from a row's last run to the next row's first), the 480-byte one does not:
  // row 0's first two runs, then 63 windows of (row r's last run + row r+1's first two), then row 63's last run.
  assert.equal(merged.reads, 65);
  const through = countingSource(bytes, 1000);
  assert.deepEqual(await readStrided(through, region, { maxWindow: 16_000 }), want);
  assert.ok(through.reads >= 4 && through.reads <= 5, `${through.reads} windows of at most 16,000 bytes over 63,990`);
});

test('GGUF column runs: Q8_0 PLE groups of 16 inside 32-blocks dequantize exactly; Q4_0 prefixes repack losslessly', async () => {
  const q8 = await openGguf('Q8_0');
  const ple = `${LM}embed_tokens_per_layer.weight`;
  const [rows, cols] = q8.tensor(ple)!.shape;
  const all = await readF32(q8, ple);
  const runs = [{ start: 0, count: 64 }, { start: 80, count: 16 }];
  const got = await q8.readColumns!(ple, runs, { start: 3, count: 50 });
  const values = new Float32Array(got.bytes.buffer, got.bytes.byteOffset, got.bytes.byteLength / 4);
  for (let r = 0; r < 50; r++) {
    for (let c = 0; c < 80; c++) assert.equal(values[r * 80 + c], all[(r + 3) * cols + (c < 64 ? c : c + 16)]);
  }
  assert.equal(await q8.readPackedAs!(ple, 'q8', undefined, runs), null, 'a run off the 32-block boundary cannot be repacked');
  assert.ok(rows > 0);
  const q40 = await openGguf('Q4_0');
  const down = `${LM}layers.3.mlp.down_proj.weight`;
  const whole = (await q40.readPackedAs!(down, 'q4'))!;
  const prefix = (await q40.readPackedAs!(down, 'q4', undefined, [{ start: 0, count: 128 }]))!;
  const G = whole.cols / 32;
  for (let r = 0; r < whole.rows; r++) {
    for (let g = 0; g < 4; g++) {
      assert.equal(prefix.scales[r * 4 + g], whole.scales[r * G + g]);
      for (let k = 0; k < 4; k++) assert.equal(prefix.data[(r * 4 + g) * 4 + k], whole.data[(r * G + g) * 4 + k]);
    }
  }
});
