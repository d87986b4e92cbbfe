// The Node-testable pieces under the cache and the progress events: XXH32 against the reference vectors,
// streaming in odd pieces, the progress aggregator's guarantees, and Blob sources (Node has Blob/File).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { xxhash32, XxHash32 } from '../../src/io/xxhash32.ts';
import { ProgressAggregator, type LoadProgress } from '../../src/io/progress.ts';
import { blobSource, pickedFiles } from '../../src/io/file-source.ts';
import { GemmaError } from '../../src/errors.ts';

const utf8 = (s: string) => new TextEncoder().encode(s);

test('XXH32 matches the reference vectors; streaming in unaligned pieces equals one shot', () => {
  // Values from the reference implementation (xxhsum -H32 / python-xxhash).
  assert.equal(xxhash32(utf8('')), 0x02cc5d05);
  assert.equal(xxhash32(utf8('a')), 0x550d7456);
  assert.equal(xxhash32(utf8('abc')), 0x32d153ff);
  assert.equal(xxhash32(utf8('Nobody inspects the spammish repetition')), 0xe2293b2f);
  const data = new Uint8Array(10_007).map((_, i) => (i * 131 + 7) & 255);
  const whole = xxhash32(data);
  for (const piece of [1, 3, 15, 16, 17, 1000]) {
    const h = new XxHash32();
    for (let at = 0; at < data.length; at += piece) h.update(data.subarray(at, at + piece));
    assert.equal(h.digest(), whole, `pieces of ${piece}`);
  }
  assert.equal(xxhash32(data.subarray(1)), xxhash32(data.slice(1)), 'unaligned view equals aligned copy');
});

test('progress aggregator: monotonic, clamped, throttled, one final event at exactly total', () => {
  const events: LoadProgress[] = [];
  const agg = new ProgressAggregator('quantize', 1000, (e) => events.push(e), { minStep: 100 });
  for (let i = 0; i < 50; i++) agg.advance('a', 30); // over-reports: 1500 units
  agg.advanceTo('a', 10); // going back is ignored
  agg.finish('b');
  agg.finish('b');
  agg.advance('a', 5);
  for (let i = 1; i < events.length; i++) assert.ok(events[i].loaded > events[i - 1].loaded);
  assert.ok(events.length <= 11);
  assert.deepEqual(events.at(-1), { phase: 'quantize', loaded: 1000, total: 1000, file: 'b' });
  assert.equal(events.filter((e) => e.loaded === 1000).length, 1);
});

test('Blob / picked-file sources read exact ranges and name missing files', async () => {
  const bytes = new Uint8Array(5000).map((_, i) => i & 255);
  const src = blobSource(new Blob([bytes]), 'w.bin');
  assert.equal(await src.size(), 5000);
  assert.deepEqual(await src.read(4990, 10), bytes.subarray(4990));
  await assert.rejects(src.read(4990, 11), (e: unknown) => e instanceof GemmaError && e.code === 'bad-file' && /w\.bin is truncated/.test(e.message));
  const files = pickedFiles([new File([bytes], 'model.safetensors'), new File(['{}'], 'config.json')]);
  assert.equal(await files.exists('config.json'), true);
  assert.equal(await files.exists('tokenizer.json'), false);
  await assert.rejects(files.open('tokenizer.json').size(), /tokenizer\.json is not among the picked files/);
});
