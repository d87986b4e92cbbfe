import source from '../../shaders/sample.wgsl?raw';
import pcgHash from '../../shaders/lib/pcg-hash.wgsl?raw';
import type { GpuContext } from '../gpu/device.ts';
import { BufferArena } from '../gpu/buffers.ts';
import { getPipeline, type Dispatch } from '../gpu/pipeline.ts';

/** Logits per `partial` workgroup (shaders/sample.wgsl: 256 threads x 16). */
const CHUNK = 4096;
/** Most candidates the final pass can hold, so the largest top-k. */
export const MAX_TOP_K = 1024;

export interface SampleArgs {
  /** Logits f32 [batch, vocab]: row b at logitsOffset + b * logitsStride (elements). */
  logits: GPUBuffer;
  /** Receives one u32 token id per row (batch * 4 bytes). */
  out: GPUBuffer;
  batch: number;
  vocab: number;
  /** Ids >= maxTokenId are never chosen (Gemma 3n: 262144, masking the LM head's pad rows). Default vocab. */
  maxTokenId?: number;
  /** Largest top-k this binding will be asked for (sizes the candidate scratch); default and max: the kernel's. */
  maxTopK?: number;
  logitsOffset?: number;
  logitsStride?: number;
  /**
   * Optional packed bitmask of allowed ids (u32 words, bit id & 31 of word id >> 5, >= ceil(vocab / 32) words),
   * shared by every row; honoured while `setMasked(true)`. The caller uploads it before each sample.
   */
  mask?: GPUBuffer;
}

export interface SamplingParams {
  /** <= 0: greedy argmax (ties -> lowest id). Default 1. */
  temperature?: number;
  /** Keep the k largest logits (logits equal to the k-th are kept too). 0 or > maxTopK: maxTopK. Default 64. */
  topK?: number;
  /** Nucleus mass in (0, 1]; 1 = off. Default 0.95 (Gemma's generation config). */
  topP?: number;
}

export interface SampleDispatch extends Dispatch {
  setSampling(params: SamplingParams): void;
  setSeed(seed: number): void;
  /** The step counter mixed into the RNG with the seed and the row: set a new one per generated token. */
  setStep(step: number): void;
  /** Sample within the bound mask (SampleArgs.mask) or over every id below maxTokenId. */
  setMasked(masked: boolean): void;
}

/**
 * GPU sampling (see shaders/sample.wgsl): greedy, or temperature + top-k + top-p with a counter-based RNG
 * (deterministic for (seed, step, row)). Writes one u32 per row; read back only that.
 */
export class SampleKernel {
  /** Every buffer this kernel created for its dispatches (freed by destroy()). */
  private readonly arena: BufferArena;

  private constructor(
    private readonly ctx: GpuContext,
    /** Largest top-k this kernel's bindings can be asked for. */
    readonly maxTopK: number,
    private readonly pipelines: Record<'partial' | 'finish' | 'partial_greedy' | 'finish_greedy' | 'partial_masked' | 'partial_greedy_masked', GPUComputePipeline>,
  ) {
    this.arena = new BufferArena(ctx.device);
  }

  /**
   * `maxTopK` (<= 1024, default 1024) sizes the final pass's workgroup memory (a power of two >= 256): keep it
   * near the largest top-k the app offers.
   */
  static async create(ctx: GpuContext, opts: { maxTopK?: number } = {}): Promise<SampleKernel> {
    const maxTopK = opts.maxTopK ?? MAX_TOP_K;
    if (!(Number.isInteger(maxTopK) && maxTopK >= 1 && maxTopK <= MAX_TOP_K)) throw new Error(`sample: maxTopK must be 1..${MAX_TOP_K}`);
    let kmax = 256;
    while (kmax < maxTopK) kmax *= 2;
    const entries = ['partial', 'finish', 'partial_greedy', 'finish_greedy'] as const;
    const compiled = await Promise.all([
      ...entries.map((entryPoint) => getPipeline(ctx, { label: 'sample', source, libraries: [pcgHash], entryPoint, constants: entryPoint === 'finish' ? { KMAX: kmax } : undefined })),
      getPipeline(ctx, { label: 'sample/masked', source, libraries: [pcgHash], entryPoint: 'partial', constants: { MASKED: 1 } }),
      getPipeline(ctx, { label: 'sample/masked', source, libraries: [pcgHash], entryPoint: 'partial_greedy', constants: { MASKED: 1 } }),
    ]);
    const pipelines = Object.fromEntries([...entries, 'partial_masked', 'partial_greedy_masked'].map((e, i) => [e, compiled[i]])) as SampleKernel['pipelines'];
    return new SampleKernel(ctx, maxTopK, pipelines);
  }

