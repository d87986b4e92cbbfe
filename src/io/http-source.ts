import type { ByteSource } from './byte-source.ts';
import { truncated } from './byte-source.ts';
import { GemmaError } from '../errors.ts';

export interface HttpSourceOptions {
  /** Extra request headers, e.g. `{ Authorization: 'Bearer hf_...' }` for gated Hugging Face repos. */
  headers?: Record<string, string>;
  /** Aborts every request of this source; reads then reject with GemmaError('aborted'). */
  signal?: AbortSignal;
  /** Called with the number of new bytes each time some arrive over the network (re-reads count again). */
  onBytes?: (bytes: number) => void;
  /** Bytes per range request (default 16 MiB): big enough to amortize request latency, small enough to retry. */
  chunkSize?: number;
  /** Range requests in flight at once within one read() (default 4): one connection rarely fills the pipe. */
  concurrency?: number;
  /** Attempts per chunk without any byte of progress before giving up (default 6). */
  maxAttempts?: number;
  /** First retry delay in ms; doubles per failed attempt, with jitter (default 500). */
  retryDelayMs?: number;
  /** Cap on one retry delay in ms (default 8000). */
  maxRetryDelayMs?: number;
  /** A response that sends no byte for this long is treated as a dropped connection and resumed (default 30 s). */
  stallTimeoutMs?: number;
  /**
   * A request whose response headers have not arrived after this long is cancelled and retried (default 30 s): a
   * server (or proxy) that accepts the connection and then never answers must not hang the load.
   */
  headerTimeoutMs?: number;
  /**
   * Least wait after HTTP 429 (rate limited), in ms (default 60 s; a longer Retry-After wins). Hugging Face counts
   * requests per 5-minute window, so the exponential 0.5-8 s of other failures would only burn the remaining attempts.
   */
  rateLimitDelayMs?: number;
  /** Told before every wait between attempts (e.g. "rate-limited, retrying in 60 s"), so progress can say so. */
  onRetry?: (retry: RetryNotice) => void;
  /**
   * How to notice that the file changed between two requests: 'etag' (default) compares every response's ETag with
   * the first one; 'size' relies on the size alone (every Content-Range total must equal the known size). Use 'size'
   * for immutable URLs (a Hugging Face file at a commit): their bytes are pinned by the URL, while each request may be
   * redirected to a freshly signed CDN URL whose ETag says nothing about the content.
   */
  validate?: 'etag' | 'size';
  /** The file size when already known (e.g. from an index), which saves the probe request. */
  size?: number;
  /** Name for messages (default: the last path segment of the URL). */
  name?: string;
  /**
   * Servers that ignore Range (answer 200 with the whole file) are still usable for files up to this many bytes,
   * which are then downloaded once and kept in memory (default 256 MiB). Bigger files fail with a clear message
   * instead of downloading the whole file again for every read.
   */
  wholeFileLimit?: number;
  /** Sees the headers of every response (e.g. Hugging Face's X-Repo-Commit, to pin a revision to a commit). */
  onResponse?: (headers: Headers) => void;
  /** The fetch to use (default: globalThis.fetch). */
  fetch?: typeof fetch;
  /** ByteSource.readGap: gaps a strided read reads through rather than starting another request (default 256 KiB). */
  readGap?: number;
}

/** An HTTP error status, kept as data so callers can tell "not there" (404) from other failures. */
export class HttpStatusError extends GemmaError {
  readonly status: number;
  readonly url: string;
  constructor(status: number, url: string, message: string) {
    super('network', message);
    this.status = status;
    this.url = url;
  }
}

export interface HttpByteSource extends ByteSource {
  readonly url: string;
  /**
   * The whole file in one plain GET (no Range), for small files (config, tokenizer, listings): one request instead
   * of a size probe plus a read. Files over `wholeFileLimit` are refused.
   */
  readAll(): Promise<Uint8Array>;
}

/** Why a request is retried after a pause (for progress: a 60 s rate-limit pause must not look like a hang). */
export interface RetryNotice {
  /** For messages: the file. */
  name: string;
  /** 'rate-limited': HTTP 429; 'failed': a network error, timeout, 408 or 5xx. */
  reason: 'rate-limited' | 'failed';
  /** The pause before the next attempt. */
  delayMs: number;
  /** Attempt that failed (1 = the first) and the most that will be made. */
  attempt: number;
  maxAttempts: number;
  /** What went wrong, in words. */
  message: string;
}

