/**
 * The CLI behind bin/gemma3n-webgpu.mjs: it runs the same engine the browser worker runs (src/runtime/engine.ts), on
 * Dawn, with the same defaults (weights 'q4'). USAGE below is its one description (`--help`). Errors: message on
 * stderr, exit 1.
 */
import { GemmaError } from '../errors.ts';
import { Engine } from '../runtime/engine.ts';
import { loadFromSource } from '../runtime/loading/model-factory.ts';
import { nodeModelSource } from './model-source.ts';
import { createNodeGpuContext } from './gpu.ts';
import type { ModelSize, WeightMode } from '../model/family.ts';

const USAGE = `usage:
  gemma3n-webgpu logits   --model SRC --tokens 2,105,2364 [--weights q4|q8|float] [SIZE]
  gemma3n-webgpu generate --model SRC --tokens 2,105 --max-new-tokens 12 [--weights q4|q8|float] [SIZE]
  gemma3n-webgpu convert  --model SRC --out DIR [--weights q4|q8] [--shard-mib 64] [--tokenizer none|URL]
SRC: a checkpoint directory, a .gguf file, an http(s) URL of either, a Hugging Face repo id, random:tiny[:SEED], or a
folder \`convert\` wrote (loaded as it is: no conversion). --weights: q4 (default, as in the browser), q8 or float; a
converted folder loads in the mode it holds. generate is greedy and stops at the model's end-of-turn ids.
convert writes the GPU-ready weights (the browser's offline-cache format: manifest.json with checksums, config.json,
the tokenizer files when SRC has them, weights-NNNNN.bin shards of 64 MiB) into DIR; host DIR on any static server and
pass its URL to loadGemma({ model }). Prints {"out":DIR,"weights":...,"bytes":N,"files":[...]}.
  gemma3n-webgpu audio-features --wave FILE.f32 --sample-rate HZ [--out FILE.f32]
  gemma3n-webgpu embed-audio --model SRC (--wave FILE.f32 --sample-rate HZ | --features FILE.f32 [--mask FILE.u8])
                             [--weights q8|q4|f32] [--out FILE.f32]
audio-features: raw float32 mono samples -> resampled to 16 kHz when HZ differs -> Gemma 3n log-mel features
[frames, 128] float32; prints {"frames":N,...}. embed-audio: the audio tower and embed_audio (weights q8 by default);
writes the soft tokens [n, D] float32, prints {"shape":[n,D],"valid":[...],...}; --mask: one byte per frame, 0 = padded;
random:PRESET draws the tower's weights at that preset's audio config.
SIZE (logits, generate; MatFormer, a sub-model cut from SRC): --size NAME (a published E4B configuration: E2B,
  E2.54B, …) or --skip-layers a,b and/or --ffn-widths w1,w2,… (one width per kept layer).
  gemma3n-webgpu embed-image --model DIR --image FILE(.png|.jpg|.rgb8) [--size WxH] [--out FILE.f32] [--features FILE.f32]
                             [--weights bf16|f16|f32]
embed-image: the library's Pillow-exact preprocessing, the vision tower and embed_vision; writes the soft tokens
[256, D] float32 (--features: the tower's output [2048, 16, 16] as HF lays it out), prints {"shape":[256,D],...}.`;

