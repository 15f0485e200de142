/** Timing and reporting shared by the benchmarks. */
export interface Sample {
  op: string;
  shape: string;
  impl: string;
  median_ms: number;
  min_ms: number;
  max_ms: number;
  gflops: number;
  /** For memory-bound kernels: bytes moved, and the rate. */
  bytes?: number;
  gbps?: number;
  reps: number;
  /** Our GPU time by timestamp queries, where the adapter has them. */
  gpu_ms?: number;
  /** For the training step and inference: images per second. */
  images_per_s?: number;
  /** Training step: seconds for one epoch of the tutorial's recipe at this rate. */
  epoch_s?: number;
}

/** A tfjs backend to compare with; `finish` resolves when its queued work is done. */
export interface Peer {
  key: string;
  name: string;
  backend: string;
  finish(): Promise<void>;
}

export interface TfjsWebgpu {
  tf: typeof import('@tensorflow/tfjs-core');
  finish(): Promise<void>;
}

/** Runs `once` warmup + reps times; each run resolves when the GPU has finished. */
export async function timeIt(once: () => Promise<void>, reps: number, warmup = 1): Promise<{ median: number; min: number; max: number }> {
  for (let i = 0; i < warmup; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  times.sort((a, b) => a - b);
  const mid = times.length >> 1;
  const median = times.length % 2 ? times[mid]! : (times[mid - 1]! + times[mid]!) / 2;
  return { median, min: times[0]!, max: times.at(-1)! };
}

export function sample(op: string, shape: string, impl: string, flops: number, t: { median: number; min: number; max: number }, reps: number, bytes?: number): Sample {
  const s: Sample = { op, shape, impl, median_ms: t.median, min_ms: t.min, max_ms: t.max, gflops: flops / t.median / 1e6, reps };
  if (bytes !== undefined) Object.assign(s, { bytes, gbps: bytes / t.median / 1e6 });
  return s;
}

export function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
  return rows.map((r) => r.map((cell, c) => (c < 2 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ')).join('\n');
}

/**
 * tfjs-webgpu's GPU time over ours for the case of `o` (both by timestamp
 * queries), or null where either is missing.
 */
export function gpuTimeRatio(samples: Sample[], o: Sample): number | null {
  const t = samples.find((s) => s.op === o.op && s.shape === o.shape && s.impl.startsWith('tfjs-webgpu'));
  return t?.gpu_ms !== undefined && o.gpu_ms ? t.gpu_ms / o.gpu_ms : null;
}
