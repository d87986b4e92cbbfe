/**
 * The procedural vision checkpoint and the architecture table against the gemma3n-vision-procedural fixture:
 * the generator's test vectors (README tables and golden.json), whole-tensor sums, every tensor's name, shape, role,
 * offset and scale (tensors.tsv), the block list and the strided convolutions' SAME padding (golden.json), and the
 * safetensors writer round trip through the ordinary loader (on a small architecture: the full file is ~600 MB).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fnv1a64, splitmixHex, proceduralU, proceduralBf16, proceduralVisionCheckpoint, roleOf } from '../../src/model/vision/procedural.ts';
import { MOBILENETV5_300M_ENC, TOWER_PREFIX, towerMacs, visionTensorSpecs, type Block, type VisionArch } from '../../src/model/vision/arch.ts';
import { samePad } from '../../src/kernels/conv2d.ts';
import { writeProceduralVisionCheckpoint } from '../../src/node/procedural-vision-fixture.ts';
import { openSafetensorsCheckpoint } from '../../src/io/safetensors.ts';
import { directoryFiles } from '../../src/node/checkpoint-files.ts';
import { visionFixtureDir, visionGolden } from '../helpers/vision-fixture.ts';

const hex32 = (x: number) => (x >>> 0).toString(16).padStart(8, '0');
const f32Bits = (v: number) => hex32(new Uint32Array(new Float32Array([v]).buffer)[0]);

test('procedural generator reproduces the test vectors bit for bit', () => {
  const vectors = visionGolden().weights.test_vectors as Array<{
    name: string; shape: number[]; role: string; offset: number; scale: number; fnv1a64_hex: string; splitmix64_hex: string[]; u: number[]; float32_bits_before_bf16: string[]; value_bits: string[];
  }>;
  assert.ok(vectors.length >= 4);
  for (const v of vectors) {
    const [hi, lo] = fnv1a64(v.name);
    assert.equal(hex32(hi) + hex32(lo), v.fnv1a64_hex, v.name);
    const r = roleOf(v.name, v.shape);
    assert.deepEqual([r.role, r.offset, r.scale], [v.role, v.offset, v.scale], v.name);
    const n = v.value_bits.length;
    const before = new Float32Array(n);
    const bits = proceduralBf16(v.name, v.shape, 0, n, before);
    for (let i = 0; i < n; i++) {
      assert.equal(splitmixHex(v.name, i), v.splitmix64_hex[i], `${v.name}[${i}] splitmix64`);
      assert.equal(proceduralU(v.name, i), v.u[i], `${v.name}[${i}] u`);
      assert.equal(f32Bits(before[i]), v.float32_bits_before_bf16[i], `${v.name}[${i}] float32 before bf16`);
      assert.equal(hex32(bits[i] << 16), v.value_bits[i], `${v.name}[${i}] bf16 value`);
    }
  }
});

test('procedural generator: whole-tensor float64 sums match golden.json', () => {
  const sums = visionGolden().weights.tensor_sums_fp64 as Record<string, number>;
  const specs = new Map(visionTensorSpecs(MOBILENETV5_300M_ENC, 2048).map((s) => [s.name, s.shape]));
  for (const [name, expected] of Object.entries(sums)) {
    const bits = proceduralBf16(name, specs.get(name)!);
    let s = 0;
    for (const b of bits) s += new Float32Array(new Uint32Array([b << 16]).buffer)[0];
    // golden.json prints 9 significant digits.
    assert.ok(Math.abs(s - expected) <= 1e-8 * Math.max(1, Math.abs(expected)) + 5e-9 * Math.abs(expected) + 1e-7, `${name}: sum ${s} vs ${expected}`);
  }
});

test('architecture table: every tensor of tensors.tsv (name, shape, role, offset, scale), parameter and MAC totals', () => {
  const rows = readFileSync(join(visionFixtureDir(), 'tensors.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
  const specs = visionTensorSpecs(MOBILENETV5_300M_ENC, 2048);
  assert.equal(specs.length, rows.length);
  specs.forEach((s, i) => {
    const [name, shape, numel, role, offset, scale] = rows[i];
    const r = roleOf(s.name, s.shape);
    assert.deepEqual([s.name, s.shape.join('x'), s.shape.reduce((a, b) => a * b, 1), r.role, r.offset, r.scale], [name, shape, Number(numel), role, Number(offset), Number(scale)], `tensor ${i}`);
  });
  const g = visionGolden();
  const params = (prefix: string) => specs.filter((s) => s.name.startsWith(prefix)).reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
  assert.equal(params(TOWER_PREFIX), g.weights.tower_params);
  assert.equal(params('model.embed_vision.'), g.weights.embed_vision_params);
  assert.equal(towerMacs(MOBILENETV5_300M_ENC), g.total_macs);
});

/** The golden's block descriptions, e.g. "uir dw_start k3 s1, pw_exp 128->768, dw_mid k5 s2, pw_proj ->256, no skip". */
function describe(b: Block): string {
  if (b.kind === 'er') return `er k${b.kernel} s${b.stride} ${b.cin}->${b.mid}->${b.cout}`;
  if (b.kind === 'mqa') return `mqa heads ${b.heads} dim ${b.keyDim} kv_stride ${b.kvStride}${b.kvStride > 1 ? ` (dw k${b.dwKernel} s${b.kvStride})` : ''} C ${b.channels}`;
  const parts = [];
  if (b.dwStart) parts.push(`dw_start k${b.dwStart} s1`);
  parts.push(`pw_exp ${b.cin}->${b.mid}`);
  if (b.dwMid) parts.push(`dw_mid k${b.dwMid} s${b.stride}`);
  parts.push(`pw_proj ->${b.cout}`);
  parts.push(b.stride === 1 && b.cin === b.cout ? 'skip' : 'no skip');
  return `uir ${parts.join(', ')}`;
}

