/**
 * `gemma3n-webgpu convert`: any source the CLI loads (a checkpoint folder, a .gguf, a URL, a hub repo, random:tiny)
 * converted once, here, into the offline cache's format as plain files in a folder (src/runtime/loading/
 * converted-source.ts): the same GPU conversion a browser load does (the family's loader on Dawn), its tensors read
 * back and written as they are produced, the manifest last — so a folder without a manifest is never taken for a
 * finished one. Host the folder anywhere static files are served and `loadGemma({ model: '<its URL>' })` loads it
 * with no conversion phase.
 */
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { GemmaError } from '../errors.ts';
import type { GpuContext } from '../gpu/device.ts';
import { ModelCache, MANIFEST, entryFileName, type CacheManifest } from '../io/cache.ts';
import type { CacheStorageBackend, FileSink } from '../io/cache-storage.ts';
import { SHARD_BYTES } from '../io/sharded-file.ts';
import type { WeightMode } from '../model/family.ts';
import { ConvertedCacheWriter } from '../runtime/loading/converted-cache.ts';
import { loadModel } from '../runtime/loading/model-factory.ts';
import { describeSource, tokenizerCacheTag, type ModelSource, type TokenizerSource } from '../runtime/loading/model-source.ts';
import { openSource } from '../runtime/loading/open-source.ts';
import type { LoadProgress } from '../runtime/protocol.ts';

export interface ConvertOptions {
  /** 'q4' (the default load's plan) or 'q8' (int8 where q4 has int4). */
  weights: Extract<WeightMode, 'q4' | 'q8'>;
  /** Bytes per weight shard (default 64 MiB, src/io/sharded-file.ts). */
  shardBytes?: number;
  /** Tokenizer files to ship with the weights (default: the source's own, or none). */
  tokenizer?: TokenizerSource;
  onProgress?: (p: LoadProgress) => void;
}

/** Converts `source` into `outDir` (created; an earlier conversion there is replaced). Returns the manifest. */
export async function convertModel(gpu: GpuContext, source: ModelSource, outDir: string, options: ConvertOptions): Promise<CacheManifest> {
  const { weights } = options;
  if (weights !== 'q4' && weights !== 'q8') throw new GemmaError('invalid-argument', `convert --weights ${weights as string}: expected q4 or q8`);
  await mkdir(outDir, { recursive: true });
  // The manifest goes first, then the rest of an earlier conversion: a half-written folder never reads as complete.
  await rm(join(outDir, MANIFEST), { force: true });
  for (const name of await readdir(outDir)) if (/^weights(-\d{5})?\.bin$/.test(name)) await rm(join(outDir, name));

  const tokenizer = options.tokenizer ?? { kind: 'none' };
  const opened = await openSource(source, tokenizer, { onProgress: options.onProgress ?? (() => {}) });
  const cache = new ModelCache(folderBackend(outDir));
  const entry = await cache.write({ modelId: describeSource(source), revision: 'converted', weightMode: weights });
  const writer = await ConvertedCacheWriter.start(entry, gpu.device, options.shardBytes ?? SHARD_BYTES);
  try {
    await writer.addText('config.json', JSON.stringify(opened.checkpoint.config));
    for (const [name, text] of opened.tokenizerTexts ?? []) await writer.addText(name, text);
    const loaded = await loadModel(gpu, opened.checkpoint, { weights, contextLength: 16 }, { onProgress: options.onProgress, onConverted: (t) => writer.add(t) });
    loaded.model.dispose();
    opened.finishDownload();
    await writer.commit(opened.tokenizerTexts ? tokenizerCacheTag(tokenizer) : undefined, opened.commit());
  } catch (err) {
    await writer.abort();
    throw err;
  }
  const manifest = (await (await cache.backend.readFile('', MANIFEST))!.text()) as string;
  return JSON.parse(manifest) as CacheManifest;
}

/**
 * The cache's storage as one plain folder on disk: every file under its own name (manifest.json, config.json,
 * weights-00001.bin, …), as a static host serves them. One entry only; the entry's folder name is ignored.
 */
function folderBackend(dir: string): CacheStorageBackend {
  const written = new Set<string>();
  return {
    kind: 'opfs',
    listFolders: async () => [],
    async readFile(_folder, stored) {
      const { openAsBlob } = await import('node:fs');
      return openAsBlob(join(dir, entryFileName(stored))).catch(() => undefined);
    },
    async createFile(_folder, stored) {
      const name = entryFileName(stored);
      written.add(name);
      return fileSink(createWriteStream(join(dir, name)));
    },
    async removeFolder() {
      for (const name of written) await rm(join(dir, name), { force: true });
      written.clear();
    },
    async removeAll() {
      await this.removeFolder('');
    },
  };
}

function fileSink(stream: WriteStream): FileSink {
  const failed = new Promise<never>((_, reject) => stream.once('error', reject));
  failed.catch(() => {});
  return {
    write: (chunk) => Promise.race([failed, new Promise<void>((resolve, reject) => stream.write(chunk, (err) => (err ? reject(err) : resolve())))]),
    close: () => Promise.race([failed, new Promise<void>((resolve) => stream.end(resolve))]),
    abort: async () => void stream.destroy(),
  };
}
