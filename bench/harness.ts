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
  /**
   * For a peer timed in alternation with ours (tfjs-webgpu): the median over
   * the pairs of runs of its time over ours. A load that comes and goes on a
   * shared machine moves both runs of a pair alike, so this ratio is steadier
   * than the ratio of the two medians.
   */
  paired_ratio?: number;
  /** Training step and inference: the convolutions' precision (fp32, mixed) and the batch. */
  precision?: string;
  batch?: number;
  /** Training step: host time to record one step, in milliseconds. */
  record_ms?: number;
  /** Dawn's own host time for as many dispatches of a trivial kernel (bench/dispatch-floor.ts): the floor under record_ms. */
  record_floor_ms?: number;
  /** Dispatches one step records. */
  step_dispatches?: number;
  /** The same submitting every 16 dispatches (Gpu.submitSchedule), the host's cost of more submissions. */
  record_every16_ms?: number;
  /** The same without replay: every op's code run to record the step. */
  record_traced_ms?: number;
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
export async function timeIt(once: () => Promise<void>, reps: number, warmup = 1): Promise<Timing> {
  for (let i = 0; i < warmup; i++) await once();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await once();
    times.push(performance.now() - t0);
  }
  return summarize(times);
}

export type Timing = { median: number; min: number; max: number };

function summarize(times: number[]): Timing {
  const sorted = [...times].sort((a, b) => a - b);
  return { median: median(sorted), min: sorted[0]!, max: sorted.at(-1)! };
}

function median(sorted: number[]): number {
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/**
 * Times two implementations in alternation — a b, b a, a b, … so that neither
 * always runs first — after one warm-up run of each. Returns each one's
 * timing and the median of the per-pair ratios b / a.
 */
export async function timePaired(a: () => Promise<void>, b: () => Promise<void>, reps: number, warmup = 1): Promise<{ a: Timing; b: Timing; ratio: number }> {
  for (let i = 0; i < warmup; i++) {
    await a();
    await b();
  }
  const ta: number[] = [];
  const tb: number[] = [];
  const timed = async (f: () => Promise<void>, into: number[]) => {
    const t0 = performance.now();
    await f();
    into.push(performance.now() - t0);
  };
  for (let i = 0; i < reps; i++) {
    if (i % 2 === 0) {
      await timed(a, ta);
      await timed(b, tb);
    } else {
      await timed(b, tb);
      await timed(a, ta);
    }
  }
  return { a: summarize(ta), b: summarize(tb), ratio: median(ta.map((t, i) => tb[i]! / t).sort((x, y) => x - y)) };
}

/** How many times longer a peer's sample took than ours: the paired ratio where there is one. */
export function ratioToOurs(theirs: Sample, ours: Sample): number {
  return theirs.paired_ratio ?? theirs.median_ms / ours.median_ms;
}

export function sample(op: string, shape: string, impl: string, flops: number, t: Timing, reps: number, bytes?: number): Sample {
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
