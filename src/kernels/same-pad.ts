/**
 * TensorFlow "SAME" padding (timm's MobileNet-V5 pads this way): output size and leading padding of one axis. Its
 * own module so that architecture tables can size tensors without importing a kernel (and its WGSL).
 */
export function samePad(size: number, kernel: number, stride: number): { out: number; before: number } {
  const out = Math.ceil(size / stride);
  const total = Math.max((out - 1) * stride + kernel - size, 0);
  return { out, before: Math.floor(total / 2) };
}
