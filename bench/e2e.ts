/**
 * End-to-end benchmark of the Gemma 3n engine at the real E2B (or E4B) dimensions with random weights drawn on the
 * GPU (no download): Gemma3nModel.load(ctx, randomCheckpoint, { random: true }) allocates exactly what a real load
 * does (int4/int8 weights per quant-plan.ts, KV caches, scratch; the PLE table is a host-side placeholder).
 *
 * Measures: prefill tokens/s at prompt lengths 128 and 1,024; time to first token (prefill + the first greedy token
 * read back); decode tokens/s over 32 tokens at a short context and at 2K; GPU bytes resident; and the decode
 * roofline: bytes each decode token must read ÷ the adapter's best streaming-read bandwidth measured in the same run
 * (bench/read-bandwidth.ts: the fastest of a few streaming-read kernels; the buffer-copy rate is printed for
 * comparison only), against the achieved time per token. A decode step is the engine's fused one
 * (feedAndSample: feed the token and sample greedily on the GPU in one submission; only the id is read back).
 *
 * Bytes per decode token, as counted here:
 *   - weights: data + scales of every matrix one token's forward multiplies by (attention q/o and, in layers owning
 *     a KV cache, k/v; MLP gate/up/down read whole, activation sparsity notwithstanding; LAuReL; PLE gate and
 *     projection; the per-layer model projection; 3 AltUp and 3 un-embed projections; the tied LM head, all 262,400
 *     rows); the one embedding row gathered is ignored; the AltUp router as the decode step reads it: its f32 table
 *     [5, D] per layer (router_norm's weight and W_r, src/model/gemma3n/router-tables.ts), twice per layer;
 *   - KV cache: K and V (f32, as the engine stores them) of every position each layer attends to at that context
 *     (sliding layers: at most the window; KV-shared layers re-read their source layer's cache);
 *   - PLE rows uploaded: L × 256 values per token, in the table's format (int4 rows + scales in q4 mode).
 *   Activations, norms and uniforms are ignored (well under 1 % at E2B).
 *
 * Constrained decoding (structured output, tool calls), same run, same model: the per-token mask time of each test
 * schema (bench/constrained.ts: XGrammar's mask + our string-length check over the real 262k Gemma vocabulary, random
 * logits on the CPU), and decode steps of this model as the engine runs them (temperature 1, top-k 64, top-p 0.95):
 * unconstrained, and under a JSON schema with the mask computed on demand while the GPU runs the layers, uploaded
 * and honoured by the masked sampler. Skipped with --vocab (the grammar needs the real vocabulary).
 *
 * Decode step (bench/decode-profile.ts), at the short context: dispatches, passes and submits per token, dispatches
 * per layer with each layer kind's kernel sequence, host ms per token (encode / submit / wait for the id) and each
 * kernel's share of GPU time (timestamp queries, when the adapter has them), in Node and, with --chromium, in
 * Chromium through the same code on a bench page.
 *
 * Usage: npm run bench -- [--layers N] [--preset e2b|e4b] [--weights q4|float] [--quick] [--json FILE] [--vocab N]
 *                         [--decode-tokens N] [--long-context N]
 *   --layers N   keep every per-layer dimension real, scale the layer count (the output says so)
 *   --vocab N    smoke runs only: cut the LM head / PLE vocabulary (the output says so; nothing else cuts it)
 *   --quick      short mode for CI on SwiftShader (~2 min): --layers 1 unless given, prompt 32 only, 4 decode
 *                tokens, "long" context 128, a smaller bandwidth buffer; the real vocabulary (the output says so)
 *   --decode-tokens N, --long-context N   override the decode token count and the "long" context (smoke runs:
 *                test/e2e/bench-quick.test.ts runs --quick with 2 and 64, every reported field still produced)
 *   --chromium   also profile the decode step in Chromium (Playwright, a bench page: bench/chromium-decode.ts); on by
 *                default in the full run when /usr/bin/chromium exists, off in --quick; --no-chromium turns it off
 *   --audio      the audio encoder's benchmark instead (bench/audio.ts: 30 s through the front end and the real-size
 *                tower; its own flags: --quick, --layers N, --seconds S, --json FILE; it exits when done)
 */
