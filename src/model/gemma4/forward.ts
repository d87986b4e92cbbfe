/**
 * The Gemma 4 text decoder's forward pass on the GPU, for a chunk of T ≤ C tokens at positions p0..p0+T−1
 * (prefill chunks and single-token decode alike). Reads like the fixture README's forward summary
 * (test/fixtures/gemma4-tiny-a/README.md):
 *
 *   x = E[id]·√D;  z[l] = (RMSNorm((W_plmp·x)·D^-½)[l] + √P·E_ple[id][l])·2^-½
 *   per layer (head dim d = 256 sliding / 512 full):
 *     h = RMSNorm(x);  q = RoPE(RMSNorm_head(W_q·h));  owners: k = RoPE(RMSNorm_head(W_k·h)), v = RMS0(W_v·h)
 *     x += RMSNorm(W_o·attend(q, K/V of the layer or of its source))           (scale 1; sliding window on S)
 *     x += RMSNorm(W_down·(gelu(W_gate·RMSNorm(x)) ⊙ W_up·RMSNorm(x)))
 *     x += RMSNorm(W_pp·(gelu(W_g·x) ⊙ z[l]));  x *= layer_scalar
 *   logits = cap·tanh(E·RMSNorm(x) / cap)
 *
 * RoPE: default on sliding layers (every angle, theta 1e4); "proportional" on full layers (a quarter of the angles
 * rotate, frequencies over the whole head: RopeKernel's `rotatedAngles`). Each owner layer has a KV cache of its own
 * head dim; a KV-shared layer attends over its source's cache (the last owner of its type) with its own mask.
 *
 * Every buffer is preallocated for C tokens and every dispatch is built once here; a step writes the token ids, the
 * PLE rows (packed, unless the table is GPU-resident) and a few uniforms and records the whole step — optionally
 * with GPU sampling of the next token — into one command buffer. Activations are f32.
 */
import type { GpuContext } from '../../gpu/device.ts';
import { createStorageBuffer, writeBuffer, type GpuBufferOwner } from '../../gpu/buffers.ts';
import type { Dispatch } from '../../gpu/pipeline.ts';
import { MatmulKernel, type GemvActivations } from '../../kernels/matmul.ts';
import { RmsNormKernel } from '../../kernels/rmsnorm.ts';
import { RopeKernel } from '../../kernels/rope.ts';
import { ElementwiseKernel } from '../../kernels/elementwise.ts';
import { GeluGateKernel } from '../../kernels/gelu_gate.ts';
import { ATTENTION_MAX_SPLITS, AttentionKernel, type AttentionScratch } from '../../kernels/attention.ts';
import { KvCache, KvWriteKernel } from '../../kernels/kv-cache.ts';
import { GatherKernel, uploadedRowsBytes } from '../../kernels/gather.ts';
import { AltUpKernel } from '../../kernels/altup.ts';
import { ResidualNormKernel } from '../../kernels/residual-norm.ts';
import { SampleKernel, type SampleDispatch } from '../../kernels/sample.ts';
import type { GpuWeight } from '../../formats/weight-format.ts';
import { loadedFormats } from '../tensor-table.ts';
import { StepRecorder, type Op } from '../step-recorder.ts';
import { projectGated, projectPair } from '../fused-gemv.ts';
import type { FeedInput } from '../language-model.ts';
import type { DecoderForward, SampleRange } from '../gpu-decoder.ts';
import type { Gemma4Config } from './config.ts';
import type { Gemma4Weights } from './weights.ts';

export interface Gemma4ForwardOptions {
  /** Most tokens per step (prefill chunk size). */
  chunk: number;
  /** Longest sequence the KV caches hold. */
  maxContext: number;
  /** Decode GEMV activations for quantized weights (src/kernels/matmul.ts MatmulOptions.activations). Default 'auto'. */
  activations?: GemvActivations;
}

/** Id written to the embedding gather for a soft-token position: out of range, so the gather skips that row. */
const SKIP_ROW = 0xffffffff;

interface Kernels {
  mm: MatmulKernel;
  norm: RmsNormKernel;
  rope: RopeKernel;
  ew: ElementwiseKernel;
  gelu: GeluGateKernel;
  /** One attention kernel per head dim (sliding and full layers differ). */
  attn: Map<number, AttentionKernel>;
  kv: KvWriteKernel;
  gather: GatherKernel;
  /** For its PLE combine (the per-layer-input normalization shared with Gemma 3n). */
  ple: AltUpKernel;
  residual: ResidualNormKernel;
  sample: SampleKernel;
}

