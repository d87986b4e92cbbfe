/**
 * A real-size Gemma 3n load's host side, per model and form: the requests, the largest single allocation and the
 * peak JS memory, with E2B's / E4B's real shapes served by the hub emulator (test/helpers/hub-emulator.ts, in a child
 * process so its buffers are not counted; file contents are constant bytes, computed on demand) and the loader's own
 * code: the source opened and pinned (open-source.ts), the read plan announced (weights.ts `readOrder`), every matrix
 * read by row chunks exactly as kernels/upload-weight.ts weightFromCheckpoint reads it (packed rows, or float rows / dequantized rows), the
 * vectors, and the PLE table loaded for real (ple-table.ts: conversion into host blocks). Only the GPU upload is
 * left out (this machine has no GPU; the e2e test test/e2e/real-size.test.ts does the whole load in Chromium for two
 * real-size forms).
 *
 * Memory: every typed array / ArrayBuffer the process allocates is counted (a Proxy on the constructors; views onto
 * an existing buffer are not allocations), and process.memoryUsage() is sampled every 50 ms: heapUsed (JS objects)
 * and arrayBuffers (typed-array contents), both above a baseline taken after a full GC. The PLE table stays allocated
 * (the model keeps it), so the peak includes it.
 *
 * Usage: node --expose-gc --import ./scripts/register.mjs bench/load-memory.ts [--model e2b|e4b|e2b,e4b] [--form NAME,...]
 * Forms: st-q4, st-float (bf16 safetensors, one file with tower stand-ins), gguf-q4_0, gguf-q8_0, gguf-q4_k_m, gguf-q6_k,
 * gguf-bf16 (q4 mode).
 */
const MiB = 2 ** 20;
let largest = 0;
for (const name of ['ArrayBuffer', 'Uint8Array', 'Int8Array', 'Uint16Array', 'Int16Array', 'Uint32Array', 'Int32Array', 'Float32Array', 'Float64Array'] as const) {
  const C = (globalThis as Record<string, unknown>)[name] as new (...a: unknown[]) => ArrayBufferView | ArrayBuffer;
  (globalThis as Record<string, unknown>)[name] = new Proxy(C, {
    construct(target, args, newTarget) {
      const made = Reflect.construct(target, args, newTarget === (globalThis as Record<string, unknown>)[name] ? target : newTarget) as ArrayBufferView;
      if (!(args[0] instanceof ArrayBuffer)) largest = Math.max(largest, made.byteLength);
      return made;
    },
  });
}

const { fork } = await import('node:child_process');
const { fileURLToPath } = await import('node:url');
const { openSource } = await import('../src/runtime/loading/open-source.ts');
const { parseModelSource } = await import('../src/runtime/loading/model-source.ts');
const { parseGemma3nConfig } = await import('../src/model/gemma3n/config.ts');
const { gemma3nTensorTable, PLE_TABLE } = await import('../src/model/gemma3n/tensors.ts');
const { tableSpecs } = await import('../src/model/tensor-table.ts');
const { readOrder } = await import('../src/model/gemma3n/weights.ts');
const { formatForStored } = await import('../src/model/gemma3n/quant-plan.ts');
const { PleTable, pleHostFormat } = await import('../src/model/ple-table.ts');
const { readF32, isFloatDtype } = await import('../src/io/checkpoint.ts');
const { dataBytes, isQuantFormat } = await import('../src/formats/weight-format.ts');

const arg = (k: string, d: string) => {
  const i = process.argv.indexOf(`--${k}`);
  return i > 0 ? process.argv[i + 1] : d;
};

if (process.argv.includes('--serve')) {
  // Child: serve one model/form, print the hub URL, log request counts on demand.
  const { startHubEmulator } = await import('../test/helpers/hub-emulator.ts');
  const syn = await import('../test/helpers/synthetic-gemma3n.ts');
  const { GGML_TYPE } = await import('../src/io/gguf-types.ts');
  const constant = () => false;
  const shape = arg('model', 'e2b') === 'e4b' ? syn.E4B : syn.E2B;
  const form = arg('form', 'gguf-q4_0');
  const hub = await startHubEmulator();
  const commit = 'b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7b0a7';
  const T = GGML_TYPE;
  const mixes: Record<string, [number, number, number]> = {
    'gguf-q4_0': [T.Q6_K, T.Q4_0, T.Q4_0],
    'gguf-q8_0': [T.Q8_0, T.Q8_0, T.Q8_0],
    'gguf-q4_k_m': [T.Q6_K, T.Q6_K, T.Q4_K],
    'gguf-q6_k': [T.Q6_K, T.Q6_K, T.Q6_K],
    'gguf-bf16': [T.BF16, T.BF16, T.BF16],
  };
  if (form.startsWith('st-')) {
    // Tower stand-ins (never read): E2B's safetensors are 10.9 GB, the text decoder about 9.9 of it.
    const towers = [{ name: 'model.audio_tower.stand_in', params: 350_000_000 }, { name: 'model.vision_tower.stand_in', params: 150_000_000 }];
    hub.repos.set('bench/model', { refs: { main: commit }, files: new Map<string, Uint8Array | ReturnType<typeof syn.syntheticGemma3nSafetensors>>([['config.json', new TextEncoder().encode(JSON.stringify(syn.syntheticConfig(shape)))], ['model.safetensors', syn.syntheticGemma3nSafetensors(shape, towers, constant)]]) });
  } else {
    const [tokenEmbd, ple, matrices] = mixes[form];
    hub.repos.set('bench/model', { refs: { main: commit }, files: new Map([['model.gguf', syn.syntheticGemma3nGguf(shape, { tokenEmbd, ple, matrices }, constant)]]) });
  }
  process.on('message', (m) => {
    if (m === 'count') {
      const gets = hub.log.filter((r) => r.method !== 'OPTIONS');
      const file = [...hub.repos.get('bench/model')!.files.values()].reduce((s, f) => s + (f instanceof Uint8Array ? f.length : (f as { size: number }).size), 0);
      process.send!({ hub: gets.filter((r) => r.origin === 'hub').length, cdn: gets.filter((r) => r.origin === 'cdn').length, fileBytes: file });
    }
  });
  process.send!({ url: `${hub.hubUrl}/bench/model/resolve/main/${form.startsWith('st-') ? '' : 'model.gguf'}` });
} else {
  const models = arg('model', 'e2b,e4b').split(',');
  const forms = arg('form', 'st-q4,st-float,gguf-q4_0,gguf-q8_0,gguf-q4_k_m,gguf-q6_k,gguf-bf16').split(',');
  console.log('| model | form | file | downloaded | hub requests | largest allocation | peak heapUsed | peak arrayBuffers | PLE host table | time |');
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const model of models) for (const form of forms) await run(model, form);
  process.exit(0);
}