// `npm run bench -- --audio`: the audio encoder's benchmark instead (bench/audio.ts; it exits when done).
if (process.argv.includes('--audio')) await import('./audio.ts');
// `npm run bench -- --vision`: the vision encoder's benchmark instead (bench/vision.ts; it exits when done).
if (process.argv.includes('--vision')) await import('./vision.ts');
import { writeFile } from 'node:fs/promises';
import { createNodeGpuContext } from '../src/node/gpu.ts';
import type { GpuContext } from '../src/gpu/device.ts';
import { Gemma3nModel } from '../src/model/gemma3n/model.ts';
import { createRandomCheckpoint, GEMMA3N_VOCAB_SIZE, type RandomPreset } from '../src/model/gemma3n/random-checkpoint.ts';
import { parseGemma3nConfig, type Gemma3nTextConfig } from '../src/model/gemma3n/config.ts';
import { formatFor } from '../src/model/gemma3n/quant-plan.ts';
import { routerTableFloats } from '../src/model/gemma3n/router-tables.ts';
import type { WeightMode } from '../src/model/family.ts';
import { dataBytes, scaleBytes } from '../src/formats/weight-format.ts';
import { measureReadBandwidth } from './read-bandwidth.ts';
import { measureMaskTimes, quantile, type MaskTimes } from './constrained.ts';
import { gemmaConstraintCompiler } from '../test/runtime/constrained/random-driver.ts';
import { TEST_SCHEMAS } from '../test/runtime/constrained/schemas.ts';
import { responseFormatSpec } from '../src/runtime/constrained/grammar-constraint.ts';
import type { SamplingParams } from '../src/model/language-model.ts';
import { formatDecodeProfile, profileDecode, type DecodeProfile } from './decode-profile.ts';

interface Args {
  preset: Exclude<RandomPreset, 'tiny'>;
  layers?: number;
  vocab?: number;
  weights: WeightMode;
  quick: boolean;
  decodeTokens?: number;
  longContext?: number;
  json?: string;
  /** undefined: auto (on in the full run where Chromium is installed). */
  chromium?: boolean;
}

function parseArgs(argv: string[]): Args {
  const value = (k: string) => {
    const i = argv.indexOf(`--${k}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  const layers = value('layers');
  const preset = (value('preset') ?? 'e2b') as Args['preset'];
  if (preset !== 'e2b' && preset !== 'e4b') throw new Error(`--preset must be e2b or e4b, got ${preset}`);
  const weights = (value('weights') ?? 'q4') as WeightMode;
  if (weights !== 'q4' && weights !== 'float') throw new Error(`--weights must be q4 or float, got ${weights}`);
  const vocab = value('vocab');
  const quick = argv.includes('--quick');
  const chromium = argv.includes('--chromium') ? true : argv.includes('--no-chromium') || quick ? false : undefined;
  const count = (k: string) => {
    const v = value(k);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${k} must be a positive integer, got ${v}`);
    return n;
  };
  const decodeTokens = count('decode-tokens');
  const longContext = count('long-context');
  return { preset, layers: layers === undefined ? undefined : Number(layers), vocab: vocab === undefined ? undefined : Number(vocab), weights, quick, decodeTokens, longContext, json: value('json'), chromium };
}

