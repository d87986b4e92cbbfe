import type { ByteSource } from './byte-source.ts';
import { LOCAL_READ_GAP, truncated } from './byte-source.ts';
import type { CheckpointFiles } from './safetensors.ts';
import { GemmaError } from '../errors.ts';

/**
 * Browser files as ByteSources: a File / Blob the user picked or dropped, or a FileSystemFileHandle (File System
 * Access API, or an OPFS file). Blob.slice() reads only the asked-for range from disk, so multi-gigabyte
 * checkpoints are never read whole.
 */

export interface BlobSourceOptions {
  /** New bytes read, for progress. */
  onBytes?: (bytes: number) => void;
}

/** A File or Blob as a ByteSource. */
export function blobSource(blob: Blob, name = (blob as File).name || 'blob', options: BlobSourceOptions = {}): ByteSource {
  return {
    name,
    readGap: LOCAL_READ_GAP,
    size: async () => blob.size,
    async read(offset, length) {
      if (offset + length > blob.size) throw truncated(name, offset + length, blob.size);
      const bytes = new Uint8Array(await readBlob(blob.slice(offset, offset + length), name));
      if (bytes.length !== length) throw truncated(name, offset + length, offset + bytes.length);
      if (length > 0) options.onBytes?.(length);
      return bytes;
    },
  };
}

/**
 * A FileSystemFileHandle as a ByteSource. The File snapshot is taken once; if the file is changed on disk
 * meanwhile, the browser refuses to read the old snapshot, and we take a fresh one rather than mixing versions
 * silently: the size is re-checked and a changed size is an error.
 */
export function fileHandleSource(handle: FileSystemFileHandle, options: BlobSourceOptions = {}): ByteSource {
  let file: Promise<File> | undefined;
  const snapshot = () => (file ??= handle.getFile().catch((err: unknown) => {
    file = undefined;
    throw new GemmaError('bad-file', `cannot read ${handle.name}: ${(err as Error).message}`, { cause: err });
  }));
  return {
    readGap: LOCAL_READ_GAP,
    name: handle.name,
    size: async () => (await snapshot()).size,
    async read(offset, length) {
      const f = await snapshot();
      try {
        return await blobSource(f, handle.name, options).read(offset, length);
      } catch (err) {
        if (!(err instanceof GemmaError) || err.code !== 'bad-file' || !/NotReadable|changed|modified/i.test(String(err.cause))) throw err;
        file = undefined;
        const fresh = await snapshot();
        if (fresh.size !== f.size) {
          throw new GemmaError('bad-file', `${handle.name} changed on disk while it was being read (${f.size} → ${fresh.size} bytes). Load again once it is complete.`);
        }
        return blobSource(fresh, handle.name, options).read(offset, length);
      }
    },
  };
}

/** Checkpoint files picked by the user (an <input type=file multiple / webkitdirectory>, or a drop). */
export function pickedFiles(files: Iterable<File> | ArrayLike<File>, options: BlobSourceOptions & { name?: string } = {}): CheckpointFiles {
  // Match by base name: a folder picked with webkitdirectory gives "gemma/config.json" style relative paths.
  const byName = new Map<string, File>();
  for (const f of Array.from(files as ArrayLike<File>)) byName.set(f.name, f);
  const label = options.name ?? 'the picked files';
  return {
    name: label,
    exists: async (path) => byName.has(baseName(path)),
    open(path) {
      const f = byName.get(baseName(path));
      if (!f) {
        return missingSource(path, `${path} is not among ${label}. Pick the whole checkpoint folder (config.json, tokenizer files and the .safetensors weights).`);
      }
      return blobSource(f, path, options);
    },
  };
}

/** A directory handle (showDirectoryPicker(), or an OPFS folder) as CheckpointFiles. */
export function directoryHandleFiles(dir: FileSystemDirectoryHandle, options: BlobSourceOptions = {}): CheckpointFiles {
  const handleOf = async (path: string): Promise<FileSystemFileHandle | undefined> => {
    let current = dir;
    const parts = path.split('/');
    try {
      for (const part of parts.slice(0, -1)) current = await current.getDirectoryHandle(part);
      return await current.getFileHandle(parts[parts.length - 1]);
    } catch (err) {
      if ((err as DOMException)?.name === 'NotFoundError' || (err as DOMException)?.name === 'TypeMismatchError') return undefined;
      throw new GemmaError('bad-file', `cannot open ${dir.name}/${path}: ${(err as Error).message}`, { cause: err });
    }
  };
  const sources = new Map<string, Promise<ByteSource>>();
  const sourceOf = (path: string): Promise<ByteSource> => {
    let s = sources.get(path);
    if (!s) {
      s = handleOf(path).then((h) => h ? fileHandleSource(h, options) : missingSource(path, `${dir.name} has no ${path}.`));
      sources.set(path, s);
    }
    return s;
  };
  return {
    name: dir.name,
    exists: async (path) => (await handleOf(path)) !== undefined,
    open: (path) => ({
      name: `${dir.name}/${path}`,
      size: async () => (await sourceOf(path)).size(),
      read: async (offset, length) => (await sourceOf(path)).read(offset, length),
    }),
  };
}

function missingSource(name: string, message: string): ByteSource {
  const fail = async (): Promise<never> => {
    throw new GemmaError('bad-file', message);
  };
  return { name, size: fail, read: fail };
}

function baseName(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1);
}

async function readBlob(blob: Blob, name: string): Promise<ArrayBuffer> {
  try {
    return await blob.arrayBuffer();
  } catch (err) {
    // NotReadableError: the file was changed or deleted on disk after it was picked.
    throw new GemmaError('bad-file', `cannot read ${name}: ${(err as Error).message}`, { cause: err });
  }
}
