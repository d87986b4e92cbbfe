/**
 * Where a model comes from, parsed once from what the caller passed (`LoadRequest.model` / `.tokenizer` / `.token`,
 * or a CLI argument) into a typed value that the loader, the offline cache key and the tokenizer lookup all use.
 */
import { GemmaError } from '../../errors.ts';
import type { ByteSource } from '../../io/byte-source.ts';
import type { CacheKey } from '../../io/cache.ts';
import { HUGGING_FACE_URL, parseHubUrl, type HubLocation } from '../../io/hub.ts';
import type { CheckpointFiles } from '../../io/safetensors.ts';
import type { ModelSize, RandomCheckpointOptions } from '../../model/family.ts';
import type { LoadRequest } from '../protocol.ts';

export type ModelSource =
  /** A Hugging Face repo at a revision (branch, tag or commit); `hubUrl` when not huggingface.co (a mirror, tests). */
  | { kind: 'hub'; repo: string; revision: string; token?: string; hubUrl?: string }
  /** A checkpoint folder over HTTP(S): config.json, safetensors, tokenizer files. */
  | { kind: 'url'; url: string; token?: string }
  /** One GGUF file over HTTP(S); `hub` when the URL is a hub file (then it is pinned to a commit like a repo). */
  | { kind: 'gguf-url'; url: string; token?: string; hub?: HubLocation }
  /** Files the user picked or dropped: a checkpoint folder, or one .gguf (plus tokenizer files). */
  | { kind: 'picked'; files: readonly File[] }
  /** A folder the host opened (Node: a local directory). */
  | { kind: 'folder'; files: CheckpointFiles }
  /** A GGUF file the host opened (Node: a local file). */
  | { kind: 'gguf-file'; source: ByteSource }
  /** Random weights at real shapes, generated on the spot (gibberish by design; tests, demos, benchmarks). */
  | { kind: 'random'; options: RandomCheckpointOptions };

/**
 * Where the tokenizer comes from: the model's own files (a GGUF's own metadata), a folder URL, a hub repo (with the
 * load's token unless it brings its own), or nowhere (token-id prompts only).
 */
export type TokenizerSource =
  | { kind: 'model' }
  | { kind: 'url'; url: string; token?: string }
  | { kind: 'hub'; repo: string; revision: string; token?: string; hubUrl?: string }
  | { kind: 'none' };

/** 'owner/name' (no scheme, no leading '/' or '.'): a Hugging Face repo id. */
export function isRepoId(s: string): boolean {
  return /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(s) && !s.includes('..') && !isGgufName(s);
}

