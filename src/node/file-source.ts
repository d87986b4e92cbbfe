import { open, stat } from 'node:fs/promises';
import type { ByteSource } from '../io/byte-source.ts';
import { LOCAL_READ_GAP, truncated } from '../io/byte-source.ts';
import { GemmaError } from '../errors.ts';

/** A local file as a ByteSource (Node). */
export function fileSource(path: string): ByteSource {
  return {
    name: path,
    readGap: LOCAL_READ_GAP,
    async size() {
      try {
        return (await stat(path)).size;
      } catch (err) {
        throw new GemmaError('bad-file', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
      }
    },
    async read(offset, length) {
      const handle = await open(path, 'r').catch((err: Error) => {
        throw new GemmaError('bad-file', `cannot open ${path}: ${err.message}`, { cause: err });
      });
      try {
        const out = new Uint8Array(length);
        let done = 0;
        while (done < length) {
          const { bytesRead } = await handle.read(out, done, length - done, offset + done);
          if (bytesRead === 0) throw truncated(path, offset + length, offset + done);
          done += bytesRead;
        }
        return out;
      } finally {
        await handle.close();
      }
    },
  };
}
