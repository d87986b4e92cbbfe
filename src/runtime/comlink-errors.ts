/**
 * Errors across the worker boundary: comlink's default "throw" handler keeps only name/message/stack, so a
 * GemmaError's `code` would be lost. This replaces it (on both sides: the worker and the client call it) with
 * one that carries SerializedGemmaError and rethrows a GemmaError.
 */
import { transferHandlers, type TransferHandler } from 'comlink';
import { deserializeError, serializeError, type SerializedGemmaError } from '../errors.ts';

let installed = false;

export function installErrorTransfer(): void {
  if (installed) return;
  installed = true;
  const original = transferHandlers.get('throw') as TransferHandler<unknown, unknown>;
  const handler: TransferHandler<{ value: unknown }, SerializedGemmaError> = {
    canHandle: (value): value is { value: unknown } => original.canHandle(value),
    serialize: ({ value }) => [serializeError(value), []],
    deserialize: (serialized) => {
      throw deserializeError(serialized);
    },
  };
  transferHandlers.set('throw', handler as TransferHandler<unknown, unknown>);
}