export class Gemma4Forward implements DecoderForward {
  readonly caches: Array<KvCache | undefined>;
  readonly scratchBytes: number;
  readonly lastLogits: GPUBuffer;
  readonly allLogits: GPUBuffer;
  readonly nextToken: GPUBuffer;
  /** Gemma 4 has no ids outside its text vocabulary to mask: both ranges sample every id. */
  readonly samplers: Record<SampleRange, SampleDispatch>;
  /** Allowed ids of constrained decoding, a packed bitmask the sampler reads while masked (GpuDecoderModel sets it). */
  readonly tokenMask: GPUBuffer;
  private readonly recorder = new StepRecorder('gemma4');
  private readonly embedIds: GPUBuffer;
  private readonly pleIds?: GPUBuffer;
  private readonly embedIdsHost: Uint32Array;
  private readonly pleIdsHost: Uint32Array;
  /** The residual stream x [C, D] (starts as the step's embeddings). */
  private readonly x: GPUBuffer;
  private readonly pleUpload?: { data: GPUBuffer; scales?: GPUBuffer };
  private readonly finalNormed: GPUBuffer;
  private readonly lastHidden: GPUBuffer;
  private readonly placeholders: Set<number>;
  private readonly buffers: GPUBuffer[] = [];
  /** The kernels this forward pass bound (each owns its dispatches' parameter buffers and its own scratch). */
  private readonly kernels: GpuBufferOwner[];

