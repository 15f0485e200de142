/**
 * GPU time of our dispatches by timestamp queries, where the adapter offers
 * them: every compute pass recorded while the timer is attached writes a
 * begin and an end timestamp, read back per pass. The benchmarks and the
 * convolution tuner (ops/conv/tune.ts) use it. (Dawn quantises timestamps
 * unless started with disable-dawn-features=timestamp_quantization, as
 * bench/main.ts is.)
 */
import { BufferUsage, type DispatchObserver, type Gpu } from './gpu.js';

const MAX_PASSES = 2048;

export class GpuTimer implements DispatchObserver {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private passes = 0;
  private labels: string[] = [];
  overflow = false;

  constructor(private readonly gpu: Gpu) {
    this.querySet = gpu.device.createQuerySet({ type: 'timestamp', count: 2 * MAX_PASSES });
    this.resolve = gpu.device.createBuffer({ size: 16 * MAX_PASSES, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC });
  }

  timestampWrites(label: string): GPUComputePassTimestampWrites | undefined {
    if (this.passes >= MAX_PASSES) {
      this.overflow = true;
      return undefined;
    }
    const i = this.passes++;
    this.labels[i] = label;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /**
   * Records `run` with a timestamp on every pass (the timer attached as the
   * device's observer), waits for the GPU and returns each pass's label and
   * GPU milliseconds. With `tag`, only the dispatches it names are timed,
   * under its name instead of their label; the others share passes as usual.
   */
  async passesOf(run: () => void | Promise<void>, tag?: (label: string) => string | null): Promise<{ label: string; ms: number }[]> {
    this.gpu.observer = tag ? { timestampWrites: (label) => { const t = tag(label); return t === null ? undefined : this.timestampWrites(t); } } : this;
    try {
      await run();
    } finally {
      this.gpu.observer = null;
    }
    await this.gpu.sync();
    return this.collectPasses();
  }

  /** Milliseconds of GPU time of `run`'s passes, as passesOf records them. */
  async time(run: () => void | Promise<void>): Promise<number> {
    return (await this.passesOf(run)).reduce((sum, p) => sum + p.ms, 0);
  }

  /** Each pass recorded since the last collect: its dispatch's label and GPU milliseconds. */
  private async collectPasses(): Promise<{ label: string; ms: number }[]> {
    const n = this.passes;
    this.passes = 0;
    if (n === 0) return [];
    this.gpu.recorder().resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0);
    const stamps = new BigUint64Array(await this.gpu.read({ buffer: this.resolve, offset: 0, size: 16 * n }));
    const out: { label: string; ms: number }[] = [];
    for (let i = 0; i < n; i++) {
      const ns = stamps[2 * i + 1]! > stamps[2 * i]! ? stamps[2 * i + 1]! - stamps[2 * i]! : 0n;
      out.push({ label: this.labels[i]!, ms: Number(ns) / 1e6 });
    }
    return out;
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
  }
}
