/**
 * A converted model's folder (what `gemma3n-webgpu convert` writes, src/node/convert.ts): the offline cache's format
 * (converted-cache.ts) as plain files — `manifest.json` (the cache manifest: every file's size and XXH32 per 4 MiB
 * block, the tensor index in `meta`), `config.json`, the tokenizer texts when the source had them, and the weights in
 * 64 MiB shards. Served by any static host (or a local folder, or a hub repo), it loads with no conversion at all:
 * the GPU-ready bytes are read, checked block by block against the manifest, and uploaded.
 *
 * Recognised by its manifest: a source folder with a `manifest.json` of the converted kind is this form, whatever
 * else it holds. Every shard is probed (its size) before any weight is read, so a missing or truncated shard is a
 * clear error up front; a corrupt block is one when it is read. A load from a URL or hub repo enters the offline
 * cache as-is: the verified bytes are written as they arrive (blocks the load skips are fetched at the end), under
 * the manifest's own tensor index, so the next load is a cache hit.
 */
import { GemmaError } from '../../errors.ts';
import { ModelCache, MANIFEST, parseManifest, type CacheEntryWriter, type CacheFileWriter, type CacheKey, type CacheManifest } from '../../io/cache.ts';
import type { ByteSource } from '../../io/byte-source.ts';
import { pickedFiles } from '../../io/file-source.ts';
import { hubFiles, urlFiles } from '../../io/hub.ts';
import { HttpStatusError } from '../../io/http-source.ts';
import { ProgressAggregator } from '../../io/progress.ts';
import { readIfExists, type CheckpointFiles } from '../../io/safetensors.ts';
import { verifiedSource, type VerifiedSourceOptions } from '../../io/verified-source.ts';
import type { WeightMode } from '../../model/family.ts';
import type { LoadProgress, ModelInfo } from '../protocol.ts';
import type { TextTokenizer } from '../tokenizer.ts';
import { ConvertedCheckpoint, convertedMeta, weightShards, type ConvertedEntry, type ConvertedMeta } from './converted-cache.ts';
import { describeSource, isGgufName, type ModelSource } from './model-source.ts';
import { buildTokenizer, separateTokenizer } from './open-source.ts';
import type { TokenizerSource } from './model-source.ts';

/** The weight modes a converted folder can hold (its manifest's weightMode). */
export const CONVERTED_MODES: readonly WeightMode[] = ['q4', 'q8'];

/** A converted folder, opened: its manifest checked, every file present at the size the manifest says. */
export interface ConvertedFolder {
  name: string;
  manifest: CacheManifest;
  meta: ConvertedMeta;
  /** The weight mode it holds. */
  weights: WeightMode;
  /** Verified reads of its files. */
  entry: ConvertedEntry;
  /** The exact commit a hub served, when it said. */
  commit(): string | undefined;
}

/** The source's files as a folder, for the sources that are one (a URL, a hub repo, a local or picked folder). */
function folderFiles(source: ModelSource, signal: AbortSignal | undefined, onBytes: (file: string, bytes: number) => void): (CheckpointFiles & { commit?: () => string | undefined }) | undefined {
  switch (source.kind) {
    case 'hub': return hubFiles(source.repo, { revision: source.revision, token: source.token, hubUrl: source.hubUrl, onBytes, signal });
    case 'url': return urlFiles(source.url, { token: source.token, onBytes, signal });
    case 'folder': return source.files;
    case 'picked': return source.files.some((f) => isGgufName(f.name)) ? undefined : pickedFiles(source.files);
    default: return undefined;
  }
}

/**
 * The converted form of `source`, or undefined when the source is not one (no `manifest.json`, or one of another
 * kind). Reads the manifest and probes every file's size; nothing else.
 */
