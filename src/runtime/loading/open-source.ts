/**
 * Opens a ModelSource: its tokenizer first (small files, validated before any weight byte is fetched), then the
 * checkpoint (safetensors headers or a GGUF header, through the registry), with download progress over exactly the
 * weight bytes and every request honouring the load's AbortSignal. The only place that locates a tokenizer.
 */
import { GemmaError } from '../../errors.ts';
import type { ByteSource } from '../../io/byte-source.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { listCheckpoint, listWeightFiles } from '../../io/checkpoint-listing.ts';
import { blobSource, pickedFiles } from '../../io/file-source.ts';
import { httpSource } from '../../io/http-source.ts';
import { fetchTexts } from '../../io/fetch-texts.ts';
import { hubFiles, urlFiles } from '../../io/hub.ts';
import { ProgressAggregator } from '../../io/progress.ts';
import { openSafetensorsCheckpoint, type CheckpointFiles } from '../../io/safetensors.ts';
import { openGgufCheckpoint, randomCheckpoint } from '../../model/registry.ts';
import type { LoadProgress } from '../protocol.ts';
import { tokenizerFromTexts, type TextTokenizer } from '../tokenizer.ts';
import { isGgufName, type ModelSource, type TokenizerSource } from './model-source.ts';

/** The tokenizer's small files, as kept with a cached model (so a cached load needs no network at all). */
export const TOKENIZER_FILES = ['tokenizer.json', 'tokenizer_config.json', 'chat_template.jinja'] as const;

export interface OpenedSource {
  checkpoint: Checkpoint;
  tokenizer?: TextTokenizer;
  /** The tokenizer texts by file name (for the offline cache). */
  tokenizerTexts?: Map<string, string>;
  /** Ends the download phase (call once every weight byte has been read). */
  finishDownload(): void;
  /** The exact commit the hub served, when it said. */
  commit(): string | undefined;
}

export interface OpenOptions {
  onProgress: (p: LoadProgress) => void;
  signal?: AbortSignal;
}

/** Download progress over the weight files' bytes: a clean 0..total stream once the total is known. */
class DownloadProgress {
  private aggregator: ProgressAggregator | undefined;
  private early = 0;
  constructor(private readonly onProgress: (p: LoadProgress) => void) {}

  setTotal(bytes: number): void {
    this.aggregator = new ProgressAggregator('download', bytes, this.onProgress);
    if (this.early > 0) this.aggregator.advance('', this.early);
  }