/** A ByteSource over an HTTP(S) URL, read with range requests in chunks, resuming interrupted bodies. */
export function httpSource(url: string, options: HttpSourceOptions = {}): HttpByteSource {
  return new HttpSource(url, options);
}

const MiB = 1024 * 1024;

/** A failure worth retrying: connection trouble, a stalled body, 408/429/5xx; `delayMs` overrides the backoff. */
class RetryableError extends Error {
  rateLimited = false;
  delayMs: number | undefined;
}

/** A body cut off mid-way; `received` bytes of it were copied and count as progress. */
class InterruptedBody extends RetryableError {
  readonly received: number;
  constructor(received: number, cause: unknown) {
    super(`download interrupted after ${received} bytes of a response: ${(cause as Error)?.message ?? String(cause)}`, { cause });
    this.received = received;
  }
}

/**
 * A request costs a round trip (plus, on Hugging Face, a redirect): ~20-50 ms, the time 256 KiB take at 40-100
 * Mbit/s. Strided reads (MatFormer slices) therefore read through smaller gaps: a bf16 E4B `down_proj` cut to E2B's
 * width (16 KiB kept, 16 KiB skipped per row) is read whole, in a few requests instead of 2,048.
 */
const DEFAULT_READ_GAP = 256 * 1024;

class HttpSource implements HttpByteSource {
  readonly url: string;
  readonly name: string;
  readonly readGap: number;
  private readonly headers: Record<string, string>;
  private readonly signal: AbortSignal | undefined;
  private readonly onBytes: ((bytes: number) => void) | undefined;
  private readonly chunkSize: number;
  private readonly concurrency: number;
  private readonly maxAttempts: number;
  private readonly retryDelayMs: number;
  private readonly maxRetryDelayMs: number;
  private readonly stallTimeoutMs: number;
  private readonly headerTimeoutMs: number;
  private readonly rateLimitDelayMs: number;
  private readonly onRetry: ((retry: RetryNotice) => void) | undefined;
  private readonly validate: 'etag' | 'size';
  /** The size the caller said (an index or the hub's file listing): every response must agree. */
  private readonly knownSize: number | undefined;
  private readonly wholeFileLimit: number;
  private readonly fetchImpl: typeof fetch;
  private readonly onResponse: ((headers: Headers) => void) | undefined;
  private sizePromise: Promise<number> | undefined;
  /** Set from the first response that had one; a different ETag later means the file changed under us. */
  private etag: string | undefined;
  /** The whole file, for servers that ignore Range (small files only). */
  private whole: Promise<Uint8Array> | undefined;

  constructor(url: string, o: HttpSourceOptions) {
    this.url = url;
    this.name = o.name ?? fileNameOf(url);
    this.readGap = o.readGap ?? DEFAULT_READ_GAP;
    this.headers = o.headers ?? {};
    this.signal = o.signal;
    this.onBytes = o.onBytes;
    this.chunkSize = Math.max(1, o.chunkSize ?? 16 * MiB);
    this.concurrency = Math.max(1, o.concurrency ?? 4);
    this.maxAttempts = Math.max(1, o.maxAttempts ?? 6);
    this.retryDelayMs = o.retryDelayMs ?? 500;
    this.maxRetryDelayMs = o.maxRetryDelayMs ?? 8000;
    this.stallTimeoutMs = o.stallTimeoutMs ?? 30_000;
    this.headerTimeoutMs = o.headerTimeoutMs ?? 30_000;
    this.rateLimitDelayMs = o.rateLimitDelayMs ?? 60_000;
    this.onRetry = o.onRetry;
    this.validate = o.validate ?? 'etag';
    this.knownSize = o.size;
    this.wholeFileLimit = o.wholeFileLimit ?? 256 * MiB;
    this.fetchImpl = o.fetch ?? globalThis.fetch.bind(globalThis);
    this.onResponse = o.onResponse;
    if (o.size !== undefined) this.sizePromise = Promise.resolve(o.size);
  }

  size(): Promise<number> {
    this.sizePromise ??= this.probeSize();
    // A failed probe must not poison later calls (the network may come back).
    this.sizePromise.catch(() => (this.sizePromise = undefined));
    return this.sizePromise;
  }

  readAll(): Promise<Uint8Array> {
    if (!this.whole) {
      this.whole = this.downloadWhole(undefined);
      this.whole.catch(() => (this.whole = undefined));
      if (!this.sizePromise) {
        this.sizePromise = this.whole.then((b) => b.length);
        this.sizePromise.catch(() => (this.sizePromise = undefined));
      }
    }
    return this.whole;
  }

