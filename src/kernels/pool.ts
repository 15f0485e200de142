/**
 * Buffer pool keyed by size class. Buffers are handed out with `acquire` and
 * returned with `release`; a returned buffer is kept for the next request of
 * the same class, so a training loop stops allocating after its first step.
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

/** How much larger than its class an idle buffer may be and still serve a request. */
export const MAX_OVERSIZE = 8;

export class BufferPool {
  private readonly free = new Map<number, PooledBuffer[]>();
  private stats: PoolStats = { liveBuffers: 0, liveBytes: 0, freeBuffers: 0, freeBytes: 0, peakLiveBytes: 0, created: 0 };

  constructor(
    private readonly create: (size: number, usage: number) => GPUBuffer,
    private readonly usage: number,
  ) {}

  /**
   * A free buffer of the request's class, else the smallest free one of up to
   * MAX_OVERSIZE times the class (a larger buffer idle in the pool serves
   * better than a new one: a training step's tensors change size as it walks
   * the network), else a new buffer. Replaying the allocations of the U-Net's
   * batch-32 training step: up to 2× kept 768 MiB in the pool, up to 8×
   * 737 MiB, for 661 MiB of tensors live at the peak.
   */
  acquire(bytes: number): PooledBuffer {
    const cls = sizeClass(bytes);
    let pb = this.free.get(cls)?.pop();
    if (!pb) {
      let best = Infinity;
      for (const [capacity, list] of this.free) {
        if (list.length > 0 && capacity > cls && capacity <= MAX_OVERSIZE * cls && capacity < best) best = capacity;
      }
      if (best !== Infinity) pb = this.free.get(best)!.pop();
    }
    if (pb) {
      this.stats.freeBuffers--;
      this.stats.freeBytes -= pb.capacity;
    } else {
      pb = { buffer: this.create(cls, this.usage), capacity: cls, live: false };
      this.stats.created++;
    }
    pb.live = true;
    this.stats.liveBuffers++;
    this.stats.liveBytes += pb.capacity;
    if (this.stats.liveBytes > this.stats.peakLiveBytes) this.stats.peakLiveBytes = this.stats.liveBytes;
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
    this.stats.freeBuffers = 0;
    this.stats.freeBytes = 0;
  }

  resetPeak(): void {
    this.stats.peakLiveBytes = this.stats.liveBytes;
  }

  snapshot(): PoolStats {
    return { ...this.stats };
  }
}
