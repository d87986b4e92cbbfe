/**
 * The default worker script of `loadGemma()`: the Gemma 3n engine behind comlink. It owns the GPUDevice; the
 * page talks to it only through messages (see worker-host.ts for the protocol).
 */
import { exposeGemmaWorker } from './worker-host.ts';
import { gemma3nFactory } from './gemma3n-factory.ts';

exposeGemmaWorker(gemma3nFactory);
