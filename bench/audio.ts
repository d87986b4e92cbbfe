/**
 * Audio benchmark (`npm run bench:audio [-- --quick] [-- --layers N] [-- --seconds S] [-- --json FILE]`):
 * 30 s of audio through the front end and the real-size Gemma 3n E2B audio tower with random int8 weights drawn on
 * the GPU (every dimension real: hidden 1536, 8 heads, FFN 6144, 750 conformer steps, 188 soft tokens of 2048).
 *
 * - Front end (CPU, TypeScript): resampling 44.1 / 48 kHz -> 16 kHz and the log-mel features of 30 s (median of 5),
 *   and the bytes it adds to a page (src/audio bundled and minified with esbuild, gzip size too). For comparison,
 *   transformers.js 4.3's Gemma3nAudioFeatureExtractor on the same clip where it can run (Node: its mel matmul goes
 *   through onnxruntime-node; a browser would fetch onnxruntime-web's asyncify wasm, whose size is read from
 *   node_modules) and its frame count on a w2-like length (the extra frame).
 * - Tower (GPU): ms per stage (sub-sampler, each conformer block, reduction + embedding; wall clock per stage, each
 *   submitted and awaited alone), total, GFLOP/s (matmul FLOPs counted 2 per multiply-add, plus the convolutions and
 *   the attention core) and the ratio to the adapter's f32 FMA ceiling measured in the same run
 *   (bench/fma-ceiling.ts); GPU bytes (weights, activations, the buffers the kernels own: parameters, placeholders,
 *   the group norms' statistics, the int8 GEMV's staged input on CPU adapters).
 * SwiftShader (no GPU here) reaches a few GFLOP/s: the full tower (~1 TFLOP) takes many minutes there, so --quick
 * runs 1 of the 12 blocks and reports the sum of the per-stage times (both stated in the output); --layers N picks
 * the count, --seconds S the clip length.
 */
import { writeFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import type { Checkpoint } from '../src/io/checkpoint.ts';
import { resample } from '../src/audio/resample.ts';
import { gemma3nLogMel, featureFrames } from '../src/audio/log-mel.ts';
import { AudioEncoder } from '../src/model/audio/encoder.ts';
import { attentionPast, audioLengths, parseAudioTowerConfig, type AudioTowerConfig } from '../src/model/audio/config.ts';
import { measureFmaCeiling } from './fma-ceiling.ts';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const quick = args.includes('--quick');
const seconds = Number(flag('seconds') ?? 30);
const layers = Number(flag('layers') ?? (quick ? 1 : 12));
const jsonFile = flag('json');
const root = fileURLToPath(new URL('..', import.meta.url));
const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];
const timeMs = async (f: () => unknown | Promise<unknown>, reps: number) => {
  const t: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await f();
    t.push(performance.now() - t0);
  }
  return median(t);
};

// A speech-like test clip: a few harmonic "vowels" with a moving pitch, plus noise.
function testClip(rate: number, secs: number): Float32Array {
  const n = Math.round(rate * secs);
  const out = new Float32Array(n);
  let seed = 12345;
  const noise = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  for (let i = 0; i < n; i++) {
    const t = i / rate;
    const f0 = 120 + 40 * Math.sin(2 * Math.PI * 0.3 * t);
    let v = 0;
    for (let h = 1; h <= 12; h++) v += Math.sin(2 * Math.PI * f0 * h * t) / h;
    out[i] = 0.2 * v * (0.5 + 0.5 * Math.sin(2 * Math.PI * 2 * t)) + 0.01 * noise();
  }
  return out;
}

const ctx = await createNodeGpuContext();
console.log(`adapter: ${ctx.adapterName}; ${seconds} s of audio; ${layers} of 12 conformer blocks${quick ? ' (--quick)' : ''}`);
const fma = await measureFmaCeiling(ctx);
console.log(`f32 FMA ceiling: ${(fma.flopsPerSecond / 1e9).toFixed(2)} GFLOP/s (${fma.kernel})`);

// ---- Front end -------------------------------------------------------------------------------------------------
const clip16 = testClip(16000, seconds);
const resampleMs: Record<string, number> = {};
for (const rate of [44100, 48000]) {
  const src = testClip(rate, seconds);
  resampleMs[rate] = await timeMs(() => resample(src, rate, 16000), 3);
}
gemma3nLogMel(clip16); // warm-up (JIT)
const logMelMs = await timeMs(() => gemma3nLogMel(clip16), 5);
const feats = gemma3nLogMel(clip16);