export function isGgufName(s: string): boolean {
  return /\.gguf$/i.test(s.split(/[?#]/)[0]);
}

function absoluteUrl(s: string, base: string | undefined, what: string): string {
  try {
    return new URL(s, base).href;
  } catch {
    throw new GemmaError(
      'invalid-argument',
      `${what} "${s}" is not a URL; pass a Hugging Face repo id ("google/gemma-3n-E2B-it"), a full http(s) URL of the checkpoint folder or .gguf file, { hub }, { files } or { randomCheckpoint }.`,
    );
  }
}

/** Parses `request.model` (see LoadRequest) once. `base` resolves relative URLs (the page's location). */
export function parseModelSource(request: Pick<LoadRequest, 'model' | 'token'>, base: string | undefined = globalThis.location?.href): ModelSource {
  const spec = request.model as unknown;
  const token = request.token;
  if (typeof spec === 'string') {
    if (spec.trim() === '') throw new GemmaError('invalid-argument', 'loadGemma({ model }) got an empty string.');
    if (isRepoId(spec)) return { kind: 'hub', repo: spec, revision: 'main', token };
    const url = absoluteUrl(spec, base, 'model');
    // A pasted hub link is pinned like a repo id: a repo (or its resolve folder) or one of its .gguf files.
    const hub = parseHubUrl(url);
    if (hub && hub.path === '') return { kind: 'hub', repo: hub.repo, revision: hub.revision, token, ...hubUrlOf(hub) };
    if (hub && isGgufName(hub.path)) return { kind: 'gguf-url', url, token, hub };
    return isGgufName(url) ? { kind: 'gguf-url', url, token } : { kind: 'url', url, token };
  }
  if (typeof spec === 'object' && spec !== null) {
    const o = spec as Record<string, unknown>;
    if (typeof o.hub === 'string') {
      if (!isRepoId(o.hub)) throw new GemmaError('invalid-argument', `{ hub: "${o.hub}" } is not a Hugging Face repo id ("owner/name").`);
      if (o.revision !== undefined && (typeof o.revision !== 'string' || o.revision === '')) throw new GemmaError('invalid-argument', '{ hub, revision } needs a non-empty revision string.');
      return { kind: 'hub', repo: o.hub, revision: (o.revision as string | undefined) ?? 'main', token: typeof o.token === 'string' ? o.token : token };
    }
    if (Array.isArray(o.files)) {
      if (o.files.length === 0 || !o.files.every((f) => typeof Blob !== 'undefined' && f instanceof Blob)) {
        throw new GemmaError('invalid-argument', '{ files } needs the picked File objects (a checkpoint folder, or one .gguf file plus tokenizer files).');
      }
      return { kind: 'picked', files: o.files as File[] };
    }
    if (typeof o.randomCheckpoint === 'object' && o.randomCheckpoint !== null) return { kind: 'random', options: o.randomCheckpoint as RandomCheckpointOptions };
  }
  throw new GemmaError(
    'invalid-argument',
    `loadGemma({ model }) got ${JSON.stringify(spec)}: pass a checkpoint folder URL, a Hugging Face repo id, a .gguf URL, { hub, revision? }, { files } or { randomCheckpoint }.`,
  );
}

/**
 * Parses `request.tokenizer`: absent = the model's own files (a GGUF's own metadata); a Hugging Face repo id or hub
 * link, or `{ hub, revision?, token? }` (sent the load's token unless it has its own); a folder URL (sent the load's
 * token only when it is on the model's own server, so a token never leaks to another site); false = none.
 */
export function parseTokenizerSource(request: Pick<LoadRequest, 'tokenizer'> & Partial<Pick<LoadRequest, 'model' | 'token'>>, base: string | undefined = globalThis.location?.href): TokenizerSource {
  const t = request.tokenizer as unknown;
  if (t === undefined) return { kind: 'model' };
  if (t === false) return { kind: 'none' };
  if (typeof t === 'string') {
    if (isRepoId(t)) return { kind: 'hub', repo: t, revision: 'main', token: request.token };
    const url = absoluteUrl(t, base, 'tokenizer');
    const hub = parseHubUrl(url);
    if (hub && hub.path === '') return { kind: 'hub', repo: hub.repo, revision: hub.revision, token: request.token, ...hubUrlOf(hub) };
    const sameServer = request.token !== undefined && originOf(url) === modelOrigin(request, base);
    return { kind: 'url', url, token: sameServer ? request.token : undefined };
  }
  if (typeof t === 'object' && t !== null && typeof (t as { hub?: unknown }).hub === 'string') {
    const o = t as { hub: string; revision?: unknown; token?: unknown };
    if (!isRepoId(o.hub)) throw new GemmaError('invalid-argument', `tokenizer: { hub: "${o.hub}" } is not a Hugging Face repo id ("owner/name").`);
    if (o.revision !== undefined && (typeof o.revision !== 'string' || o.revision === '')) throw new GemmaError('invalid-argument', 'tokenizer: { hub, revision } needs a non-empty revision string.');
    return { kind: 'hub', repo: o.hub, revision: (o.revision as string | undefined) ?? 'main', token: typeof o.token === 'string' ? o.token : request.token };
  }
  throw new GemmaError('invalid-argument', `tokenizer must be a folder URL, a Hugging Face repo id, { hub, revision?, token? } or false (got ${JSON.stringify(t)}).`);
}

function hubUrlOf(hub: HubLocation): { hubUrl?: string } {
  return hub.hubUrl === HUGGING_FACE_URL ? {} : { hubUrl: hub.hubUrl };
}

function originOf(url: string): string | undefined {
  try {
    return new URL(url).origin;
  } catch {
    return undefined;
  }
}

/** The server the model comes from (where the load's token is meant to go). */
function modelOrigin(request: Partial<Pick<LoadRequest, 'model'>>, base: string | undefined): string | undefined {
  const m = request.model as unknown;
  if (typeof m === 'string') {
    if (isRepoId(m)) return HUGGING_FACE_URL;
    try {
      return new URL(m, base).origin;
    } catch {
      return undefined;
    }
  }
  if (typeof m === 'object' && m !== null && typeof (m as { hub?: unknown }).hub === 'string') return HUGGING_FACE_URL;
  return undefined;
}

/** A short name for messages. */
export function describeSource(source: ModelSource): string {
  switch (source.kind) {
    case 'hub': return `${source.hubUrl ? `${source.hubUrl}/` : ''}${source.repo}@${source.revision}`;
    case 'url':
    case 'gguf-url': return source.url;
    case 'picked': return source.files.length === 1 ? source.files[0].name : `${source.files.length} picked files`;
    case 'folder': return source.files.name;
    case 'gguf-file': return source.source.name;
    case 'random': return `random checkpoint (${source.options.preset ?? 'tiny'})`;
  }
}

/**
 * The offline-cache key of a load, or undefined for sources that are never cached (picked and host-opened files,
 * random checkpoints). URLs are taken as immutable; hub loads are keyed by the revision asked for (the manifest
 * records the commit served). A sized load (`slice`: sliceCacheTag) is an entry of its own.
 */
export function cacheKeyOf(source: ModelSource, weightMode: string, slice?: string): CacheKey | undefined {
  const sliced = slice === undefined ? {} : { slice };
  switch (source.kind) {
    case 'hub': return { modelId: source.hubUrl ? `${source.hubUrl}/${source.repo}` : source.repo, revision: source.revision, weightMode, ...sliced };
    case 'url':
    case 'gguf-url': return { modelId: source.url, revision: 'url', weightMode, ...sliced };
    default: return undefined;
  }
}

/**
 * Parses `request.size` (its shape; the model's family checks it against the checkpoint): a configuration name, or
 * `{ skipLayers?, ffnWidths? }` with integer lists.
 */
export function parseModelSize(request: Pick<LoadRequest, 'size'>): ModelSize | undefined {
  const size = request.size as unknown;
  if (size === undefined) return undefined;
  if (typeof size === 'string' && size.trim() !== '') return size.trim();
  const ints = (v: unknown) => v === undefined || (Array.isArray(v) && v.every((x) => Number.isInteger(x) && x >= 0));
  if (typeof size === 'object' && size !== null && !Array.isArray(size)) {
    const o = size as Record<string, unknown>;
    if (Object.keys(o).every((k) => k === 'skipLayers' || k === 'ffnWidths') && ints(o.skipLayers) && ints(o.ffnWidths)) {
      return { ...(o.skipLayers ? { skipLayers: [...(o.skipLayers as number[])] } : {}), ...(o.ffnWidths ? { ffnWidths: [...(o.ffnWidths as number[])] } : {}) };
    }
  }
  throw new GemmaError(
    'invalid-argument',
    `loadGemma({ size }) got ${JSON.stringify(size)}: pass a published configuration's name ('E2B', 'E2.54B', …) or { skipLayers: [layer, …], ffnWidths: [width per kept layer, …] }.`,
  );
}

/** `1,2,2,2,5` → `1,2x3,5`: a width list of 35 entries stays short in a cache folder name. */
function runLength(values: readonly number[]): string {
  const out: string[] = [];
  for (let i = 0; i < values.length; ) {
    let j = i;
    while (j + 1 < values.length && values[j + 1] === values[i]) j++;
    out.push(j > i ? `${values[i]}x${j - i + 1}` : `${values[i]}`);
    i = j + 1;
  }
  return out.join(',');
}

/** The cache key's part for a size: a name as given (case-folded), an explicit size spelled out. */
export function sliceCacheTag(size: ModelSize): string {
  if (typeof size === 'string') return size.trim().toLowerCase();
  return `skip=${[...(size.skipLayers ?? [])].sort((a, b) => a - b).join(',')};ffn=${size.ffnWidths ? runLength(size.ffnWidths) : 'all'}`;
}

/** How a cache entry records which tokenizer it holds, so a load asking for another one is not served from it. */
export function tokenizerCacheTag(tokenizer: TokenizerSource): string | undefined {
  switch (tokenizer.kind) {
    case 'none': return undefined;
    case 'model': return 'model';
    case 'url': return tokenizer.url;
    case 'hub': return `hub:${tokenizer.hubUrl ? `${tokenizer.hubUrl}/` : ''}${tokenizer.repo}@${tokenizer.revision}`;
  }
}

/**
 * The request with relative URLs (model, tokenizer) made absolute against `base`: call it where the caller's URLs
 * mean what they say (the page), before the request crosses to a worker, whose own URL is a different base.
 */
export function withAbsoluteUrls<R extends Pick<LoadRequest, 'model' | 'tokenizer'>>(request: R, base: string | undefined = globalThis.location?.href): R {
  if (base === undefined) return request;
  const out = { ...request };
  if (typeof out.model === 'string' && out.model.trim() !== '' && !isRepoId(out.model)) out.model = absoluteUrl(out.model, base, 'model');
  if (typeof out.tokenizer === 'string' && !isRepoId(out.tokenizer)) out.tokenizer = absoluteUrl(out.tokenizer, base, 'tokenizer');
  return out;
}
