/**
 * What a text load of Gemma 3n E2B / E4B downloads, per form of the weights, counted exactly from the real configs'
 * tensor shapes (the e2b / e4b presets, docs/gemma3n-formats.md §1.5) — the README's "Small downloads" table:
 *   - bf16 safetensors (the published checkpoint): the loader reads only the tensors it uses, by range, so this is
 *     those tensors at 2 bytes each (the repo itself is bigger: the audio and vision towers, ≈ 10.9 / 15.7 GB);
 *   - GGUF Q4_K_M: the same tensors in the types of llama.cpp's Q4_K_M mix (bench/gguf-mix.ts, §3.4: token embedding
 *     and PLE table Q6_K, attn_v / ffn_down Q6_K in the "more bits" layers, other matrices Q4_K, altup / laurel /
 *     per_layer_model_proj kept 16-bit, vectors F32), the text-only file the loader reads (the public files are
 *     text-only);
 *   - converted q4 / q8 (`gemma3n-webgpu convert`): the weight shards' bytes exactly as src/runtime/loading/
 *     converted-cache.ts writes them (the family's plan per tensor, src/formats/weight-format.ts layouts, f16 scales).
 * config.json, the manifest and the tokenizer files (tokenizer.json ≈ 33 MB, the same in every form; a GGUF carries its
 * own vocabulary) come on top. test/runtime/convert.test.ts checks `convertedWeightBytes` against a real conversion.
 * Usage: node --import ./scripts/register.mjs bench/download-bytes.ts   (npm run bench:download)
 */
import { parseGemma3nConfig, type Gemma3nConfig } from '../src/model/gemma3n/config.ts';
import { formatForStored } from '../src/model/gemma3n/quant-plan.ts';
import { gemma3nTensorTable, PLE_TABLE } from '../src/model/gemma3n/tensors.ts';
import { createRandomCheckpoint } from '../src/model/gemma3n/random-checkpoint.ts';
import { tableSpecs } from '../src/model/tensor-table.ts';
import { dataBytes, isQuantFormat, scaleHalvesPerRow, type WeightFormat } from '../src/formats/weight-format.ts';
import { ggufBytes, q4KMType } from './gguf-mix.ts';

/** A tensor a text load reads: its name and shape ([rows, cols] for matrices, [n] for vectors). */
interface ReadTensor {
  name: string;
  shape: number[];
  matrix: boolean;
}

/** Every tensor a text load of `cfg` reads (the family's table, the PLE table, the multimodal embedders' rows). */
export function readTensors(cfg: Gemma3nConfig, options: { embedders?: boolean } = {}): ReadTensor[] {
  const c = cfg.text;
  const out: ReadTensor[] = tableSpecs(gemma3nTensorTable(c)).map((s) =>
    s.kind === 'matrix' ? { name: s.name, shape: [...s.shape], matrix: true } : { name: s.name, shape: [s.length], matrix: false },
  );
  out.push({ name: PLE_TABLE, shape: [c.vocabSizePerLayerInput, c.numLayers * c.pleDim], matrix: true });
  if (options.embedders ?? true) {
    for (const [prefix, range] of [['model.embed_vision.', cfg.vision], ['model.embed_audio.', cfg.audio]] as const) {
      if (!range) continue;
      // Read as f32 vectors (hard-token rows are computed from them at load).
      out.push({ name: prefix + 'embedding.weight', shape: [range.vocabSize, range.hiddenSize], matrix: false });
      out.push({ name: prefix + 'hard_embedding_norm.weight', shape: [range.hiddenSize], matrix: false });
      out.push({ name: prefix + 'embedding_projection.weight', shape: [c.hiddenSize, range.hiddenSize], matrix: false });
    }
  }
  return out;
}

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

/** Bytes of the converted form's weight shards (what ConvertedCacheWriter writes) in mode q4 or q8. */
export function convertedWeightBytes(cfg: Gemma3nConfig, mode: 'q4' | 'q8', options: { embedders?: boolean } = {}): number {
  let bytes = 0;
  for (const t of readTensors(cfg, options)) {
    if (!t.matrix) {
      bytes += count(t.shape) * 4;
      continue;
    }
    const [rows, cols] = t.shape;
    const f: WeightFormat = formatForStored(t.name, 'BF16', mode, false, { shape: t.shape, layers: cfg.text.numLayers });
    bytes += dataBytes(f, rows, cols) + (isQuantFormat(f) ? rows * scaleHalvesPerRow(f, cols) * 2 : 0);
  }
  return bytes;
}

/** Bytes of the same tensors in bf16 (a safetensors load reads exactly these ranges). */
export function bf16Bytes(cfg: Gemma3nConfig): number {
  return readTensors(cfg).reduce((s, t) => s + count(t.shape) * 2, 0);
}

/** Bytes of the text-only Q4_K_M GGUF's tensors (the public GGUFs hold no embedders: `embedders` false). */
export function q4kmBytes(cfg: Gemma3nConfig): number {
  let bytes = 0;
  for (const t of readTensors(cfg, { embedders: false })) bytes += ggufBytes(q4KMType(t.name, t.shape, cfg.text.numLayers), count(t.shape));
  return bytes;
}

if (process.argv[1]?.endsWith('download-bytes.ts')) {
  const GB = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  const rows = (['e2b', 'e4b'] as const).map((preset) => {
    const cfg = parseGemma3nConfig(createRandomCheckpoint({ preset }).config);
    return { model: preset.toUpperCase(), bf16: bf16Bytes(cfg), q4km: q4kmBytes(cfg), q4: convertedWeightBytes(cfg, 'q4'), q8: convertedWeightBytes(cfg, 'q8') };
  });
  console.log('Download bytes of a text load (weights only; 1 GB = 10^9 B), counted from the real configs\' tensor shapes:');
  console.log('| model | bf16 safetensors | GGUF Q4_K_M | converted q4 | converted q8 |');
  console.log('|---|---:|---:|---:|---:|');
  for (const r of rows) console.log(`| ${r.model} | ${GB(r.bf16)} | ${GB(r.q4km)} | ${GB(r.q4)} | ${GB(r.q8)} |`);
  console.log('\nexact bytes:', JSON.stringify(rows));
}
