/**
 * The Gemma 3n text decoder's forward pass on the GPU, for a chunk of T ≤ C tokens at positions p0..p0+T−1
 * (prefill chunks and single-token decode alike). Reads like docs/gemma3n-formats.md §2.10:
 *
 *   1. embed (§2.2) → PLE inputs z[l] (§2.3) → AltUp streams (§2.4)
 *   2. per layer (§2.5): ROUTER + ALTUP PREDICT + input norm → LAUREL → ATTENTION (own or SHARED KV cache)
 *      → combine /√2 → MLP (activation sparsity) → ROUTER + ALTUP CORRECT → PLE GATE into streams 1..3
 *      (the router logits come from the row kernels that hold the router's input row: router-tables.ts)
 *   3. ALTUP UNEMBED → mean → final norm → tied LM head → softcap (§2.6)
 *
 * Every buffer is preallocated for C tokens and every dispatch (pipeline + bind group + uniform) is built once
 * here; a step only writes the token ids, the PLE rows (packed, unless the table is GPU-resident) and a few per-step
 * uniforms (T, positions) and records the whole step — optionally with GPU sampling of the next token — into one
 * command buffer. Activations are f32 (residual streams must be, §2.11); weights may be f16/q4/q8.
 */
import type { GpuContext } from '../../gpu/device.ts';
import { createStorageBuffer, writeBuffer, type GpuBufferOwner } from '../../gpu/buffers.ts';
import type { Dispatch } from '../../gpu/pipeline.ts';
import { MatmulKernel, type GemvActivations } from '../../kernels/matmul.ts';
import { RmsNormKernel } from '../../kernels/rmsnorm.ts';
import { RopeKernel } from '../../kernels/rope.ts';
import { ElementwiseKernel, type Operand } from '../../kernels/elementwise.ts';
import { GeluGateKernel } from '../../kernels/gelu_gate.ts';
import { ATTENTION_MAX_SPLITS, AttentionKernel } from '../../kernels/attention.ts';
import { KvCache, KvWriteKernel } from '../../kernels/kv-cache.ts';
import { GatherKernel, uploadedRowsBytes } from '../../kernels/gather.ts';
import { AltUpKernel } from '../../kernels/altup.ts';
import { ResidualNormKernel } from '../../kernels/residual-norm.ts';
import { buildRouterTables } from './router-tables.ts';
import { SampleKernel, type SampleDispatch } from '../../kernels/sample.ts';
import type { GpuWeight } from '../../formats/weight-format.ts';
import { loadedFormats } from '../tensor-table.ts';
import { StepRecorder, type Op } from '../step-recorder.ts';
import { projectGated, projectPair } from '../fused-gemv.ts';
import type { Gemma3nTextConfig } from './config.ts';
import type { ModelWeights } from './weights.ts';
import type { FeedInput } from '../language-model.ts';
import { GemmaError } from '../../errors.ts';
import type { DecoderForward, SampleRange } from '../gpu-decoder.ts';

export interface ForwardOptions {
  /** Most tokens per step (prefill chunk size). */
  chunk: number;
  /** Longest sequence the KV caches hold. */
  maxContext: number;
  /** Decode GEMV activations for quantized weights (src/kernels/matmul.ts MatmulOptions.activations). Default 'auto'. */
  activations?: GemvActivations;
}

/** Id written to the embedding gather for a hard token: out of range, so the gather skips that row. */
const SKIP_ROW = 0xffffffff;

export class Gemma3nForward implements DecoderForward {
  readonly caches: Array<KvCache | undefined>;
  /** Scratch GPU bytes (activations, logits), for memory accounting. */
  readonly scratchBytes: number;
  private readonly recorder = new StepRecorder('gemma3n');
  /** Token ids as fed (the GPU-resident PLE gather reads them). */
  private readonly tokenIds: GPUBuffer;
  /** Token ids for the embedding gather: hard tokens replaced by SKIP_ROW (their rows are written from the host). */
  private readonly embedIds: GPUBuffer;
  private readonly tokenIdsHost: Uint32Array;
  private readonly embedIdsHost: Uint32Array;
  /** The step's embeddings e [C, D]. */
  private readonly embedded: GPUBuffer;
  /** Upload slots for the packed PLE rows of the step's tokens (host-resident table only). */
  private readonly pleUpload?: { data: GPUBuffer; scales?: GPUBuffer };
  private readonly finalNormed: GPUBuffer;
  private readonly lastHidden: GPUBuffer;
  readonly lastLogits: GPUBuffer;
  readonly allLogits: GPUBuffer;
  /** u32 [4]: word 0 = the token the last sampling dispatch chose. */
  readonly nextToken: GPUBuffer;
  /** GPU sampling of the last position's logits: over the text vocabulary, or over every id. */
  readonly samplers: Record<SampleRange, SampleDispatch>;
  /** Allowed ids of constrained decoding, a packed bitmask both samplers read while masked (GpuDecoderModel sets it). */
  readonly tokenMask: GPUBuffer;
  private readonly buffers: GPUBuffer[] = [];
  /** The kernels this forward pass bound (each owns its dispatches' parameter buffers and its own scratch). */
  private readonly kernels: GpuBufferOwner[];

