/**
 * What one decode token costs beyond the weights: dispatches, passes and submits per token (counted by wrapping
 * the device: bench/gpu-counters.ts), dispatches per decoder layer with each layer's kernel sequence, host
 * milliseconds per token split into encoding, submit and the wait for the id, and each kernel's share of GPU time
 * from timestamp queries (one pass per dispatch while profiling; said so when the adapter has no timestamps).
 * Host-neutral (Node's Dawn and the Chromium bench page run the same code); the model is any GPU decoder
 * (feedAndSample: the engine's fused decode step: feed one token and sample greedily on the GPU, read back the id).
 *
 * The step is measured at a fixed context: each phase rewinds to where it started.
 *
 * Host time per token, from the call of feedAndSample to the id in hand:
 *   encode  = until the step's queue.submit is entered (ids/PLE-row uploads, per-step uniforms, recording);
 *   submit  = inside queue.submit (the step's and the id readback's);
 *   wait    = from the last submit's return to the id (GPU execution + the 4-byte readback);
 *   readback (idle) = a 4-byte copy + mapAsync round trip on an idle queue, for scale.
 * These are measured with only the queue hooked (no per-dispatch wrapping), medians over the tokens.
 */
import type { GpuContext } from '../src/gpu/device.ts';
import { readU32 } from '../src/gpu/buffers.ts';
import { GpuCounter, type DispatchRecord, type GpuCounts } from './gpu-counters.ts';

/** The part of a GPU decoder this needs (GpuDecoderModel). */
export interface DecodableModel {
  readonly length: number;
  feedAndSample(ids: readonly number[], opts: { temperature: number; allowMultimodal: boolean }): Promise<number>;
  rewind(n: number): void;
}

export interface LayerGroup {
  /** Decoder layers (0-based) with this exact dispatch sequence. */
  layers: number[];
  dispatches: number;
  /** The sequence, run-length encoded: `kernel` repeated `count` times in a row. */
  sequence: Array<{ kernel: string; count: number }>;
  /** Dispatches per kernel in one such layer. */
  byKernel: Record<string, number>;
}

export interface KernelShare {
  kernel: string;
  dispatches: number;
  /** GPU ms per token (sum of this kernel's dispatches). */
  ms: number;
  /** % of the token's timed GPU time. */
  percent: number;
}

export interface DecodeProfile {
  context: number;
  /** Host-timed tokens. */
  tokens: number;
  perToken: GpuCounts;
  /** Dispatches per decoder layer (undefined when the layers could not be told apart). */
  layers?: { count: number; meanDispatches: number; before: number; after: number; groups: LayerGroup[] };
  hostMs: { encode: number; submit: number; wait: number; total: number; idleReadback: number };
  gpu: { timestamps: boolean; note: string; timedTokens: number; totalMs: number; byKernel: KernelShare[]; byFamily: KernelShare[] };
}

/** A dispatch's name in tables: `family/entry`, plus the weight format for matmuls (`matmul/gemv q4`). */
export function kernelName(r: DispatchRecord): string {
  const format = /^\w+\[(\w+)/.exec(r.detail)?.[1];
  return `${r.family}/${r.entry}${format ? ` ${format}` : ''}`;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)];

/**
 * Splits one step's dispatch sequence into decoder layers: a Gemma 3n layer starts with AltUp's predict (which
 * computes the layer's router logits itself, after the prologue's AltUp rescale for layer 0) and the last one ends
 * where the AltUp unembed GEMVs before the last rescale begin. Undefined when the sequence does not have that shape (another family).
 */
