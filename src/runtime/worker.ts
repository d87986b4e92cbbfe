/**
 * The default worker script of `loadGemma()`: the engine behind comlink, with the default model factory (every
 * source and family the library reads). It owns the GPUDevice; the page talks to it only through messages (see
 * worker-host.ts for the protocol).
 */
import { exposeGemmaWorker } from './worker-host.ts';
import { defaultModelFactory } from './loading/model-factory.ts';

exposeGemmaWorker(defaultModelFactory);