  onBytes = (file: string, bytes: number): void => {
    if (!/\.(safetensors|gguf)$/i.test(file.split(/[?#]/)[0])) return;
    if (this.aggregator) this.aggregator.advance(file, bytes);
    else this.early += bytes;
  };

  finish(): void {
    this.aggregator?.finish();
  }
}

export async function openSource(source: ModelSource, tokenizerSource: TokenizerSource, options: OpenOptions): Promise<OpenedSource> {
  const { signal } = options;
  const download = new DownloadProgress(options.onProgress);
  const finishDownload = () => download.finish();
  const noCommit = () => undefined;
  switch (source.kind) {
    case 'random':
      return { checkpoint: randomCheckpoint(source.options), ...(await separateTokenizer(tokenizerSource, signal)), finishDownload, commit: noCommit };
    case 'hub':
    case 'url': {
      const files =
        source.kind === 'hub'
          ? hubFiles(source.repo, { revision: source.revision, token: source.token, onBytes: download.onBytes, signal })
          : urlFiles(source.url, { token: source.token, onBytes: download.onBytes, signal });
      return { ...(await openFolder(files, tokenizerSource, download, signal)), finishDownload, commit: files.commit };
    }
    case 'folder':
      return { ...(await openFolder(source.files, tokenizerSource, download, signal)), finishDownload, commit: noCommit };
    case 'gguf-url': {
      const headers: Record<string, string> = source.token ? { Authorization: `Bearer ${source.token}` } : {};
      const file = httpSource(source.url, { headers, signal, onBytes: (n) => download.onBytes(source.url, n) });
      return { ...(await openGguf(file, tokenizerSource, undefined, download, signal)), finishDownload, commit: noCommit };
    }
    case 'gguf-file':
      return { ...(await openGguf(source.source, tokenizerSource, undefined, download, signal)), finishDownload, commit: noCommit };
    case 'picked': {
      const files = pickedFiles(source.files);
      const gguf = source.files.find((f) => isGgufName(f.name));
      if (gguf) return { ...(await openGguf(blobSource(gguf), tokenizerSource, files, download, signal)), finishDownload, commit: noCommit };
      return { ...(await openFolder(files, tokenizerSource, download, signal)), finishDownload, commit: noCommit };
    }
  }
}

type Opened = Pick<OpenedSource, 'checkpoint' | 'tokenizer' | 'tokenizerTexts'>;
type TokenizerPart = Pick<OpenedSource, 'tokenizer' | 'tokenizerTexts'>;

/** A safetensors folder: tokenizer (its own unless told otherwise), then the weights' headers. */
async function openFolder(files: CheckpointFiles, tokenizerSource: TokenizerSource, download: DownloadProgress, signal?: AbortSignal): Promise<Opened> {
  let tokenizer: TokenizerPart;
  if (tokenizerSource.kind === 'model') {
    const listing = await listCheckpoint(files); // config, tokenizer files, chat template; names what is missing
    tokenizer = await tokenizerFrom(listing.texts, files.name);
    download.setTotal(listing.totalWeightBytes);
  } else {
    tokenizer = await separateTokenizer(tokenizerSource, signal);
    download.setTotal((await listWeightFiles(files)).reduce((s, f) => s + f.size, 0));
  }
  return { checkpoint: await openSafetensorsCheckpoint(files), ...tokenizer };
}

/** A GGUF file: it carries no tokenizer.json, so the tokenizer comes from picked files or a folder URL. */
async function openGguf(file: ByteSource, tokenizerSource: TokenizerSource, picked: CheckpointFiles | undefined, download: DownloadProgress, signal?: AbortSignal): Promise<Opened> {
  let tokenizer: TokenizerPart = {};
  if (tokenizerSource.kind === 'model') {
    if (picked && (await picked.exists('tokenizer.json'))) tokenizer = await tokenizerFrom(await readTexts(picked), picked.name);
    else {
      throw new GemmaError(
        'invalid-argument',
        `${file.name} is a GGUF file, which holds no tokenizer.json: pass \`tokenizer: '<folder URL with tokenizer.json and tokenizer_config.json>'\` ` +
          '(or pick those files with the .gguf), or `tokenizer: false` to prompt with token ids only.',
      );
    }
  } else {
    tokenizer = await separateTokenizer(tokenizerSource, signal);
  }
  download.setTotal(await file.size());
  return { checkpoint: await openGgufCheckpoint(file), ...tokenizer };
}

/** The tokenizer from a folder URL of its own (or none); custom model factories use it too. */
export async function separateTokenizer(source: TokenizerSource, signal?: AbortSignal): Promise<TokenizerPart> {
  if (source.kind === 'none') return {};
  if (source.kind === 'model') {
    throw new GemmaError('invalid-argument', 'This model source carries no tokenizer files: pass `tokenizer: <folder URL>` or `tokenizer: false`.');
  }
  return tokenizerFrom(await fetchTexts(source.url, TOKENIZER_FILES, { signal, optional: ['chat_template.jinja'] }), source.url.replace(/\/+$/, ''));
}

async function tokenizerFrom(texts: Map<string, string>, where: string): Promise<TokenizerPart> {
  const tokenizerTexts = new Map([...texts].filter(([name]) => (TOKENIZER_FILES as readonly string[]).includes(name)));
  return { tokenizer: await tokenizerFromTexts(tokenizerTexts, where), tokenizerTexts };
}

/** The tokenizer files present in `files` (tokenizerFromTexts names what is missing). */
async function readTexts(files: CheckpointFiles): Promise<Map<string, string>> {
  const texts = new Map<string, string>();
  for (const name of TOKENIZER_FILES) {
    if (!(await files.exists(name))) continue;
    const source = files.open(name);
    texts.set(name, new TextDecoder().decode(await source.read(0, await source.size())));
  }
  return texts;
}
