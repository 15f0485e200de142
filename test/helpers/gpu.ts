/** One GPU per test file, destroyed afterwards so the worker can exit. */
import { afterAll } from 'vitest';
import { createNodeGpu } from '../../src/gpu/node-gpu.js';
import { paceDawnPolling } from '../../src/software/platform.js';
import type { Gpu } from '../../src/gpu/gpu.js';

let shared: Promise<Gpu> | null = null;

export function testGpu(): Promise<Gpu> {
  if (!shared) {
    // Fewer polls and less garbage while tests wait on a software adapter.
    paceDawnPolling();
    shared = createNodeGpu({
      backend: process.env.WGSL_UNET_BACKEND,
      adapter: process.env.WGSL_UNET_ADAPTER,
    });
    afterAll(async () => {
      const gpu = await shared!;
      await gpu.close();
      shared = null;
    });
  }
  return shared;
}