export function splitLayers(records: DispatchRecord[], layerCount: number): DecodeProfile['layers'] {
  const names = records.map(kernelName);
  // Gemma 3n's layer opens with AltUp's predict (it computes the router logits itself).
  const starts = names.flatMap((n, i) => (n === 'altup/predict' ? [i] : []));
  const start = starts[0];
  let epilogue = names.lastIndexOf('altup/rescale');
  while (epilogue > 0 && names[epilogue - 1].startsWith('matmul/')) epilogue--;
  if (starts.length !== layerCount || !(start > names.indexOf('altup/rescale')) || epilogue <= starts[starts.length - 1] + 2) return undefined;
  const ends = [...starts.slice(1), epilogue].map((next) => next - 1);
  const groups = new Map<string, LayerGroup>();
  let from = start;
  ends.forEach((end, layer) => {
    const seq = names.slice(from, end + 1);
    from = end + 1;
    // Grouped by structure: the weight formats may differ between layers (the Q4_K_M mix's more-bits layers).
    const key = seq.map((n) => n.split(' ')[0]).join(',');
    let g = groups.get(key);
    if (!g) {
      const sequence: LayerGroup['sequence'] = [];
      for (const k of seq) {
        if (sequence.length && sequence[sequence.length - 1].kernel === k) sequence[sequence.length - 1].count++;
        else sequence.push({ kernel: k, count: 1 });
      }
      const byKernel: Record<string, number> = {};
      for (const k of seq) byKernel[k] = (byKernel[k] ?? 0) + 1;
      groups.set(key, (g = { layers: [], dispatches: seq.length, sequence, byKernel }));
    }
    g.layers.push(layer);
  });
  const inLayers = ends[ends.length - 1] + 1 - start;
  return { count: layerCount, meanDispatches: inLayers / layerCount, before: start, after: names.length - ends[ends.length - 1] - 1, groups: [...groups.values()] };
}

function shares(records: DispatchRecord[], ns: number[], tokens: number, key: (r: DispatchRecord) => string): KernelShare[] {
  const total = ns.reduce((s, x) => s + x, 0);
  const m = new Map<string, { dispatches: number; ns: number }>();
  ns.forEach((t, i) => {
    const k = key(records[i]);
    const e = m.get(k) ?? { dispatches: 0, ns: 0 };
    e.dispatches++;
    e.ns += t;
    m.set(k, e);
  });
  return [...m.entries()]
    .map(([kernel, e]) => ({ kernel, dispatches: e.dispatches / tokens, ms: e.ns / 1e6 / tokens, percent: (100 * e.ns) / total }))
    .sort((a, b) => b.ms - a.ms);
}

export interface ProfileOptions {
  /** The token to feed first (e.g. the one sampled after the prompt). */
  first: number;
  /** Decoder layers of the model (for the per-layer split). */
  layers: number;
  /** Host-timed tokens (default 8). */
  tokens?: number;
  /** Tokens profiled with timestamps (default 2). */
  timedTokens?: number;
}

