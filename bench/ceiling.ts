/** The adapter's measured FMA throughput (shaders/fma_peak.wgsl), the yardstick for every kernel. */
import type { Gpu } from '../src/kernels/gpu.js';
import source from '../shaders/fma_peak.wgsl';
import { timeIt } from './harness.js';

export async function measureCeiling(gpu: Gpu, reps: number): Promise<number> {
  const groups = 4096;
  const iterations = gpu.adapterInfo.isSoftware ? 512 : 8192;
  const buf = gpu.acquire(groups * 64 * 4);
  const view = { buffer: buf.buffer, offset: 0, size: groups * 64 * 4 };
  const kernel = gpu.kernel('fma_peak', source);
  const t = await timeIt(async () => {
    gpu.dispatch({ kernel, label: 'fma_peak', uniforms: Uint32Array.of(iterations), storage: [view], workgroups: [groups] });
    await gpu.sync();
  }, reps);
  gpu.release(buf);
  return (groups * 64 * iterations * 4 * 8 * 2) / t.median / 1e6;
}