  private constructor(
    private readonly ctx: GpuContext,
    readonly cfg: Gemma3nTextConfig,
    private readonly w: ModelWeights,
    readonly opts: ForwardOptions,
    k: { mm: MatmulKernel; norm: RmsNormKernel; rope: RopeKernel; ew: ElementwiseKernel; gelu: GeluGateKernel; attn: AttentionKernel; kv: KvWriteKernel; gather: GatherKernel; altup: AltUpKernel; residual: ResidualNormKernel; sample: SampleKernel },
  ) {
    this.kernels = Object.values(k);
    const c = cfg;
    const C = opts.chunk;
    const D = c.hiddenSize, L = c.numLayers, P = c.pleDim, A = c.altupNumInputs;
    const H = c.numHeads, Hkv = c.numKvHeads, dh = c.headDim, V = c.vocabSize;
    const Fmax = Math.max(...c.intermediateSize);
    const eps = c.rmsNormEps;
    const { device } = ctx;

    let bytes = 0;
    /** A buffer this forward pass frees on destroy() and counts in its scratch bytes. */
    const own = (b: GPUBuffer): GPUBuffer => {
      this.buffers.push(b);
      bytes += b.size;
      return b;
    };
    const buf = (label: string, floats: number): GPUBuffer => own(createStorageBuffer(device, floats * 4, label));
    const ops = this.recorder.ops;
    // ---- small builders, so the body below reads like the equations ----
    const mm = (W: GpuWeight, x: GPUBuffer, y: GPUBuffer, o: { xOffset?: number; yOffset?: number; list?: Op[]; fixedRows?: number } = {}) => {
      const d = k.mm.bind({ x, weight: W, y, rows: o.fixedRows ?? 1, xOffset: o.xOffset, yOffset: o.yOffset });
      (o.list ?? ops).push({ d, rows: o.fixedRows ? undefined : (T) => d.setRows(T) });
      return d;
    };
    /** RMSNorm of `perToken` rows of width dim per token. */
    const norm = (x: GPUBuffer, weight: GPUBuffer | undefined, y: GPUBuffer, dim: number, perToken = 1, o: { xOffset?: number; yOffset?: number; list?: Op[] } = {}) => {
      const d = k.norm.bind({ x, weight, y, rows: perToken, dim, eps, xOffset: o.xOffset, yOffset: o.yOffset });
      (o.list ?? ops).push({ d, rows: (T) => d.setRows(T * perToken) });
    };
    type EwArgs = Parameters<ElementwiseKernel['bind']>[0];
    const ew = (a: Omit<EwArgs, 'rows'>, list: Op[] = ops) => {
      const d = k.ew.bind({ ...a, rows: 1 });
      list.push({ d, rows: (T) => d.setRows(T) });
    };
    const stream = (buffer: GPUBuffer, i: number): Operand => ({ buffer, offset: i * C * D });
    /** A dispatch whose token count follows the step's. */
    const perToken = (d: Dispatch & { setTokens(T: number): void }, list: Op[] = ops) => list.push({ d, rows: (T) => d.setTokens(T) });
    const streamsLayout = { tokens: C, dim: D, streamStride: C * D };

    // ---- state ----
    this.tokenIdsHost = new Uint32Array(C);
    this.embedIdsHost = new Uint32Array(C);
    this.tokenIds = buf('token-ids', C);
    this.embedIds = buf('embed-ids', C);
    this.embedded = buf('embedded', C * D);
    const streams = buf('altup-streams', A * C * D);
    const pred = buf('altup-predictions', A * C * D);
    const pleProj = buf('ple-projection', C * L * P);
    const ple = buf('per-layer-inputs', C * L * P); // z_tok, then z (combined in place)
    if (!w.pleGpu) {
      const sizes = uploadedRowsBytes(w.pleTable.format, L * P, C);
      this.pleUpload = { data: buf('ple-upload/data', sizes.data / 4), scales: sizes.scales ? buf('ple-upload/scales', Math.ceil(sizes.scales / 4)) : undefined };
    }
    // AltUp router tables [5, D] per layer (router_norm's weight, then W_r in f32), and the correction's logits
    // [C, A] (the post-FFN residual-norm writes them; predict computes its own)
    const routerTables = buildRouterTables(ctx, k.gather, w.layers, D).map(own);
    const routerLogits = buf('router-logits', C * A);
    // The attention block's outputs o and laurel and its normed input n, in one buffer (the combine reads all three
    // through one binding): [o | laurel | n], each [C, D].
    const block = buf('attention-block-rows', 3 * C * D);
    const oAt = 0, laurelAt = C * D, nAt = 2 * C * D;
    const laurelMid = buf('laurel-mid', C * c.laurelRank);
    const q = buf('q', C * H * dh), kk = buf('k', C * Hkv * dh), vv = buf('v', C * Hkv * dh);
    const attnOut = buf('attention-out', C * H * dh);
    const h = buf('h', C * D), mlpIn = buf('mlp-in', C * D), g = buf('layer-output', C * D);
    const gate = buf('mlp-gate', C * Fmax), up = buf('mlp-up', C * Fmax), act = buf('mlp-act', C * Fmax);
    const down = buf('mlp-down', C * D);
    const u = buf('ple-gate-input', C * D);
    const pleGateOut = buf('ple-gate-out', C * P), pleAct = buf('ple-act', C * P);
    const pleOut = buf('ple-out', C * D);
    const mean = buf('unembed-mean', C * D);
    this.finalNormed = buf('final-normed', C * D);
    this.lastHidden = buf('last-hidden', D);
    this.lastLogits = buf('last-logits', V);
    this.allLogits = buf('all-logits', C * V);
    this.nextToken = buf('next-token', 4);

    // KV caches: only producer layers own one (§2.8); consumers attend over their producer's.
    this.caches = c.layerTypes.map((type, l) => {
      if (c.kvSourceLayer[l] !== l) return undefined;
      const cache = new KvCache(ctx, { kind: type === 'full_attention' ? 'full' : 'sliding', kvHeads: Hkv, headDim: dh, maxContext: opts.maxContext, window: c.slidingWindow, maxChunk: C, label: `kv${l}` });
      return cache;
    });

    // One split scratch for every layer's attention (dispatches in a pass run in order).
    const attnScratch = k.attn.createScratch(ATTENTION_MAX_SPLITS * H);

    // ================= 1. Embedding, per-layer inputs, AltUp streams =================
    // e = E[id]·√D. Hard (multimodal) tokens are skipped here: run() writes their precomputed rows into `embedded`.
    const e = this.embedded;
    perToken(k.gather.bind({ table: w.embed, ids: this.embedIds, y: e, tokens: 1, scale: Math.fround(Math.sqrt(D)), oov: 'skip' }));
    // z_tok[l] = √P·E_ple[id'][l] (id' = id < vocab_size_per_layer_input ? id : 0): from the GPU-resident table by id,
    // or from the rows run() packed and uploaded for just these tokens.
    const pleScale = Math.fround(Math.sqrt(P));
    if (w.pleGpu) perToken(k.gather.bind({ table: w.pleGpu, ids: this.tokenIds, y: ple, tokens: 1, scale: pleScale, oov: 'substitute', substitute: 0 }));
    else perToken(k.gather.bindUploaded({ format: w.pleTable.format, cols: L * P, data: this.pleUpload!.data, scales: this.pleUpload!.scales, y: ple, tokens: 1, scale: pleScale }));
    // z[l] = (RMSNorm(W_plmp·e · D^-½)[l] + z_tok[l]) · 2^-½
    mm(w.perLayerModelProjection, e, pleProj);
    perToken(k.altup.bindPleCombine({ proj: pleProj, weight: w.perLayerProjectionNorm, z: ple, tokens: 1, layers: L, dim: P, preScale: Math.fround(1 / Math.sqrt(D)), eps, outScale: Math.SQRT1_2 }));
    // x_0 = e; x_i = W_ap^(i)·e rescaled to rms(e), i = 1..A−1.
    ew({ op: 'copy', a: e, y: stream(streams, 0), cols: D });
    for (let i = 1; i < A; i++) mm(w.altupProjections[i - 1], e, streams, { yOffset: i * C * D });
    perToken(k.altup.bindRescale({ ...streamsLayout, streams, firstTarget: 1, targets: A - 1 }));

    // ================= 2. Decoder layers =================
    const layerTypes = c.layerTypes;
    for (let l = 0; l < L; l++) {
      const lw = w.layers[l];
      const F = c.intermediateSize[l];
      const sliding = layerTypes[l] === 'sliding_attention';
      // --- ROUTER + ALTUP PREDICT: x̂_i = x_i + Σ_k C[i][k] x_k, C = W_pred·tanh(W_r·RMSNorm(x_0)/D), with the input
      // norm of the active prediction a = x̂_0: n = RMSNorm(a), in one row kernel
      const normed = { weight: lw.inputNorm, eps, out: block, offset: nAt };
      perToken(k.altup.bindPredict({ ...streamsLayout, streams, routerTable: routerTables[l], coefs: lw.predictionCoefs, out: pred, norm: normed }));
      // --- LAUREL: λ = n + RMSNorm(W_lr·W_ll·n) (its norm and sum happen in the combine below)
      mm(lw.laurelLeft, block, laurelMid, { xOffset: nAt }); // LAuReL, q, k and v all read n
      mm(lw.laurelRight, laurelMid, block, { yOffset: laurelAt });
      // --- ATTENTION: q (+ k, v for cache owners), per-head norms, RoPE, cache write, attend, o_proj
      // q and (for cache owners) k in one GEMV where their formats agree; v alone (the Q4_K_M plan's more-bits layers
      // keep v in q6k; the GEMV takes two matrices: 8 storage bindings is all WebGPU guarantees).
      const cache = this.caches[c.kvSourceLayer[l]]!;
      const ownsCache = lw.k && lw.v && this.caches[l];
      const fromNormed = { buffer: block, offset: nAt };
      if (ownsCache) projectPair(k.mm, ops, fromNormed, { weight: lw.q, y: q }, { weight: lw.k!, y: kk });
      else mm(lw.q, block, q, { xOffset: nAt });
      const ropeQ = k.rope.bind({ x: q, tokens: 1, heads: H, headDim: dh, theta: c.ropeTheta[l], norm: { weight: lw.qNorm, eps } });
      ops.push({ d: ropeQ, step: (p0, T) => ropeQ.setParams(T, p0) });
      if (ownsCache) {
        // This layer owns its cache. (KV-SHARED layers skip this block: their k_proj/v_proj are never used.)
        mm(lw.v!, block, vv, { xOffset: nAt });
        // k_norm + RoPE of the keys, v_norm (RMS0, no weight, no RoPE) of the values, into the cache: one dispatch
        const write = k.kv.bind({ cache, k: kk, v: vv, kNorm: lw.kNorm, vNorm: true, eps, rope: { theta: c.ropeTheta[l] } });
        ops.push({ d: write, step: (p0, T) => write.setStep(p0, T) });
      }
      const attend = k.attn.bind({ q, out: attnOut, cache, heads: H, window: sliding ? c.slidingWindow : 0, scale: 1, scratch: attnScratch });
      ops.push({ d: attend, step: (p0, T) => attend.setStep(p0, T) });
      mm(lw.o, attnOut, block, { yOffset: oAt });
      // --- combine: h = (a + RMSNorm(o) + λ)·2^-½ = (a + RMSNorm(o) + n)·2^-½ + RMSNorm(laurel)·2^-½, and the MLP's
      // input x = RMSNorm(h), in one row kernel
      perToken(k.residual.bind({
        dim: D, eps, tokens: 1, xs: block, x: { offset: oAt, weight: lw.postAttentionNorm }, plain: nAt,
        x2: { offset: laurelAt, weight: lw.postLaurelNorm }, alpha: Math.SQRT1_2, beta: Math.SQRT1_2,
        base: { buffer: pred }, y: { buffer: h }, out: { buffer: mlpIn, weight: lw.preFeedforwardNorm },
      }));
      // --- MLP with activation sparsity: g = h + RMSNorm(W_down·(gelu(cut(W_gate·x)) ⊙ W_up·x))
      // (gate and up in one GEMV; with the gelu too in dense layers: src/model/fused-gemv.ts)
      projectGated(k.mm, k.gelu, ops, { buffer: mlpIn }, { gate: { weight: lw.gate, y: gate }, up: { weight: lw.up, y: up }, y: { buffer: act, rowStride: F }, cols: F, sparsity: c.activationSparsity[l] });
      mm(lw.down, act, down);
      // g and the router logits W_r·RMSNorm(g), in one row kernel
      perToken(k.residual.bind({ dim: D, eps, tokens: 1, xs: down, x: { weight: lw.postFeedforwardNorm }, base: { buffer: h }, y: { buffer: g }, out: { buffer: routerLogits, weight: routerTables[l], projected: true } }));
      // --- ALTUP CORRECT: x_i = x̂_i + (W_corr·tanh(r/D) + 1)_i·(g − x̂_0); u = x_0 ⊙ s (the gate's input copy)
      const scaled = c.altupCorrectScale ? { outputScale: lw.correctOutputScale, scaledOut: u } : {};
      perToken(k.altup.bindCorrect({ ...streamsLayout, predicted: pred, activated: g, router: routerLogits, coefs: lw.correctionCoefs, out: streams, ...scaled }));
      if (!c.altupCorrectScale) ew({ op: 'copy', a: stream(streams, 0), y: u, cols: D });
      // --- PLE GATE: v = RMSNorm(W_pp·(gelu(W_g·u) ⊙ z[l])), added to streams 1..A−1 only
      projectGated(k.mm, k.gelu, ops, { buffer: u }, { gate: { weight: lw.pleGate, y: pleGateOut }, up: { mul: { buffer: ple, offset: l * P, rowStride: L * P } }, y: { buffer: pleAct }, cols: P });
      mm(lw.pleProjection, pleAct, pleOut);
      // streams 1..A−1 += v (stream 0 is final after the correction)
      perToken(k.residual.bind({ dim: D, eps, tokens: 1, xs: pleOut, x: { weight: lw.postPleNorm }, y: { buffer: streams, offset: C * D }, count: A - 1, streamStride: C * D }));
    }

    // ================= 3. ALTUP UNEMBED, mean, final norm =================
    // y_i = W_au^(i)·x_i rescaled to rms(x_0); h = (x_0 + y_1 + … + y_{A−1})/A; RMSNorm.
    for (let i = 1; i < A; i++) mm(w.altupUnembedProjections[i - 1], streams, pred, { xOffset: i * C * D, yOffset: i * C * D });
    perToken(k.altup.bindRescale({ ...streamsLayout, streams: pred, ref: streams, refOffset: 0, firstTarget: 1, targets: A - 1, mean }));
    norm(mean, w.finalNorm, this.finalNormed, D);

    // Tied LM head + softcap: for the last position (headOps, after a copy of its row) or for all (allHeadOps).
    mm(w.embed, this.lastHidden, this.lastLogits, { list: this.recorder.headOps, fixedRows: 1 });
    if (c.finalLogitSoftcap !== null) ew({ op: 'softcap', a: this.lastLogits, y: this.lastLogits, cols: V, alpha: c.finalLogitSoftcap }, this.recorder.headOps);
    // Sampling (§2.6): ids ≥ vocab_size_per_layer_input are multimodal tokens / pad-row copies, masked for text.
    this.tokenMask = buf('token-mask', Math.ceil(V / 32));
    this.samplers = {
      text: k.sample.bind({ logits: this.lastLogits, out: this.nextToken, batch: 1, vocab: V, maxTokenId: c.vocabSizePerLayerInput, mask: this.tokenMask }),
      all: k.sample.bind({ logits: this.lastLogits, out: this.nextToken, batch: 1, vocab: V, mask: this.tokenMask }),
    };
    mm(w.embed, this.finalNormed, this.allLogits, { list: this.recorder.allHeadOps });
    if (c.finalLogitSoftcap !== null) ew({ op: 'softcap', a: this.allLogits, y: this.allLogits, cols: V, alpha: c.finalLogitSoftcap }, this.recorder.allHeadOps);

    this.scratchBytes = bytes;
  }

