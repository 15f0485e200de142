import { createNodeGpu } from '../kernels/node-gpu.js';
import { formatAdapter, type Gpu } from '../kernels/gpu.js';
import type { Parsed } from './args.js';

/** Opens the GPU chosen by --backend / --adapter / --power-preference and prints it. */
export async function openGpu(o: Parsed, log: (s: string) => void = console.log): Promise<Gpu> {
  const pp = o['power-preference'] as string | undefined;
  if (pp && pp !== 'high-performance' && pp !== 'low-power') throw new Error(`--power-preference must be high-performance or low-power, got "${pp}"`);
  const gpu = await createNodeGpu({
    backend: o.backend as string | undefined,
    adapter: o.adapter as string | undefined,
    powerPreference: pp as GPUPowerPreference | undefined,
  });
  log(`adapter: ${formatAdapter(gpu.adapterInfo)}`);
  return gpu;
}
