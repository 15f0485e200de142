/** The adapter's measured FMA throughput (shaders/fma_peak.wgsl), the yardstick for every kernel. */
import type { Gpu } from '../src/kernels/gpu.js';
import fmaSource from '../shaders/fma_peak.wgsl';
import { composeShader } from '../src/kernels/shader-source.js';

/** Invocations per workgroup, written into the shader. */
const GROUP = 64;
const source = composeShader([fmaSource], { defines: { GROUP } });
import { timeIt } from './harness.js';

export async function measureCeiling(gpu: Gpu, reps: number): Promise<number> {
  const groups = 4096;
  const iterations = gpu.adapterInfo.isSoftware ? 512 : 8192;
  const buf = gpu.acquire(groups * GROUP * 4);
  const view = { buffer: buf.buffer, offset: 0, size: groups * GROUP * 4 };
  const kernel = gpu.kernel('fma_peak', source);
  const t = await timeIt(async () => {
    gpu.dispatch({ kernel, label: 'fma_peak', uniforms: Uint32Array.of(iterations), storage: [view], workgroups: [groups] });
    await gpu.sync();
  }, reps);
  gpu.release(buf);
  return (groups * GROUP * iterations * 4 * 8 * 2) / t.median / 1e6;
}
