// A bring-your-own worker, as a user would write one: the test factory behind exposeGemmaWorker().
import { exposeGemmaWorker } from '../../src/core.ts';
import { testFactory } from './factories.ts';

exposeGemmaWorker(testFactory);