  async read(offset: number, length: number): Promise<Uint8Array> {
    if (!(offset >= 0 && length >= 0 && Number.isSafeInteger(offset + length))) {
      throw new GemmaError('invalid-argument', `bad range ${offset}+${length} for ${this.name}`);
    }
    const size = await this.size();
    if (offset + length > size) throw truncated(this.name, offset + length, size);
    if (length === 0) return new Uint8Array(0);
    if (this.whole) return (await this.whole).subarray(offset, offset + length);

    const out = new Uint8Array(length);
    const chunks: { start: number; length: number }[] = [];
    for (let at = 0; at < length; at += this.chunkSize) chunks.push({ start: at, length: Math.min(this.chunkSize, length - at) });
    // A few workers pull chunks in order; the first failure stops the others from starting new ones.
    let next = 0;
    let failed = false;
    const worker = async (): Promise<void> => {
      while (!failed && next < chunks.length) {
        const c = chunks[next++];
        try {
          await this.readChunk(offset + c.start, out.subarray(c.start, c.start + c.length), () => failed);
        } catch (err) {
          failed = true;
          throw err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.concurrency, chunks.length) }, worker));
    // (Re-read: a chunk may have discovered meanwhile that the server ignores Range.)
    const whole = this.whole as Promise<Uint8Array> | undefined;
    if (whole) return (await whole).subarray(offset, offset + length);
    return out;
  }

  /** Fills `out` with the bytes at `start`, resuming after interruptions from the last byte received. */
  private async readChunk(start: number, out: Uint8Array, cancelled: () => boolean): Promise<void> {
    let got = 0;
    let failures = 0;
    while (got < out.length) {
      this.throwIfAborted();
      if (cancelled()) return;
      const first = start + got;
      const last = start + out.length - 1;
      try {
        const res = await this.request('GET', `bytes=${first}-${last}`);
        if (res.status === 200) {
          await this.useWholeFile(res);
          return;
        }
        if (res.status !== 206) throw await this.statusError(res, `bytes ${first}-${last}`);
        this.checkSameFile(res);
        const range = parseContentRange(res.headers.get('content-range'));
        if (range && range.start !== first) {
          await res.body?.cancel().catch(() => {});
          throw new GemmaError('network', `${this.url} answered a request for bytes ${first}-${last} with bytes ${range.start}-${range.end}; the server's range support is broken. Serve the file from a standard HTTP server or load it from a local file.`);
        }
        got += await this.pump(res, out.subarray(got), () => (failures = 0));
        if (got < out.length) throw new RetryableError(`connection closed after ${got} of ${out.length} bytes`);
      } catch (err) {
        if (this.signal?.aborted) throw this.abortedError();
        // Resume from the last byte received, not from the start of the chunk.
        if (err instanceof InterruptedBody) got += err.received;
        if (!isRetryable(err)) throw err;
        failures += 1;
        if (failures >= this.maxAttempts) throw this.givingUp(err);
        await this.backoff(failures, err);
      }
    }
  }

  /**
   * Copies a response body into `out` until it is full or the body ends; returns the bytes copied. A body that
   * goes silent for stallTimeoutMs is cut (and resumed by the caller) rather than waited on forever.
   */
  private async pump(res: Response, out: Uint8Array, onProgress: () => void): Promise<number> {
    if (!res.body) {
      const bytes = new Uint8Array(await res.arrayBuffer());
      const n = Math.min(bytes.length, out.length);
      out.set(bytes.subarray(0, n));
      if (n > 0) this.onBytes?.(n);
      return n;
    }
    const reader = res.body.getReader();
    let got = 0;
    try {
      while (got < out.length) {
        const { done, value } = await withStallTimeout(reader.read(), this.stallTimeoutMs);
        if (done) break;
        const n = Math.min(value.length, out.length - got);
        out.set(value.subarray(0, n), got);
        got += n;
        if (n > 0) {
          this.onBytes?.(n);
          onProgress();
        }
      }
    } catch (err) {
      if (this.signal?.aborted) throw this.abortedError();
      // The body failed mid-way (connection reset, stall). Whatever arrived is kept: report how much, so the
      // caller can resume from there instead of from the start of the chunk.
      return Promise.reject(new InterruptedBody(got, err));
    } finally {
      reader.cancel().catch(() => {});
    }
    return got;
  }

  private async probeSize(): Promise<number> {
    let failures = 0;
    for (;;) {
      this.throwIfAborted();
      try {
        const res = await this.request('GET', 'bytes=0-0');
        if (res.status === 416) {
          // Only an empty file cannot serve byte 0, and then the server says so: "Content-Range: bytes */0". Any
          // other 416 (no readable Content-Range: a CORS header not exposed; a non-zero total) is an error, never
          // "a 0-byte file".
          const total = parseContentRange(res.headers.get('content-range'))?.total;
          await res.body?.cancel().catch(() => {});
          if (total === 0) return 0;
          throw new HttpStatusError(416, this.url, clientMessage(this.name, this.url, 416, res.statusText, 'bytes 0-0'));
        }
        if (res.status === 200) {
          const whole = await this.useWholeFile(res);
          return whole.length;
        }
        if (res.status !== 206) throw await this.statusError(res, 'bytes 0-0');
        this.checkSameFile(res);
        await res.body?.cancel().catch(() => {});
        const total = parseContentRange(res.headers.get('content-range'))?.total;
        if (total !== undefined) return total;
        // Content-Range hidden (a cross-origin server that does not expose it): ask HEAD for Content-Length.
        return await this.headSize();
      } catch (err) {
        if (this.signal?.aborted) throw this.abortedError();
        if (!isRetryable(err)) throw err;
        failures += 1;
        if (failures >= this.maxAttempts) throw this.givingUp(err);
        await this.backoff(failures, err);
      }
    }
  }

  private async headSize(): Promise<number> {
    const res = await this.request('HEAD');
    if (!res.ok) throw await this.statusError(res);
    const length = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isSafeInteger(length) && length >= 0) return length;
    throw new GemmaError(
      'network',
      `cannot tell the size of ${this.url}: the server sends neither a readable Content-Range nor Content-Length. If you host the weights yourself, add "Access-Control-Expose-Headers: Content-Range, Content-Length, ETag".`,
    );
  }

  /**
   * The server ignored Range and is sending the whole file. Small files are kept in memory and served from there;
   * big ones fail clearly, since every read would download the whole file again.
   */
  private useWholeFile(res: Response): Promise<Uint8Array> {
    if (this.whole) {
      res.body?.cancel().catch(() => {});
      return this.whole;
    }
    const declared = Number(res.headers.get('content-length') ?? NaN);
    if (Number.isFinite(declared) && declared > this.wholeFileLimit) {
      res.body?.cancel().catch(() => {});
      throw new GemmaError(
        'network',
        `${this.url} ignores HTTP range requests (it answered 200 with the whole ${declared}-byte file), so it cannot be streamed. Serve the weights from a server with range support (Hugging Face, S3, nginx and most static hosts have it) or load them from a local file.`,
      );
    }
    this.whole = this.downloadWhole(res);
    this.whole.catch(() => (this.whole = undefined));
    return this.whole;
  }

  private async downloadWhole(first: Response | undefined): Promise<Uint8Array> {
    let res: Response | undefined = first;
    let failures = 0;
    for (;;) {
      this.throwIfAborted();
      try {
        res ??= await this.request('GET');
        if (!res.ok) throw await this.statusError(res);
        const declared = Number(res.headers.get('content-length') ?? NaN);
        if (Number.isFinite(declared) && declared > this.wholeFileLimit) {
          await res.body?.cancel().catch(() => {});
          throw new GemmaError('network', `${this.url} is ${declared} bytes, more than the ${this.wholeFileLimit} bytes a whole-file read may hold; read it by ranges.`);
        }
        if (!Number.isFinite(declared)) {
          // No Content-Length (a chunked response): take the body as it comes rather than reserving the limit.
          let body: Uint8Array;
          try {
            body = new Uint8Array(await res.arrayBuffer());
          } catch (err) {
            throw new RetryableError((err as Error).message, { cause: err });
          }
          if (body.length > this.wholeFileLimit) {
            throw new GemmaError('network', `${this.url} ignores HTTP range requests and is larger than ${this.wholeFileLimit} bytes; serve it from a server with range support or load it from a local file.`);
          }
          if (body.length > 0) this.onBytes?.(body.length);
          return body;
        }
        const capacity = declared;
        const buffer = new Uint8Array(capacity);
        const got = await this.pump(res, buffer, () => {});
        if (Number.isFinite(declared) && got < declared) throw new RetryableError(`connection closed after ${got} of ${declared} bytes`);
        if (!Number.isFinite(declared) && got === capacity) {
          throw new GemmaError('network', `${this.url} ignores HTTP range requests and is larger than ${this.wholeFileLimit} bytes; serve it from a server with range support or load it from a local file.`);
        }
        return buffer.subarray(0, got);
      } catch (err) {
        res = undefined;
        if (this.signal?.aborted) throw this.abortedError();
        if (!isRetryable(err)) throw err;
        failures += 1;
        if (failures >= this.maxAttempts) throw this.givingUp(err);
        await this.backoff(failures, err);
      }
    }
  }

  private async request(method: 'GET' | 'HEAD', range?: string): Promise<Response> {
    const headers = new Headers(this.headers);
    if (range) headers.set('Range', range);
    // The header timeout aborts this request only (it is then retried); the load's signal aborts it too, body
    // included, for as long as the body is being read.
    const timeout = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      timeout.abort(new Error('header timeout'));
    }, this.headerTimeoutMs);
    try {
      // no-store: multi-gigabyte bodies must not be copied into the browser's HTTP cache (we keep our own).
      const res = await this.fetchImpl(this.url, { method, headers, signal: anySignal(this.signal, timeout.signal), cache: 'no-store' });
      this.onResponse?.(res.headers);
      return res;
    } catch (err) {
      if (this.signal?.aborted) throw this.abortedError();
      if (timedOut) throw new RetryableError(`no response headers within ${this.headerTimeoutMs} ms`, { cause: err });
      // fetch rejects with a TypeError for DNS/connection failures and CORS refusals alike: retry, then explain.
      throw new RetryableError((err as Error).message, { cause: err });
    } finally {
      clearTimeout(timer);
    }
  }

  /** The file must not change between requests: same size always; same ETag unless validating by size only. */
  private checkSameFile(res: Response): void {
    const total = parseContentRange(res.headers.get('content-range'))?.total;
    const expected = this.knownSize;
    if (total !== undefined && expected !== undefined && total !== expected) {
      res.body?.cancel().catch(() => {});
      throw new GemmaError(
        'network',
        `${this.name} is ${total} bytes on the server, but ${expected} bytes were expected (from the repository's file listing or an earlier response): the file changed or the server sends another file. Load again.`,
      );
    }
    if (this.validate !== 'etag') return;
    const etag = res.headers.get('etag') ?? undefined;
    if (!etag) return;
    this.etag ??= etag;
    if (etag !== this.etag) {
      res.body?.cancel().catch(() => {});
      throw new GemmaError(
        'network',
        `${this.name} changed on the server while it was being downloaded (ETag ${this.etag} became ${etag}). Load again; to avoid this, pin the revision to a commit hash instead of a branch name.`,
      );
    }
  }

  private async statusError(res: Response, range?: string): Promise<Error> {
    await res.body?.cancel().catch(() => {});
    const status = res.status;
    if (status === 408 || status === 429 || status >= 500) {
      const err = new RetryableError(`HTTP ${status}`, { cause: new HttpStatusError(status, this.url, serverMessage(this.name, this.url, status)) });
      const retryAfter = retryAfterMs(res.headers.get('retry-after'));
      if (status === 429) {
        err.rateLimited = true;
        err.delayMs = Math.max(this.rateLimitDelayMs, retryAfter ?? 0);
      } else if (retryAfter !== undefined) {
        err.delayMs = Math.min(retryAfter, this.rateLimitDelayMs);
      }
      return err;
    }
    return new HttpStatusError(status, this.url, clientMessage(this.name, this.url, status, res.statusText, range));
  }

  private givingUp(err: unknown): GemmaError {
    const cause = (err as Error).cause;
    if (cause instanceof HttpStatusError) {
      return new HttpStatusError(cause.status, cause.url, `${cause.message} (gave up after ${this.maxAttempts} attempts)`);
    }
    return new GemmaError(
      'network',
      `could not download ${this.name} from ${this.url} after ${this.maxAttempts} attempts (${(err as Error).message}). Check the network connection and try again. In a browser a CORS refusal looks the same: if you host the weights yourself, the server must send Access-Control-Allow-Origin, allow the Range and Authorization request headers, and expose Content-Range, Content-Length and ETag.`,
      { cause: err },
    );
  }

  private backoff(failures: number, err: unknown): Promise<void> {
    const retry = err instanceof RetryableError ? err : undefined;
    const base = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** (failures - 1));
    // Jitter spreads the retries of parallel chunks so they do not hit a struggling server in lockstep (a rate-limit
    // pause only ever gets longer).
    const delay = retry?.delayMs !== undefined ? retry.delayMs * (1 + Math.random() / 10) : base * (0.5 + Math.random() / 2);
    this.onRetry?.({
      name: this.name,
      reason: retry?.rateLimited ? 'rate-limited' : 'failed',
      delayMs: Math.round(delay),
      attempt: failures,
      maxAttempts: this.maxAttempts,
      message: (retry?.cause instanceof HttpStatusError ? retry.cause.message : ((err as Error)?.message ?? String(err))).split('. ')[0],
    });
    return sleep(delay, this.signal).catch(() => {
      throw this.abortedError();
    });
  }

  private throwIfAborted(): void {
    if (this.signal?.aborted) throw this.abortedError();
  }

  private abortedError(): GemmaError {
    return new GemmaError('aborted', `download of ${this.name} was aborted`, { cause: this.signal?.reason });
  }
}

