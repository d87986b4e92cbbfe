/**
 * A text-only checkpoint (llama.cpp's GGUF carries no image/audio embedders) fed an image or audio token id fails
 * with unsupported-input instead of computing silently wrong logits; the engine stays usable for text.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { GemmaError } from '../../src/errors.ts';
import { Engine } from '../../src/runtime/engine.ts';
import { loadFromSource } from '../../src/runtime/loading/model-factory.ts';
import { fileSource } from '../../src/node/file-source.ts';
import { testGpu } from '../helpers/gpu.ts';
import { FIXTURES_DIR, tinyFixtures } from '../helpers/fixtures.ts';
import { collect } from '../helpers/stream.ts';

test('a text GGUF fed an image/audio id: unsupported-input, then text still works', async () => {
  const gguf = join(FIXTURES_DIR, 'gguf-gemma3n-tiny-a', 'gemma3n-tiny-a-F32.gguf');
  const loaded = await loadFromSource(await testGpu(), { kind: 'gguf-file', source: fileSource(gguf) }, { kind: 'none' }, { weights: 'float', contextLength: 64 });
  const engine = new Engine({ model: loaded.model });
  const fx = tinyFixtures()[0];
  const multimodal = fx.golden.cases.find((c) => c.input_ids.some((id) => id >= 448))!.input_ids;
  await assert.rejects(collect(engine.generate(multimodal, { maxNewTokens: 1 })), (err: unknown) => {
    assert.ok(err instanceof GemmaError && err.code === 'unsupported-input', String(err));
    assert.match(err.message, /no embedder.*text-only/s);
    return true;
  });
  const text = fx.golden.greedy.prompt_ids;
  const r = await collect(engine.generate(text, { temperature: 0, maxNewTokens: 3 }));
  assert.deepEqual(r.ids, fx.golden.greedy.generated_ids.slice(0, 3));
  engine.dispose();
});
