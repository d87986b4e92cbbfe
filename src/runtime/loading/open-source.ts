/**
 * Opens a ModelSource: its tokenizer first (small files, validated before any weight byte is fetched), then the
 * checkpoint (safetensors headers or a GGUF header, through the registry), with download progress over exactly the
 * bytes the load will read and every request honouring the load's AbortSignal. The only place that locates a
 * tokenizer:
 * - a hub repo or folder: its own tokenizer.json / tokenizer_config.json / chat template, with the load's token;
 * - a .gguf (URL, hub link, picked or local file): picked tokenizer files when given, else the file's own
 *   vocabulary and chat template (`tokenizer.ggml.*`, src/io/gguf-tokenizer.ts), read from the header;
 * - `tokenizer:` a folder URL, a repo id or `{ hub, revision, token }` instead; `false` for none.
 * A chat template file (chat_template.jinja, then chat_template.json) wins over tokenizer_config.json's, on every
 * load, cached or not (`buildTokenizer`).
 *
 * Hub repos (and pasted hub links) are pinned to one commit first (src/io/hub.ts), and weights are read through a
 * planned read-ahead (src/io/read-ahead.ts): the loader announces its tensors, which are fetched in a few large
 * windows; the download total is exactly those bytes.
 */
import { GemmaError } from '../../errors.ts';
import type { ByteSource } from '../../io/byte-source.ts';
import { readWhole } from '../../io/byte-source.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { listCheckpoint, listWeightFiles } from '../../io/checkpoint-listing.ts';
import { blobSource, pickedFiles } from '../../io/file-source.ts';
import { fetchTexts } from '../../io/fetch-texts.ts';
import { readGgufHeader, type GgufFile } from '../../io/gguf.ts';
import { ggufTokenizerFiles } from '../../io/gguf-tokenizer.ts';
import { httpSource, HttpStatusError, type HttpSourceOptions, type RetryNotice } from '../../io/http-source.ts';
import { openHubRepo, urlFiles, type RemoteCheckpointFiles } from '../../io/hub.ts';
import { ProgressAggregator } from '../../io/progress.ts';
import { ReadAhead, withReadAhead } from '../../io/read-ahead.ts';
import { openSafetensorsCheckpoint, type CheckpointFiles } from '../../io/safetensors.ts';
import { openGgufFile, randomCheckpoint } from '../../model/registry.ts';
import type { LoadProgress } from '../protocol.ts';
import { tokenizerFromTexts, type TextTokenizer } from '../tokenizer.ts';
import { isGgufName, type ModelSource, type TokenizerSource } from './model-source.ts';

/** The tokenizer's small files, as kept with a cached model (so a cached load needs no network at all). */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja', 'chat_template.json'] as const;

/**
 * One request per read-ahead window: 64 MiB. An E2B bf16 load (8.9 GB read) is ~140 window requests, E4B (15 GB)
 * ~240, against the hub's limits of a few thousand requests per 5 minutes; the host holds at most three windows.
 */
export const WINDOW_BYTES = 64 * 1024 * 1024;

export interface OpenedSource {
  checkpoint: Checkpoint;
  tokenizer?: TextTokenizer;
  /** The tokenizer texts by file name (for the offline cache). */
  tokenizerTexts?: Map<string, string>;
  /** Ends the download phase (once every weight byte has been read) and drops the read-ahead windows; idempotent. */
  finishDownload(): void;
  /** Drops the read-ahead windows (after a failed load too). */
  release(): void;
  /** The exact commit the files come from (pinned hub loads), when known. */
  commit(): string | undefined;
}

export interface OpenOptions {
  onProgress: (p: LoadProgress) => void;
  signal?: AbortSignal;
  /** Tuning of every HTTP request (tests: short timeouts and rate-limit waits; a custom fetch). */
  http?: Omit<HttpSourceOptions, 'headers' | 'signal' | 'onBytes' | 'size' | 'name' | 'onResponse' | 'onRetry' | 'validate'>;
  /** Read-ahead window (default WINDOW_BYTES). */
  windowBytes?: number;
  /** A hub source's repo already pinned for this load (`pinHubSource`, e.g. for the converted-form check). */
  pinned?: PinnedHubRepo;
}

/**
 * A hub repo pinned once per load and shared by whoever looks at it first (the converted-form check reads its
 * listing) and openSource: its byte and retry reports go to `reports`, which openSource points at the load's
 * download progress.
 */