test('architecture table: the 84 blocks and the strided convolutions (SAME padding) of golden.json', () => {
  const g = visionGolden();
  const ours = MOBILENETV5_300M_ENC.stages.flatMap((stage, s) => stage.map((b, i) => ({ name: `blocks.${s}.${i}`, desc: describe(b) })));
  assert.deepEqual(ours, g.outputs.a.blocks.map((b: { name: string; desc: string }) => ({ name: b.name, desc: b.desc })));
  for (const c of g.strided_convs as Array<{ module: string; kernel: number; stride: number; input_hw: number[]; pad_before: number; pad_after: number; output_hw: number[] }>) {
    const p = samePad(c.input_hw[0], c.kernel, c.stride);
    const total = (p.out - 1) * c.stride + c.kernel - c.input_hw[0];
    assert.deepEqual([p.out, p.before, total - p.before], [c.output_hw[0], c.pad_before, c.pad_after], c.module);
  }
});

test('procedural safetensors writer: the ordinary loader reads back the generator values (small architecture)', async () => {
  const small: VisionArch = {
    ...MOBILENETV5_300M_ENC,
    name: 'test-small',
    stem: { cout: 8, kernel: 3, stride: 2 },
    stages: [
      [{ kind: 'er', kernel: 3, stride: 2, cin: 8, mid: 16, cout: 8 }],
      [{ kind: 'uir', dwStart: 3, dwMid: 5, stride: 2, cin: 8, mid: 16, cout: 12 }],
      [{ kind: 'mqa', channels: 12, heads: 2, keyDim: 4, kvStride: 2, dwKernel: 3 }],
      [{ kind: 'uir', dwStart: 0, dwMid: 0, stride: 1, cin: 12, mid: 8, cout: 12 }],
    ],
    msfa: { mid: 16, cout: 8, outputSize: 2 },
  };
  const dir = await mkdtemp(join(tmpdir(), 'vision-writer-'));
  try {
    const { tensors } = await writeProceduralVisionCheckpoint(dir, small, 12);
    const ckpt = await openSafetensorsCheckpoint(directoryFiles(dir));
    const gen = proceduralVisionCheckpoint(small, 12);
    assert.equal(ckpt.tensorNames().length, tensors);
    assert.deepEqual(ckpt.tensorNames().sort(), gen.tensorNames().sort());
    for (const name of gen.tensorNames()) {
      assert.deepEqual(ckpt.tensor(name), gen.tensor(name));
      const [a, b] = await Promise.all([ckpt.read(name), gen.read(name)]);
      assert.equal(a.dtype, 'BF16');
      assert.deepEqual(a.bytes, b.bytes, name);
    }
    assert.equal((ckpt.config as { vision_config: { architecture: string } }).vision_config.architecture, 'test-small');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
