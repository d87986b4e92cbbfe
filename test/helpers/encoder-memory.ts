/**
 * Checks a media encoder's memory() against the GPU buffers it holds, sorted by label: tensor names (`model.`) are
 * its weights, `scratchPrefix` its activations, per-device state (`devicePrefix`: the shared weight quantizer's
 * placeholders, made once per device and kept) is nobody's, and every other buffer is one its kernels own
 * (parameters, placeholders, kernel scratch). Each line must be exact, then destroy() must free every buffer and
 * zero the report.
 */
import assert from 'node:assert/strict';
import type { MediaEncoder } from '../../src/model/media-encoder.ts';
import { bytesByClass } from './live-buffers.ts';

type EncoderMemory = ReturnType<MediaEncoder['memory']>['gpu'];

/** `live`: a trackLiveBuffers() set started before the encoder's load. Returns the report before destroy(). */
export function assertEncoderMemoryAndDestroy(encoder: MediaEncoder, live: ReadonlySet<GPUBuffer>, scratchPrefix: string, devicePrefix = 'quantize/'): EncoderMemory {
  const m = encoder.memory().gpu;
  const classOf = (b: GPUBuffer) => (b.label.startsWith('model.') ? 'weights' : b.label.startsWith(scratchPrefix) ? 'scratch' : b.label.startsWith(devicePrefix) ? 'device' : 'kernels');
  const held = bytesByClass(live, classOf);
  assert.deepEqual({ weights: m.weights, scratch: m.scratch, kernels: m.kernels }, { weights: held.weights ?? 0, scratch: held.scratch ?? 0, kernels: held.kernels ?? 0 }, 'memory() vs the live GPU buffers it holds');
  assert.ok(m.kernels > 0, 'the kernels own buffers (at least their dispatches\' parameters)');
  assert.equal(m.total, m.weights + m.scratch + m.kernels);
  encoder.destroy();
  assert.deepEqual(encoder.memory().gpu, { weights: 0, scratch: 0, kernels: 0, total: 0 });
  const left = [...live].filter((b) => classOf(b) !== 'device');
  assert.deepEqual(left.map((b) => b.label), [], 'destroy() frees every buffer the encoder made');
  return m;
}
