/**
 * One Checkpoint made of two: `over`'s tensors replace or add to `base`'s (the config stays `base`'s). Random
 * checkpoints use it to put a media tower family's own tensors (src/model/registry.ts randomCheckpoint) beside a
 * random decoder, without either family knowing the other.
 */
import type { Checkpoint } from './checkpoint.ts';

export function overlayCheckpoint(base: Checkpoint, over: Checkpoint, name = base.name): Checkpoint {
  const pick = (tensor: string): Checkpoint => (over.tensor(tensor) ? over : base);
  const out: Checkpoint = {
    name,
    config: base.config,
    tensor: (t) => pick(t).tensor(t),
    tensorNames: () => [...new Set([...base.tensorNames(), ...over.tensorNames()])],
    read: (t, rows) => pick(t).read(t, rows),
  };
  if (base.readColumns || over.readColumns) {
    out.readColumns = (t, columns, rows) => {
      const c = pick(t);
      if (!c.readColumns) throw new Error(`${c.name}: ${t} has no column reads`);
      return c.readColumns(t, columns, rows);
    };
  }
  if (base.readPackedAs || over.readPackedAs) out.readPackedAs = async (t, format, rows, columns) => (await pick(t).readPackedAs?.(t, format, rows, columns)) ?? null;
  return out;
}