  static async create(ctx: GpuContext, cfg: Gemma3nTextConfig, w: ModelWeights, opts: ForwardOptions): Promise<Gemma3nForward> {
    const group = cfg.numHeads / cfg.numKvHeads;
    const [mm, norm, rope, ew, gelu, attn, kv, gather, altup, residual, sample] = await Promise.all([
      // Compile only the weight formats this model uses (each format's variants cost seconds on SwiftShader).
      MatmulKernel.create(ctx, 'f32', loadedFormats(w), { activations: opts.activations }),
      RmsNormKernel.create(ctx, 'f32'),
      RopeKernel.create(ctx, 'f32'),
      ElementwiseKernel.create(ctx, 'f32'),
      GeluGateKernel.create(ctx, 'f32'),
      AttentionKernel.create(ctx, { headDim: cfg.headDim, group, act: 'f32' }),
      KvWriteKernel.create(ctx, 'f32'),
      GatherKernel.create(ctx, 'f32'),
      AltUpKernel.create(ctx),
      ResidualNormKernel.create(ctx),
      SampleKernel.create(ctx),
    ]);
    return new Gemma3nForward(ctx, cfg, w, opts, { mm, norm, rope, ew, gelu, attn, kv, gather, altup, residual, sample });
  }

  /**
   * Runs tokens `ids` (≤ chunk) at positions p0.. through the decoder and the LM head. `allLogits`: also compute
   * the logits of every position into `this.allLogits` [T, V]; otherwise only the last position's, into
   * `lastLogits`. `sample`: then also sample the next token into `nextToken` with that sampler (set its parameters
   * first), in the same command buffer. Submits one command buffer; nothing is read back.
   */
  run(input: FeedInput, p0: number, opts: { allLogits?: boolean; sample?: SampleRange } = {}): void {
    const c = this.cfg;
    const w = this.w;
    const { ids } = input;
    const T = ids.length;
    const D = c.hiddenSize;
    if (T < 1 || T > this.opts.chunk) throw new Error(`forward: ${T} tokens per step (chunk ${this.opts.chunk})`);
    const { device } = this.ctx;
    // Positions whose embedding comes from the host: soft tokens (encoder outputs) and multimodal hard tokens.
    const softAt = new Int32Array(T).fill(-1);
    for (const [i, s] of (input.soft ?? []).entries()) {
      const n = s.rows.length / D;
      if (!(Number.isInteger(n) && n >= 1 && s.offset >= 0 && s.offset + n <= T)) throw new Error(`forward: soft tokens [${s.offset}, +${s.rows.length / D}) do not fit a chunk of ${T} with width ${D}`);
      softAt.fill(i, s.offset, s.offset + n);
    }
    const hard: number[] = [];
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
      const isHard = softAt[t] < 0 && id >= w.hardTokenBase;
      if (isHard && w.hardRowPresent[id - w.hardTokenBase] !== 1) {
        throw new GemmaError(
          'unsupported-input',
          `Token id ${id} is an image/audio token, but this checkpoint has no embedder for it (a text-only checkpoint, such as llama.cpp's text GGUF). ` +
            'Send text only, or load the full multimodal checkpoint (safetensors).',
        );
      }
      this.tokenIdsHost[t] = id;
      this.embedIdsHost[t] = isHard || softAt[t] >= 0 ? SKIP_ROW : id;
      if (isHard) hard.push(t);
    }
    writeBuffer(device, this.tokenIds, this.tokenIdsHost.subarray(0, T));
    writeBuffer(device, this.embedIds, this.embedIdsHost.subarray(0, T));
    // Multimodal hard tokens: e = the precomputed embedder row (the gather above leaves these rows alone).
    for (const t of hard) {
      const r = ids[t] - w.hardTokenBase;
      writeBuffer(device, this.embedded, w.hardRows.subarray(r * D, (r + 1) * D), t * D * 4);
    }
    // Soft tokens: e = the encoder's row, as given (HF scatters them over the placeholder embeddings unscaled).
    for (const s of input.soft ?? []) writeBuffer(device, this.embedded, s.rows, s.offset * D * 4);
    if (this.pleUpload) {
      const rows = w.pleTable.pack(ids);
      writeBuffer(device, this.pleUpload.data, rows.data);
      if (rows.scales && this.pleUpload.scales) writeBuffer(device, this.pleUpload.scales, rows.scales);
    }
    this.recorder.submit(device, p0, T, {
      lastRow: { src: this.finalNormed, offset: (T - 1) * c.hiddenSize * 4, dst: this.lastHidden, bytes: c.hiddenSize * 4 },
      sampler: opts.sample && this.samplers[opts.sample],
      allLogits: opts.allLogits,
    });
  }

  /** Samples the next token from the current `lastLogits` into `nextToken` (one small submission). */
  sample(range: SampleRange): void {
    this.recorder.submitOne(this.ctx.device, this.samplers[range]);
  }

  get kernelBytes(): number {
    return this.kernels.reduce((s, k) => s + k.gpuBytes, 0);
  }

  destroy(): void {
    for (const b of this.buffers) b.destroy();
    for (const cache of this.caches) cache?.destroy();
    for (const kernel of this.kernels) kernel.destroy();
  }
}
