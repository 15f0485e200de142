/**
 * `npm run bench`: our kernels against tfjs-backend-webgpu on the same
 * adapter, in one run. Prints a table (ms, GFLOP/s, ratio) and with
 * `--json FILE` writes every sample.
 *
 * Timing: wall time from recording a kernel to the GPU reporting the work
 * done (queue.onSubmittedWorkDone), median of --reps runs after one warm-up
 * run (which also compiles the pipelines). Both engines are timed the same way.
 */
import { writeFileSync } from 'node:fs';
import { Gpu, describeAdapter, formatAdapter, requestDevice } from '../src/kernels/gpu.js';
import { GPU_OPTIONS, parseArgs, usage } from '../src/cli/args.js';
import { NoAdapterError } from '../src/kernels/node-gpu.js';
import { UNET_CONV_SHAPES, benchConvolutions } from './kernels.js';
import { benchElementwise } from './elementwise.js';
import { benchTrainingStep } from './step.js';
import { type Sample, table } from './harness.js';

const SPEC = {
  ...GPU_OPTIONS,
  json: { type: 'string' as const, help: 'write the samples to this JSON file' },
  reps: { type: 'number' as const, help: 'timed runs per case', default: 3 },
  batch: { type: 'number' as const, help: 'batch size', default: 8 },
  quick: { type: 'boolean' as const, help: 'only the two largest-spatial shapes' },
  suite: { type: 'string' as const, help: 'kernels, step, or all', default: 'all' },
  'step-width': { type: 'number' as const, help: 'base width of the U-Net in the training-step benchmark', default: 32 },
  'step-size': { type: 'number' as const, help: 'input size of the U-Net in the training-step benchmark', default: 96 },
};

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help')) return void console.log(usage('bench', 'Benchmarks our kernels against tfjs on the same adapter.', SPEC));
  const { options } = parseArgs(argv, SPEC);
  process.env.XDG_RUNTIME_DIR ??= '/tmp';
  const { create, globals } = await import('webgpu');
  Object.assign(globalThis, globals); // tfjs-backend-webgpu uses the WebGPU globals
  const flags: string[] = [];
  if (options.backend) flags.push(`backend=${options.backend}`);
  if (options.adapter) flags.push(`adapter=${options.adapter}`);
  const instance = create(flags);
  const adapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new NoAdapterError('');
  const info = describeAdapter(adapter);
  console.log(`adapter: ${formatAdapter(info)}`);
  const gpu = new Gpu(await requestDevice(adapter), info);

  // tfjs gets its own device on the same adapter (an adapter makes one device),
  // with the same limits as ours.
  const peerAdapter = await instance.requestAdapter({ powerPreference: 'high-performance' });
  if (!peerAdapter || describeAdapter(peerAdapter).description !== info.description) throw new Error('could not open the same adapter a second time for tfjs');
  const peerDevice = await requestDevice(peerAdapter);
  const nav = (globalThis as { navigator?: object }).navigator;
  Object.defineProperty(globalThis, 'navigator', { value: { ...(nav ?? {}), gpu: instance }, configurable: true, writable: true });
  const tf = await import('@tensorflow/tfjs-core');
  const { WebGPUBackend } = await import('@tensorflow/tfjs-backend-webgpu');
  tf.env().set('WEBGPU_CPU_FORWARD', false);
  const backend = new WebGPUBackend(peerDevice, peerAdapter.info);
  // tfjs's kernels are registered under the name 'webgpu': replace its factory
  // (which would request a device of its own) with ours.
  if (tf.findBackendFactory('webgpu')) tf.removeBackend('webgpu');
  tf.registerBackend('webgpu', () => backend, 10);
  await tf.setBackend('webgpu');
  // tfjs keeps a compute pass open between ops: end it and submit, as its own
  // readback path does, then wait for the GPU.
  const internals = backend as unknown as { commandEncoder: GPUCommandEncoder | null; endComputePassEncoder(): void };
  const finish = async () => {
    if (internals.commandEncoder) {
      internals.endComputePassEncoder();
      backend.submitQueue();
    }
    await peerDevice.queue.onSubmittedWorkDone();
  };

  const shapes = options.quick ? UNET_CONV_SHAPES.slice(0, 2) : UNET_CONV_SHAPES;
  const reps = options.reps as number;
  const batch = options.batch as number;
  console.log(`timing: wall time to queue.onSubmittedWorkDone, median of ${reps} after 1 warm-up; tfjs ${tf.version_core} webgpu backend, WEBGPU_CPU_FORWARD=false, same adapter and limits`);
  const samples: Sample[] = [];
  const suite = options.suite as string;
  if (!['kernels', 'step', 'all'].includes(suite)) throw new Error(`--suite must be kernels, step or all, got "${suite}"`);
  let memory: { peakLiveBytes: number; poolBytes: number } | undefined;
  try {
    if (suite !== 'step') {
      samples.push(...(await benchConvolutions(gpu, { tf, finish }, { batch, reps, shapes })));
      samples.push(...(await benchElementwise(gpu, { tf, finish }, { batch, reps })));
    }
    if (suite !== 'kernels') {
      const step = await benchTrainingStep(gpu, { tf, finish }, { batch, reps, baseWidth: options['step-width'] as number, size: options['step-size'] as number });
      samples.push(...step.samples);
      memory = { peakLiveBytes: step.peakLiveBytes, poolBytes: step.poolBytes };
    }
  } finally {
    tf.dispose(tf.engine().state.registeredVariables as never);
    backend.dispose();
    peerDevice.destroy();
    gpu.destroy();
    delete (globalThis as { navigator?: unknown }).navigator;
  }

  const rows = [['op', 'shape', 'ours ms', 'ours rate', 'tfjs ms', 'tfjs rate', 'ratio']];
  const rate = (s: Sample) =>
    s.op === 'training_step'
      ? `${(batch / (s.median_ms / 1000)).toFixed(2)} img/s`
      : s.gbps !== undefined
        ? `${s.gbps.toFixed(2)} GB/s`
        : `${s.gflops.toFixed(2)} GFLOP/s`;
  for (let i = 0; i < samples.length; i += 2) {
    const o = samples[i]!;
    const t = samples[i + 1]!;
    rows.push([o.op, o.shape, o.median_ms.toFixed(1), rate(o), t.median_ms.toFixed(1), rate(t), `×${(t.median_ms / o.median_ms).toFixed(2)}`]);
  }
  console.log(table(rows));
  if (memory) console.log(`training step, ours: peak live GPU memory ${(memory.peakLiveBytes / 2 ** 20).toFixed(1)} MiB; buffer pool after the step ${(memory.poolBytes / 2 ** 20).toFixed(1)} MiB`);
  if (options.json) {
    const doc = { adapter: info, date: new Date().toISOString(), tfjs: tf.version_core, node: process.version, timing: 'wall time to onSubmittedWorkDone', memory, samples };
    writeFileSync(options.json as string, JSON.stringify(doc, null, 2));
    console.log(`wrote ${options.json}`);
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error && e.name !== 'Error' ? `error: ${e.message}` : e);
  process.exitCode = 1;
});
