/**
 * A local HTTP server (127.0.0.1 only) serving files with Range support, for download tests: files come from
 * disk or memory, and a fault hook can break any request (status codes, connections cut mid-body, stalls,
 * servers that ignore Range). Every request is logged so tests can check what was asked for.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';

/** Headers for pages served from another 127.0.0.1 port: CORS, Range requests, range headers readable. */
export const CORS_HEADERS: Readonly<Record<string, string>> = {
  'Access-Control-Allow-Origin': '*',
  'Access-Control-Allow-Headers': 'Range, Authorization',
  'Access-Control-Expose-Headers': 'Content-Range, Content-Length, ETag, Accept-Ranges',
};

export interface Fault {
  /** Answer with this status (and an empty body) instead of the file. */
  status?: number;
  /** Send this many body bytes, then destroy the connection. */
  cutAfter?: number;
  /** Send this many body bytes, then go silent (until the client gives up). */
  stallAfter?: number;
  /** Answer 200 with the whole file, as a server without range support does. */
  ignoreRange?: boolean;
  /** Send this ETag instead of the file's. */
  etag?: string;
}

export interface LoggedRequest {
  method: string;
  path: string;
  range: string | undefined;
  authorization: string | undefined;
}

export interface FixtureServer {
  readonly url: string;
  readonly log: LoggedRequest[];
  /** url path (leading slash) -> bytes or a file path on disk. */
  readonly files: Map<string, Uint8Array | string>;
  /** Decides a fault for each request (n counts requests to the same path, from 0); undefined = serve normally. */
  fault: ((req: LoggedRequest, n: number) => Fault | undefined) | undefined;
  /** Headers added to every response (e.g. CORS, X-Repo-Commit). */
  extraHeaders: Record<string, string>;
  /** Turns a request into a file path when `files` has no entry (e.g. to map a whole directory). */
  resolve: ((path: string) => string | undefined) | undefined;
  /** Clears the log, the fault hook and the per-path request counts. */
  reset(): void;
  close(): Promise<void>;
}

export async function startFixtureServer(): Promise<FixtureServer> {
  const counts = new Map<string, number>();
  const cache = new Map<string, Uint8Array>();
  const stalled = new Set<ServerResponse>();
  const state: Omit<FixtureServer, 'url' | 'close' | 'reset'> = { log: [], files: new Map(), fault: undefined, extraHeaders: {}, resolve: undefined };

  const bytesOf = (path: string): Uint8Array | undefined => {
    const entry = state.files.get(path) ?? state.resolve?.(path);
    if (entry === undefined) return undefined;
    if (typeof entry !== 'string') return entry;
    let bytes = cache.get(entry);
    if (!bytes) {
      try {
        bytes = new Uint8Array(readFileSync(entry));
      } catch {
        return undefined;
      }
      cache.set(entry, bytes);
    }
    return bytes;
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    const logged: LoggedRequest = {
      method: req.method ?? 'GET',
      path,
      range: req.headers.range,
      authorization: req.headers.authorization,
    };
    state.log.push(logged);
    const n = counts.get(path) ?? 0;
    counts.set(path, n + 1);
    const fault = state.fault?.(logged, n);
    for (const [k, v] of Object.entries(state.extraHeaders)) res.setHeader(k, v);
    if (fault?.status) {
      res.writeHead(fault.status, { 'Content-Length': 0 }).end();
      return;
    }
    const bytes = bytesOf(path);
    if (!bytes) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('Entry not found');
      return;
    }
    const etag = fault?.etag ?? `"${bytes.length.toString(16)}-${path.length}"`;
    let start = 0;
    let end = bytes.length - 1;
    let status = 200;
    const headers: Record<string, string | number> = { 'Accept-Ranges': 'bytes', ETag: etag, 'Content-Type': 'application/octet-stream' };
    const m = /^bytes=(\d+)-(\d*)$/.exec(logged.range ?? '');
    if (m && !fault?.ignoreRange) {
      start = Number(m[1]);
      end = m[2] ? Math.min(Number(m[2]), bytes.length - 1) : bytes.length - 1;
      if (start >= bytes.length) {
        res.writeHead(416, { 'Content-Range': `bytes */${bytes.length}` }).end();
        return;
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${bytes.length}`;
    }
    const body = bytes.subarray(start, end + 1);
    headers['Content-Length'] = body.length;
    res.writeHead(status, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    if (fault?.cutAfter !== undefined && fault.cutAfter < body.length) {
      res.write(body.subarray(0, fault.cutAfter), () => setTimeout(() => res.destroy(), 5));
      return;
    }
    if (fault?.stallAfter !== undefined && fault.stallAfter < body.length) {
      res.write(body.subarray(0, fault.stallAfter));
      stalled.add(res);
      res.on('close', () => stalled.delete(res));
      return;
    }
    res.end(body);
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return Object.assign(state, {
    url: `http://127.0.0.1:${port}`,
    reset: () => {
      state.log.length = 0;
      state.fault = undefined;
      counts.clear();
    },
    close: () =>
      new Promise<void>((resolve) => {
        for (const res of stalled) res.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