/** Weight bytes one decode token reads (see the header). */
export function decodeWeightBytes(c: Gemma3nTextConfig, mode: WeightMode, f16: boolean): number {
  const LM = 'model.language_model.';
  const D = c.hiddenSize, P = c.pleDim, A = c.altupNumInputs, L = c.numLayers;
  let total = 0;
  const mat = (name: string, rows: number, cols: number) => {
    const f = formatFor(name, mode, f16, { shape: [rows, cols], layers: L });
    total += dataBytes(f, rows, cols) + scaleBytes(f, rows, cols);
  };
  mat(LM + 'embed_tokens.weight', c.vocabSize, D);
  mat(LM + 'per_layer_model_projection.weight', L * P, D);
  for (let i = 0; i < A - 1; i++) {
    mat(`${LM}altup_projections.${i}.weight`, D, D);
    mat(`${LM}altup_unembed_projections.${i}.weight`, D, D);
  }
  for (let l = 0; l < L; l++) {
    const p = `${LM}layers.${l}.`;
    const F = c.intermediateSize[l];
    const qkv = c.numHeads * c.headDim, kv = c.numKvHeads * c.headDim;
    mat(p + 'self_attn.q_proj.weight', qkv, D);
    if (c.kvSourceLayer[l] === l) {
      mat(p + 'self_attn.k_proj.weight', kv, D);
      mat(p + 'self_attn.v_proj.weight', kv, D);
    }
    mat(p + 'self_attn.o_proj.weight', D, qkv);
    mat(p + 'mlp.gate_proj.weight', F, D);
    mat(p + 'mlp.up_proj.weight', F, D);
    mat(p + 'mlp.down_proj.weight', D, F);
    mat(p + 'laurel.linear_left.weight', c.laurelRank, D);
    mat(p + 'laurel.linear_right.weight', D, c.laurelRank);
    mat(p + 'per_layer_input_gate.weight', P, D);
    mat(p + 'per_layer_projection.weight', D, P);
    // The router runs from its f32 table (router-tables.ts), read whole by altup predict and by the post-MLP
    // residual-norm; W_r itself is read only once, when the tables are built at load.
    total += 2 * routerTableFloats(D) * 4;
  }
  return total;
}

/** KV-cache bytes one decode token reads when `context` positions are cached (f32 K and V). */
export function decodeKvBytes(c: Gemma3nTextConfig, context: number): number {
  let total = 0;
  for (let l = 0; l < c.numLayers; l++) {
    const positions = c.layerTypes[l] === 'sliding_attention' ? Math.min(context, c.slidingWindow) : context;
    total += 2 * c.numKvHeads * c.headDim * 4 * positions;
  }
  return total;
}

/** `n` token ids in [3, limit + 3), deterministic from the seed. */
const randomIds = (n: number, seed: number, limit: number) => {
  let s = seed >>> 0 || 1;
  return Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return 3 + (s % limit);
  });
};

interface DecodeResult {
  context: number;
  tokens: number;
  tokensPerSecond: number;
  msPerToken: number;
  bytesPerToken: { weights: number; kvCache: number; pleRows: number; total: number };
  rooflineMsPerToken: number;
  /** roofline ÷ achieved time per token. */
  rooflinePercent: number;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const quick = args.quick;
  const prefillLengths = quick ? [32] : [128, 1024];
  const decodeTokens = args.decodeTokens ?? (quick ? 4 : 32);
  const longContext = args.longContext ?? (quick ? 128 : 2048);
  if (longContext <= Math.max(...prefillLengths)) throw new Error(`--long-context must exceed the prompt (${Math.max(...prefillLengths)} tokens), got ${longContext}`);
  const maxContext = longContext + decodeTokens + 64;

  const ctx: GpuContext = await createNodeGpuContext();
  const bw = await measureReadBandwidth(ctx, quick ? { bytes: 64 * 2 ** 20, reps: 4, trials: 2 } : {});

  // The ceiling is the best streaming-read kernel (the issue's definition: what a shader can read per second).
  // copyBufferToBuffer is printed beside it: on SwiftShader the driver's memcpy can beat any shader, but no decode
  // kernel can use that path.
  const ceiling = bw.readBytesPerSecond;
  // --quick: one layer unless --layers says otherwise (every per-layer dimension and the vocabulary stay real).
  const checkpoint = createRandomCheckpoint({ preset: args.preset, layers: args.layers ?? (quick ? 1 : undefined), vocabSize: args.vocab });
  const cfg = parseGemma3nConfig(checkpoint.config).text;
  const realLayers = parseGemma3nConfig(createRandomCheckpoint({ preset: args.preset }).config).text.numLayers;
  let layerNote =
    cfg.numLayers === realLayers
      ? `${cfg.numLayers} layers (real)`
      : `${cfg.numLayers} of ${realLayers} layers (--layers: every per-layer dimension real, layer count scaled; ${cfg.numKvSharedLayers} KV-shared)`;
  if (cfg.vocabSize !== GEMMA3N_VOCAB_SIZE) {
    layerNote += `; vocabulary cut to ${cfg.vocabSize} rows by --vocab (smoke run: the real LM head is ${GEMMA3N_VOCAB_SIZE} rows)`;
  }
  const log = (s: string) => process.stderr.write(s + '\n');
  const quickNote = quick ? `--quick: prompt ${prefillLengths.join(', ')} tokens (not 128 and 1,024), ${decodeTokens} decode tokens (not 32), long context ${longContext} (not 2,048)` : '';
  log(`# gemma3n ${args.preset.toUpperCase()} random weights, ${args.weights}, ${layerNote}; adapter: ${ctx.adapterName}${quick ? ` [${quickNote}]` : ''}`);

