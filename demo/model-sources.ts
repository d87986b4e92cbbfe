/**
 * The model choices of the demo and the `loadGemma()` request each one becomes. The worker's model factory
 * (src/runtime/gemma3n-factory.ts) interprets `model`: a folder URL (string), a `.gguf` URL (string),
 * `{ hub, token }` for a Hugging Face repo (Gemma 3n or Gemma 4: the registry picks the family from config.json), `{ files }` for picked files, `{ randomCheckpoint }` for the built-in
 * random-weight model (src/model/gemma3n/random-checkpoint.ts).
 */
import type { LoadRequest } from '../src/index.ts';
import type { ModelSpec } from '../src/index.ts';

export type SourceKind = 'tiny' | 'e2b' | 'e4b' | 'gemma4-e2b' | 'gemma4-e4b' | 'gguf' | 'url' | 'files';

export interface SourceForm {
  kind: SourceKind;
  url: string;
  token: string;
  files: File[];
  /** E4B only: a MatFormer size ('E2B', …; demo/model-sizes.ts), '' = whole. */
  size: string;
}

export interface SourceDescription {
  /** One line under the select. */
  help: string;
  needsUrl: boolean;
  needsToken: boolean;
  needsFiles: boolean;
}

export const SOURCES: Record<SourceKind, SourceDescription> = {
  tiny: {
    help: 'A 4-layer Gemma 3n with random weights and the real tokenizer: no download, works offline, writes gibberish.',
    needsUrl: false,
    needsToken: false,
    needsFiles: false,
  },
  e2b: {
    help: 'google/gemma-3n-E2B-it (≈ 11 GB of bf16 safetensors), quantized to int4 on your GPU while downloading, then cached for offline use. Accept the license on huggingface.co first.',
    needsUrl: false,
    needsToken: true,
    needsFiles: false,
  },
  e4b: {
    help: 'google/gemma-3n-E4B-it (≈ 16 GB download): like E2B, larger and better; needs about 3 GB of GPU memory whole. Pick a smaller size below to load less of it (MatFormer).',
    needsUrl: false,
    needsToken: true,
    needsFiles: false,
  },
  'gemma4-e2b': {
    help: 'google/gemma-4-E2B-it (bf16 safetensors; the text decoder is read, vision and audio are skipped), quantized to int4/int8 on your GPU while downloading, then cached. Needs about 1.8 GB of GPU memory and 1.3 GB of host memory.',
    needsUrl: false,
    needsToken: true,
    needsFiles: false,
  },
  'gemma4-e4b': {
    help: 'google/gemma-4-E4B-it: like Gemma 4 E2B, larger and better; needs about 3.6 GB of GPU memory and 1.6 GB of host memory.',
    needsUrl: false,
    needsToken: true,
    needsFiles: false,
  },
  gguf: {
    help: 'A llama.cpp Gemma 3n GGUF (Q4_0, Q8_0, F16, BF16), e.g. from an unsloth or ggml-org repo (…/resolve/main/gemma-3n-E2B-it-Q4_0.gguf). A Gemma 4 GGUF needs Gemma 4\'s tokenizer: pick it with its tokenizer files under "Files on this device".',
    needsUrl: true,
    needsToken: false,
    needsFiles: false,
  },
  url: {
    help: 'A folder with config.json, *.safetensors (and model.safetensors.index.json) and tokenizer files, laid out like a Hugging Face repo; or a folder `gemma3n-webgpu convert` wrote (loads with no conversion, the smallest download).',
    needsUrl: true,
    needsToken: false,
    needsFiles: false,
  },
  files: {
    help: 'Pick the files of a checkpoint you have downloaded: nothing is uploaded anywhere.',
    needsUrl: false,
    needsToken: false,
    needsFiles: true,
  },
};

/** The Hugging Face repos of the hub choices (the checkpoint's own tokenizer and chat template come with them). */
export const HUB_REPOS = {
  e2b: 'google/gemma-3n-E2B-it',
  e4b: 'google/gemma-3n-E4B-it',
  'gemma4-e2b': 'google/gemma-4-E2B-it',
  'gemma4-e4b': 'google/gemma-4-E4B-it',
} as const;

/**
 * Converted copies of the hub models (`gemma3n-webgpu convert --model google/gemma-3n-E2B-it --out DIR`, DIR hosted on
 * a static server), by choice: where one is configured, the choice loads it instead of the bf16 repo — the smallest
 * download (E2B: 2.84 GB instead of 8.89 GB, README "Small downloads") with no conversion on the device. None is hosted
 * yet, so the choices load the hub repos; a converted folder also loads through "A model folder URL".
 */
export const CONVERTED_URLS: Partial<Record<keyof typeof HUB_REPOS, string>> = {};

/** The demo's copy of the Gemma tokenizer (served next to the page, precached for offline use). */
export function bundledTokenizerUrl(): string {
  return new URL('./tokenizer/', location.href).href;
}

/** A short name for the badge and the cache list. */
export function sourceLabel(form: SourceForm): string {
  switch (form.kind) {
    case 'tiny':
      return 'Built-in tiny model (random weights)';
    case 'e2b':
      return 'Gemma 3n E2B';
    case 'e4b':
      return form.size ? `Gemma 3n E4B → ${form.size}` : 'Gemma 3n E4B';
    case 'gemma4-e2b':
      return 'Gemma 4 E2B';
    case 'gemma4-e4b':
      return 'Gemma 4 E4B';
    case 'files':
      return form.files.map((f) => f.name).join(', ') || 'local files';
    default:
      return form.url;
  }
}

/** Builds the load request; throws an Error with a user-facing message when the form is incomplete. */
export function loadRequestFor(form: SourceForm, converted: Partial<Record<keyof typeof HUB_REPOS, string>> = CONVERTED_URLS): LoadRequest {
  switch (form.kind) {
    case 'tiny': {
      const model: ModelSpec = { randomCheckpoint: { preset: 'tiny', seed: 1 } };
      return { model: model as unknown as Record<string, unknown>, tokenizer: bundledTokenizerUrl(), contextLength: 4096 };
    }
    case 'e2b':
    case 'e4b':
    case 'gemma4-e2b':
    case 'gemma4-e4b': {
      const size = form.kind === 'e4b' && form.size ? { size: form.size } : {};
      const url = converted[form.kind];
      if (url) return { model: url, ...size };
      return { model: { hub: HUB_REPOS[form.kind], revision: 'main', ...(form.token ? { token: form.token } : {}) }, ...size };
    }
    case 'gguf':
    case 'url': {
      let url: URL;
      try {
        url = new URL(form.url.trim());
      } catch {
        throw new Error('Enter the full http(s) URL of the model.');
      }
      if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error('The model URL must start with https:// (or http:// for a local server).');
      if (form.kind === 'gguf' && !/\.gguf$/i.test(url.pathname)) throw new Error('A GGUF URL ends in .gguf.');
      // A GGUF carries its own vocabulary but not the chat template as transformers.js reads it: use the bundled tokenizer.
      return form.kind === 'gguf' ? { model: url.href, tokenizer: bundledTokenizerUrl() } : { model: url.href };
    }
    case 'files': {
      if (form.files.length === 0) throw new Error('Pick the checkpoint files first.');
      const hasTokenizer = form.files.some((f) => f.name === 'tokenizer.json');
      return { model: { files: form.files }, ...(hasTokenizer ? {} : { tokenizer: bundledTokenizerUrl() }) };
    }
  }
}
