/** The adapter's measured FMA throughput (fma_peak.wgsl), the yardstick for every kernel. */
import type { Gpu } from '../src/gpu/gpu.js';
import fmaSource from './fma_peak.wgsl';
import { declareKernel } from '../src/gpu/kernel.js';
import { timeIt } from './harness.js';

/** Invocations per workgroup. */
const GROUP = 64;
const FMA_PEAK = declareKernel({
  name: 'fma_peak', parts: [fmaSource], defines: { GROUP }, entryPoints: { main: ['out'] }, uniforms: [['iterations', 'u32']],
});

export async function measureCeiling(gpu: Gpu, reps: number): Promise<number> {
  const groups = 4096;
  const iterations = gpu.adapterInfo.isSoftware ? 512 : 8192;
  const buf = gpu.acquire(groups * GROUP * 4);
  const view = { buffer: buf.buffer, offset: 0, size: groups * GROUP * 4 };
  const t = await timeIt(async () => {
    FMA_PEAK.dispatch(gpu, { entry: 'main', label: 'fma_peak', bind: { out: view }, uniforms: { iterations }, workgroups: [groups] });
    await gpu.sync();
  }, reps);
  gpu.release(buf);
  return (groups * GROUP * iterations * 4 * 8 * 2) / t.median / 1e6;
}