  private constructor(
    private readonly ctx: GpuContext,
    private readonly cfg: Gemma4Config,
    private readonly w: Gemma4Weights,
    readonly opts: Gemma4ForwardOptions,
    k: Kernels,
  ) {
    this.kernels = [k.mm, k.norm, k.rope, k.ew, k.gelu, ...k.attn.values(), k.kv, k.gather, k.ple, k.residual, k.sample];
    const c = cfg.text;
    this.placeholders = new Set(cfg.placeholderIds);
    const C = opts.chunk;
    const D = c.hiddenSize, L = c.numLayers, P = c.pleDim, H = c.numHeads, Hkv = c.numKvHeads, V = c.vocabSize;
    const dMax = Math.max(...c.layerHeadDim);
    const Fmax = Math.max(...c.intermediateSize);
    const eps = c.rmsNormEps;
    const { device } = ctx;

    let bytes = 0;
    const buf = (label: string, floats: number): GPUBuffer => {
      const b = createStorageBuffer(device, floats * 4, label);
      this.buffers.push(b);
      bytes += b.size;
      return b;
    };
    const ops = this.recorder.ops;
    const mm = (W: GpuWeight, x: GPUBuffer, y: GPUBuffer, o: { list?: Op[]; fixedRows?: number } = {}) => {
      const d = k.mm.bind({ x, weight: W, y, rows: o.fixedRows ?? 1 });
      (o.list ?? ops).push({ d, rows: o.fixedRows ? undefined : (T) => d.setRows(T) });
      return d;
    };
    /** RMSNorm of `perToken` rows of width dim per token (weight undefined: no weight, as v_norm). */
    const norm = (x: GPUBuffer, weight: GPUBuffer | undefined, y: GPUBuffer, dim: number, perToken = 1) => {
      const d = k.norm.bind({ x, weight, y, rows: perToken, dim, eps });
      ops.push({ d, rows: (T) => d.setRows(T * perToken) });
    };
    type EwArgs = Parameters<ElementwiseKernel['bind']>[0];
    const ew = (a: Omit<EwArgs, 'rows'>, list: Op[] = ops) => {
      const d = k.ew.bind({ ...a, rows: 1 });
      list.push({ d, rows: (T) => d.setRows(T) });
    };
    const perToken = (d: Dispatch & { setTokens(T: number): void }) => ops.push({ d, rows: (T) => d.setTokens(T) });

    // ---- state ----
    this.embedIdsHost = new Uint32Array(C);
    this.pleIdsHost = new Uint32Array(C);
    this.embedIds = buf('embed-ids', C);
    const x = (this.x = buf('residual', C * D));
    const pleProj = buf('ple-projection', C * L * P);
    const ple = buf('per-layer-inputs', C * L * P); // z_tok, then z (combined in place)
    if (w.pleGpu) this.pleIds = buf('ple-ids', C);
    else {
      const sizes = uploadedRowsBytes(w.pleTable.format, L * P, C);
      this.pleUpload = { data: buf('ple-upload/data', sizes.data / 4), scales: sizes.scales ? buf('ple-upload/scales', Math.ceil(sizes.scales / 4)) : undefined };
    }
    const n = buf('normed', C * D);
    const q = buf('q', C * H * dMax), kk = buf('k', C * Hkv * dMax), vv = buf('v', C * Hkv * dMax);
    const attnOut = buf('attention-out', C * H * dMax);
    const o = buf('o', C * D);
    const mlpIn = buf('mlp-in', C * D);
    const gate = buf('mlp-gate', C * Fmax), up = buf('mlp-up', C * Fmax), act = buf('mlp-act', C * Fmax);
    const down = buf('mlp-down', C * D);
    const pleGateOut = buf('ple-gate-out', C * P), pleAct = buf('ple-act', C * P);
    const pleOut = buf('ple-out', C * D);
    this.finalNormed = buf('final-normed', C * D);
    this.lastHidden = buf('last-hidden', D);
    this.lastLogits = buf('last-logits', V);
    this.allLogits = buf('all-logits', C * V);
    this.nextToken = buf('next-token', 4);

    // KV caches: only owner layers have one, each of its layer type's head dim; shared layers read their source's.
    this.caches = c.layerTypes.map((type, l) =>
      c.kvSourceLayer[l] !== l
        ? undefined
        : new KvCache(ctx, { kind: type === 'full_attention' ? 'full' : 'sliding', kvHeads: Hkv, headDim: c.layerHeadDim[l], maxContext: opts.maxContext, window: c.slidingWindow, maxChunk: C, label: `kv${l}` }),
    );
    // One split scratch per attention kernel, shared by its layers (dispatches in a pass run in order).
    const scratch = new Map<number, AttentionScratch>([...k.attn].map(([dh, kernel]) => [dh, kernel.createScratch(ATTENTION_MAX_SPLITS * H)]));

    // ================= Embedding and per-layer inputs =================
    // x = E[id]·√D (HF scales by √D in the compute dtype: f32 here). Soft-token positions are skipped: run() writes
    // their rows.
    perToken(k.gather.bind({ table: w.embed, ids: this.embedIds, y: x, tokens: 1, scale: Math.fround(Math.sqrt(D)), oov: 'skip' }));
    // z_tok[l] = √P·E_ple[id][l]: from the GPU-resident table by id, or from the rows run() packed for these tokens.
    const pleScale = Math.fround(Math.sqrt(P));
    if (this.pleIds) perToken(k.gather.bind({ table: w.pleGpu!, ids: this.pleIds, y: ple, tokens: 1, scale: pleScale, oov: 'substitute', substitute: 0 }));
    else perToken(k.gather.bindUploaded({ format: w.pleTable.format, cols: L * P, data: this.pleUpload!.data, scales: this.pleUpload!.scales, y: ple, tokens: 1, scale: pleScale }));
    // z[l] = (RMSNorm(W_plmp·x · D^-½)[l] + z_tok[l]) · 2^-½ (the context projection reads the SCALED embedding).
    mm(w.perLayerModelProjection, x, pleProj);
    perToken(k.ple.bindPleCombine({ proj: pleProj, weight: w.perLayerProjectionNorm, z: ple, tokens: 1, layers: L, dim: P, preScale: Math.fround(1 / Math.sqrt(D)), eps, outScale: Math.SQRT1_2 }));

    // ================= Decoder layers =================
    /** x += RMSNorm_weight(rows) (times the layer scalar when given), and `next` = its norm of the new x, in one dispatch. */
    const addNormed = (rows: GPUBuffer, weight: GPUBuffer, next?: { buffer: GPUBuffer; weight: GPUBuffer }, scale?: GPUBuffer) =>
      perToken(k.residual.bind({ dim: D, eps, tokens: 1, xs: rows, x: { weight }, y: { buffer: x }, out: next, scale }));
    // Layer 0's input norm; every later layer's comes with the previous layer's last residual add.
    norm(x, w.layers[0].inputNorm, n, D);
    for (let l = 0; l < L; l++) {
      const lw = w.layers[l];
      const F = c.intermediateSize[l];
      const dh = c.layerHeadDim[l];
      const sliding = c.layerTypes[l] === 'sliding_attention';
      const rope = { tokens: 1, headDim: dh, theta: c.ropeTheta[l], rotatedAngles: c.ropeAngles[l] };
      // --- attention: h = RMSNorm(x) (already in n); q (and k, v for cache owners), per-head norms, RoPE, cache write, attend
      // q, k and v all read n: q and (for cache owners) k in one GEMV where their formats agree, v alone (the GEMV
      // takes two matrices: 8 storage bindings is all WebGPU guarantees)
      const ownsCache = lw.k && lw.v && lw.kNorm && this.caches[l];
      if (ownsCache) projectPair(k.mm, ops, { buffer: n }, { weight: lw.q, y: q }, { weight: lw.k!, y: kk });
      else mm(lw.q, n, q);
      const ropeQ = k.rope.bind({ ...rope, x: q, heads: H, norm: { weight: lw.qNorm, eps } });
      ops.push({ d: ropeQ, step: (p0, T) => ropeQ.setParams(T, p0) });
      const cache = this.caches[c.kvSourceLayer[l]]!;
      if (ownsCache) {
        // This layer owns its cache. KV-shared layers skip this block: their stored k/v/k_norm are never read.
        mm(lw.v!, n, vv);
        // k_norm + RoPE of the keys, v_norm (RMS, no weight, no RoPE) of the values, into the cache: one dispatch
        const write = k.kv.bind({ cache, k: kk, v: vv, kNorm: lw.kNorm, vNorm: true, eps, rope: { theta: rope.theta, rotatedAngles: rope.rotatedAngles } });
        ops.push({ d: write, step: (p0, T) => write.setStep(p0, T) });
      }
      const attend = k.attn.get(dh)!.bind({ q, out: attnOut, cache, heads: H, window: sliding ? c.slidingWindow : 0, scale: 1, scratch: scratch.get(dh) });
      ops.push({ d: attend, step: (p0, T) => attend.setStep(p0, T) });
      mm(lw.o, attnOut, o);
      // --- MLP: x += RMSNorm(W_down·(gelu(W_gate·m) ⊙ W_up·m)), m = RMSNorm(x after the attention's add)
      addNormed(o, lw.postAttentionNorm, { buffer: mlpIn, weight: lw.preFeedforwardNorm });
      // (gate, up and the gelu in one GEMV: src/model/fused-gemv.ts)
      projectGated(k.mm, k.gelu, ops, { buffer: mlpIn }, { gate: { weight: lw.gate, y: gate }, up: { weight: lw.up, y: up }, y: { buffer: act, rowStride: F }, cols: F });
      mm(lw.down, act, down);
      addNormed(down, lw.postFeedforwardNorm);
      // --- per-layer input: x += RMSNorm(W_pp·(gelu(W_g·x) ⊙ z[l])), gated by the residual itself
      projectGated(k.mm, k.gelu, ops, { buffer: x }, { gate: { weight: lw.pleGate, y: pleGateOut }, up: { mul: { buffer: ple, offset: l * P, rowStride: L * P } }, y: { buffer: pleAct }, cols: P });
      mm(lw.pleProjection, pleAct, pleOut);
      // --- x *= layer_scalar (broadcast to [D] at load), then the next layer's input norm (the final norm after the last)
      const next = l + 1 < L ? { buffer: n, weight: w.layers[l + 1].inputNorm } : { buffer: this.finalNormed, weight: w.finalNorm };
      addNormed(pleOut, lw.postPleNorm, next, lw.layerScalar);
    }

    // ================= Tied LM head, softcap (the final norm came with the last layer) =================
    mm(w.embed, this.lastHidden, this.lastLogits, { list: this.recorder.headOps, fixedRows: 1 });
    if (c.finalLogitSoftcap !== null) ew({ op: 'softcap', a: this.lastLogits, y: this.lastLogits, cols: V, alpha: c.finalLogitSoftcap }, this.recorder.headOps);
    this.tokenMask = buf('token-mask', Math.ceil(V / 32));
    const sampler = k.sample.bind({ logits: this.lastLogits, out: this.nextToken, batch: 1, vocab: V, mask: this.tokenMask });
    this.samplers = { text: sampler, all: sampler };
    mm(w.embed, this.finalNormed, this.allLogits, { list: this.recorder.allHeadOps });
    if (c.finalLogitSoftcap !== null) ew({ op: 'softcap', a: this.allLogits, y: this.allLogits, cols: V, alpha: c.finalLogitSoftcap }, this.recorder.allHeadOps);

    this.scratchBytes = bytes;
  }

