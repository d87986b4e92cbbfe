import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshRng, type Rng } from '../../helpers/random.ts';
import { complementRanges, encode, MAX_CODE_POINT, utf8Sequences, type ByteRangeSequence } from '../../../src/runtime/constrained/utf8-ranges.ts';
import { Utf8Guard } from '../../../src/runtime/constrained/utf8-guard.ts';
import { makeVocabulary } from '../../../src/runtime/constrained/vocabulary.ts';

const strict = new TextDecoder('utf-8', { fatal: true });

function isScalar(cp: number): boolean {
  return cp <= MAX_CODE_POINT && (cp < 0xd800 || cp > 0xdfff);
}

function matches(seqs: ByteRangeSequence[], bytes: number[]): number {
  return seqs.filter((s) => s.length === bytes.length && s.every(([a, b], i) => bytes[i] >= a && bytes[i] <= b)).length;
}

/** Random code point ranges, with endpoints drawn near the encoding boundaries as well as anywhere. */
function randomRanges(rng: Rng): [number, number][] {
  const edges = [0, 0x7f, 0x80, 0x7ff, 0x800, 0xd7ff, 0xd800, 0xdfff, 0xe000, 0xffff, 0x10000, 0x3ffff, 0x40000, MAX_CODE_POINT];
  const point = () => (rng.next() < 0.5 ? Math.min(MAX_CODE_POINT, Math.max(0, edges[rng.int(0, edges.length)] + rng.int(-2, 3))) : rng.int(0, MAX_CODE_POINT + 1));
  return Array.from({ length: rng.int(1, 6) }, () => {
    const a = point();
    const b = point();
    return [Math.min(a, b), Math.max(a, b)];
  });
}

test('utf8Sequences: every scalar value of a random set matches exactly one sequence, every other code point none', () => {
  const { rng, tag } = freshRng();
  for (let trial = 0; trial < 4; trial++) {
    const ranges = randomRanges(rng);
    const member = new Uint8Array(MAX_CODE_POINT + 1);
    for (const [a, b] of ranges) member.fill(1, a, b + 1);
    const seqs = utf8Sequences(ranges);
    for (let cp = 0; cp <= MAX_CODE_POINT; cp += cp < 0x20000 ? 1 : 7) {
      if (!isScalar(cp)) continue;
      const want = member[cp] ? 1 : 0;
      const got = matches(seqs, encode(cp));
      if (got !== want) assert.fail(`U+${cp.toString(16)} matched ${got} sequences, want ${want}; ranges ${JSON.stringify(ranges)} ${tag}`);
    }
  }
});

test('utf8Sequences: the bytes at every corner of every sequence are one well-formed UTF-8 character (never overlong, surrogate or above U+10FFFF)', () => {
  const { rng, tag } = freshRng();
  const all = utf8Sequences([[0, MAX_CODE_POINT]]);
  const complement = utf8Sequences(complementRanges([[0x41, 0x5a], [0xe9, 0xe9], [0x2028, 0x2029]]));
  for (const seqs of [all, complement, utf8Sequences(randomRanges(rng))]) {
    for (const s of seqs) {
      for (let corner = 0; corner < 1 << s.length; corner++) {
        const bytes = s.map(([a, b], i) => ((corner >> i) & 1 ? b : a));
        let text = '';
        assert.doesNotThrow(() => (text = strict.decode(Uint8Array.from(bytes))), `${bytes.map((b) => b.toString(16))} is ill-formed ${tag}`);
        assert.equal([...text].length, 1, tag);
      }
    }
  }
  // All scalar values: the well-known table of well-formed byte sequences (Unicode 15, table 3-7).
  const table = all.map((s) => s.map(([a, b]) => `${a.toString(16)}-${b.toString(16)}`).join(' '));
  assert.deepEqual(table, ['0-7f', 'c2-df 80-bf', 'e0-e0 a0-bf 80-bf', 'e1-ec 80-bf 80-bf', 'ed-ed 80-9f 80-bf', 'ee-ef 80-bf 80-bf', 'f0-f0 90-bf 80-bf 80-bf', 'f1-f3 80-bf 80-bf 80-bf', 'f4-f4 80-8f 80-bf 80-bf']);
});