export async function openConvertedSource(
  source: ModelSource,
  options: { signal?: AbortSignal; onBytes?: (file: string, bytes: number) => void; files?: CheckpointFiles & { commit?: () => string | undefined } } = {},
): Promise<ConvertedFolder | undefined> {
  // A hub repo comes pinned (open-source.ts `pinHubSource`): its listing answers the manifest question with no request.
  const files = options.files ?? folderFiles(source, options.signal, (file, n) => options.onBytes?.(file, n));
  if (!files) return undefined;
  // The layout probe: only a converted folder has a manifest.json (read whole in one request where it exists). A
  // folder URL could hold either layout and nothing else tells them apart, so an ordinary checkpoint's load pays
  // this one 404; probing the ordinary layout first would cost a converted folder two (no index, no
  // model.safetensors), and a hub repo's listing answers with no request at all.
  const manifestBytes = await readIfExists(files, MANIFEST);
  if (!manifestBytes) return undefined;
  const name = describeSource(source);
  const manifest = parseManifest(new TextDecoder().decode(manifestBytes));
  if (!manifest) {
    // A manifest.json of some other tool: not ours to read; the folder is opened as a checkpoint.
    return undefined;
  }
  const byName = new Map(manifest.files.map((f) => [f.name, f]));
  const has = (file: string) => byName.has(file);
  const meta = convertedMeta({ manifest, has });
  if (!meta) {
    const shards = (manifest.meta as ConvertedMeta | undefined)?.shards;
    if (shards?.some((s) => !has(s))) throw new GemmaError('bad-file', `${name}/${MANIFEST} lists weight shards it has no checksums for; convert the model again.`);
    return undefined;
  }
  if (!CONVERTED_MODES.includes(manifest.weightMode as WeightMode)) {
    throw new GemmaError('unsupported-config', `${name} holds converted weights in mode "${manifest.weightMode}", which this version cannot load (it reads ${CONVERTED_MODES.join(', ')}); convert the model again with this version.`);
  }
  // Every file there, at its size: a missing or short shard is named before any weight is read.
  await Promise.all(
    manifest.files.map(async (f) => {
      let size: number;
      try {
        size = await files.open(f.name).size();
      } catch (err) {
        if (err instanceof HttpStatusError && (err.status === 404 || err.status === 410)) throw missingFile(name, f.name, err);
        if (err instanceof GemmaError && err.code === 'bad-file') throw missingFile(name, f.name, err);
        throw err;
      }
      if (size !== f.size) throw new GemmaError('bad-file', `${name}/${f.name} has ${size} bytes, its manifest says ${f.size}: the upload is incomplete or the file was changed. Upload every file \`gemma3n-webgpu convert\` wrote, unchanged.`);
    }),
  );
  const entry: ConvertedEntry = {
    manifest,
    has,
    open: (file: string, opts: VerifiedSourceOptions = {}) => hostedSource(name, files.open(file), file, byName.get(file), opts),
    async text(file: string) {
      const s = entry.open(file);
      return new TextDecoder().decode(await s.read(0, await s.size()));
    },
  };
  return { name, manifest, meta, weights: manifest.weightMode as WeightMode, entry, commit: () => files.commit?.() };
}

function missingFile(name: string, file: string, cause: unknown): GemmaError {
  return new GemmaError('bad-file', `${name} is a converted model whose manifest lists ${file}, but the file is not there: upload every file \`gemma3n-webgpu convert\` wrote.`, { cause });
}

/** One hosted file, checked block by block against the manifest. */
function hostedSource(name: string, raw: ByteSource, file: string, info: CacheManifest['files'][number] | undefined, options: VerifiedSourceOptions): ByteSource {
  if (!info) throw new GemmaError('bad-file', `${name}/${MANIFEST} has no entry for ${file}; convert the model again.`);
  return verifiedSource(
    `${name}/${file}`,
    info,
    (start, end) => raw.read(start, end - start),
    async (why) => {
      throw new GemmaError('bad-file', `${name}/${file} is corrupt: ${why} in ${MANIFEST}. The hosted copy was damaged or changed after conversion; upload the files \`gemma3n-webgpu convert\` wrote again.`);
    },
    options,
  );
}

