/**
 * Buffer pool keyed by size class. Buffers are handed out with `acquire` and
 * returned with `release`; a returned buffer is kept for the next request of
 * the same class, so a training loop stops allocating after its first step.
 *
 * Size classes: multiples of 256 bytes up to 4 KiB, then 2^k and 1.5·2^k,
 * which wastes at most a third of a buffer and keeps the class count small.
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
  const p = 2 ** Math.floor(Math.log2(n));
  if (n === p) return p;
  if (n <= p * 1.5) return p * 1.5;
  return p * 2;
}

export class BufferPool {
  private readonly free = new Map<number, PooledBuffer[]>();
  private stats: PoolStats = { liveBuffers: 0, liveBytes: 0, freeBuffers: 0, freeBytes: 0, peakLiveBytes: 0, created: 0 };

  constructor(
    private readonly create: (size: number, usage: number) => GPUBuffer,
    private readonly usage: number,
  ) {}

  acquire(bytes: number): PooledBuffer {
    const cls = sizeClass(bytes);
    const list = this.free.get(cls);
    let pb = list?.pop();
    if (pb) {
      this.stats.freeBuffers--;
      this.stats.freeBytes -= cls;
    } else {
      pb = { buffer: this.create(cls, this.usage), capacity: cls, live: false };
      this.stats.created++;
    }
    pb.live = true;
    this.stats.liveBuffers++;
    this.stats.liveBytes += cls;
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
