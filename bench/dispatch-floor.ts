/**
 * Dawn's own host cost of recording a training step's worth of dispatches,
 * the floor that our recording (replayed) is compared with: `dispatches`
 * dispatches of a trivial kernel through the raw WebGPU API, rotating over
 * 8 pipelines and 200 bind groups made beforehand (a step binds different
 * kernels to different buffers each dispatch, and Dawn tracks every buffer
 * bound), each with a uniform block and six storage buffers as the
 * convolutions have, in one compute pass per submission, submitted on the
 * device's schedule (Gpu.submitSchedule) inside the same error scopes as
 * ours. What is left above it is our own work per dispatch.
 */
import { BufferUsage, type Gpu } from '../src/gpu/gpu.js';

const PIPELINES = 8;
const GROUPS = 200;
const STORAGE = 6;

function source(variant: number): string {
  const buffers = Array.from({ length: STORAGE }, (_, i) => `@group(0) @binding(${i + 1}) var<storage, read_write> b${i}: array<u32>;`).join('\n');
  const touch = Array.from({ length: STORAGE }, (_, i) => `b${i}[0] += u.n;`).join(' ');
  return `struct U { n: u32 }
@group(0) @binding(0) var<uniform> u: U;
${buffers}
// variant ${variant}: a pipeline of its own
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x == ${variant}u) { ${touch} } }`;
}

/** Median milliseconds of host time to record and submit `dispatches` dispatches, the GPU drained before each of `reps` runs. */
export async function measureDispatchFloor(gpu: Gpu, dispatches: number, reps: number): Promise<number> {
  const device = gpu.device;
  const pipelines = Array.from({ length: PIPELINES }, (_, v) =>
    device.createComputePipeline({ label: `dispatch floor ${v}`, layout: 'auto', compute: { module: device.createShaderModule({ code: source(v) }), entryPoint: 'main' } }),
  );
  const uniform = device.createBuffer({ size: 256, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST });
  const buffers = Array.from({ length: 64 }, () => device.createBuffer({ size: 4096, usage: BufferUsage.STORAGE }));
  const groups = Array.from({ length: GROUPS }, (_, i) =>
    device.createBindGroup({
      layout: pipelines[i % PIPELINES]!.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: uniform } },
        ...Array.from({ length: STORAGE }, (_, j) => ({ binding: j + 1, resource: { buffer: buffers[(i * 7 + j * 13) % buffers.length]! } })),
      ],
    }),
  );
  const { first, max } = gpu.submitSchedule;
  const times: number[] = [];
  const checks: Promise<GPUError | null>[] = [];
  for (let r = 0; r < reps; r++) {
    await device.queue.onSubmittedWorkDone();
    const t0 = performance.now();
    let flushAfter = first;
    for (let done = 0; done < dispatches; ) {
      const count = Math.min(flushAfter, dispatches - done);
      device.pushErrorScope('validation');
      device.pushErrorScope('out-of-memory');
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      for (let i = done; i < done + count; i++) {
        pass.setPipeline(pipelines[(i % GROUPS) % PIPELINES]!);
        pass.setBindGroup(0, groups[i % GROUPS]!);
        pass.dispatchWorkgroups(1);
      }
      pass.end();
      device.queue.submit([encoder.finish()]);
      checks.push(device.popErrorScope(), device.popErrorScope());
      done += count;
      flushAfter = Math.min(2 * flushAfter, max);
    }
    times.push(performance.now() - t0);
  }
  await device.queue.onSubmittedWorkDone();
  for (const b of [uniform, ...buffers]) b.destroy();
  const error = (await Promise.all(checks)).find((e) => e !== null);
  if (error) throw new Error(`dispatch floor: ${error.message}`);
  return times.sort((a, b) => a - b)[times.length >> 1]!;
}
