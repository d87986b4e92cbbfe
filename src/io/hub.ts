/**
 * Remote checkpoints: a Hugging Face repo, or any base URL, as the CheckpointFiles the readers open.
 *
 * A hub repo is **pinned to one commit** before anything big is fetched (`openHubRepo`): the commit comes from the
 * X-Repo-Commit header of a small file's response (the hub answers small files itself, so the header is readable
 * with its CORS exposure) or, failing that, from the revision API; every file is then fetched at
 * `/resolve/{commit}/…`. Large files are redirected to a CDN with a freshly signed URL per request, and the page only
 * sees the CDN's response (the redirect's X-Linked-ETag / X-Xet-Hash are hidden from fetch), whose ETag says nothing
 * about the content — so content is validated by the commit in the URL (immutable) and by the sizes the tree API
 * lists, never by comparing CDN ETags. The tree listing also answers "does this file exist" and "how big is it"
 * without a request per file.
 */
import { GemmaError } from '../errors.ts';
import type { ByteSource } from './byte-source.ts';
import { truncated } from './byte-source.ts';
import { httpSource, HttpStatusError, type HttpByteSource, type HttpSourceOptions, type RetryNotice } from './http-source.ts';
import type { CheckpointFiles } from './safetensors.ts';

/** Where Hugging Face repos are resolved unless `hubUrl` says otherwise (tests point it at 127.0.0.1). */
export const HUGGING_FACE_URL = 'https://huggingface.co';

export interface RemoteFilesOptions {
  /** A Hugging Face access token (hf_...), sent as "Authorization: Bearer ..."; needed for gated repos like Gemma. */
  token?: string;
  /** Extra headers for every request. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** New bytes received for `file`, for download progress (feed a ProgressAggregator). */
  onBytes?: (file: string, bytes: number) => void;
  /** A request failed and will be retried after a pause (rate limits wait a minute or more): for progress. */
  onRetry?: (retry: RetryNotice) => void;
  /** Tuning of the underlying range reads (chunk size, concurrency, retries, timeouts, fetch). */
  http?: Omit<HttpSourceOptions, 'headers' | 'signal' | 'onBytes' | 'size' | 'name' | 'onResponse' | 'onRetry' | 'validate'>;
}

export interface HubOptions extends RemoteFilesOptions {
  /** Branch, tag or commit hash (default 'main'). Pin a commit hash for reproducible loads and cache keys. */
  revision?: string;
  /** Default https://huggingface.co. */
  hubUrl?: string;
}

/** A checkpoint on an HTTP server, as the CheckpointFiles the safetensors reader opens. */
export interface RemoteCheckpointFiles extends CheckpointFiles {
  /** The URL a file is fetched from. */
  url(path: string): string;
  /**
   * One source per path, shared, so exists() and later reads cost a single size probe (none with a listing; small
   * files: none either, through readIfExists).
   */
  open(path: string): HttpByteSource;
  /** The commit the files are pinned to (openHubRepo), or the one the server said it served (X-Repo-Commit). */
  commit(): string | undefined;
  /** A small file's text in one request. */
  readText(path: string): Promise<string>;
  /** Whether the repo's file list is known (then `exists` costs no request). */
  readonly listed: boolean;
}

/** https://huggingface.co/{repo}/resolve/{revision}/{file} */
export function hubFileUrl(repo: string, path: string, options: { revision?: string; hubUrl?: string } = {}): string {
  checkRepoId(repo);
  const base = trimSlash(options.hubUrl ?? HUGGING_FACE_URL);
  // Revisions like "refs/pr/3" must stay one path segment.
  const revision = encodeURIComponent(options.revision ?? 'main');
  return `${base}/${repo}/resolve/${revision}/${encodePath(path)}`;
}

/**
 * The files of a Hugging Face repo at a revision, unpinned: each file is fetched at the revision as given (a branch
 * can move between requests; ETags are compared). Loads use `openHubRepo`, which pins the commit first.
 */
