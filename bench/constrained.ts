// Constrained decoding cost on the real 262k Gemma vocabulary: schema compile time, per-token mask time (async
// fast path and the synchronous path) over random-logit generations of the test schemas, and the GPU sampler
// with the mask (upload + sample) against the unmasked sample. Run: node --import ./scripts/register.mjs bench/constrained.ts
import { RandomTokenModel, gemmaConstraintCompiler, gemmaGrammarVocabulary } from '../test/runtime/constrained/random-driver.ts';
import { TEST_SCHEMAS } from '../test/runtime/constrained/schemas.ts';
import { responseFormatSpec } from '../src/runtime/constrained/grammar-constraint.ts';
import { Rng } from '../test/helpers/random.ts';
import { SampleKernel } from '../src/kernels/sample.ts';
import { submitDispatches } from '../src/gpu/pipeline.ts';
import { createNodeGpuContext } from '../src/node/gpu.ts';

const q = (a: number[], p: number) => [...a].sort((x, y) => x - y)[Math.min(a.length - 1, Math.floor(a.length * p))];
const vocab = await gemmaGrammarVocabulary();
const compiler = await gemmaConstraintCompiler();
const model = new RandomTokenModel(vocab);
console.log('| schema | compile ms | tokens | mask median ms | mask p95 ms | sync mask median ms |');
console.log('|---|---|---|---|---|---|');
for (const [name, schema] of Object.entries(TEST_SCHEMAS)) {
  const spec = responseFormatSpec({ type: 'json_schema', schema })!;
  const t0 = performance.now();
  await compiler.compile(spec);
  const compileMs = performance.now() - t0;
  const rng = new Rng(7);
  const fast: number[] = [];
  const sync: number[] = [];
  for (let g = 0; g < 10; g++) {
    const c = await compiler.constraint(spec);
    for (let n = 0; n < 120; n++) {
      let t = performance.now();
      await c.prepare();
      fast.push(performance.now() - t);
      if (c.isComplete()) break;
      const id = model.sample(c.nextMask(), rng);
      c.accept(id);
      if (g === 0) {
        // The same step through the synchronous path, on a constraint that replays the tokens so far.
        const d = await compiler.constraint(spec);
        for (const x of c.tokens.slice(0, -1)) { await d.prepare(); d.accept(x); }
        t = performance.now();
        d.nextMask();
        sync.push(performance.now() - t);
        d.dispose();
      }
    }
    c.dispose();
  }
  console.log(`| ${name} | ${compileMs.toFixed(0)} | ${fast.length} | ${q(fast, 0.5).toFixed(3)} | ${q(fast, 0.95).toFixed(3)} | ${q(sync, 0.5).toFixed(3)} |`);
}

const ctx = await createNodeGpuContext();
const V = 262400;
const kernel = await SampleKernel.create(ctx);
const rng = new Rng(1);
const logits = ctx.device.createBuffer({ size: V * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
ctx.device.queue.writeBuffer(logits, 0, rng.normals(V, 2));
const maskBuf = ctx.device.createBuffer({ size: Math.ceil(V / 32) * 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
const out = ctx.device.createBuffer({ size: 4, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC });
const read = ctx.device.createBuffer({ size: 4, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
const d = kernel.bind({ logits, out, batch: 1, vocab: V, maxTokenId: 262144, mask: maskBuf });
d.setSampling({ temperature: 1, topK: 64, topP: 0.95 });
const mask = new Uint32Array(Math.ceil(V / 32)).map(() => (rng.next() * 2 ** 32) >>> 0);
async function once(masked: boolean): Promise<number> {
  const t = performance.now();
  if (masked) ctx.device.queue.writeBuffer(maskBuf, 0, mask);
  d.setMasked(masked);
  submitDispatches(ctx.device, [d]);
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(out, 0, read, 0, 4);
  ctx.device.queue.submit([enc.finish()]);
  await read.mapAsync(GPUMapMode.READ);
  read.unmap();
  return performance.now() - t;
}
for (let i = 0; i < 3; i++) { await once(false); await once(true); }
const plain: number[] = [];
const masked: number[] = [];
for (let i = 0; i < 20; i++) { plain.push(await once(false)); masked.push(await once(true)); }
console.log(`\nGPU sample at V=262400 (${ctx.adapterName}), incl. readback: unmasked median ${q(plain, 0.5).toFixed(2)} ms, mask upload + masked sample median ${q(masked, 0.5).toFixed(2)} ms`);