  const idLimit = cfg.vocabSizePerLayerInput - 3;
  let t = performance.now();
  const model = await Gemma3nModel.load(ctx, checkpoint, { random: true, weights: args.weights, maxContext });
  await ctx.device.queue.onSubmittedWorkDone();
  const loadMs = performance.now() - t;
  log(`loaded in ${(loadMs / 1000).toFixed(1)} s`);
  const sync = () => ctx.device.queue.onSubmittedWorkDone();

  // Warm-up: first dispatches of every pipeline (driver-side compilation, lazy allocations).
  await model.prefill(randomIds(8, 99, idLimit));
  await model.greedyToken();
  model.rewind(0);

  let decodeProfile: DecodeProfile | undefined;
  const prefill: Array<{ promptTokens: number; tokensPerSecond: number; timeToFirstTokenMs: number }> = [];
  const decode: DecodeResult[] = [];
  const weightBytes = decodeWeightBytes(cfg, args.weights, ctx.f16);
  const pleFormat = formatFor('model.language_model.embed_tokens_per_layer.weight', args.weights, false, { shape: [cfg.vocabSizePerLayerInput, cfg.numLayers * cfg.pleDim], layers: cfg.numLayers }) === 'q4' ? 'q4' : 'f32';
  const pleBytes = pleFormat === 'q4' ? dataBytes('q4', 1, cfg.numLayers * cfg.pleDim) + scaleBytes('q4', 1, cfg.numLayers * cfg.pleDim) : cfg.numLayers * cfg.pleDim * 4;

  const measureDecode = async (first: number): Promise<DecodeResult> => {
    const context = model.length;
    let next = first;
    const t0 = performance.now();
    for (let i = 0; i < decodeTokens; i++) next = await model.feedAndSample([next], { temperature: 0, allowMultimodal: true });
    const ms = (performance.now() - t0) / decodeTokens;
    const kv = decodeKvBytes(cfg, context + decodeTokens / 2);
    const total = weightBytes + kv + pleBytes;
    const roofline = (total / ceiling) * 1000;
    return {
      context,
      tokens: decodeTokens,
      tokensPerSecond: 1000 / ms,
      msPerToken: ms,
      bytesPerToken: { weights: weightBytes, kvCache: kv, pleRows: pleBytes, total },
      rooflineMsPerToken: roofline,
      rooflinePercent: (100 * roofline) / ms,
    };
  };

  for (const [i, n] of prefillLengths.entries()) {
    model.rewind(0);
    const ids = randomIds(n, 1 + i, idLimit);
    await sync();
    t = performance.now();
    await model.prefill(ids);
    await sync();
    const prefillMs = performance.now() - t;
    const first = await model.greedyToken();
    const ttft = performance.now() - t;
    prefill.push({ promptTokens: n, tokensPerSecond: (n * 1000) / prefillMs, timeToFirstTokenMs: ttft });
    log(`prefill ${n}: ${((n * 1000) / prefillMs).toFixed(1)} tok/s, TTFT ${ttft.toFixed(0)} ms`);
    if (i === 0) {
      decode.push(await measureDecode(first));
      log(`decode @${decode[decode.length - 1].context}: ${decode[decode.length - 1].tokensPerSecond.toFixed(2)} tok/s`);
      decodeProfile = await profileDecode(ctx, model, { first: randomIds(1, 5, idLimit)[0], layers: cfg.numLayers, tokens: quick ? 2 : 8, timedTokens: quick ? 1 : 2 });
      log(`decode step profiled: ${decodeProfile.perToken.dispatches} dispatches/token`);
    }
  }
  // Long context: fill the cache to `longContext` (not timed), then decode.
  model.rewind(0);
  await model.prefill(randomIds(longContext, 7, idLimit));
  decode.push(await measureDecode(await model.greedyToken()));
  log(`decode @${longContext}: ${decode[decode.length - 1].tokensPerSecond.toFixed(2)} tok/s`);

