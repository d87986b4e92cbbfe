/**
 * A Hugging Face hub emulator for download tests (127.0.0.1 only): two origins, as the real hub has.
 *
 * The hub origin answers huggingface.co-style URLs:
 * - `/{owner}/{name}/resolve/{revision}/{path}`: small files (not .safetensors / .gguf) directly, with
 *   `X-Repo-Commit` and an `ETag`; large ("LFS") files with a **307 redirect to the CDN origin**, to a freshly signed
 *   URL per request (the redirect carries X-Repo-Commit, X-Linked-Size and X-Linked-Etag, which fetch never shows);
 * - `/api/models/{owner}/{name}/revision/{revision}` (`{ sha }`) and `/api/models/{owner}/{name}/tree/{revision}`
 *   (`[{ type, path, size, oid, lfs? }]`);
 * - CORS as the hub sends it (any origin; Authorization and Range allowed; X-Repo-Commit, ETag, Content-Range, … exposed);
 * - gated repos: 401 without the right token (resolve and API alike); unknown revision or file: 404.
 * The CDN origin serves a signed URL with Range support and **an ETag that changes on every response** (as
 * per-request signed objects may), and refuses unsigned or unknown URLs (403).
 *
 * Faults for tests: `rateLimit(n)` answers the n-th hub request with 429 (Retry-After), `stallHeaders(req)` accepts a
 * request and never answers it. Files are bytes, a path on disk, or virtual (size + a function producing any range,
 * for real-size files that never exist whole). Every request is logged with its origin.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createHash, randomBytes } from 'node:crypto';

/** A file whose bytes are computed on demand (real-size synthetic checkpoints). */
export interface VirtualFile {
  size: number;
  /** Bytes [start, end). */
  read(start: number, end: number): Uint8Array;
}

export type HubFile = Uint8Array | string | VirtualFile;

export interface HubRepo {
  /** Branch or tag → commit (40 hex). 'main' at least. */
  refs: Record<string, string>;
  /** Files by path (the same at every commit: tests pin to one). */
  files: Map<string, HubFile>;
  /** Requests need "Authorization: Bearer <token>". */
  gatedToken?: string;
}

export interface HubRequest {
  origin: 'hub' | 'cdn';
  method: string;
  path: string;
  /** For CDN requests: the repo file the signed URL stands for. */
  file?: string;
  range: string | undefined;
  authorization: string | undefined;
  status?: number;
}

export interface HubEmulator {
  readonly hubUrl: string;
  readonly cdnUrl: string;
  readonly repos: Map<string, HubRepo>;
  readonly log: HubRequest[];
  /** Answer the n-th (from 0) hub request with 429 when true. */
  rateLimit: ((n: number, req: HubRequest) => boolean) | undefined;
  /** Retry-After of a 429, in seconds (default 1). */
  retryAfterSeconds: number;
  /** Never answer this request (no status line, no headers). */
  stallHeaders: ((req: HubRequest) => boolean) | undefined;
  /** Clears the log and the fault hooks. */
  reset(): void;
  close(): Promise<void>;
}

const LFS = /\.(safetensors|gguf|bin)$/i;
const CHUNK = 1 << 20;

function sha(text: string): string {
  return createHash('sha1').update(text).digest('hex');
}

export function isLfs(path: string): boolean {
  return LFS.test(path);
}