/** The weight mode a load of `folder` runs in: the folder's; asking for another is an error. */
export function convertedWeights(folder: ConvertedFolder, asked: WeightMode | undefined): WeightMode {
  if (asked !== undefined && asked !== folder.weights) {
    throw new GemmaError(
      'invalid-argument',
      `${folder.name} holds weights converted to ${folder.weights}; load it with weights: '${folder.weights}' (or leave weights out), or convert the checkpoint again with --weights ${asked}.`,
    );
  }
  return folder.weights;
}

export interface ConvertedLoad {
  checkpoint: ConvertedCheckpoint;
  tokenizer?: TextTokenizer;
  /** After a successful load: the download phase ends, and the copy in the offline cache is completed. */
  finish(): Promise<{ cache: NonNullable<ModelInfo['cache']>; warnings: string[] }>;
  /** After a failed or aborted load: nothing stays in the cache. */
  abort(): Promise<void>;
}

/**
 * Opens a converted folder for loading: 'download' progress over its bytes, its tokenizer (its own texts, a
 * folder URL, or none), and, with `cacheKey`, its copy into the offline cache as it is read.
 */
export async function readConverted(
  folder: ConvertedFolder,
  tokenizerSource: TokenizerSource,
  options: { onProgress: (p: LoadProgress) => void; signal?: AbortSignal; cacheKey?: CacheKey; tokenizerTag?: string },
): Promise<ConvertedLoad> {
  const progress = new ProgressAggregator('download', folder.manifest.totalBytes, options.onProgress);
  const label = folder.name;
  const copy = options.cacheKey ? await CacheCopy.start(options.cacheKey, folder) : undefined;
  const reading: ConvertedEntry = {
    ...folder.entry,
    open: (file, opts = {}) =>
      folder.entry.open(file, {
        onBytes: (n) => {
          progress.advance(label, n);
          opts.onBytes?.(n);
        },
        onBlocks: copy && ((first, bytes) => copy.blocks(file, first, bytes)),
      }),
  };
  reading.text = async (file) => {
    const s = reading.open(file);
    return new TextDecoder().decode(await s.read(0, await s.size()));
  };
  try {
    const checkpoint = await ConvertedCheckpoint.open(reading, folder.meta, undefined, `${label} (converted, ${folder.weights})`);
    let tokenizer: TextTokenizer | undefined;
    if (tokenizerSource.kind === 'model') {
      if (!folder.meta.texts.includes('tokenizer.json')) {
        throw new GemmaError(
          'invalid-argument',
          `${label} was converted without tokenizer files: pass \`tokenizer: '<folder URL with tokenizer.json and tokenizer_config.json>'\`, or \`tokenizer: false\` to prompt with token ids only (or convert from a checkpoint folder that has them).`,
        );
      }
      const texts = new Map<string, string>();
      for (const name of folder.meta.texts) texts.set(name, await reading.text(name));
      tokenizer = await buildTokenizer(texts, label); // the chat template file wins, as for every other source
    } else if (tokenizerSource.kind === 'url' || tokenizerSource.kind === 'hub') {
      tokenizer = (await separateTokenizer(tokenizerSource, { signal: options.signal })).tokenizer;
    }
    return {
      checkpoint,
      tokenizer,
      async finish() {
        progress.finish();
        if (!copy) return { cache: 'off', warnings: [] };
        return copy.commit(folder, options.tokenizerTag, options.signal);
      },
      abort: async () => copy?.abort(),
    };
  } catch (err) {
    await copy?.abort();
    throw err;
  }
}

/**
 * The offline cache's copy of a converted folder, written from the verified blocks the load reads (in order; a gap
 * is filled from the folder, and what the load never read is fetched at commit). Storage trouble is a warning, never
 * a load error.
 */
class CacheCopy {
  private readonly written = new Map<string, { file: CacheFileWriter; next: number }>();
  private failed = false;
  readonly warnings: string[] = [];