/** A signal aborted by either (AbortSignal.any where the platform has it). */
function anySignal(a: AbortSignal | undefined, b: AbortSignal): AbortSignal {
  if (!a) return b;
  const any = (AbortSignal as { any?: (signals: AbortSignal[]) => AbortSignal }).any;
  if (any) return any([a, b]);
  const both = new AbortController();
  const forward = (s: AbortSignal) => () => both.abort(s.reason);
  a.addEventListener('abort', forward(a), { once: true });
  b.addEventListener('abort', forward(b), { once: true });
  return both.signal;
}

function isRetryable(err: unknown): boolean {
  return err instanceof RetryableError;
}

/** Rejects with a RetryableError when `promise` has not settled within `ms`. */
function withStallTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new RetryableError(`no data received for ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Retry-After as ms: delta-seconds or an HTTP date; undefined when absent or unreadable. */
function retryAfterMs(header: string | null): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header.trim());
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(header);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function clientMessage(name: string, url: string, status: number, statusText: string, range?: string): string {
  if (status === 401 || status === 403) {
    return `${name}: access denied (HTTP ${status}) at ${url}. Gemma models are gated on Hugging Face: sign in on huggingface.co, accept the license on the model's page, create an access token with read access and pass it as the \`token\` option (sent as "Authorization: Bearer hf_..."). If you already pass a token, check that it is valid and belongs to the account that accepted the license. (Hugging Face also answers 401 for a repository that does not exist or is private.)`;
  }
  if (status === 404) {
    return `${name} was not found (HTTP 404) at ${url}. Check the repository id, the revision (branch, tag or commit hash) and the file name.`;
  }
  if (status === 416) {
    return `${url} could not serve ${range ?? 'the requested byte range'} of ${name} (HTTP 416 Range Not Satisfiable): the file on the server is shorter than its header or listing says (truncated, or replaced by another file). Check the file on the server; if you host it yourself, also expose Content-Range to the page (Access-Control-Expose-Headers).`;
  }
  return `HTTP ${status}${statusText ? ` ${statusText}` : ''} for ${url} (downloading ${name}).`;
}

