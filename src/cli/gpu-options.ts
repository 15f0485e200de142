import { createNodeGpu } from '../gpu/node-gpu.js';
import { formatAdapter, type Gpu } from '../gpu/gpu.js';
import { type Precision, canRunMixed, defaultPrecision, setPrecision } from '../ops/conv/index.js';
import { type OptionSpec, type Parsed, UsageError } from './args.js';

/** --precision, shared by train and predict. */
export const PRECISION_OPTION: Record<string, OptionSpec> = {
  precision: { type: 'string', help: 'fp32 or mixed (f16 operands on subgroup matrices and f16 activations, f32 sums and weights, dynamic loss scaling); default: mixed on GPUs that offer f16 subgroup matrices, else fp32' },
};

/**
 * Sets the convolutions' precision from --precision, else from `stored` (a
 * resumed run's) where the adapter can run it, else the adapter's default;
 * prints the choice and returns it.
 */
export function choosePrecision(o: Parsed, gpu: Gpu, stored?: Precision, log: (s: string) => void = console.log): Precision {
  const asked = o.precision as string | undefined;
  if (asked !== undefined && asked !== 'fp32' && asked !== 'mixed') throw new UsageError(`--precision must be fp32 or mixed, got "${asked}"`);
  let precision: Precision;
  let why: string;
  if (asked) [precision, why] = [asked, 'chosen with --precision'];
  else if (stored === 'mixed' && !canRunMixed(gpu)) [precision, why] = ['fp32', 'the checkpoint trained in mixed precision, which this adapter cannot run'];
  else if (stored) [precision, why] = [stored, 'as the checkpoint was trained'];
  else {
    precision = defaultPrecision(gpu);
    why = !canRunMixed(gpu) ? 'the adapter has no f16 subgroup matrices'
      : precision === 'mixed' ? 'the adapter has f16 subgroup matrices; --precision fp32 for the exact path'
      : 'a software adapter, where the subgroup matrices are emulated; --precision mixed uses them';
  }
  setPrecision(gpu, precision);
  const m = gpu.matrix;
  log(`precision: ${precision === 'mixed' && m ? `mixed (f16 operands on ${m.M}×${m.N}×${m.K} subgroup matrices, f32 sums and weights)` : 'fp32'} (${why})`);
  return precision;
}

/** Opens the GPU chosen by --backend / --adapter / --power-preference (with more Dawn options, if any) and prints it. */
export async function openGpu(o: Parsed, log: (s: string) => void = console.log, dawnOptions: string[] = []): Promise<Gpu> {
  const pp = o['power-preference'] as string | undefined;
  if (pp && pp !== 'high-performance' && pp !== 'low-power') throw new Error(`--power-preference must be high-performance or low-power, got "${pp}"`);
  const gpu = await createNodeGpu({
    backend: o.backend as string | undefined,
    adapter: o.adapter as string | undefined,
    powerPreference: pp as GPUPowerPreference | undefined,
    dawnOptions,
  });
  log(`adapter: ${formatAdapter(gpu.adapterInfo)}`);
  return gpu;
}