function parseArgs(argv: string[]): { command: string; flags: Map<string, string> } {
  const [command, ...rest] = argv;
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i++) {
    const a = rest[i];
    if (!a.startsWith('--')) throw new GemmaError('invalid-argument', `unexpected argument ${a}\n${USAGE}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else {
      const v = rest[i + 1];
      if (v === undefined || v.startsWith('--')) throw new GemmaError('invalid-argument', `${a} needs a value\n${USAGE}`);
      flags.set(a.slice(2), v);
      i++;
    }
  }
  if (!command || !['logits', 'generate', 'convert'].includes(command)) throw new GemmaError('invalid-argument', `unknown command ${command ?? '(none)'}\n${USAGE}`);
  return { command, flags };
}

function parseTokens(s: string | undefined): number[] {
  if (!s) throw new GemmaError('invalid-argument', `--tokens is required\n${USAGE}`);
  const ids = s.split(',').map((x) => Number(x.trim()));
  if (ids.length === 0 || ids.some((x) => !Number.isInteger(x) || x < 0)) throw new GemmaError('invalid-argument', `--tokens ${s}: expected comma-separated non-negative integers`);
  return ids;
}

/** --size, or --skip-layers / --ffn-widths (LoadRequest.size). */
function parseSize(flags: Map<string, string>): ModelSize | undefined {
  const list = (key: string) => {
    const v = flags.get(key);
    if (v === undefined) return undefined;
    const xs = v.split(',').map((x) => Number(x.trim()));
    if (xs.some((x) => !Number.isInteger(x) || x < 0)) throw new GemmaError('invalid-argument', `--${key} ${v}: expected comma-separated non-negative integers`);
    return xs;
  };
  const name = flags.get('size');
  const skipLayers = list('skip-layers');
  const ffnWidths = list('ffn-widths');
  if (name !== undefined && (skipLayers || ffnWidths)) throw new GemmaError('invalid-argument', '--size names a configuration: give it alone, or --skip-layers / --ffn-widths instead');
  if (name !== undefined) return name;
  return skipLayers || ffnWidths ? { ...(skipLayers ? { skipLayers } : {}), ...(ffnWidths ? { ffnWidths } : {}) } : undefined;
}

async function run(argv: string[]): Promise<unknown> {
  // The audio and vision commands live in cli-audio.ts / cli-vision.ts, loaded only when used.
  if (argv[0] === 'embed-image') return (await import('./cli-vision.ts')).runEmbedImage(argv.slice(1));
  if (argv[0] === 'audio-features' || argv[0] === 'embed-audio') return (await import('./cli-audio.ts')).runAudioCommand(argv);
  const { command, flags } = parseArgs(argv);
  const modelPath = flags.get('model');
  if (!modelPath) throw new GemmaError('invalid-argument', `--model is required\n${USAGE}`);
  if (command === 'convert') return (await import('./cli-convert.ts')).runConvert(modelPath, flags, USAGE);
  // Absent: q4, or the mode a converted folder holds.
  const weights = flags.get('weights') as WeightMode | undefined;
  if (weights !== undefined && weights !== 'float' && weights !== 'q4' && weights !== 'q8') throw new GemmaError('invalid-argument', `--weights ${weights}: expected q4, q8 or float`);
  const tokens = parseTokens(flags.get('tokens'));
  const size = parseSize(flags);
  const maxNew = command === 'generate' ? Number(flags.get('max-new-tokens') ?? 16) : 0;
  if (!Number.isInteger(maxNew) || maxNew < 0) throw new GemmaError('invalid-argument', `--max-new-tokens ${flags.get('max-new-tokens')}: expected a non-negative integer`);

  const source = await nodeModelSource(modelPath, flags.get('token'));
  const gpu = await createNodeGpuContext();
  const loaded = await loadFromSource(gpu, source, { kind: 'none' }, { weights, contextLength: Math.max(16, tokens.length + maxNew + 1), cache: false, size });
  const engine = new Engine({ model: loaded.model, stopTokenIds: loaded.stopTokenIds });
  try {
    if (command === 'logits') return { logits: (await engine.logits(tokens)).map((row) => Array.from(row)) };
    if (maxNew === 0) return { tokens: [] };
    const out: number[] = [];
    const stream = engine.generate(tokens, { temperature: 0, maxNewTokens: maxNew });
    for await (const d of stream) out.push(...d.tokenIds);
    await stream.stats;
    return { tokens: out };
  } finally {
    engine.dispose();
  }
}

export async function main(argv: string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE + '\n');
    return;
  }
  let code = 0;
  try {
    const result = await run(argv);
    await new Promise<void>((resolve) => process.stdout.write(JSON.stringify(result) + '\n', () => resolve()));
  } catch (err) {
    const msg = err instanceof GemmaError ? `error (${err.code}): ${err.message}` : `error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`;
    process.stderr.write(msg + '\n');
    code = 1;
  }
  // Dawn keeps handles open; exit explicitly once output is flushed.
  process.exit(code);
}