export interface PinnedHubRepo {
  files: RemoteCheckpointFiles;
  reports: { onBytes?: (file: string, bytes: number) => void; onRetry?: (retry: RetryNotice) => void };
}

/** Pins a hub source's repo (src/io/hub.ts `openHubRepo`) with the request settings openSource uses. */
export async function pinHubSource(source: Extract<ModelSource, { kind: 'hub' }>, options: Pick<OpenOptions, 'signal' | 'http' | 'windowBytes'>): Promise<PinnedHubRepo> {
  const reports: PinnedHubRepo['reports'] = {};
  const files = await openHubRepo(source.repo, {
    revision: source.revision,
    token: source.token,
    hubUrl: source.hubUrl,
    signal: options.signal,
    onBytes: (file, bytes) => reports.onBytes?.(file, bytes),
    onRetry: (retry) => reports.onRetry?.(retry),
    http: { ...options.http, chunkSize: options.windowBytes ?? WINDOW_BYTES },
  });
  return { files, reports };
}

/**
 * Download progress over the bytes the load will read: the total is the read plan's (tensors the loader announced,
 * vision/audio towers excluded), or all weight files when the family announces nothing. Header reads before the
 * plan are not counted. Retries after a pause (a rate limit waits a minute or more) are reported as events with
 * `retry` set, so a UI can say so instead of looking stuck.
 */
class DownloadProgress {
  private aggregator: ProgressAggregator | undefined;
  private fallbackTotal = 0;
  private opened = false;
  constructor(private readonly onProgress: (p: LoadProgress) => void) {}

  /** All weight files' bytes, used only when no plan comes. */
  setFallbackTotal(bytes: number): void {
    this.fallbackTotal = bytes;
    this.opened = true;
  }

  planned = (bytes: number): void => {
    this.aggregator ??= new ProgressAggregator('download', bytes, this.onProgress);
  };

