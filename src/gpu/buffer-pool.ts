/**
 * Buffer pool keyed by size class. Buffers are handed out with `acquire` and
 * returned with `release`; a returned buffer is kept for the next request of
 * the same class (or a smaller one, below), and a training loop that marks
 * its steps (`beginStep`) gets, request by request, the buffers the step
 * before got, so it stops allocating after its first step.
 *
 * Size classes: multiples of 256 bytes up to 4 KiB, then eight per power of
 * two, 2^k · (1 + j/8), which wastes at most an eighth of a buffer. (Two per
 * power of two wasted a third on the U-Net's activations: 96 × 96 = 9 · 2^10
 * pixels sits just above a power of two; with eighths it is a class of its own.)
 */

export interface PooledBuffer {
  readonly buffer: GPUBuffer;
  /** Capacity of the underlying buffer (the size class). */
  readonly capacity: number;
  /** Set while the buffer is handed out; cleared on release. */
  live: boolean;
}

export interface PoolStats {
  /** Buffers handed out and not yet released. */
  liveBuffers: number;
  /** Bytes (capacity) of the buffers handed out. */
  liveBytes: number;
  /** Buffers waiting in the pool for reuse. */
  freeBuffers: number;
  freeBytes: number;
  /** Highest liveBytes seen since creation or the last resetPeak(). */
  peakLiveBytes: number;
  /** GPU buffers created so far (pool misses). */
  created: number;
}

export function sizeClass(bytes: number): number {
  const n = Math.max(256, Math.ceil(bytes / 256) * 256);
  if (n <= 4096) return n;
  const step = 2 ** Math.floor(Math.log2(n)) / 8;
  return Math.ceil(n / step) * step;
}

/** Requests of one step that beginStep's replay follows (a U-Net training step makes a few hundred). */
const MAX_TRACE = 1 << 16;

/** How much larger than its class an idle buffer may be and still serve a request. */
export const MAX_OVERSIZE = 8;

/** Whether a buffer of `capacity` bytes may serve a request of size class `cls`. */
function serves(capacity: number, cls: number): boolean {
  return capacity >= cls && capacity <= MAX_OVERSIZE * cls;
}

export class BufferPool {
  private readonly free = new Map<number, PooledBuffer[]>();
  private stats: PoolStats = { liveBuffers: 0, liveBytes: 0, freeBuffers: 0, freeBytes: 0, peakLiveBytes: 0, created: 0 };
  /** The buffers handed out since the last beginStep, in order (none before the first). */
  private trace: PooledBuffer[] = [];
  private recording = false;
  /** The trace of the step before, whose choices acquire repeats where it can. */
  private replay: PooledBuffer[] = [];
  /** Every buffer this pool made, by its GPU buffer (for Gpu.replay's checks). */
  private readonly made = new WeakMap<GPUBuffer, PooledBuffer>();

  constructor(
    private readonly create: (size: number, usage: number) => GPUBuffer,
    private readonly usage: number,
  ) {}

  /**
   * In a marked step, the buffer the step before's request at this position
   * got, where it is idle and serves the class (beginStep); else a free
   * buffer of the request's class, else the smallest free one of up to
   * MAX_OVERSIZE times the class (a larger buffer idle in the pool serves
   * better than a new one: a training step's tensors change size as it walks
   * the network), else a new buffer.
   */
  acquire(bytes: number): PooledBuffer {
    const cls = sizeClass(bytes);
    let pb = this.replayed(cls);
    pb ??= this.free.get(cls)?.pop();
    if (!pb) {
      let best = Infinity;
      for (const [capacity, list] of this.free) {
        if (list.length > 0 && serves(capacity, cls) && capacity < best) best = capacity;
      }
      if (best !== Infinity) pb = this.free.get(best)!.pop();
    }
    if (pb) {
      this.stats.freeBuffers--;
      this.stats.freeBytes -= pb.capacity;
    } else {
      pb = { buffer: this.create(cls, this.usage), capacity: cls, live: false };
      this.made.set(pb.buffer, pb);
      this.stats.created++;
    }
    this.handOut(pb);
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
    return pb;
  }

