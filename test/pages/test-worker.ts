// A bring-your-own worker, as a user would write one: the test factory behind the worker API. It also answers
// `loseDevice()` (a second comlink endpoint on the same worker), which destroys the loaded model's GPU device the
// way a driver reset would, for the device-lost tests.
import { expose } from 'comlink';
import { createWorkerApi } from '../../src/core.ts';
import { installErrorTransfer } from '../../src/runtime/comlink-errors.ts';
import { lastGpu, testFactory } from './factories.ts';

// What the last requestAdapter() was asked for (the powerPreference option must reach it).
let adapterOptions: GPURequestAdapterOptions | undefined;
const gpu = (navigator as Navigator & { gpu?: GPU }).gpu;
if (gpu) {
  const requestAdapter = gpu.requestAdapter.bind(gpu);
  gpu.requestAdapter = (options?: GPURequestAdapterOptions) => {
    adapterOptions = options;
    return requestAdapter(options);
  };
}

installErrorTransfer();
expose({
  ...createWorkerApi(testFactory),
  adapterOptions: () => adapterOptions,
  loseDevice(): boolean {
    if (!lastGpu) return false;
    lastGpu.device.destroy();
    return true;
  },
});