// A vocabulary of the 256 byte pieces plus a few whole pieces, for the guard.
const BYTE_PIECES = Array.from({ length: 256 }, (_, b) => `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
const vocab = makeVocabulary(['<eos>', ...BYTE_PIECES, 'é', 'ab', '▁x'], 260, [0]);
const byteId = (b: number) => 1 + b;
const words = Math.ceil(vocab.vocabSize / 32);

function allowed(mask: Uint32Array, id: number): boolean {
  return ((mask[id >>> 5] >>> (id & 31)) & 1) === 1;
}

/**
 * Whether `bytes` can still be completed into well-formed UTF-8: they split into whole characters and then one
 * prefix of a character. The oracle is the platform's encoder: every scalar value's bytes and all their prefixes.
 */
const wholeChars = new Set<string>();
const charPrefixes = new Set<string>();
for (let cp = 0; cp <= MAX_CODE_POINT; cp++) {
  if (!isScalar(cp)) continue;
  const bytes = [...new TextEncoder().encode(String.fromCodePoint(cp))];
  wholeChars.add(bytes.join());
  for (let n = 1; n <= bytes.length; n++) charPrefixes.add(bytes.slice(0, n).join());
}

function completable(bytes: number[]): boolean {
  if (bytes.length === 0) return true;
  for (let n = 1; n < bytes.length; n++) if (wholeChars.has(bytes.slice(0, n).join()) && completable(bytes.slice(n))) return true;
  return charPrefixes.has(bytes.join());
}

test('Utf8Guard: after every prefix of up to two bytes, exactly the bytes that keep the text completable are allowed; stop ids only at a boundary; rollback restores', () => {
  const prefixes: number[][] = [[]];
  for (let b = 0; b < 256; b++) if (completable([b])) prefixes.push([b]);
  for (const lead of [0xc2, 0xe0, 0xe1, 0xed, 0xef, 0xf0, 0xf1, 0xf4]) for (let b = 0x80; b < 0xc0; b++) if (completable([lead, b])) prefixes.push([lead, b]);
  for (const prefix of prefixes) {
    const guard = new Utf8Guard(vocab);
    guard.feed(vocab.tokenBytes(byteId(0x61))); // some text before
    for (const b of prefix) guard.feed(Uint8Array.of(b));
    const mask = new Uint32Array(words).fill(0xffffffff);
    guard.refine(mask);
    for (let b = 0; b < 256; b++) {
      const want = completable([...prefix, b]);
      assert.equal(allowed(mask, byteId(b)), want, `after [${prefix.map((x) => x.toString(16))}] byte ${b.toString(16)}: want ${want}`);
    }
    const atBoundary = completable(prefix) && (() => { try { strict.decode(Uint8Array.from(prefix)); return true; } catch { return false; } })();
    for (const id of [0, 257, 258, 259]) assert.equal(allowed(mask, id), atBoundary, `after [${prefix.map((x) => x.toString(16))}] id ${id} (${vocab.pieces[id]})`);
    // Back to the state after 'a': everything that is whole or may start a character.
    guard.rollback(prefix.length);
    const again = new Uint32Array(words).fill(0xffffffff);
    guard.refine(again);
    for (let b = 0; b < 256; b++) assert.equal(allowed(again, byteId(b)), completable([b]), `rollback of [${prefix.map((x) => x.toString(16))}]: byte ${b.toString(16)}`);
  }
});

test('Utf8Guard: never lets through an id the mask had cleared', () => {
  const guard = new Utf8Guard(vocab);
  guard.feed(Uint8Array.of(0xe0));
  const mask = new Uint32Array(words);
  mask[byteId(0x80) >>> 5] |= 1 << (byteId(0x80) & 31); // an overlong continuation only
  guard.refine(mask);
  assert.ok(mask.every((w) => w === 0));
});