export function hubFiles(repo: string, options: HubOptions = {}): RemoteCheckpointFiles {
  checkRepoId(repo);
  const label = `${repo}@${options.revision ?? 'main'}`;
  return remoteFiles(label, (path) => hubFileUrl(repo, path, options), options);
}

/** The files under any base URL ("https://example.com/models/gemma-3n-E2B-it/" + file name). */
export function urlFiles(baseUrl: string, options: RemoteFilesOptions = {}): RemoteCheckpointFiles {
  let base: URL;
  try {
    base = new URL(baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`, globalThis.location?.href);
  } catch {
    throw new GemmaError('invalid-argument', `"${baseUrl}" is not a URL; pass a Hugging Face repo id ("google/gemma-3n-E2B-it") or a full http(s) URL of the checkpoint folder.`);
  }
  return remoteFiles(trimSlash(base.href), (path) => new URL(encodePath(path), base).href, options);
}

export interface OpenHubRepoOptions extends HubOptions {
  /**
   * A small file of the repo to pin the commit with (its response's X-Repo-Commit), kept so it is not fetched twice
   * (default 'config.json'; null: none, e.g. for a GGUF repo, whose big files are all redirected to the CDN). If it
   * is absent, or its header is not readable, the revision API is asked instead.
   */
  probe?: string | null;
}

/**
 * Opens a hub repo pinned to one commit (see the header): 1-3 small requests (the probe file, the revision API only
 * when the probe did not tell, the tree listing). Fails with a clear error for a gated repo without a valid token
 * (401/403) or a revision that does not exist; a server without the hub's API (a mirror) is used unpinned.
 */
export async function openHubRepo(repo: string, options: OpenHubRepoOptions = {}): Promise<RemoteCheckpointFiles> {
  checkRepoId(repo);
  const revision = options.revision ?? 'main';
  const hubUrl = trimSlash(options.hubUrl ?? HUGGING_FACE_URL);
  const headers = requestHeaders(options);
  const small = (url: string, name: string, onResponse?: (h: Headers) => void) =>
    httpSource(url, { ...options.http, name, headers, signal: options.signal, onRetry: options.onRetry, onResponse });

  let commit = isCommitHash(revision) ? revision.toLowerCase() : undefined;
  const preloaded = new Map<string, Uint8Array>();
  const probe = options.probe === undefined ? 'config.json' : options.probe;
  if (!commit && probe !== null) {
    let served: string | undefined;
    try {
      const bytes = await small(hubFileUrl(repo, probe, { revision, hubUrl }), `${repo}/${probe}`, (h) => (served ??= h.get('x-repo-commit') ?? undefined)).readAll();
      if (served && isCommitHash(served)) {
        commit = served.toLowerCase();
        preloaded.set(probe, bytes); // same commit as every later file
      }
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  if (!commit) commit = await revisionCommit(hubUrl, repo, revision, small);
  const sizes = commit ? await treeSizes(hubUrl, repo, commit, small) : undefined;
  const label = `${repo}@${commit && commit !== revision ? `${revision} (${commit.slice(0, 12)})` : revision}`;
  return remoteFiles(label, (path) => hubFileUrl(repo, path, { revision: commit ?? revision, hubUrl }), options, { commit, sizes, preloaded });
}

/** A hub file URL taken apart: `{hub}/{owner}/{name}/resolve/{revision}/{path}` (or a repo page on huggingface.co). */
export interface HubLocation {
  hubUrl: string;
  repo: string;
  revision: string;
  /** The file inside the repo ('' for the repo itself). */
  path: string;
}

/**
 * Recognises Hugging Face URLs, so a pasted link gets pinned like a repo id: any origin's
 * `/{owner}/{name}/resolve/{revision}/{path}` (the hub's download URLs; mirrors use the same shape), and on
 * huggingface.co / hf.co also `/{owner}/{name}/blob/{revision}/{path}`, `/{owner}/{name}/tree/{revision}` and the repo
 * page `/{owner}/{name}`. Undefined for anything else.
 */
export function parseHubUrl(url: string): HubLocation | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.search || u.hash) return undefined; // signed or otherwise decorated URLs are taken as they are
  const official = /^(?:www\.)?(?:huggingface\.co|hf\.co)$/i.test(u.hostname);
  const [owner, name, kind, rev, ...rest] = u.pathname.split('/').filter(Boolean);
  if (!owner || !name) return undefined;
  const repo = `${owner}/${name}`;
  if (!isValidRepoId(repo)) return undefined;
  const hubUrl = u.origin;
  let revision: string;
  try {
    revision = rev === undefined ? 'main' : decodeURIComponent(rev);
  } catch {
    return undefined;
  }
  const path = rest.map((s) => decodeURIComponent(s)).join('/');
  if (kind === 'resolve' && rev !== undefined) return { hubUrl, repo, revision, path };
  if (!official) return undefined;
  if (kind === undefined) return { hubUrl, repo, revision: 'main', path: '' };
  if ((kind === 'blob' || kind === 'tree') && rev !== undefined) return { hubUrl, repo, revision, path };
  return undefined;
}

function isCommitHash(s: string): boolean {
  return /^[0-9a-f]{40}$/i.test(s);
}

function isNotFound(err: unknown): boolean {
  return err instanceof HttpStatusError && (err.status === 404 || err.status === 410);
}

type SmallSource = (url: string, name: string, onResponse?: (h: Headers) => void) => HttpByteSource;

async function readJson(source: HttpByteSource): Promise<unknown> {
  const text = new TextDecoder().decode(await source.readAll());
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new GemmaError('network', `${source.url} did not answer with JSON (${(err as Error).message}).`, { cause: err });
  }
}

/**
 * The commit of `revision` from the hub's revision API (`/api/models/{repo}/revision/{revision}` → `sha`). Access
 * errors and an unknown revision fail clearly; a server without the API gives undefined (the load goes on unpinned).
 */
async function revisionCommit(hubUrl: string, repo: string, revision: string, small: SmallSource): Promise<string | undefined> {
  const url = `${hubUrl}/api/models/${repo}/revision/${encodeURIComponent(revision)}`;
  try {
    const sha = ((await readJson(small(url, `${repo}@${revision}`))) as { sha?: unknown } | null)?.sha;
    return typeof sha === 'string' && isCommitHash(sha) ? sha.toLowerCase() : undefined;
  } catch (err) {
    if (err instanceof HttpStatusError && (err.status === 401 || err.status === 403)) throw err;
    if (err instanceof HttpStatusError && err.status === 404) {
      throw new HttpStatusError(404, url, `${repo} has no revision "${revision}" on ${hubUrl} (HTTP 404), or the repository does not exist. Check the repository id and the branch, tag or commit hash.`);
    }
    if (err instanceof GemmaError && err.code === 'aborted') throw err;
    return undefined;
  }
}

/** Sizes of the files at the repo's root from the tree API; undefined when it cannot be read (then files are probed). */
async function treeSizes(hubUrl: string, repo: string, commit: string, small: SmallSource): Promise<Map<string, number> | undefined> {
  try {
    const list = await readJson(small(`${hubUrl}/api/models/${repo}/tree/${commit}`, `${repo}@${commit.slice(0, 12)} (file list)`));
    if (!Array.isArray(list)) return undefined;
    const sizes = new Map<string, number>();
    for (const e of list as { type?: unknown; path?: unknown; size?: unknown; lfs?: { size?: unknown } }[]) {
      const size = Number(e?.lfs?.size ?? e?.size);
      if (e?.type === 'file' && typeof e.path === 'string' && Number.isSafeInteger(size) && size >= 0) sizes.set(e.path, size);
    }
    return sizes;
  } catch (err) {
    if (err instanceof GemmaError && err.code === 'aborted') throw err;
    return undefined;
  }
}

interface Pinned {
  commit: string | undefined;
  /** Sizes by path from the tree listing: existence and size without a request. */
  sizes: Map<string, number> | undefined;
  /** Files already fetched while pinning. */
  preloaded: Map<string, Uint8Array>;
}

function requestHeaders(options: RemoteFilesOptions): Record<string, string> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  return headers;
}

function remoteFiles(name: string, urlOf: (path: string) => string, options: RemoteFilesOptions, pinned?: Pinned): RemoteCheckpointFiles {
  const headers = requestHeaders(options);
  const sources = new Map<string, HttpByteSource>();
  /** Paths the server answered 404 / 410 for: asked once per load (files are taken as immutable while loading). */
  const missing = new Set<string>();
  const absent = (path: string, err: unknown): undefined => {
    if (!isNotFound(err)) throw err;
    missing.add(path);
    return undefined;
  };
  let served: string | undefined;
  const open = (path: string): HttpByteSource => {
    let source = sources.get(path);
    if (!source) {
      const url = urlOf(path);
      const bytes = pinned?.preloaded.get(path);
      source = bytes
        ? preloadedSource(url, `${name}/${path}`, bytes)
        : httpSource(url, {
            ...options.http,
            name: `${name}/${path}`,
            headers,
            signal: options.signal,
            size: pinned?.sizes?.get(path),
            // A commit-addressed URL is immutable: the CDN's per-request ETags say nothing (see the header).
            validate: pinned?.commit ? 'size' : 'etag',
            onBytes: options.onBytes && ((n) => options.onBytes!(path, n)),
            onRetry: options.onRetry,
            onResponse: (h) => (served = h.get('x-repo-commit') ?? served),
          });
      sources.set(path, source);
    }
    return source;
  };
  return {
    name,
    url: urlOf,
    listed: pinned?.sizes !== undefined,
    open,
    commit: () => pinned?.commit ?? served,
    async readText(path) {
      return new TextDecoder().decode(await open(path).readAll());
    },
    async exists(path) {
      if (pinned?.sizes) return pinned.sizes.has(path) || pinned.preloaded.has(path);
      if (missing.has(path)) return false;
      try {
        await open(path).size();
        return true;
      } catch (err) {
        return absent(path, err) ?? false;
      }
    },
    // One plain GET (a 404 answers "absent"), instead of a size probe and then the GET.
    async readIfExists(path) {
      if (pinned?.sizes ? !(pinned.sizes.has(path) || pinned.preloaded.has(path)) : missing.has(path)) return undefined;
      return open(path).readAll().catch((err: unknown) => absent(path, err));
    },
  };
}

/** A file fetched while pinning, served from memory. */
function preloadedSource(url: string, name: string, bytes: Uint8Array): HttpByteSource {
  const source: ByteSource = {
    name,
    size: async () => bytes.byteLength,
    read: async (offset, length) => {
      if (offset + length > bytes.byteLength) throw truncated(name, offset + length, bytes.byteLength);
      return bytes.subarray(offset, offset + length);
    },
  };
  return { ...source, url, readAll: async () => bytes };
}

function isValidRepoId(repo: string): boolean {
  return /^(?:[\w][\w.-]*\/)?[\w][\w.-]*$/.test(repo) && !repo.includes('..');
}

function checkRepoId(repo: string): void {
  if (!isValidRepoId(repo)) {
    throw new GemmaError('invalid-argument', `"${repo}" is not a Hugging Face repo id; expected "owner/name", e.g. "google/gemma-3n-E2B-it".`);
  }
}

function encodePath(path: string): string {
  if (path.split('/').some((seg) => seg === '' || seg === '.' || seg === '..')) {
    throw new GemmaError('invalid-argument', `"${path}" is not a file path inside a checkpoint.`);
  }
  return path.split('/').map(encodeURIComponent).join('/');
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, '');
}
