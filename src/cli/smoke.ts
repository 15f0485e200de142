/** `wgsl-unet smoke`: prints the adapter and checks a few kernels against the CPU. */
import { allocTensor } from '../gpu/tensor-view.js';
import { binary, unary } from '../ops/elementwise/kernel.js';
import { GPU_OPTIONS, UsageError, parseArgs, usage } from './args.js';
import { openGpu } from './gpu-options.js';

const SPEC = { ...GPU_OPTIONS, size: { type: 'number' as const, help: 'elements per test array', default: 1 << 20 } };

export async function smoke(argv: string[]): Promise<void> {
  if (argv.includes('--help')) return void console.log(usage('smoke', 'Checks that the GPU runs the engine\'s kernels correctly.', SPEC));
  const { options } = parseArgs(argv, SPEC);
  const n = options.size as number;
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--size must be a positive integer, got ${n}`);
  const gpu = await openGpu(options);
  try {
    const xs = new Float32Array(n);
    const ys = new Float32Array(n);
    let s = 12345;
    for (let i = 0; i < n; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      xs[i] = (s / 2 ** 32) * 8 - 4;
      ys[i] = Math.sin(i);
    }
    const t0 = performance.now();
    const x = allocTensor(gpu, [n], xs);
    const y = allocTensor(gpu, [n], ys);
    const r = allocTensor(gpu, [n]);
    const out = allocTensor(gpu, [n]);
    unary(gpu, 'relu', x, r); // r = relu(x)
    binary(gpu, 'mul', r, y, out); // out = relu(x)·y
    unary(gpu, 'sigmoid', out, r); // r = σ(relu(x)·y)
    const got = await gpu.readFloat32(r.view);
    const ms = performance.now() - t0;
    let err = 0;
    for (let i = 0; i < n; i++) {
      const want = 1 / (1 + Math.exp(-Math.max(xs[i]!, 0) * ys[i]!));
      err = Math.max(err, Math.abs(got[i]! - want));
    }
    for (const t of [x, y, r, out]) t.dispose();
    const mem = gpu.memory();
    console.log(`relu → mul → sigmoid on ${n} elements: max abs error ${err.toExponential(2)}, ${ms.toFixed(1)} ms with upload and readback`);
    console.log(`dispatches ${gpu.dispatchCount}, pool: ${mem.created} buffers created, ${mem.liveBuffers} live, peak ${(mem.peakLiveBytes / 2 ** 20).toFixed(1)} MiB`);
    if (!(err < 1e-5)) throw new Error(`smoke check failed: GPU result differs from the CPU by ${err}`);
    console.log('smoke check passed');
  } finally {
    await gpu.close();
  }
}
