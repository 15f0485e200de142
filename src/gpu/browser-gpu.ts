/** Getting a Gpu in a browser, through navigator.gpu. */
import { Gpu, describeAdapter, requestDevice } from './gpu.js';

export async function createBrowserGpu(powerPreference: GPUPowerPreference = 'high-performance'): Promise<Gpu> {
  const nav = (globalThis as { navigator?: Navigator }).navigator;
  if (!nav?.gpu) {
    throw new Error('This browser does not offer WebGPU (navigator.gpu is missing). Use a recent Chrome, Edge or Firefox, with WebGPU enabled.');
  }
  const adapter = await nav.gpu.requestAdapter({ powerPreference });
  if (!adapter) throw new Error('WebGPU is present but no adapter is available (blocked GPU or driver).');
  const info = describeAdapter(adapter);
  // The software formulations of the convolutions load only where they run.
  if (info.isSoftware) await import('../software/conv.js');
  return new Gpu(await requestDevice(adapter), info);
}