  static async create(ctx: GpuContext, cfg: Gemma4Config, w: Gemma4Weights, opts: Gemma4ForwardOptions): Promise<Gemma4Forward> {
    const c = cfg.text;
    const group = c.numHeads / c.numKvHeads;
    const headDims = [...new Set(c.layerHeadDim)];
    const [mm, norm, rope, ew, gelu, kv, gather, ple, residual, sample, ...attn] = await Promise.all([
      // Compile only the weight formats this model uses (each format's variants cost seconds on SwiftShader).
      MatmulKernel.create(ctx, 'f32', loadedFormats(w), { activations: opts.activations }),
      RmsNormKernel.create(ctx, 'f32'),
      RopeKernel.create(ctx, 'f32'),
      ElementwiseKernel.create(ctx, 'f32'),
      GeluGateKernel.create(ctx, 'f32'),
      KvWriteKernel.create(ctx, 'f32'),
      GatherKernel.create(ctx, 'f32'),
      AltUpKernel.create(ctx),
      ResidualNormKernel.create(ctx),
      SampleKernel.create(ctx),
      ...headDims.map((headDim) => AttentionKernel.create(ctx, { headDim, group, act: 'f32' })),
    ]);
    const attnByDim = new Map(headDims.map((d, i) => [d, attn[i] as AttentionKernel]));
    return new Gemma4Forward(ctx, cfg, w, opts, {
      mm: mm as MatmulKernel, norm: norm as RmsNormKernel, rope: rope as RopeKernel, ew: ew as ElementwiseKernel, gelu: gelu as GeluGateKernel,
      kv: kv as KvWriteKernel, gather: gather as GatherKernel, ple: ple as AltUpKernel,
      residual: residual as ResidualNormKernel, sample: sample as SampleKernel, attn: attnByDim,
    });
  }