export async function startHubEmulator(): Promise<HubEmulator> {
  const repos = new Map<string, HubRepo>();
  const log: HubRequest[] = [];
  const diskCache = new Map<string, Uint8Array>();
  /** signature → the file it grants. */
  const signed = new Map<string, { repo: string; path: string }>();
  const held = new Set<ServerResponse>();
  let hubCount = 0;
  let cdnEtag = 0;
  const state = {
    rateLimit: undefined as HubEmulator['rateLimit'],
    stallHeaders: undefined as HubEmulator['stallHeaders'],
    retryAfterSeconds: 1,
  };

  const sizeOf = (f: HubFile): number => (typeof f === 'string' ? bytesOfDisk(f).length : f instanceof Uint8Array ? f.length : f.size);
  const bytesOfDisk = (path: string): Uint8Array => {
    let b = diskCache.get(path);
    if (!b) diskCache.set(path, (b = new Uint8Array(readFileSync(path))));
    return b;
  };
  const slice = (f: HubFile, start: number, end: number): Uint8Array =>
    typeof f === 'string' ? bytesOfDisk(f).subarray(start, end) : f instanceof Uint8Array ? f.subarray(start, end) : f.read(start, end);

  const cors = (res: ServerResponse) => {
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'X-Repo-Commit, X-Request-Id, X-Error-Code, X-Error-Message, X-Total-Count, ETag, Link, Accept-Ranges, Content-Range, X-Linked-Size, X-Linked-ETag, X-Xet-Hash');
  };
  const preflight = (res: ServerResponse) => {
    cors(res);
    res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD, OPTIONS');
    res.setHeader('Access-Control-Allow-Headers', 'Authorization, Range, Content-Type, User-Agent');
    res.setHeader('Access-Control-Max-Age', '86400');
    res.writeHead(204).end();
  };
  const fail = (res: ServerResponse, entry: HubRequest, status: number, code: string, message: string, extra: Record<string, string> = {}) => {
    entry.status = status;
    res.writeHead(status, { 'Content-Type': 'application/json', 'X-Error-Code': code, 'X-Error-Message': message, ...extra }).end(JSON.stringify({ error: message }));
  };

  /** Sends `file` honouring Range, streaming virtual content in 1 MiB pieces. */
  const send = (req: IncomingMessage, res: ServerResponse, entry: HubRequest, file: HubFile, headers: Record<string, string>) => {
    const size = sizeOf(file);
    let start = 0;
    let end = size; // exclusive
    let status = 200;
    const m = /^bytes=(\d+)-(\d*)$/.exec(entry.range ?? '');
    if (m) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]) + 1, size) : size;
      if (start >= size) {
        entry.status = 416;
        res.writeHead(416, { ...headers, 'Content-Range': `bytes */${size}` }).end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end - 1}/${size}`;
    }
    entry.status = status;
    res.writeHead(status, { ...headers, 'Accept-Ranges': 'bytes', 'Content-Type': 'application/octet-stream', 'Content-Length': String(end - start) });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    let at = start;
    const pump = () => {
      while (at < end) {
        const next = Math.min(end, at + CHUNK);
        const ok = res.write(slice(file, at, next));
        at = next;
        if (!ok) {
          res.once('drain', pump);
          return;
        }
      }
      res.end();
    };
    pump();
  };

  const authorized = (repo: HubRepo, req: IncomingMessage) => !repo.gatedToken || req.headers.authorization === `Bearer ${repo.gatedToken}`;

  const hub = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = decodeURIComponent(url.pathname);
    const entry: HubRequest = { origin: 'hub', method: req.method ?? 'GET', path, range: req.headers.range, authorization: req.headers.authorization };
    if (req.method === 'OPTIONS') {
      entry.status = 204;
      log.push(entry);
      preflight(res);
      return;
    }
    log.push(entry);
    const n = hubCount++;
    cors(res);
    if (state.stallHeaders?.(entry)) {
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    if (state.rateLimit?.(n, entry)) return fail(res, entry, 429, 'RateLimited', 'You have been rate-limited; retry later.', { 'Retry-After': String(state.retryAfterSeconds) });
    const api = /^\/api\/models\/([^/]+\/[^/]+)\/(revision|tree)\/([^/]+)$/.exec(path);
    const resolve = /^\/([^/]+\/[^/]+)\/resolve\/([^/]+)\/(.+)$/.exec(path);
    const repoId = api?.[1] ?? resolve?.[1];
    const repo = repoId ? repos.get(repoId) : undefined;
    if (!repo) return fail(res, entry, 401, 'RepoNotFound', 'Repository not found (or you are not authenticated).');
    if (!authorized(repo, req)) return fail(res, entry, 401, 'GatedRepo', `Access to model ${repoId} is restricted. You must have access to it and be authenticated to access it.`);
    const revision = (api?.[3] ?? resolve?.[2])!;
    const commit = /^[0-9a-f]{40}$/.test(revision) && Object.values(repo.refs).includes(revision) ? revision : repo.refs[revision];
    if (!commit) return fail(res, entry, 404, 'RevisionNotFound', `Invalid rev id: ${revision}`);
    if (api) {
      entry.status = 200;
      const body =
        api[2] === 'revision'
          ? { id: repoId, sha: commit, siblings: [...repo.files.keys()].map((rfilename) => ({ rfilename })) }
          : [...repo.files].map(([p, f]) => ({ type: 'file', path: p, size: sizeOf(f), oid: sha(`${p}@${commit}`), ...(isLfs(p) ? { lfs: { oid: sha(`lfs:${p}`), size: sizeOf(f), pointerSize: 134 } } : {}) }));
      res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      return;
    }
    const filePath = resolve![3];
    const file = repo.files.get(filePath);
    if (!file) return fail(res, entry, 404, 'EntryNotFound', `Entry not found: ${filePath}`, { 'X-Repo-Commit': commit });
    if (isLfs(filePath)) {
      // A freshly signed CDN URL per request; the redirect's headers are invisible to fetch.
      const sig = randomBytes(12).toString('hex');
      signed.set(sig, { repo: repoId!, path: filePath });
      entry.status = 307;
      res
        .writeHead(307, {
          Location: `${cdnUrl}/repos/${sha(`lfs:${filePath}`)}/${encodeURIComponent(filePath)}?X-Amz-Signature=${sig}&X-Amz-Expires=3600`,
          'X-Repo-Commit': commit,
          'X-Linked-Size': String(sizeOf(file)),
          'X-Linked-ETag': `"${sha(`lfs:${filePath}`)}"`,
        })
        .end();
      return;
    }
    send(req, res, entry, file, { 'X-Repo-Commit': commit, ETag: `"${sha(`${filePath}@${commit}`)}"` });
  });

  const cdn = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const entry: HubRequest = { origin: 'cdn', method: req.method ?? 'GET', path: decodeURIComponent(url.pathname), range: req.headers.range, authorization: req.headers.authorization };
    log.push(entry);
    if (req.method === 'OPTIONS') {
      entry.status = 204;
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Allow-Methods', 'GET, HEAD');
      res.setHeader('Access-Control-Allow-Headers', 'Range');
      res.writeHead(204).end();
      return;
    }
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Access-Control-Expose-Headers', 'Content-Range, Content-Length, ETag, Accept-Ranges');
    const grant = signed.get(url.searchParams.get('X-Amz-Signature') ?? '');
    const file = grant && repos.get(grant.repo)?.files.get(grant.path);
    if (!grant || !file) {
      entry.status = 403;
      res.writeHead(403, { 'Content-Type': 'text/plain' }).end('Request has expired or the signature does not match');
      return;
    }
    entry.file = grant.path;
    if (state.stallHeaders?.(entry)) {
      held.add(res);
      res.on('close', () => held.delete(res));
      return;
    }
    // Each response's ETag is new: it says nothing about whether the content changed.
    send(req, res, entry, file, { ETag: `"cdn-${++cdnEtag}"` });
  });

  const listen = (s: Server) => new Promise<number>((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)));
  const hubUrl = `http://127.0.0.1:${await listen(hub)}`;
  const cdnUrl = `http://127.0.0.1:${await listen(cdn)}`;
  return Object.assign(state, {
    hubUrl,
    cdnUrl,
    repos,
    log,
    reset() {
      log.length = 0;
      hubCount = 0;
      state.rateLimit = undefined;
      state.stallHeaders = undefined;
      state.retryAfterSeconds = 1;
    },
    close: async () => {
      for (const res of held) res.destroy();
      for (const s of [hub, cdn]) {
        s.closeAllConnections();
        await new Promise<void>((resolve) => s.close(() => resolve()));
      }
    },
  });
}