function serverMessage(name: string, url: string, status: number): string {
  if (status === 429) {
    return `the server is rate-limiting downloads of ${name} (HTTP 429) at ${url}. Wait a few minutes and try again; on Hugging Face, passing an access token raises the limit.`;
  }
  if (status === 408) return `the server timed out sending ${name} (HTTP 408) at ${url}. Try again.`;
  return `the server failed to send ${name} (HTTP ${status}) at ${url}. This is server trouble, not a problem with your request: try again later.`;
}

// Parses "bytes 0-0/1234" into { start: 0, end: 0, total: 1234 }; the unsatisfied form ("bytes */1234") gives total only.
export function parseContentRange(header: string | null): { start: number; end: number; total: number | undefined } | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s+(?:(\d+)-(\d+)|\*)\/(\d+|\*)\s*$/i.exec(header);
  if (!m) return undefined;
  const total = m[3] === '*' ? undefined : Number(m[3]);
  if (m[1] === undefined) return { start: -1, end: -1, total };
  return { start: Number(m[1]), end: Number(m[2]), total };
}

function fileNameOf(url: string): string {
  try {
    const path = new URL(url).pathname;
    return decodeURIComponent(path.slice(path.lastIndexOf('/') + 1)) || url;
  } catch {
    return url;
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
