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
}

/** A ByteSource over an HTTP(S) URL, read with range requests in chunks, resuming interrupted bodies. */
export function httpSource(url: string, options: HttpSourceOptions = {}): HttpByteSource {
  return new HttpSource(url, options);
}

const MiB = 1024 * 1024;

/** A failure worth retrying: connection trouble, a stalled body, 408/429/5xx. */
class RetryableError extends Error {}

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
        if (res.status !== 206) throw await this.statusError(res);
        this.checkEtag(res);
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
        await this.backoff(failures);
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
          // Only an empty file cannot serve byte 0.
          await res.body?.cancel().catch(() => {});
          return parseContentRange(res.headers.get('content-range'))?.total ?? 0;
        }
        if (res.status === 200) {
          const whole = await this.useWholeFile(res);
          return whole.length;
        }
        if (res.status !== 206) throw await this.statusError(res);
        this.checkEtag(res);
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
        await this.backoff(failures);
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

  private async downloadWhole(first: Response): Promise<Uint8Array> {
    let res: Response | undefined = first;
    let failures = 0;
    for (;;) {
      this.throwIfAborted();
      try {
        res ??= await this.request('GET');
        if (!res.ok) throw await this.statusError(res);
        const declared = Number(res.headers.get('content-length') ?? NaN);
        const capacity = Number.isFinite(declared) ? declared : this.wholeFileLimit;
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
        await this.backoff(failures);
      }
    }
  }

  private async request(method: 'GET' | 'HEAD', range?: string): Promise<Response> {
    const headers = new Headers(this.headers);
    if (range) headers.set('Range', range);
    try {
      // no-store: multi-gigabyte bodies must not be copied into the browser's HTTP cache (we keep our own).
      const res = await this.fetchImpl(this.url, { method, headers, signal: this.signal, cache: 'no-store' });
      this.onResponse?.(res.headers);
      return res;
    } catch (err) {
      if (this.signal?.aborted) throw this.abortedError();
      // fetch rejects with a TypeError for DNS/connection failures and CORS refusals alike: retry, then explain.
      throw new RetryableError((err as Error).message, { cause: err });
    }
  }

  private checkEtag(res: Response): void {
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

  private async statusError(res: Response): Promise<Error> {
    await res.body?.cancel().catch(() => {});
    const status = res.status;
    if (status === 408 || status === 429 || status >= 500) {
      return new RetryableError(`HTTP ${status}`, { cause: new HttpStatusError(status, this.url, serverMessage(this.name, this.url, status)) });
    }
    return new HttpStatusError(status, this.url, clientMessage(this.name, this.url, status, res.statusText));
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

  private backoff(failures: number): Promise<void> {
    const delay = Math.min(this.maxRetryDelayMs, this.retryDelayMs * 2 ** (failures - 1));
    // Jitter spreads the retries of parallel chunks so they do not hit a struggling server in lockstep.
    return sleep(delay * (0.5 + Math.random() / 2), this.signal).catch(() => {
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

function clientMessage(name: string, url: string, status: number, statusText: string): string {
  if (status === 401 || status === 403) {
    return `${name}: access denied (HTTP ${status}) at ${url}. Gemma models are gated on Hugging Face: sign in on huggingface.co, accept the license on the model's page, create an access token with read access and pass it as the \`token\` option (sent as "Authorization: Bearer hf_..."). If you already pass a token, check that it is valid and belongs to the account that accepted the license. (Hugging Face also answers 401 for a repository that does not exist or is private.)`;
  }
  if (status === 404) {
    return `${name} was not found (HTTP 404) at ${url}. Check the repository id, the revision (branch, tag or commit hash) and the file name.`;
  }
  if (status === 416) {
    return `${url} could not serve the requested byte range (HTTP 416): the file is shorter than expected. Download it again; if it persists, the file on the server is truncated.`;
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