const { build } = await import('esbuild');
const bundle = await build({
  stdin: { contents: "export { gemma3nLogMel, LogMelExtractor, parseAudioFeatureConfig } from './src/audio/log-mel.ts'; export { toGemmaAudio, resample, downmixToMono } from './src/audio/resample.ts';", resolveDir: root, loader: 'ts' },
  bundle: true,
  minify: true,
  format: 'esm',
  write: false,
});
const ourBytes = bundle.outputFiles[0].contents.byteLength;
const ourGzip = gzipSync(bundle.outputFiles[0].contents).byteLength;
const ortWasm = `${root}node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.asyncify.wasm`;
const ortBytes = (() => {
  try {
    return statSync(ortWasm).size + statSync(ortWasm.replace(/\.wasm$/, '.mjs')).size;
  } catch {
    return undefined;
  }
})();
let tjs: { ms?: number; w2Frames?: number; error?: string } = {};
try {
  const { Gemma3nAudioFeatureExtractor } = (await import('@huggingface/transformers')) as unknown as { Gemma3nAudioFeatureExtractor: new (c: object) => (a: Float32Array) => Promise<{ input_features: { dims: number[] } }> };
  // transformers.js needs the sample counts in its config (the *_ms keys alone fail): given here.
  const ex = new Gemma3nAudioFeatureExtractor({ feature_size: 128, sampling_rate: 16000, frame_length: 512, hop_length: 160, fft_length: 1024, min_frequency: 125, max_frequency: 7600, preemphasis: 0.97, preemphasis_htk_flavor: true, mel_floor: 1e-5, padding_value: 0 });
  await ex(clip16);
  tjs.ms = await timeMs(() => ex(clip16), 5);
  tjs.w2Frames = (await ex(new Float32Array(16512))).input_features.dims[1];
} catch (err) {
  tjs = { error: (err as Error).message.split('\n')[0] };
}

console.log('\nFront end (CPU, this machine):');
console.log('| step | ms | note |');
console.log('|---|---:|---|');
console.log(`| resample ${seconds} s 44.1 kHz -> 16 kHz | ${resampleMs[44100].toFixed(0)} | Kaiser windowed sinc, 353 taps |`);
console.log(`| resample ${seconds} s 48 kHz -> 16 kHz | ${resampleMs[48000].toFixed(0)} | 384 taps |`);
console.log(`| log-mel ${seconds} s (ours, ${feats.frames} frames) | ${logMelMs.toFixed(0)} | ${(ourBytes / 1024).toFixed(1)} KB minified, ${(ourGzip / 1024).toFixed(1)} KB gzip (resampler included) |`);
if (tjs.ms !== undefined) {
  console.log(`| log-mel ${seconds} s (transformers.js 4.3, Node) | ${tjs.ms.toFixed(0)} | mel matmul via onnxruntime-node here; a page would fetch ${ortBytes ? (ortBytes / 1e6).toFixed(1) + ' MB of' : ''} onnxruntime-web asyncify wasm+mjs; w2-like 16,512 samples -> ${tjs.w2Frames} frames (HF: ${featureFrames(16512)}) |`);
} else {
  console.log(`| log-mel (transformers.js 4.3) | - | could not run here: ${tjs.error} |`);
}

// ---- Tower ----------------------------------------------------------------------------------------------------
const e2bConfig = {
  model_type: 'gemma3n',
  audio_soft_tokens_per_image: 188,
  text_config: { hidden_size: 2048 },
  // docs/gemma3n-formats.md §1.4 (HF defaults are the same values).
  audio_config: {
    model_type: 'gemma3n_audio', hidden_size: 1536, input_feat_size: 128, conf_num_hidden_layers: layers, conf_num_attention_heads: 8,
    conf_attention_chunk_size: 12, conf_attention_context_left: 13, conf_attention_context_right: 0, conf_attention_logit_cap: 50.0,
    conf_conv_kernel_size: 5, conf_reduction_factor: 4, conf_residual_weight: 0.5, sscp_conv_channel_size: [128, 32],
    sscp_conv_kernel_size: [[3, 3], [3, 3]], sscp_conv_stride_size: [[2, 2], [2, 2]], sscp_conv_group_norm_eps: 0.001,
    gradient_clipping: 1e10, rms_norm_eps: 1e-6, vocab_size: 128, vocab_offset: 262272,
  },
};
const configOnly: Checkpoint = {
  name: 'random E2B audio tower',
  config: e2bConfig,
  tensor: () => undefined,
  tensorNames: () => [],
  read: () => Promise.reject(new Error('random weights: nothing is read')),
};
const cfg = parseAudioTowerConfig(e2bConfig);

/** FLOPs of one clip: matmuls (2 per multiply-add), the two convolutions, the attention core and the depthwise conv. */
function towerFlops(c: AudioTowerConfig, frames: number): { total: number; sscp: number; block: number; final: number } {
  const L = audioLengths(c, frames);
  const D = c.hiddenSize, S = L.steps;
  const [[t1, f1], [t2, f2]] = L.conv;
  const [c0, c1] = c.sscpChannels;
  const mm = (rows: number, k: number, n: number) => 2 * rows * k * n;
  const sscp = 2 * t1 * f1 * c0 * 9 + 2 * t2 * f2 * c1 * 9 * c0 + mm(S, f2 * c1, D);
  const context = c.chunkSize + attentionPast(c) + c.contextRight;
  const block = 2 * (mm(S, D, 4 * D) + mm(S, 4 * D, D)) + 4 * mm(S, D, D) + S * D * context * 6 + mm(S, D, 2 * D) + mm(S, D, D) + 2 * S * D * c.convKernel;
  const final = mm(L.tokens, D, c.textHiddenSize);
  return { total: sscp + c.numLayers * block + final, sscp, block, final };
}

