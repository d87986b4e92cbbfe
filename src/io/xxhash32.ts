/**
 * XXH32 (xxHash, 32-bit), streaming: the cache's per-block checksum. Chosen over SHA-256 because it runs at
 * memory speed in plain JS (several GB/s on 32-bit words with Math.imul), so checking gigabytes of cached
 * weights on every load costs little; it detects corruption, not tampering (the cache is same-origin storage).
 * Matches the reference implementation (github.com/Cyan4973/xxHash), so a cache file can be checked with `xxhsum -H32`.
 */
const P1 = 0x9e3779b1;
const P2 = 0x85ebca77;
const P3 = 0xc2b2ae3d;
const P4 = 0x27d4eb2f;
const P5 = 0x165667b1;

const rotl = (x: number, r: number) => (x << r) | (x >>> (32 - r));
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

export class XxHash32 {
  private v1: number;
  private v2: number;
  private v3: number;
  private v4: number;
  private readonly seed: number;
  private total = 0;
  /** Bytes of an unfinished 16-byte stripe carried to the next update(). */
  private readonly pending = new Uint8Array(16);
  private pendingLength = 0;

  constructor(seed = 0) {
    this.seed = seed >>> 0;
    this.v1 = (this.seed + P1 + P2) | 0;
    this.v2 = (this.seed + P2) | 0;
    this.v3 = this.seed | 0;
    this.v4 = (this.seed - P1) | 0;
  }

  update(data: Uint8Array): this {
    this.total += data.length;
    let at = 0;
    if (this.pendingLength > 0) {
      const take = Math.min(16 - this.pendingLength, data.length);
      this.pending.set(data.subarray(0, take), this.pendingLength);
      this.pendingLength += take;
      at = take;
      if (this.pendingLength < 16) return this;
      this.stripes(this.pending, 0, 16);
      this.pendingLength = 0;
    }
    const end = at + Math.floor((data.length - at) / 16) * 16;
    this.stripes(data, at, end);
    if (end < data.length) {
      this.pending.set(data.subarray(end));
      this.pendingLength = data.length - end;
    }
    return this;
  }

  /** The hash of everything passed to update() so far (the state is left as is). */
  digest(): number {
    let h: number;
    if (this.total >= 16) h = (rotl(this.v1, 1) + rotl(this.v2, 7) + rotl(this.v3, 12) + rotl(this.v4, 18)) | 0;
    else h = (this.seed + P5) | 0;
    h = (h + this.total) | 0; // total mod 2^32, as the reference
    const p = this.pending;
    let i = 0;
    for (; i + 4 <= this.pendingLength; i += 4) {
      const word = p[i] | (p[i + 1] << 8) | (p[i + 2] << 16) | (p[i + 3] << 24);
      h = Math.imul(rotl((h + Math.imul(word, P3)) | 0, 17), P4);
    }
    for (; i < this.pendingLength; i++) h = Math.imul(rotl((h + Math.imul(p[i], P5)) | 0, 11), P1);
    h ^= h >>> 15;
    h = Math.imul(h, P2);
    h ^= h >>> 13;
    h = Math.imul(h, P3);
    h ^= h >>> 16;
    return h >>> 0;
  }

  /** Consumes bytes [start, end) of `data`, a multiple of 16 long. */
  private stripes(data: Uint8Array, start: number, end: number): void {
    let { v1, v2, v3, v4 } = this;
    if (LITTLE_ENDIAN && (data.byteOffset + start) % 4 === 0) {
      // Aligned: read 32-bit words directly (the common case: whole chunks from a stream or GPU readback).
      const words = new Uint32Array(data.buffer, data.byteOffset + start, (end - start) / 4);
      for (let w = 0; w < words.length; w += 4) {
        v1 = Math.imul(rotl((v1 + Math.imul(words[w], P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(words[w + 1], P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(words[w + 2], P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(words[w + 3], P2)) | 0, 13), P1);
      }
    } else {
      const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      for (let i = start; i < end; i += 16) {
        v1 = Math.imul(rotl((v1 + Math.imul(view.getUint32(i, true), P2)) | 0, 13), P1);
        v2 = Math.imul(rotl((v2 + Math.imul(view.getUint32(i + 4, true), P2)) | 0, 13), P1);
        v3 = Math.imul(rotl((v3 + Math.imul(view.getUint32(i + 8, true), P2)) | 0, 13), P1);
        v4 = Math.imul(rotl((v4 + Math.imul(view.getUint32(i + 12, true), P2)) | 0, 13), P1);
      }
    }
    this.v1 = v1;
    this.v2 = v2;
    this.v3 = v3;
    this.v4 = v4;
  }
}

/** One-shot XXH32 of `data`. */
export function xxhash32(data: Uint8Array, seed = 0): number {
  return new XxHash32(seed).update(data).digest();
}