  const constrained = cfg.vocabSize === GEMMA3N_VOCAB_SIZE ? await measureConstrained(model, randomIds(prefillLengths[0], 3, idLimit), decodeTokens, quick) : undefined;

  const memory = model.memory();
  model.dispose();
  // Chromium: the same decode-step profile on a bench page (its own device and model, after this one is freed).
  let chromiumProfile: (DecodeProfile & { adapter: string }) | undefined;
  const chromium = args.chromium === false ? undefined : await import('./chromium-decode.ts');
  if (chromium && (args.chromium || chromium.chromiumInstalled())) {
    const { profileDecodeInChromium } = chromium;
    chromiumProfile = await profileDecodeInChromium({ preset: args.preset, layers: cfg.numLayers, vocab: args.vocab, weights: args.weights, quick, maxContext });
    log(`chromium decode step profiled: ${chromiumProfile.perToken.dispatches} dispatches/token`);
  }

  const MB = (b: number) => `${(b / 1e6).toFixed(1)} MB`;
  const GBs = (b: number) => `${(b / 1e9).toFixed(2)} GB/s`;
  const lines = [
    `Gemma 3n ${args.preset.toUpperCase()} end to end — random ${args.weights} weights generated on the GPU, ${layerNote}`,
    ...(quick ? [quickNote] : []),
    `adapter: ${ctx.adapterName} (shader-f16 ${ctx.f16 ? 'yes' : 'no'}); roofline ceiling = best streaming-read kernel, ${GBs(ceiling)} (${bw.readKernel}, of ${bw.readVariants.length}; ${MB(bw.bytes)} buffer); copyBufferToBuffer ${GBs(bw.copyBytesPerSecond)} for comparison`,
    `load (random weights, incl. GPU generation + quantization): ${(loadMs / 1000).toFixed(1)} s`,
    `GPU resident: ${MB(memory.gpu.total)} (weights ${MB(memory.gpu.weights)}, KV cache ${MB(memory.gpu.kvCache)} for ${maxContext} positions, scratch ${MB(memory.gpu.scratch)}); host PLE table ${MB(memory.host.total)}`,
    '',
    '| prefill | tokens/s | time to first token |',
    '|---|---|---|',
    ...prefill.map((p) => `| ${p.promptTokens} tokens | ${p.tokensPerSecond.toFixed(1)} | ${p.timeToFirstTokenMs.toFixed(0)} ms |`),
    '',
    `| decode (${decodeTokens} tokens) | tokens/s | ms/token | bytes/token (weights + KV + PLE) | roofline ms/token | % of roofline |`,
    '|---|---|---|---|---|---|',
    ...decode.map(
      (d) =>
        `| context ${d.context} | ${d.tokensPerSecond.toFixed(2)} | ${d.msPerToken.toFixed(1)} | ${MB(d.bytesPerToken.total)} (${MB(d.bytesPerToken.weights)} + ${MB(d.bytesPerToken.kvCache)} + ${MB(d.bytesPerToken.pleRows)}) | ${d.rooflineMsPerToken.toFixed(2)} | ${d.rooflinePercent.toFixed(1)} % |`,
    ),
    '',
    decodeProfile ? formatDecodeProfile(decodeProfile, `Node (Dawn), ${layerNote}`) : '',
    ...(chromiumProfile ? ['', formatDecodeProfile(chromiumProfile, `Chromium, ${chromiumProfile.adapter}`)] : []),
  ];
  if (constrained) {
    const c = constrained;
    lines.push(
      '',
      `Constrained decoding, same run (real ${GEMMA3N_VOCAB_SIZE.toLocaleString('en')}-token vocabulary; mask = XGrammar's next-token bitmask + our length check, on the CPU):`,
      '',
      `| schema | compile ms | tokens | mask median ms | mask p95 ms | mask p95 / decode step |`,
      '|---|---|---|---|---|---|',
      ...c.masks.map((m) => `| ${m.schema} | ${m.compileMs.toFixed(0)} | ${m.tokens} | ${m.maskMedianMs.toFixed(3)} | ${m.maskP95Ms.toFixed(3)} | ${((100 * m.maskP95Ms) / c.plainStepMs).toFixed(2)} % |`),
      '',
      `| decode step @context ${c.context} (${c.steps} steps, temperature 1, top-k 64, top-p 0.95) | ms/token |`,
      '|---|---|',
      `| unconstrained | ${c.plainStepMs.toFixed(1)} |`,
      `| JSON schema "${c.schema}": mask computed while the GPU runs the layers, uploaded, masked sampler | ${c.constrainedStepMs.toFixed(1)} (mask ${c.stepMaskMedianMs.toFixed(3)} ms median, ${c.stepMaskP95Ms.toFixed(3)} p95) |`,
    );
  }
  console.log(lines.join('\n'));
  if (args.json) {
    const report = {
      preset: args.preset,
      weights: args.weights,
      layers: cfg.numLayers,
      realLayers,
      vocabSize: cfg.vocabSize,
      quick,
      adapter: ctx.adapterName,
      f16: ctx.f16,
      bandwidth: { ...bw, ceilingBytesPerSecond: ceiling },
      loadMs,
      memory,
      prefill,
      decode,
      constrained,
      decodeStep: decodeProfile,
      decodeStepChromium: chromiumProfile,
    };
    await writeFile(args.json, JSON.stringify(report, null, 2) + '\n');
  }
  ctx.device.destroy();
}

