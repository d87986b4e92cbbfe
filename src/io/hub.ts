import { GemmaError } from '../errors.ts';
import { httpSource, HttpStatusError, type HttpByteSource, type HttpSourceOptions } from './http-source.ts';
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
  /** Tuning of the underlying range reads (chunk size, concurrency, retries, fetch). */
  http?: Omit<HttpSourceOptions, 'headers' | 'signal' | 'onBytes' | 'size' | 'name' | 'onResponse'>;
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
  /** One source per path, shared, so exists() and later reads cost a single size probe. */
  open(path: string): HttpByteSource;
  /** The commit the server says it served (Hugging Face's X-Repo-Commit), once any file has been fetched. */
  commit(): string | undefined;
}

/** https://huggingface.co/{repo}/resolve/{revision}/{file} */
export function hubFileUrl(repo: string, path: string, options: { revision?: string; hubUrl?: string } = {}): string {
  checkRepoId(repo);
  const base = trimSlash(options.hubUrl ?? HUGGING_FACE_URL);
  // Revisions like "refs/pr/3" must stay one path segment.
  const revision = encodeURIComponent(options.revision ?? 'main');
  return `${base}/${repo}/resolve/${revision}/${encodePath(path)}`;
}

/** The files of a Hugging Face repo at a revision. */
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

function remoteFiles(name: string, urlOf: (path: string) => string, options: RemoteFilesOptions): RemoteCheckpointFiles {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  const sources = new Map<string, HttpByteSource>();
  let commit: string | undefined;
  const open = (path: string): HttpByteSource => {
    let source = sources.get(path);
    if (!source) {
      source = httpSource(urlOf(path), {
        ...options.http,
        name: `${name}/${path}`,
        headers,
        signal: options.signal,
        onBytes: options.onBytes && ((bytes) => options.onBytes!(path, bytes)),
        onResponse: (h) => (commit = h.get('x-repo-commit') ?? commit),
      });
      sources.set(path, source);
    }
    return source;
  };
  return {
    name,
    url: urlOf,
    open,
    commit: () => commit,
    async exists(path) {
      try {
        await open(path).size();
        return true;
      } catch (err) {
        if (err instanceof HttpStatusError && (err.status === 404 || err.status === 410)) return false;
        throw err;
      }
    },
  };
}

function checkRepoId(repo: string): void {
  if (!/^(?:[\w][\w.-]*\/)?[\w][\w.-]*$/.test(repo) || repo.includes('..')) {
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
