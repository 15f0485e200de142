/// <reference types="@webgpu/types" preserve="true" />
/**
 * The library's browser entry (`import … from 'wgsl-unet'` in a bundler's
 * browser build, or 'wgsl-unet/browser'): the shared API of src/api.ts, and
 * devices made through navigator.gpu. The page's own helpers stay in
 * src/browser.ts.
 */
import type { Gpu } from './gpu/gpu.js';
import { createBrowserGpu } from './gpu/browser-gpu.js';

export * from './api.js';

/** Options of createGpu in a browser. */
export interface BrowserGpuOptions {
  /** Which adapter to prefer where there are several (default 'high-performance'). */
  powerPreference?: GPUPowerPreference;
}

/** A device on navigator.gpu's adapter; throws where the browser has no WebGPU. */
export function createGpu(options: BrowserGpuOptions = {}): Promise<Gpu> {
  if (options === null || typeof options !== 'object') throw new TypeError(`createGpu: options must be an object, got ${String(options)}`);
  return createBrowserGpu(options.powerPreference);
}