  private constructor(private writer: CacheEntryWriter | undefined, private readonly folder: ConvertedFolder) {}

  static async start(key: CacheKey, folder: ConvertedFolder): Promise<CacheCopy | undefined> {
    const cache = await ModelCache.open().catch(() => undefined);
    if (!cache) return undefined;
    const copy = new CacheCopy(undefined, folder);
    try {
      copy.writer = await cache.write(key, { expectedBytes: folder.manifest.totalBytes });
    } catch (err) {
      await copy.fail(err);
    }
    return copy;
  }

  /** Verified blocks of `file` starting at block `first`, as the load reads them. */
  async blocks(file: string, first: number, bytes: Uint8Array): Promise<void> {
    if (!this.writer || this.failed) return;
    try {
      const bs = this.info(file).blockSize;
      const start = first * bs;
      const w = await this.fileFor(file);
      if (start > w.next) await this.fill(file, w, start); // a gap the load skipped: fetch it now, keep the order
      if (start + bytes.length > w.next) {
        await w.file.write(bytes.subarray(w.next - start));
        w.next = start + bytes.length;
      }
    } catch (err) {
      await this.fail(err);
    }
  }

  async commit(folder: ConvertedFolder, tokenizerTag: string | undefined, signal?: AbortSignal): Promise<{ cache: NonNullable<ModelInfo['cache']>; warnings: string[] }> {
    if (!this.writer || this.failed) return { cache: 'not-stored', warnings: this.warnings };
    try {
      for (const f of folder.manifest.files) {
        if (signal?.aborted) throw new GemmaError('aborted', `caching ${folder.name} was aborted`);
        const w = await this.fileFor(f.name);
        await this.fill(f.name, w, f.size);
        await w.file.close();
      }
      // The hosted manifest's tensor index as it is; the tokenizer tag says which tokenizer the entry can serve.
      const meta: ConvertedMeta = { ...folder.meta, tokenizerSource: folder.meta.texts.includes('tokenizer.json') ? tokenizerTag : undefined };
      await this.writer.commit({ meta, commit: folder.commit() ?? folder.manifest.commit });
      return { cache: 'stored', warnings: this.warnings };
    } catch (err) {
      if (err instanceof GemmaError && err.code === 'aborted') {
        await this.abort();
        throw err;
      }
      await this.fail(err);
      return { cache: 'not-stored', warnings: this.warnings };
    }
  }

  async abort(): Promise<void> {
    const w = this.writer;
    this.writer = undefined;
    await w?.abort();
  }

  private info(file: string) {
    const info = this.folder.manifest.files.find((f) => f.name === file);
    if (!info) throw new GemmaError('internal', `cache copy: ${file} is not in the manifest`);
    return info;
  }

  private async fileFor(file: string): Promise<{ file: CacheFileWriter; next: number }> {
    let w = this.written.get(file);
    if (!w) {
      w = { file: await this.writer!.createFile(file), next: 0 };
      this.written.set(file, w);
    }
    return w;
  }

  /** Writes `file` from w.next up to `end` (verified reads of the folder, in 16-block steps). */
  private async fill(file: string, w: { file: CacheFileWriter; next: number }, end: number): Promise<void> {
    if (w.next >= end) return;
    const source = this.folder.entry.open(file);
    const step = 16 * this.info(file).blockSize;
    while (w.next < end) {
      const n = Math.min(step, end - w.next);
      await w.file.write(await source.read(w.next, n));
      w.next += n;
    }
  }

  private async fail(err: unknown): Promise<void> {
    if (this.failed) return;
    this.failed = true;
    const message = err instanceof GemmaError ? err.message : `could not write the model cache: ${(err as Error)?.message ?? err}`;
    this.warnings.push(`${message} The model was loaded without caching it; the next load downloads it again.`);
    console.warn(`gemma3n-webgpu: ${this.warnings.at(-1)}`);
    await this.abort();
  }
}