  bind(args: SampleArgs): SampleDispatch {
    const { device } = this.ctx;
    const { batch, vocab } = args;
    const valid = Math.min(vocab, args.maxTokenId ?? vocab);
    if (!(batch >= 1 && vocab >= 1 && valid >= 1)) throw new Error(`sample: bad shape batch=${batch} vocab=${vocab} maxTokenId=${args.maxTokenId}`);
    if (batch > device.limits.maxComputeWorkgroupsPerDimension) throw new Error(`sample: batch ${batch} too large`);
    const maxTopK = Math.min(this.maxTopK, args.maxTopK ?? this.maxTopK);
    if (maxTopK < 1) throw new Error(`sample: bad maxTopK ${args.maxTopK}`);
    const logitsStride = args.logitsStride ?? vocab;
    if (logitsStride < vocab) throw new Error('sample: logitsStride < vocab');
    const nChunks = Math.ceil(valid / CHUNK);
    const chunkCap = Math.min(maxTopK, CHUNK);
    const params = this.arena.uniform(64, 'sample/params');
    const candKey = this.arena.storage(batch * nChunks * chunkCap * 4, 'sample/cand-key');
    const candIdx = this.arena.storage(batch * nChunks * chunkCap * 4, 'sample/cand-idx');
    const candCount = this.arena.storage(batch * nChunks * 4, 'sample/cand-count');
    if (args.mask && args.mask.size < Math.ceil(vocab / 32) * 4) throw new Error(`sample: mask holds ${args.mask.size} bytes, needs ${Math.ceil(vocab / 32) * 4}`);
    // The partial passes reference binding 6 in every variant (MASKED folds the read away): without a mask it gets a
    // 4-byte placeholder.
    const buffers = [params, args.logits, candKey, candIdx, candCount, args.out, args.mask ?? this.arena.storage(4, 'sample/no-mask')];
    const group = (pipeline: GPUComputePipeline, bindings: number[]) =>
      device.createBindGroup({
        label: 'sample',
        layout: pipeline.getBindGroupLayout(0),
        entries: bindings.map((binding) => ({ binding, resource: { buffer: buffers[binding] } })),
      });
    const pl = this.pipelines;
    const sampling = [pl.partial, group(pl.partial, [0, 1, 2, 3, 4, 6]), pl.finish, group(pl.finish, [0, 2, 3, 4, 5])] as const;
    const greedyPasses = [pl.partial_greedy, group(pl.partial_greedy, [0, 1, 2, 3, 4, 6]), pl.finish_greedy, group(pl.finish_greedy, [0, 2, 3, 4, 5])] as const;
    const maskedSampling = args.mask ? ([pl.partial_masked, group(pl.partial_masked, [0, 1, 2, 3, 4, 6]), sampling[2], sampling[3]] as const) : sampling;
    const maskedGreedy = args.mask ? ([pl.partial_greedy_masked, group(pl.partial_greedy_masked, [0, 1, 2, 3, 4, 6]), greedyPasses[2], greedyPasses[3]] as const) : greedyPasses;
    let passes: typeof sampling = sampling;
    let masked = false;

    let temperature = 1;
    let topK = 64;
    let topP = 0.95;
    let seed = 0;
    let step = 0;
    const data = new ArrayBuffer(64);
    const u32 = new Uint32Array(data);
    const f32 = new Float32Array(data);
    const write = () => {
      const greedy = temperature <= 0 || topK === 1;
      passes = masked ? (greedy ? maskedGreedy : maskedSampling) : greedy ? greedyPasses : sampling;
      u32.set([batch, vocab, valid, Math.min(topK <= 0 ? maxTopK : topK, maxTopK)]);
      f32[4] = topP;
      f32[5] = greedy ? 1 : 1 / temperature;
      u32.set([seed >>> 0, step >>> 0, nChunks, chunkCap, args.logitsOffset ?? 0, logitsStride], 6);
      device.queue.writeBuffer(params, 0, data);
    };
    write();
    return {
      label: 'sample',
      setSampling(s: SamplingParams) {
        temperature = s.temperature ?? 1;
        topK = s.topK ?? 64;
        topP = s.topP ?? 0.95;
        if (!(Number.isFinite(temperature) && Number.isInteger(topK) && topK >= 0 && topP > 0 && topP <= 1)) {
          throw new Error(`sample: bad sampling parameters ${JSON.stringify(s)}`);
        }
        write();
      },
      setSeed(s: number) {
        seed = s;
        write();
      },
      setStep(s: number) {
        step = s;
        write();
      },
      setMasked(on: boolean) {
        if (on && !args.mask) throw new Error('sample: setMasked(true) needs a mask buffer bound (SampleArgs.mask)');
        masked = on;
        write();
      },
      encode(pass: GPUComputePassEncoder) {
        const [partial, partialGroup, finish, finishGroup] = passes;
        pass.setPipeline(partial);
        pass.setBindGroup(0, partialGroup);
        pass.dispatchWorkgroups(nChunks, batch);
        pass.setPipeline(finish);
        pass.setBindGroup(0, finishGroup);
        pass.dispatchWorkgroups(batch);
      },
    };
  }

  /** Bytes of the GPU buffers this kernel created (a model's memory() counts them). */
  get gpuBytes(): number {
    return this.arena.bytes;
  }

  /** Frees the buffers this kernel created (its dispatches must not be encoded afterwards). */
  destroy(): void {
    this.arena.destroy();
  }
}