  onBytes = (file: string, bytes: number): void => {
    if (!/\.(safetensors|gguf)$/i.test(file.split(/[?#]/)[0])) return;
    if (!this.aggregator && this.opened) this.aggregator = new ProgressAggregator('download', this.fallbackTotal, this.onProgress);
    this.aggregator?.advance(file, bytes);
  };

  onRetry = (retry: RetryNotice): void => {
    const a = this.aggregator;
    this.onProgress({ phase: 'download', loaded: a?.shownLoaded ?? 0, total: a?.total ?? 0, file: retry.name, retry });
  };

  finish(): void {
    (this.aggregator ??= new ProgressAggregator('download', this.fallbackTotal, this.onProgress)).finish();
  }
}

export async function openSource(source: ModelSource, tokenizerSource: TokenizerSource, options: OpenOptions): Promise<OpenedSource> {
  const { signal } = options;
  const download = new DownloadProgress(options.onProgress);
  const readAhead = new ReadAhead({ windowBytes: options.windowBytes ?? WINDOW_BYTES, onPlanned: download.planned });
  const remote = { signal, onBytes: download.onBytes, onRetry: download.onRetry, http: { ...options.http, chunkSize: options.windowBytes ?? WINDOW_BYTES } };
  const done = (opened: Opened, commit: () => string | undefined = () => undefined): OpenedSource => ({
    ...opened,
    checkpoint: withReadAhead(opened.checkpoint, readAhead),
    finishDownload: () => {
      download.finish();
      readAhead.release();
    },
    release: () => readAhead.release(),
    commit,
  });
  const tokenizerIo = { signal, onRetry: download.onRetry, http: options.http };
  switch (source.kind) {
    case 'random':
      return done({ checkpoint: randomCheckpoint(source.options), ...(await separateTokenizer(tokenizerSource, tokenizerIo)) });
    case 'hub':
    case 'url': {
      let files: RemoteCheckpointFiles;
      if (source.kind === 'hub' && options.pinned) {
        Object.assign(options.pinned.reports, { onBytes: download.onBytes, onRetry: download.onRetry });
        files = options.pinned.files;
      } else {
        files = source.kind === 'hub' ? await openHubRepo(source.repo, { revision: source.revision, token: source.token, hubUrl: source.hubUrl, ...remote }) : urlFiles(source.url, { token: source.token, ...remote });
      }
      return done(await openFolder(files, tokenizerSource, download, readAhead, tokenizerIo), files.commit);
    }
    case 'folder':
      return done(await openFolder(source.files, tokenizerSource, download, readAhead, tokenizerIo));
    case 'gguf-url': {
      let file: ByteSource;
      let commit = () => undefined as string | undefined;
      if (source.hub) {
        const { repo, revision, hubUrl, path } = source.hub;
        const files = await openHubRepo(repo, { revision, hubUrl, token: source.token, probe: null, ...remote });
        if (!(await files.exists(path))) throw new GemmaError('bad-file', `${files.name} has no file ${path}. Check the file name and the revision.`);
        file = files.open(path);
        commit = files.commit;
      } else {
        const headers: Record<string, string> = source.token ? { Authorization: `Bearer ${source.token}` } : {};
        file = httpSource(source.url, { ...remote.http, headers, signal, onBytes: (n) => download.onBytes(source.url, n), onRetry: download.onRetry });
      }
      return done(await openGguf(file, tokenizerSource, undefined, download, readAhead, tokenizerIo), commit);
    }
    case 'gguf-file':
      return done(await openGguf(source.source, tokenizerSource, undefined, download, readAhead, tokenizerIo));
    case 'picked': {
      const files = pickedFiles(source.files);
      const gguf = source.files.find((f) => isGgufName(f.name));
      if (gguf) return done(await openGguf(blobSource(gguf), tokenizerSource, files, download, readAhead, tokenizerIo));
      return done(await openFolder(files, tokenizerSource, download, readAhead, tokenizerIo));
    }
  }
}

type Opened = Pick<OpenedSource, 'checkpoint' | 'tokenizer' | 'tokenizerTexts'>;
type TokenizerPart = Pick<OpenedSource, 'tokenizer' | 'tokenizerTexts'>;
/** How a tokenizer of its own is fetched. */
interface TokenizerIo {
  signal?: AbortSignal;
  onRetry?: (retry: RetryNotice) => void;
  http?: OpenOptions['http'];
}

/** A safetensors folder: the tokenizer (its own unless told otherwise), then the weights' headers. */
async function openFolder(files: CheckpointFiles, tokenizerSource: TokenizerSource, download: DownloadProgress, readAhead: ReadAhead, io: TokenizerIo): Promise<Opened> {
  let tokenizer: TokenizerPart;
  let weightBytes: number;
  if (tokenizerSource.kind === 'model') {
    const listing = await listCheckpoint(files); // config, tokenizer files, chat template; names what is missing
    tokenizer = await tokenizerFrom(listing.texts, files.name);
    weightBytes = listing.totalWeightBytes;
  } else {
    tokenizer = await separateTokenizer(tokenizerSource, io);
    weightBytes = (await listWeightFiles(files)).reduce((s, f) => s + f.size, 0);
  }
  const checkpoint = await openSafetensorsCheckpoint(readAhead.wrapFiles(files));
  download.setFallbackTotal(weightBytes); // the headers are read: from here on, bytes are weights
  return { checkpoint, ...tokenizer };
}

/**
 * A GGUF file: its header first, then the tokenizer — picked tokenizer files, one named by `tokenizer:`, or the
 * file's own (`tokenizer.ggml.*`) — and only then the model (whose open already reads a few table rows).
 */
async function openGguf(
  file: ByteSource,
  tokenizerSource: TokenizerSource,
  picked: CheckpointFiles | undefined,
  download: DownloadProgress,
  readAhead: ReadAhead,
  io: TokenizerIo,
): Promise<Opened> {
  const wrapped = readAhead.wrap(file);
  const gguf = await readGgufHeader(wrapped);
  let tokenizer: TokenizerPart = {};
  if (tokenizerSource.kind === 'model') {
    if (picked && (await picked.exists('tokenizer.json'))) tokenizer = await tokenizerFrom(await readTexts(picked), picked.name);
    else tokenizer = await ggufTokenizer(gguf);
  } else {
    tokenizer = await separateTokenizer(tokenizerSource, io);
  }
  const checkpoint = await openGgufFile(gguf);
  download.setFallbackTotal(gguf.fileSize); // the header is read: from here on, bytes are weights
  return { checkpoint, ...tokenizer };
}

/** The GGUF's own tokenizer, checked against its embedding. */
async function ggufTokenizer(gguf: GgufFile): Promise<TokenizerPart> {
  const { texts, vocabSize } = ggufTokenizerFiles(gguf);
  const embed = gguf.tensors.get('token_embd.weight');
  const rows = embed?.ne[1];
  if (rows !== undefined && vocabSize > rows) {
    throw new GemmaError('bad-file', `${gguf.source.name}: its tokenizer has ${vocabSize} tokens but token_embd.weight only ${rows} rows; the file is inconsistent. Pass \`tokenizer:\` with the model's own tokenizer.`);
  }
  return tokenizerFrom(texts, `${gguf.source.name} (its own tokenizer.ggml.* vocabulary)`);
}

/** The tokenizer from a folder URL or hub repo of its own (or none); custom model factories use it too. */
export async function separateTokenizer(source: TokenizerSource, io: TokenizerIo = {}): Promise<TokenizerPart> {
  if (source.kind === 'none') return {};
  if (source.kind === 'model') {
    throw new GemmaError('invalid-argument', 'This model source carries no tokenizer files: pass `tokenizer: <folder URL or repo id>` or `tokenizer: false`.');
  }
  if (source.kind === 'hub') {
    const files = await openHubRepo(source.repo, { revision: source.revision, token: source.token, hubUrl: source.hubUrl, probe: 'tokenizer_config.json', signal: io.signal, onRetry: io.onRetry, http: io.http });
    return tokenizerFrom(await readTexts(files), files.name);
  }
  // A folder URL: plain GETs (no range requests, no size probes), so a service worker's precache serves them offline.
  const headers = source.token ? { Authorization: `Bearer ${source.token}` } : undefined;
  const texts = await fetchTexts(source.url, TOKENIZER_FILES, { signal: io.signal, headers, optional: ['chat_template.jinja', 'chat_template.json'] });
  return tokenizerFrom(texts, source.url.replace(/\/+$/, ''));
}

async function tokenizerFrom(texts: Map<string, string>, where: string): Promise<TokenizerPart> {
  const tokenizerTexts = new Map([...texts].filter(([name]) => (TOKENIZER_FILES as readonly string[]).includes(name)));
  return { tokenizer: await buildTokenizer(tokenizerTexts, where), tokenizerTexts };
}

/**
 * The tokenizer from its files by name (first and cached loads alike): tokenizer.json, tokenizer_config.json and the
 * chat template, which comes from chat_template.jinja, else chat_template.json (`{"chat_template": "..."}`), else
 * tokenizer_config.json — a template file wins over the config's, as in transformers.
 */
export async function buildTokenizer(texts: ReadonlyMap<string, string>, where: string): Promise<TextTokenizer> {
  const template = chatTemplateFile(texts, where);
  const configText = texts.get('tokenizer_config.json');
  if (template === undefined || configText === undefined) return tokenizerFromTexts(texts, where);
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(configText) as Record<string, unknown>;
  } catch {
    return tokenizerFromTexts(texts, where); // it reports the broken JSON
  }
  const patched = new Map(texts);
  patched.set('tokenizer_config.json', JSON.stringify({ ...config, chat_template: template }));
  patched.delete('chat_template.jinja');
  return tokenizerFromTexts(patched, where);
}

function chatTemplateFile(texts: ReadonlyMap<string, string>, where: string): string | undefined {
  const jinja = texts.get('chat_template.jinja');
  if (jinja !== undefined) return jinja;
  const json = texts.get('chat_template.json');
  if (json === undefined) return undefined;
  let template: unknown;
  try {
    template = (JSON.parse(json) as { chat_template?: unknown } | null)?.chat_template;
  } catch (err) {
    throw new GemmaError('bad-file', `${where}/chat_template.json is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  if (typeof template !== 'string') throw new GemmaError('bad-file', `${where}/chat_template.json has no "chat_template" string.`);
  return template;
}

/** The tokenizer files present in `files` (the tokenizer names what is missing); one request each where possible. */
async function readTexts(files: CheckpointFiles): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  // Remote files without a listing are just asked for (a 404 means absent): one request instead of a probe plus a read.
  const remote = 'listed' in files && !(files as RemoteCheckpointFiles).listed;
  await Promise.all(
    TOKENIZER_FILES.map(async (name) => {
      try {
        if (!remote && !(await files.exists(name))) return;
        texts.set(name, new TextDecoder().decode(await readWhole(files.open(name))));
      } catch (err) {
        if (remote && err instanceof HttpStatusError && (err.status === 404 || err.status === 410)) return;
        throw err;
      }
    }),
  );
  return texts;
}
