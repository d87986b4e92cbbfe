/**
 * Which storage for the audio tower's matrices (`node --import ./scripts/register.mjs bench/audio-formats.ts`):
 * loads the gemma3n-audio-tiny checkpoint with each plan and measures the soft tokens (and the tower's last hidden
 * state) against HF's goldens: max abs error and relative RMS error (||ours - HF|| / ||HF||). Plans: f32, all q8,
 * all q4, and all-q8 with ONE family in q4 (which family costs how much). The result picks DEFAULT_AUDIO_WEIGHTS
 * (src/model/audio/encoder.ts). SwiftShader runs this in about a minute.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { openSafetensorsCheckpoint } from '../src/io/safetensors.ts';
import { directoryFiles } from '../src/node/checkpoint-files.ts';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import { AudioEncoder } from '../src/model/audio/encoder.ts';
import type { AudioMatrixFamily, AudioWeightPlan } from '../src/model/audio/weights.ts';

const dir = new URL('../test/fixtures/gemma3n-audio-tiny/', import.meta.url).pathname;
const golden = JSON.parse(readFileSync(join(dir, 'golden.json'), 'utf8'));
const features = Float32Array.from((golden.audio_input.input_features as number[][]).flat());
const mask = Uint8Array.from(golden.audio_input.input_features_mask as boolean[], (v) => (v ? 1 : 0));
const wantTokens = (golden.audio_soft_tokens as number[][]).flat();
const wantHidden = (golden.audio_tower.last_hidden_state as number[][]).flat();

const ctx = await createNodeGpuContext();
const ckpt = await openSafetensorsCheckpoint(directoryFiles(dir));
const families: AudioMatrixFamily[] = ['ffn', 'attention', 'lconv', 'inputProj', 'embed'];
const allQ8 = Object.fromEntries(families.map((f) => [f, 'q8'])) as Record<AudioMatrixFamily, 'q8' | 'q4'>;
const plans: Array<[string, AudioWeightPlan]> = [
  ['f32', 'f32'],
  ['all q8', 'q8'],
  ['all q4', 'q4'],
  ...families.map((f) => [`q8, ${f} q4`, { ...allQ8, [f]: 'q4' }] as [string, AudioWeightPlan]),
];

function distance(got: Float32Array, want: number[]): { max: number; rel: number } {
  let max = 0, se = 0, sw = 0;
  want.forEach((w, i) => {
    max = Math.max(max, Math.abs(got[i] - w));
    se += (got[i] - w) ** 2;
    sw += w * w;
  });
  return { max, rel: Math.sqrt(se / sw) };
}

console.log('| plan | soft tokens max abs | soft tokens rel RMS | last hidden max abs | last hidden rel RMS |');
console.log('|---|---:|---:|---:|---:|');
for (const [name, plan] of plans) {
  const enc = await AudioEncoder.load(ctx, ckpt, { weights: plan });
  const { encoding, intermediates } = await enc.encodeWithIntermediates(features, features.length / 128, mask);
  const t = distance(encoding.tokens, wantTokens);
  const h = distance(intermediates.lastHidden, wantHidden);
  console.log(`| ${name} | ${t.max.toExponential(2)} | ${t.rel.toExponential(2)} | ${h.max.toExponential(2)} | ${h.rel.toExponential(2)} |`);
  enc.destroy();
}
process.exit(0);