const t0 = performance.now();
const encoder = await AudioEncoder.load(ctx, configOnly, { random: true });
const loadMs = performance.now() - t0;
// Warm-up on a 2 s clip: buffers, and SwiftShader's first-dispatch JIT of every pipeline.
const warm = gemma3nLogMel(clip16.subarray(0, 32000));
await encoder.encode(warm.features, warm.frames);
// Per-stage times (each stage submitted and awaited alone); the whole tower in one submission unless --quick.
const { stageMs } = await encoder.encodeTimed(feats.features, feats.frames);
let oneSubmissionMs: number | undefined;
if (!quick) {
  const t1 = performance.now();
  await encoder.encode(feats.features, feats.frames);
  oneSubmissionMs = performance.now() - t1;
}
const best = { stages: stageMs, total: oneSubmissionMs ?? stageMs.reduce((a, b) => a + b, 0) };
const flops = towerFlops(cfg, feats.frames);
const mem = encoder.memory();
const L = audioLengths(cfg, feats.frames);
const gflops = (f: number, ms: number) => f / (ms / 1000) / 1e9;
const pct = (f: number, ms: number) => ((f / (ms / 1000) / fma.flopsPerSecond) * 100).toFixed(1);
const blockMs = best.stages.slice(1, 1 + layers);
const meanBlock = blockMs.reduce((a, b) => a + b, 0) / Math.max(1, blockMs.length);

console.log(`\nAudio tower (GPU, random int8 weights, ${feats.frames} frames -> ${L.steps} steps -> ${L.tokens} soft tokens of ${cfg.textHiddenSize}; ${layers} of 12 blocks):`);
console.log('| stage | ms | GFLOP | GFLOP/s | % of FMA ceiling |');
console.log('|---|---:|---:|---:|---:|');
const row = (name: string, ms: number, f: number) => console.log(`| ${name} | ${ms.toFixed(0)} | ${(f / 1e9).toFixed(2)} | ${gflops(f, ms).toFixed(2)} | ${pct(f, ms)} |`);
row('sub-sampler (2 conv + group norm + input projection)', best.stages[0], flops.sscp);
row(`conformer block (mean of ${blockMs.length})`, meanBlock, flops.block);
row('time reduction + embed_audio', best.stages[best.stages.length - 1], flops.final);
row(`**whole tower (${layers} blocks${oneSubmissionMs === undefined ? ', sum of the stages' : ', one submission'})**`, best.total, flops.total);
encoder.destroy();
// GPU weights and kernels' buffers of the whole tower: with fewer blocks timed, the 12-block tower is loaded and
// runs the 2 s warm-up clip (which binds its dispatches, sized for 30 s like the timed one's) to measure them.
let fullWeights = mem.gpu.weights;
let fullKernels = mem.gpu.kernels;
if (layers !== 12) {
  const full = await AudioEncoder.load(ctx, { ...configOnly, config: { ...e2bConfig, audio_config: { ...e2bConfig.audio_config, conf_num_hidden_layers: 12 } } }, { random: true });
  await full.encode(warm.features, warm.frames);
  fullWeights = full.memory().gpu.weights;
  fullKernels = full.memory().gpu.kernels;
  full.destroy();
}
console.log(`GPU memory: weights ${(fullWeights / 1e9).toFixed(3)} GB for 12 blocks (int8 + f16 scales; ${(mem.gpu.weights / 1e9).toFixed(3)} GB for the ${layers} timed), activations ${(mem.gpu.scratch / 1e6).toFixed(1)} MB (sized for 30 s), the kernels' buffers ${(fullKernels / 1e6).toFixed(3)} MB for 12 blocks (${(mem.gpu.kernels / 1e6).toFixed(3)} MB for the ${layers} timed); load of the timed tower (random weights on the GPU + compile) ${(loadMs / 1000).toFixed(1)} s`);
if (layers < 12) console.log(`(12 blocks would take about ${((best.total + (12 - layers) * meanBlock) / 1000).toFixed(0)} s at this block time: an extrapolation, not a measurement)`);

if (jsonFile) {
  writeFileSync(jsonFile, JSON.stringify({ adapter: ctx.adapterName, seconds, layers, fmaCeiling: fma, frontEnd: { resampleMs, logMelMs, bundleBytes: ourBytes, bundleGzipBytes: ourGzip, transformersJs: tjs, ortWasmBytes: ortBytes }, tower: { frames: feats.frames, steps: L.steps, tokens: L.tokens, loadMs, stageMs, oneSubmissionMs, flops, memory: mem.gpu, weightsBytes12Blocks: fullWeights, kernelBytes12Blocks: fullKernels } }, null, 2));
}
process.exit(0);