interface ConstrainedResult {
  masks: MaskTimes[];
  context: number;
  steps: number;
  schema: string;
  plainStepMs: number;
  constrainedStepMs: number;
  stepMaskMedianMs: number;
  stepMaskP95Ms: number;
}

/**
 * Mask times of the test schemas, then `steps` decode steps of `model` after `prompt`, unconstrained and under a
 * JSON schema (a fresh constraint whenever one completes), as the engine runs them (src/runtime/engine.ts).
 */
async function measureConstrained(model: Gemma3nModel, prompt: number[], steps: number, quick: boolean): Promise<ConstrainedResult> {
  const masks = await measureMaskTimes({ generations: quick ? 3 : 10 });
  const compiler = await gemmaConstraintCompiler();
  const schema = 'nestedOptional';
  const spec = responseFormatSpec({ type: 'json_schema', schema: TEST_SCHEMAS[schema] })!;
  const stop = new Uint32Array(Math.ceil(model.vocabSize / 32));
  for (const id of compiler.vocab.stopTokenIds) stop[id >>> 5] |= 1 << (id & 31);
  let random = 0.5;
  const params = (): SamplingParams => ({ temperature: 1, topK: 64, topP: 0.95, random: (random = (random * 9301 + 0.4927) % 1) });
  const run = async (constrained: boolean, stepCount = steps): Promise<{ ms: number; maskMs: number[] }> => {
    model.rewind(0);
    await model.prefill(prompt);
    let c = constrained ? await compiler.constraint(spec) : undefined;
    const maskMs: number[] = [];
    let next = await model.sample({ ...params(), mask: c ? await c.prepare().then(() => c!.nextMask()) : undefined });
    const t0 = performance.now();
    for (let i = 0; i < stepCount; i++) {
      if (c) {
        if (compiler.vocab.stopTokenIds.includes(next)) {
          c.dispose();
          c = await compiler.constraint(spec); // a new reply
        } else c.accept(next);
      }
      const k = c;
      const p = params();
      if (k) {
        p.mask = async () => {
          const t = performance.now();
          await k.prepare();
          const m = k.isComplete() ? stop : k.nextMask();
          maskMs.push(performance.now() - t);
          return m;
        };
      }
      next = await model.step(next, p);
    }
    const ms = (performance.now() - t0) / stepCount;
    c?.dispose();
    return { ms, maskMs };
  };
  await run(true, 1); // warm-up: the masked pipelines' first dispatch (one step does it)
  const plain = await run(false);
  const masked = await run(true);
  return {
    masks,
    context: prompt.length,
    steps,
    schema,
    plainStepMs: plain.ms,
    constrainedStepMs: masked.ms,
    stepMaskMedianMs: quantile(masked.maskMs, 0.5),
    stepMaskP95Ms: quantile(masked.maskMs, 0.95),
  };
}

await main();