/** Profiles decode steps of `model` at its current length (restored after each phase). */
export async function profileDecode(ctx: GpuContext, model: DecodableModel, o: ProfileOptions): Promise<DecodeProfile> {
  const greedy = { temperature: 0, allowMultimodal: true };
  const context = model.length;
  const tokens = o.tokens ?? 8;
  const timedTokens = o.timedTokens ?? 2;
  const { device } = ctx;
  const run = async (n: number, each?: () => Promise<void> | void, after?: () => Promise<void> | void) => {
    let next = o.first;
    for (let i = 0; i < n; i++) {
      await each?.();
      next = await model.feedAndSample([next], greedy);
      await after?.();
    }
    model.rewind(context);
  };
  await run(2); // warm-up

  // Counts and the dispatch sequence: one token, then `tokens` more to check the count per token is steady.
  let counter = GpuCounter.install(device, ctx.timestamps);
  let records: DispatchRecord[];
  let perToken: GpuCounts;
  try {
    await run(1);
    records = counter.records;
    const one = counter.counts;
    counter.reset();
    counter.record = false;
    await run(tokens);
    perToken = Object.fromEntries(Object.entries(counter.counts).map(([k, v]) => [k, v / tokens])) as unknown as GpuCounts;
    if (perToken.dispatches !== one.dispatches) throw new Error(`decode profile: ${one.dispatches} dispatches for one token but ${perToken.dispatches} per token over ${tokens}`);
  } finally {
    counter.uninstall();
  }

  // Host times: only the queue hooked.
  counter = GpuCounter.install(device, false, { encoders: false });
  const encode: number[] = [], submit: number[] = [], wait: number[] = [], total: number[] = [];
  try {
    let t0 = 0;
    await run(
      tokens,
      async () => {
        await device.queue.onSubmittedWorkDone();
        counter.reset();
        t0 = performance.now();
      },
      () => {
        const t = performance.now();
        encode.push(counter.firstSubmitAt - t0);
        submit.push(counter.submitMs);
        wait.push(t - counter.lastSubmitEnd);
        total.push(t - t0);
      },
    );
  } finally {
    counter.uninstall();
  }
  const probe = device.createBuffer({ label: 'readback-probe', size: 16, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
  const idle: number[] = [];
  for (let i = 0; i < tokens; i++) {
    await device.queue.onSubmittedWorkDone();
    const t = performance.now();
    await readU32(device, probe, 1);
    idle.push(performance.now() - t);
  }
  probe.destroy();

  // GPU time per kernel: timestamps around every dispatch.
  let gpu: DecodeProfile['gpu'] = { timestamps: false, note: 'the adapter offers no timestamp-query: no per-kernel GPU times', timedTokens: 0, totalMs: 0, byKernel: [], byFamily: [] };
  if (ctx.timestamps) {
    counter = GpuCounter.install(device, true);
    const recs: DispatchRecord[] = [];
    const ns: number[] = [];
    try {
      counter.profile = true;
      await run(
        timedTokens,
        () => counter.reset(),
        async () => {
          const t = await counter.readTimestamps();
          if (counter.untimed > 0) throw new Error(`decode profile: ${counter.untimed} dispatches did not fit the timestamp query set`);
          recs.push(...counter.records.slice(0, t.length));
          ns.push(...t);
        },
      );
    } finally {
      counter.uninstall();
    }
    const totalNs = ns.reduce((s, x) => s + x, 0);
    gpu = {
      timestamps: true,
      note: 'timestamp-query: one compute pass per dispatch while profiling, GPU ns from each pass\'s start to its end',
      timedTokens,
      totalMs: totalNs / 1e6 / timedTokens,
      byKernel: shares(recs, ns, timedTokens, kernelName),
      byFamily: shares(recs, ns, timedTokens, (r) => r.family),
    };
  }

  return {
    context,
    tokens,
    perToken,
    layers: splitLayers(records, o.layers),
    hostMs: { encode: median(encode), submit: median(submit), wait: median(wait), total: median(total), idleReadback: median(idle) },
    gpu,
  };
}

/** The profile as Markdown tables (bench output). */
export function formatDecodeProfile(p: DecodeProfile, where: string): string {
  const f = (x: number, d = 2) => x.toFixed(d);
  const c = p.perToken;
  const lines = [
    `Decode step (${where}) at context ${p.context}: per token ${c.dispatches} dispatches in ${c.passes} compute passes, ${c.submits} submits (${c.commandBuffers} command buffers, ${c.encoders} encoders), ${c.writeBuffers} queue writes (${c.writeBufferBytes} bytes), ${c.copies} buffer copies`,
  ];
  if (p.layers) {
    const l = p.layers;
    lines.push(
      `dispatches per layer: ${f(l.meanDispatches, 1)} mean over ${l.count} layers (${l.groups.map((g) => `${g.dispatches} in layers ${g.layers.join(',')}`).join('; ')}); ${l.before} before the layers, ${l.after} after (unembed, head, sampler)`,
      '',
      '| layer kind | dispatch sequence (kernel ×count) |',
      '|---|---|',
      ...l.groups.map((g) => `| ${g.dispatches} dispatches (layers ${g.layers.length > 6 ? `${g.layers.slice(0, 3).join(',')}…${g.layers[g.layers.length - 1]}` : g.layers.join(',')}) | ${g.sequence.map((s) => (s.count > 1 ? `${s.kernel} ×${s.count}` : s.kernel)).join(' → ')} |`),
    );
  }
  const h = p.hostMs;
  lines.push(
    '',
    `| host ms/token (median of ${p.tokens}) | encode | submit | wait (GPU + id readback) | total | idle 4-byte readback |`,
    '|---|---|---|---|---|---|',
    `| ${where} | ${f(h.encode)} | ${f(h.submit)} | ${f(h.wait)} | ${f(h.total)} | ${f(h.idleReadback)} |`,
  );
  if (p.gpu.timestamps) {
    lines.push(
      '',
      `GPU time per token (timestamps, ${p.gpu.timedTokens} tokens, one pass per dispatch): ${f(p.gpu.totalMs)} ms`,
      '',
      '| kernel | dispatches/token | GPU ms/token | share |',
      '|---|---|---|---|',
      ...p.gpu.byKernel.map((k) => `| ${k.kernel} | ${f(k.dispatches, 0)} | ${f(k.ms, 3)} | ${f(k.percent, 1)} % |`),
      '',
      '| kernel family | share |',
      '|---|---|',
      ...p.gpu.byFamily.map((k) => `| ${k.kernel} | ${f(k.percent, 1)} % |`),
    );
  } else {
    lines.push('', `GPU time per kernel: ${p.gpu.note}`);
  }
  return lines.join('\n');
}