  private handOut(pb: PooledBuffer): void {
    pb.live = true;
    if (this.recording && this.trace.length < MAX_TRACE) this.trace.push(pb);
    this.stats.liveBuffers++;
    this.stats.liveBytes += pb.capacity;
  }

  /** The pooled buffer behind a GPU buffer, if this pool made it. */
  find(buffer: GPUBuffer): PooledBuffer | undefined {
    return this.made.get(buffer);
  }

  /**
   * Hands out exactly these idle buffers (a replayed program's, in the order
   * it first acquired them), or none and false when one of them is live or
   * was destroyed. `peakDelta` is what the program's own requests once added
   * to the live bytes at their highest: the peak is raised by that, not by
   * the sum of buffers claimed together that the program held one by one.
   */
  claim(buffers: readonly PooledBuffer[], peakDelta: number): boolean {
    const taken: PooledBuffer[] = [];
    const base = this.stats.liveBytes;
    for (const pb of buffers) {
      const list = this.free.get(pb.capacity);
      const at = list ? list.lastIndexOf(pb) : -1;
      if (at < 0) {
        for (const t of taken) this.release(t);
        return false;
      }
      list!.splice(at, 1);
      this.stats.freeBuffers--;
      this.stats.freeBytes -= pb.capacity;
      this.handOut(pb);
      taken.push(pb);
    }
    this.stats.peakLiveBytes = Math.max(this.stats.peakLiveBytes, base + peakDelta);
    return true;
  }

  /**
   * Marks the start of a step that repeats the one before (a training step):
   * from here on the n-th request gets the buffer the n-th request after the
   * previous mark got, where that one is idle and serves the request's class.
   * Which idle buffer serves a request otherwise depends on what is idle at
   * that moment, and the first step leaves idle what it created, so without
   * this the second step can choose differently and find its own class taken
   * (the U-Net at width 32 on a CPU adapter, where Winograd's scratch comes
   * and goes within each convolution, created buffers in its second to
   * fourth steps). Replaying a step whose requests and releases come in the
   * same order finds every buffer idle when it is asked for again, so it
   * creates nothing. The replayed buffer is preferred to an idle one of the
   * request's own class, so a request that differs from the step before's
   * (an evaluation between epochs) may get a larger idle buffer than it
   * otherwise would: the pool does not grow for it.
   */
  beginStep(): void {
    this.replay = this.trace;
    this.trace = [];
    this.recording = true;
  }

  /** The idle buffer the replayed step's request at this position got, if it serves class `cls`. */
  private replayed(cls: number): PooledBuffer | undefined {
    const pb = this.replay[this.trace.length];
    if (!pb || !serves(pb.capacity, cls)) return undefined;
    // Idle buffers are the ones in the free lists; a live one is not there.
    const list = this.free.get(pb.capacity);
    const at = list ? list.lastIndexOf(pb) : -1;
    if (at < 0) return undefined;
    list!.splice(at, 1);
    return pb;
  }

  release(pb: PooledBuffer): void {
    if (!pb.live) throw new Error('BufferPool.release: buffer released twice');
    pb.live = false;
    this.stats.liveBuffers--;
    this.stats.liveBytes -= pb.capacity;
    let list = this.free.get(pb.capacity);
    if (!list) this.free.set(pb.capacity, (list = []));
    list.push(pb);
    this.stats.freeBuffers++;
    this.stats.freeBytes += pb.capacity;
  }

  /** Destroys the buffers waiting for reuse (live ones are untouched). */
  trim(): void {
    for (const list of this.free.values()) for (const pb of list) pb.buffer.destroy();
    this.free.clear();
    // Positions in the trace would no longer line up with the next step's.
    this.trace = [];
    this.replay = [];
    this.stats.freeBuffers = 0;
    this.stats.freeBytes = 0;
  }

  /** Bytes (capacity) of the buffers handed out now. */
  get liveBytes(): number {
    return this.stats.liveBytes;
  }

  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
