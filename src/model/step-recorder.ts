/**
 * How a family's forward pass records and submits one step (family-neutral): the dispatches of the decoder layers,
 * of the LM head for the last position and of the LM head for every position, each built once at load, plus how
 * each follows the step's token count (`rows`) and position (`step`). `submit` updates them for T tokens at p0 and
 * records the whole step — layers, a copy of the last position's hidden row, the head, optionally the sampler and
 * every position's logits — into one command buffer.
 */
import type { Dispatch } from '../gpu/pipeline.ts';

/** A recorded dispatch plus how it follows the step's token count and position. */
export interface Op {
  d: Dispatch;
  rows?: (T: number) => void;
  step?: (p0: number, T: number) => void;
}

export interface StepSubmit {
  /** The last position's hidden row: copied from `src` at byte `offset` to `dst` (the head's input), `bytes` long. */
  lastRow: { src: GPUBuffer; offset: number; dst: GPUBuffer; bytes: number };
  /** Samples the next token in the same submission. */
  sampler?: Dispatch;
  /** Also run the head over every position (`allHeadOps`). */
  allLogits?: boolean;
}

export class StepRecorder {
  /** Decoder layers (and embedding): follow T and p0. */
  readonly ops: Op[] = [];
  /** LM head of the last position (fixed size). */
  readonly headOps: Op[] = [];
  /** LM head of every position: follow T. */
  readonly allHeadOps: Op[] = [];
  private lastT = -1;

  constructor(private readonly label: string) {}

  submit(device: GPUDevice, p0: number, T: number, s: StepSubmit): void {
    if (T !== this.lastT) {
      for (const op of this.ops) op.rows?.(T);
      for (const op of this.allHeadOps) op.rows?.(T);
      this.lastT = T;
    }
    for (const op of this.ops) op.step?.(p0, T);
    const encoder = device.createCommandEncoder({ label: `${this.label} step` });
    let pass = encoder.beginComputePass({ label: `${this.label} layers` });
    for (const op of this.ops) op.d.encode(pass);
    pass.end();
    encoder.copyBufferToBuffer(s.lastRow.src, s.lastRow.offset, s.lastRow.dst, 0, s.lastRow.bytes);
    pass = encoder.beginComputePass({ label: `${this.label} head` });
    for (const op of this.headOps) op.d.encode(pass);
    s.sampler?.encode(pass);
    if (s.allLogits) for (const op of this.allHeadOps) op.d.encode(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
  }

  /** One dispatch (the sampler) in a small submission of its own. */
  submitOne(device: GPUDevice, d: Dispatch): void {
    const encoder = device.createCommandEncoder({ label: `${this.label} ${d.label}` });
    const pass = encoder.beginComputePass({ label: `${this.label} ${d.label}` });
    d.encode(pass);
    pass.end();
    device.queue.submit([encoder.finish()]);
  }
}
