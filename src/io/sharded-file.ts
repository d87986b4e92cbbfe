/**
 * One logical file stored as shards of at most SHARD_BYTES each (`weights-00001.bin`, `weights-00002.bin`, …): how a
 * converted model's weights are kept, in the offline cache and on a static host alike (one format). Offsets stay
 * those of the logical file; a read that spans a shard boundary reads from both.
 *
 * Why 64 MiB: a converted E2B (about 3 GB) becomes ~50 files, each
 * - a single Response the Cache API stores and hands back as a Blob without trouble (a multi-GB Response body is
 *   where browsers' blob storage has failed), and a whole file an OPFS swap-file write commits at once;
 * - under every static host's per-file limit we know of (GitHub's 100 MB hard limit — and so GitHub Pages and
 *   jsDelivr's git mirror —, Hugging Face's 50 GB, S3 / R2 / GCS multi-GB), so the folder can be hosted anywhere
 *   plain files are, not only where Git LFS is;
 * - a unit a failed download retries and a CDN caches whole;
 * - a multiple of the checksum block (4 MiB), so blocks never straddle shards.
 * Smaller shards only add requests (and manifest lines); at 64 MiB a load opens ~50 connections' worth of files,
 * which HTTP/2 multiplexes.
 */
import { GemmaError } from '../errors.ts';
import type { ByteSource } from './byte-source.ts';
import { truncated } from './byte-source.ts';

export const SHARD_BYTES = 64 * 1024 * 1024;

/** Shard `i`'s (0-based) file name: `weights-00001.bin`. */
export function shardName(base: string, i: number): string {
  return `${base}-${String(i + 1).padStart(5, '0')}.bin`;
}

/** Where a sharded file's shards go: one file after another, each closed before the next opens. */
export interface ShardSink {
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<unknown>;
}

/** Writes a logical file as shards of at most `shardBytes`; `names` lists them in order once closed. */
export class ShardedFileWriter {
  readonly names: string[] = [];
  private current: ShardSink | undefined;
  private inShard = 0;

  constructor(
    private readonly base: string,
    private readonly createFile: (name: string) => Promise<ShardSink>,
    private readonly shardBytes = SHARD_BYTES,
  ) {
    if (!Number.isInteger(shardBytes) || shardBytes <= 0) throw new GemmaError('invalid-argument', `shard size ${shardBytes}: expected a positive whole number of bytes`);
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let at = 0; at < bytes.length; ) {
      if (!this.current || this.inShard === this.shardBytes) await this.next();
      const take = Math.min(this.shardBytes - this.inShard, bytes.length - at);
      await this.current!.write(bytes.subarray(at, at + take));
      this.inShard += take;
      at += take;
    }
  }

  /** Closes the last shard (an empty logical file still gets one, empty, shard). */
  async close(): Promise<string[]> {
    if (!this.current) await this.next();
    await this.current!.close();
    this.current = undefined;
    return this.names;
  }

  private async next(): Promise<void> {
    await this.current?.close();
    const name = shardName(this.base, this.names.length);
    this.current = await this.createFile(name);
    this.names.push(name);
    this.inShard = 0;
  }
}

/** Shards (in order, with their sizes) read as one logical file. */
export function concatSource(name: string, shards: readonly { source: ByteSource; size: number }[]): ByteSource {
  const starts: number[] = [];
  let total = 0;
  for (const s of shards) {
    starts.push(total);
    total += s.size;
  }
  const readGap = Math.min(...shards.map((s) => s.source.readGap ?? 0));
  return {
    name,
    readGap,
    size: async () => total,
    async read(offset, length) {
      if (offset + length > total) throw truncated(name, offset + length, total);
      const parts: Uint8Array[] = [];
      for (let i = 0, at = offset, left = length; left > 0; i++) {
        if (at >= starts[i] + shards[i].size) continue;
        const within = at - starts[i];
        const n = Math.min(left, shards[i].size - within);
        parts.push(await shards[i].source.read(within, n));
        at += n;
        left -= n;
      }
      if (parts.length === 1) return parts[0];
      const out = new Uint8Array(length);
      let o = 0;
      for (const p of parts) {
        out.set(p, o);
        o += p.length;
      }
      return out;
    },
  };
}
