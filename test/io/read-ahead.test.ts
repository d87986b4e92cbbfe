// Planned read-ahead (src/io/read-ahead.ts): planned ranges are fetched in few windows of bounded size, every read
// returns the file's bytes (within a window, across windows, unplanned), at most ahead + 2 windows are held, a
// checkpoint's willRead() plans exactly the tensors named (the download total), and a MatFormer view's plan reaches
// its base as the base rows it reads.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { memorySource, type ByteSource } from '../../src/io/byte-source.ts';
import { ReadAhead, withReadAhead } from '../../src/io/read-ahead.ts';
import { readSafetensorsHeader, safetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { freshRng } from '../helpers/random.ts';
import { sliceGemma3n } from '../../src/model/gemma3n/matformer.ts';
import { parseGemma3nConfig } from '../../src/model/gemma3n/config.ts';
import { readOrder } from '../../src/model/gemma3n/weights.ts';

function counted(bytes: Uint8Array): ByteSource & { reads: [number, number][] } {
  const inner = memorySource('file.bin', bytes);
  const reads: [number, number][] = [];
  return { ...inner, reads, read: (o, n) => (reads.push([o, n]), inner.read(o, n)) };
}

test('ranges in read order become few bounded windows; every read is the file bytes; memory stays bounded', async () => {
  const { rng } = freshRng();
  const file = new Uint8Array(1 << 20);
  for (let i = 0; i < file.length; i++) file[i] = (rng.next() * 256) | 0;
  const src = counted(file);
  const ra = new ReadAhead({ windowBytes: 64 * 1024, gapBytes: 1024, ahead: 1 });
  const wrapped = ra.wrap(src);
  // "Layers": out-of-order tensors inside 48 KiB regions with small gaps (unplanned tensors) between; one big tensor.
  const ranges: { offset: number; length: number }[] = [];
  for (let layer = 0; layer < 12; layer++) {
    const base = layer * 48 * 1024;
    for (const [o, n] of [[20_000, 9_000], [0, 7_000], [7_500, 12_000], [30_000, 18_000]]) ranges.push({ offset: base + o, length: n });
  }
  ranges.push({ offset: 600_000, length: 300_000 }); // bigger than a window: split
  const total = ra.plan(ranges.map((r) => ({ source: wrapped, ...r })));
  assert.ok(total >= ranges.reduce((s, r) => s + r.length, 0) && total < 12 * 48 * 1024 + 300_000, String(total));
  for (const r of ranges) {
    if (r.length > 100_000) {
      // Row chunks that do not fall on window edges.
      for (let at = r.offset; at < r.offset + r.length; at += 40_000) {
        const n = Math.min(40_000, r.offset + r.length - at);
        assert.deepEqual(await wrapped.read(at, n), file.subarray(at, at + n));
      }
    } else {
      assert.deepEqual(await wrapped.read(r.offset, r.length), file.subarray(r.offset, r.offset + r.length));
    }
  }
  const windows = src.reads.length;
  // One window per layer (1,152-byte gaps between layers are over gapBytes; those inside a layer are not), five for
  // the big tensor; nothing fetched twice although each layer is read out of file order.
  assert.equal(windows, 12 + Math.ceil(300_000 / 65536), JSON.stringify(src.reads));
  assert.ok(src.reads.every(([, n]) => n <= 64 * 1024), JSON.stringify(src.reads));
  assert.ok(ra.peakHeldBytes <= 3 * 64 * 1024, String(ra.peakHeldBytes));
  // Unplanned bytes go straight to the file.
  assert.deepEqual(await wrapped.read(12 * 48 * 1024 + 10, 100), file.subarray(12 * 48 * 1024 + 10, 12 * 48 * 1024 + 110));
  assert.equal(src.reads.length, windows + 1);
  // A planned range read again after its window was dropped still comes back right.
  assert.deepEqual(await wrapped.read(ranges[0].offset, 10), file.subarray(ranges[0].offset, ranges[0].offset + 10));
});

test('willRead plans exactly the named tensors of a checkpoint; reads through the plan equal direct reads', async () => {
  const path = fileURLToPath(new URL('../fixtures/gemma3n-tiny-a/model.safetensors', import.meta.url));
  const bytes = new Uint8Array(readFileSync(path));
  const direct = safetensorsCheckpoint('tiny', {}, await readSafetensorsHeader(memorySource('model.safetensors', bytes)));
  const src = counted(bytes);
  const ra = new ReadAhead({ windowBytes: 64 * 1024 });
  const planned = withReadAhead(safetensorsCheckpoint('tiny', {}, await readSafetensorsHeader(ra.wrap(src))), ra);
  const names = direct.tensorNames().filter((n) => n.startsWith('model.language_model.layers.'));
  const wanted = names.reduce((s, n) => s + direct.locate!(n)!.length, 0);
  src.reads.length = 0;
  const total = planned.willRead!(names);
  assert.ok(total >= wanted && total <= wanted * 1.05, `${total} vs ${wanted}`);
  for (const n of names) assert.deepEqual((await planned.read(n)).bytes, (await direct.read(n)).bytes, n);
  assert.equal(src.reads.reduce((s, [, n]) => s + n, 0), total, 'exactly the planned bytes were read');
  assert.ok(src.reads.length <= Math.ceil(total / (64 * 1024)) + 2, `${src.reads.length} reads`);
  assert.equal(planned.tensorNames().length, direct.tensorNames().length, 'everything else is inherited');
});

test('a MatFormer view plans only the base rows it reads (skipped layers, FFN rows past the width), and reads them through the plan', async () => {
  const dir = fileURLToPath(new URL('../fixtures/gemma3n-tiny-a/', import.meta.url));
  const bytes = new Uint8Array(readFileSync(dir + 'model.safetensors'));
  const config = JSON.parse(readFileSync(dir + 'config.json', 'utf8')) as unknown;
  const direct = safetensorsCheckpoint('tiny', config, await readSafetensorsHeader(memorySource('model.safetensors', bytes)));
  const src = counted(bytes);
  const ra = new ReadAhead({ windowBytes: 64 * 1024, gapBytes: 0 }); // no read-through: the plan's bytes exactly
  const planned = withReadAhead(safetensorsCheckpoint('tiny', config, await readSafetensorsHeader(ra.wrap(src))), ra);
  // skip4 of gemma3n-matformer-tiny-a: layer 4 skipped, every FFN narrower than tiny-a's.
  const size = { skipLayers: [4], ffnWidths: [64, 160, 128, 128, 96] };
  const view = sliceGemma3n(planned, size).checkpoint;
  const expected = sliceGemma3n(direct, size).checkpoint;
  const names = readOrder(parseGemma3nConfig(view.config).text).filter((n) => view.tensor(n));
  src.reads.length = 0;
  const total = view.willRead!(names);
  const fullOrder = readOrder(parseGemma3nConfig(config).text);
  const whole = fullOrder.reduce((s, n) => s + (direct.locate!(n)?.length ?? 0), 0);
  // Layer 4's tensors, its per_layer_model_projection rows and gate/up rows past each width are not planned;
  // down_proj and the PLE table (column selections) are planned whole.
  const gateUp = [0, 1, 2, 3, 5].reduce((s, l, i) => s + 2 * direct.locate!(`model.language_model.layers.${l}.mlp.gate_proj.weight`, { start: size.ffnWidths[i], count: [128, 160, 192, 256, 192, 128][l] - size.ffnWidths[i] })!.length, 0);
  const layer4 = fullOrder.filter((n) => n.startsWith('model.language_model.layers.4.')).reduce((s, n) => s + direct.locate!(n)!.length, 0);
  const P = parseGemma3nConfig(config).text.pleDim;
  const projection = direct.locate!('model.language_model.per_layer_model_projection.weight', { start: 4 * P, count: P })!.length; // its row group
  assert.equal(total, whole - gateUp - layer4 - projection, `planned ${total} of ${whole} bytes (${gateUp} gate/up, ${layer4} layer 4)`);
  for (const n of names) assert.deepEqual((await view.read(n)).bytes, (await expected.read(n)).bytes, n);
  assert.equal(src.reads.reduce((s, [, n]) => s + n, 0), total, 'exactly the planned bytes were read');
  assert.ok(src.reads.length <= Math.ceil(total / (64 * 1024)) + names.length, `${src.reads.length} reads`);
});