async function run(model: string, form: string): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve', '--model', model, '--form', form], { execArgv: ['--import', './scripts/register.mjs'] });
  try {
    await measure(child, model, form);
  } finally {
    child.kill();
  }
}

async function measure(child: import('node:child_process').ChildProcess, model: string, form: string): Promise<void> {
  const next = () => new Promise<Record<string, number | string>>((resolve) => child.once('message', (m) => resolve(m as Record<string, number | string>)));
  const { url } = (await next()) as { url: string };
  const weights = form === 'st-float' ? 'float' : 'q4';
  // The previous run's table must be gone from the baseline (run with --expose-gc).
  if (!global.gc) throw new Error('run with node --expose-gc (see the usage line)');
  global.gc();
  global.gc();
  const base = process.memoryUsage();
  let peakHeap = base.heapUsed, peakBuffers = base.arrayBuffers;
  const sample = () => {
    const m = process.memoryUsage();
    peakHeap = Math.max(peakHeap, m.heapUsed);
    peakBuffers = Math.max(peakBuffers, m.arrayBuffers);
  };
  const timer = setInterval(sample, 50);
  largest = 0;
  let downloaded = 0;
  const t0 = performance.now();
  const opened = await openSource(parseModelSource({ model: url }), { kind: 'none' }, { onProgress: (p) => p.phase === 'download' && (downloaded = p.total) });
  const ckpt = opened.checkpoint;
  const c = parseGemma3nConfig(ckpt.config).text;
  ckpt.willRead!(readOrder(c));
  for (const spec of tableSpecs(gemma3nTensorTable(c))) {
    if (spec.kind === 'vector') {
      await readF32(ckpt, spec.name);
      continue;
    }
    // As kernels/upload-weight.ts weightFromCheckpoint reads: packed rows in 32 MiB chunks, else float rows in the upload's 32 MiB chunks.
    const [rows, cols] = spec.shape;
    const dtype = ckpt.tensor(spec.name)!.dtype;
    const format = formatForStored(spec.name, dtype, weights, false, { shape: spec.shape, layers: c.numLayers });
    let done = false;
    if (isQuantFormat(format)) {
      const chunk = Math.max(2, Math.floor((32 * MiB) / dataBytes(format, 1, cols)) & ~1);
      if (ckpt.readPackedAs && (await ckpt.readPackedAs(spec.name, format, { start: 0, count: Math.min(rows, chunk) }))) {
        for (let r = chunk; r < rows; r += chunk) await ckpt.readPackedAs!(spec.name, format, { start: r, count: Math.min(chunk, rows - r) });
        done = true;
      }
    }
    if (!done) {
      const elem = isFloatDtype(dtype) ? (dtype === 'F32' ? 4 : 2) : 4;
      const chunk = Math.max(2, Math.floor((32 * MiB) / (cols * elem)) & ~1);
      for (let r = 0; r < rows; r += chunk) await ckpt.read(spec.name, { start: r, count: Math.min(chunk, rows - r) });
    }
    sample();
  }
  const pleFormat = pleHostFormat(ckpt.tensor(PLE_TABLE)!.dtype, weights);
  const table = await PleTable.load(ckpt, PLE_TABLE, c.vocabSizePerLayerInput, c.numLayers * c.pleDim, pleFormat, 1, { onRows: sample });
  opened.finishDownload();
  clearInterval(timer);
  sample();
  const seconds = (performance.now() - t0) / 1000;
  child.send('count');
  const counts = await next();
  const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  console.log(
    `| ${model.toUpperCase()} | ${form} | ${gb(counts.fileBytes as number)} | ${gb(downloaded)} | ${counts.hub} (+${counts.cdn} CDN) | ${(largest / MiB).toFixed(1)} MiB | ` +
      `${((peakHeap - base.heapUsed) / MiB).toFixed(0)} MiB | ${gb(peakBuffers - base.arrayBuffers)} | ${pleFormat} ${gb(table.bytes)} | ${seconds.toFixed(0)} s |`,
  );
}
