/**
 * What the vision encoder needs from a Gemma 3n checkpoint's config.json (`vision_config`, formats doc §1.4) and
 * tensor table: the timm architecture, the norm epsilon, the vision width, and the text width `embed_vision`
 * projects to (read from the projection's shape, so a vision-only checkpoint needs no full text_config).
 */
import { GemmaError } from '../../errors.ts';
import type { Checkpoint } from '../../io/checkpoint.ts';
import { EMBED_PREFIX, TOWER_PREFIX, VISION_ARCHS, type VisionArch } from './arch.ts';

export interface VisionConfig {
  arch: VisionArch;
  eps: number;
  /** Channels of the tower's output (= embed_vision's input width), 2048. */
  visionHidden: number;
  /** Width of the soft tokens (the text decoder's hidden size). */
  textHidden: number;
  /** Soft tokens per image (outputSize^2 = 256). */
  softTokens: number;
  /** First hard-token id of the vision embedder (262144). */
  vocabOffset: number;
}

/** Whether a checkpoint carries a vision tower at all (text-only GGUFs and tiny test models do not). */
export function hasVisionTower(ckpt: Checkpoint): boolean {
  return ckpt.tensor(TOWER_PREFIX + 'conv_stem.conv.weight') !== undefined;
}

/**
 * `archOverride` replaces the timm architecture named by the config (tests run small architectures of the same
 * block kinds); the checkpoint's tensors must still match it.
 */
export function parseVisionConfig(ckpt: Checkpoint, archOverride?: VisionArch): VisionConfig {
  if (!hasVisionTower(ckpt)) {
    throw new GemmaError(
      'unsupported-input',
      `${ckpt.name} has no vision tower (no ${TOWER_PREFIX}* tensors), so it cannot read images. Use a full Gemma 3n checkpoint (e.g. google/gemma-3n-E2B-it safetensors).`,
    );
  }
  const top = (ckpt.config ?? {}) as Record<string, unknown>;
  const vc = top.vision_config as Record<string, unknown> | undefined;
  if (!vc || typeof vc !== 'object') throw new GemmaError('bad-file', `${ckpt.name}: config.json has vision tower tensors but no vision_config.`);
  const archName = String(vc.architecture ?? '');
  const arch = archOverride ?? VISION_ARCHS[archName];
  if (!arch) {
    throw new GemmaError('unsupported-config', `${ckpt.name}: vision_config.architecture "${archName}" is not supported (supported: ${Object.keys(VISION_ARCHS).join(', ')}).`);
  }
  if (vc.model_args !== undefined && vc.model_args !== null) {
    throw new GemmaError('unsupported-config', `${ckpt.name}: vision_config.model_args ${JSON.stringify(vc.model_args)} would change timm's ${archName}; only null is supported.`);
  }
  const eps = typeof vc.rms_norm_eps === 'number' ? vc.rms_norm_eps : arch.eps;
  const visionHidden = typeof vc.hidden_size === 'number' ? vc.hidden_size : arch.msfa.cout;
  if (visionHidden !== arch.msfa.cout) {
    throw new GemmaError('bad-file', `${ckpt.name}: vision_config.hidden_size ${visionHidden} does not match ${archName}'s ${arch.msfa.cout} output channels.`);
  }
  const proj = ckpt.tensor(EMBED_PREFIX + 'embedding_projection.weight');
  if (!proj) throw new GemmaError('bad-file', `${ckpt.name}: ${EMBED_PREFIX}embedding_projection.weight is missing (the vision embedder).`);
  if (proj.shape.length !== 2 || proj.shape[1] !== visionHidden) {
    throw new GemmaError('bad-file', `${ckpt.name}: ${EMBED_PREFIX}embedding_projection.weight has shape [${proj.shape}], expected [text hidden, ${visionHidden}].`);
  }
  return {
    arch,
    eps,
    visionHidden,
    textHidden: proj.shape[0],
    softTokens: arch.msfa.outputSize ** 2,
    vocabOffset: typeof vc.vocab_offset === 'number' ? vc.vocab_offset : 262144,
  };
}