  /**
   * Runs tokens `input.ids` (≤ chunk) at positions p0.. through the decoder and the LM head (see DecoderForward).
   * Multimodal placeholder ids read the pad row of both tables (as HF maps them to pad); soft tokens replace the
   * embedding of their positions.
   */
  run(input: FeedInput, p0: number, opts: { allLogits?: boolean; sample?: SampleRange } = {}): void {
    const c = this.cfg.text;
    const { ids } = input;
    const T = ids.length;
    const D = c.hiddenSize;
    if (T < 1 || T > this.opts.chunk) throw new Error(`forward: ${T} tokens per step (chunk ${this.opts.chunk})`);
    const { device } = this.ctx;
    const soft = new Uint8Array(T);
    for (const s of input.soft ?? []) {
      const count = s.rows.length / D;
      if (!(Number.isInteger(count) && count >= 1 && s.offset >= 0 && s.offset + count <= T)) throw new Error(`forward: soft tokens [${s.offset}, +${s.rows.length / D}) do not fit a chunk of ${T} with width ${D}`);
      soft.fill(1, s.offset, s.offset + count);
    }
    const pad = this.cfg.padTokenId;
    for (let t = 0; t < T; t++) {
      const id = ids[t];
      if (!Number.isInteger(id) || id < 0 || id >= c.vocabSize) throw new Error(`token id ${id} is outside the vocabulary (0..${c.vocabSize - 1})`);
      const tableId = this.placeholders.has(id) ? pad : id;
      this.pleIdsHost[t] = tableId;
      this.embedIdsHost[t] = soft[t] ? SKIP_ROW : tableId;
    }
    writeBuffer(device, this.embedIds, this.embedIdsHost.subarray(0, T));
    for (const s of input.soft ?? []) writeBuffer(device, this.x, s.rows, s.offset * D * 4);
    if (this.pleIds) writeBuffer(device, this.pleIds, this.pleIdsHost.subarray(0, T));
    else {
      const rows = this.w.pleTable.pack(this.pleIdsHost.subarray(0, T));
      writeBuffer(device, this.pleUpload!.data, rows.data);
      if (rows.scales && this.pleUpload!.scales) writeBuffer(device, this.pleUpload!.scales, rows.scales);
    }
    this.recorder.submit(device, p0, T, {
      lastRow: { src: this.finalNormed, offset: (T - 1) * D * 4, dst: this.lastHidden, bytes: D * 4 },
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
