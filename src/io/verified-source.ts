/**
 * A file checked block by block against a manifest's checksums (src/io/cache.ts `CachedFile`: XXH32 per block) as
 * it is read, wherever its bytes live: an offline-cache entry (OPFS, Cache Storage) or a converted model's folder on
 * a static host (src/runtime/loading/converted-source.ts). Each read fetches the whole blocks it touches and checks
 * them; a mismatch is `corrupt()`'s to report (it throws).
 */
import type { ByteSource } from './byte-source.ts';
import { truncated } from './byte-source.ts';
import { xxhash32 } from './xxhash32.ts';

/** What verifiedSource needs of a manifest's file entry. */
export interface ChecksummedFile {
  size: number;
  blockSize: number;
  blocks: number[];
}

export interface VerifiedSourceOptions {
  /** Bytes handed to the reader (what it asked for, not whole blocks). */
  onBytes?: (bytes: number) => void;
  /** Every verified run of whole blocks as it arrives (`first`: index of its first block): a copy's writer. */
  onBlocks?: (first: number, bytes: Uint8Array) => void | Promise<void>;
}

/**
 * `readRange(start, end)` fetches bytes [start, end) of the stored file (its errors pass through); `corrupt(why)`
 * reports a mismatch or a short read and throws.
 */
export function verifiedSource(
  name: string,
  info: ChecksummedFile,
  readRange: (start: number, end: number) => Promise<Uint8Array>,
  corrupt: (why: string) => Promise<never>,
  options: VerifiedSourceOptions = {},
): ByteSource {
  // The last verified block: loaders read many small tensors in file order, and without this each of them would
  // fetch and hash its whole block again (E2B: hundreds of norms, each re-reading a 4 MiB block). One block of
  // memory at most.
  let kept: { start: number; bytes: Uint8Array } | undefined;
  return {
    name,
    // A read fetches and checks whole blocks anyway: a strided read skipping less than a block saves nothing.
    readGap: info.blockSize,
    size: async () => info.size,
    read: async (offset, length) => {
      if (offset + length > info.size) throw truncated(name, offset + length, info.size);
      if (length === 0) return new Uint8Array(0);
      if (kept && offset >= kept.start && offset + length <= kept.start + kept.bytes.length) {
        options.onBytes?.(length);
        return kept.bytes.subarray(offset - kept.start, offset - kept.start + length);
      }
      const bs = info.blockSize;
      const first = Math.floor(offset / bs);
      const last = Math.floor((offset + length - 1) / bs);
      const start = first * bs;
      const end = Math.min(info.size, (last + 1) * bs);
      const bytes = await readRange(start, end);
      if (bytes.length !== end - start) return corrupt('it is shorter than the manifest says');
      for (let b = first; b <= last; b++) {
        const block = bytes.subarray((b - first) * bs, Math.min(bytes.length, (b - first + 1) * bs));
        if (xxhash32(block) !== info.blocks[b]) return corrupt(`bytes ${b * bs}-${b * bs + block.length - 1} do not match their checksum`);
      }
      await options.onBlocks?.(first, bytes);
      const lastStart = last * bs;
      kept = { start: lastStart, bytes: first === last ? bytes : bytes.slice(lastStart - start) };
      options.onBytes?.(length);
      return bytes.subarray(offset - start, offset - start + length);
    },
  };
}
