/// <reference types="@webgpu/types" preserve="true" />
/**
 * The library's Node entry (`import … from 'wgsl-unet'` under Node): the
 * shared API of src/api.ts, and devices made through Dawn (npm `webgpu`,
 * loaded when the first device is made). Nothing of the CLI is imported.
 */
import type { Gpu } from './gpu/gpu.js';
import { createNodeGpu, type NodeGpuOptions } from './gpu/node-gpu.js';

export * from './api.js';
export { NoAdapterError, AdapterSelectionError, type NodeGpuOptions } from './gpu/node-gpu.js';
export { tuneForSoftwareAdapter } from './software/platform.js';

/**
 * A device on the machine's WebGPU adapter through Dawn. Options pick the
 * backend, the adapter by name and the power preference; end with
 * `await gpu.close()` so that the process can exit.
 */
export function createGpu(options: NodeGpuOptions = {}): Promise<Gpu> {
  if (options === null || typeof options !== 'object') throw new TypeError(`createGpu: options must be an object, got ${String(options)}`);
  return createNodeGpu(options);
}
