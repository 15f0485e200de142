import { describe, expect, it } from 'vitest';
import { testGpu } from '../../test/helpers/gpu.js';
import { randomArray, rng } from '../../test/helpers/random.js';
import { allocTensor } from './tensor-view.js';
import { binary, unary } from '../ops/elementwise/kernel.js';
import { BufferPool, MAX_OVERSIZE, type PooledBuffer, sizeClass } from './buffer-pool.js';
import { GpuError } from './errors.js';
import { createNodeGpu } from './node-gpu.js';

describe('GPU runtime', () => {
  it('reports the adapter', async () => {
    const gpu = await testGpu();
    console.log('adapter:', gpu.adapterInfo);
    expect(gpu.adapterInfo.description.length).toBeGreaterThan(0);
    expect(gpu.limits.maxComputeWorkgroupStorageSize).toBeGreaterThanOrEqual(16384);
  });

  it('size classes cover the request and waste at most an eighth', () => {
    for (const n of [1, 255, 256, 257, 4096, 4097, 6144, 6145, 1 << 20, (1 << 20) + 1, 3_000_000, 32 * 96 * 96 * 32 * 4]) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c % 256).toBe(0);
      if (n > 4096) expect(c / n).toBeLessThanOrEqual(1.125);
    }
    // A batch-32 activation of the U-Net's first level is a class of its own.
    expect(sizeClass(32 * 96 * 96 * 32 * 4)).toBe(32 * 96 * 96 * 32 * 4);
    // Few classes: eight per power of two.
    const classes = new Set(Array.from({ length: 10_000 }, (_, i) => sizeClass(4097 + i * 997)));
    expect(classes.size).toBeLessThanOrEqual(8 * Math.ceil(Math.log2((4097 + 9_999 * 997) / 4096)) + 1);
  });

  it('a request with no free buffer of its class takes the smallest idle one of up to MAX_OVERSIZE times the class', () => {
    const made: number[] = [];
    const pool = new BufferPool((size) => {
      made.push(size);
      return { size, destroy() {} } as unknown as GPUBuffer;
    }, 0);
    const big = pool.acquire(1 << 20);
    const bigger = pool.acquire(3 << 20);
    pool.release(bigger);
    pool.release(big);
    const mid = pool.acquire(700_000); // class 786,432: the smallest idle buffer that fits, 1 MiB
    expect(mid.buffer).toBe(big.buffer);
    expect(pool.snapshot().liveBytes).toBe(1 << 20);
    pool.release(mid);
    const limit = (1 << 20) / MAX_OVERSIZE;
    const small = pool.acquire(limit / 2); // a class far under 1/MAX_OVERSIZE of 1 MiB: a new buffer
    expect(small.buffer).not.toBe(big.buffer);
    expect(small.buffer).not.toBe(bigger.buffer);
    expect(made).toEqual([1 << 20, 3 << 20, sizeClass(limit / 2)]);
    pool.release(small);
    const fits = pool.acquire(limit + 1); // class just over 1/MAX_OVERSIZE of 1 MiB: served by it
    expect(fits.buffer).toBe(big.buffer);
  });

  // A fixed random program of acquires and releases (sizes from 12 to 256 KiB,
  // so some serve each other), run as four steps from an empty pool, with or without beginStep
  // before each; the pool's count of created buffers after each step.
  function stepsOf(seed: number, mark: boolean): number[] {
    const r = rng(seed);
    const sizes = [3, 5, 8, 12, 30, 64].map((k) => 4096 * k);
    const ops: number[] = []; // ≥ 0: acquire that many bytes; < 0: release held[-op - 1]
    let held = 0;
    for (let i = 0; i < 30; i++) {
      if (held > 0 && r() < 0.45) ops.push(-1 - Math.floor(r() * held--));
      else (ops.push(sizes[Math.floor(r() * sizes.length)]!), held++);
    }
    const pool = new BufferPool((size) => ({ size, destroy() {} }) as unknown as GPUBuffer, 0);
    const created: number[] = [];
    for (let step = 0; step < 4; step++) {
      if (mark) pool.beginStep();
      const live: PooledBuffer[] = [];
      for (const op of ops) {
        if (op >= 0) live.push(pool.acquire(op));
        else pool.release(live.splice(-op - 1, 1)[0]!);
      }
      for (const pb of live) pool.release(pb);
      created.push(pool.snapshot().created);
    }
    return created;
  }

  it('a step marked with beginStep gets the buffers the step before got, so repeating it creates none', () => {
    let grew = 0;
    for (let seed = 1; seed <= 200; seed++) {
      const replayed = stepsOf(seed, true);
      expect(replayed, `program ${seed}`).toEqual(replayed.map(() => replayed[0]));
      const unmarked = stepsOf(seed, false);
      if (unmarked[3]! > unmarked[0]!) grew++;
    }
    // Without the marks which idle buffer serves a request depends on what the
    // step before left idle, and some programs create buffers in later steps.
    console.log(`programs creating buffers after their first step: ${grew} of 200 without beginStep, 0 with it`);
    expect(grew).toBeGreaterThan(0);
  });

  it("beginStep's replay hands out the step before's buffer over an idle one of the request's class, unless it is live or too large", () => {
    let made = 0;
    const pool = new BufferPool((size) => ({ size, id: made++, destroy() {} }) as unknown as GPUBuffer, 0);
    const MiB = 1 << 20;
    // Step 1: a 1 MiB buffer P, then two quarter-MiB requests: the first is
    // lent P (idle, within 8× of its class), the second gets a new buffer Q.
    pool.beginStep();
    const p = pool.acquire(MiB);
    pool.release(p);
    const s1 = pool.acquire(MiB / 4);
    const t1 = pool.acquire(MiB / 4);
    expect(s1.buffer).toBe(p.buffer);
    expect(t1.buffer).not.toBe(p.buffer);
    for (const pb of [s1, t1]) pool.release(pb);
    // Step 2 repeats it: the first quarter-MiB request gets P again, as in
    // step 1, though Q (its own class) is idle too; the second gets Q.
    pool.beginStep();
    pool.release(pool.acquire(MiB));
    const s2 = pool.acquire(MiB / 4);
    const t2 = pool.acquire(MiB / 4);
    expect(s2.buffer).toBe(p.buffer);
    expect(t2.buffer).toBe(t1.buffer);
    for (const pb of [s2, t2]) pool.release(pb);
    // Step 3 holds on to the 1 MiB buffer: the request whose step-2 buffer was
    // P, now live, gets Q; the next, whose step-2 buffer Q is now live, a new one.
    pool.beginStep();
    const held = pool.acquire(MiB);
    const s3 = pool.acquire(MiB / 4);
    const t3 = pool.acquire(MiB / 4);
    expect(s3.buffer).toBe(t1.buffer);
    expect(t3.buffer).not.toBe(p.buffer);
    expect(made).toBe(3);
    for (const pb of [held, s3, t3]) pool.release(pb);
    // A replayed buffer more than MAX_OVERSIZE times the request's class is
    // passed over: a sixteenth of a MiB gets an idle quarter-MiB buffer (4× its
    // class), not P (16×), which the request at its position got in step 3.
    expect(MAX_OVERSIZE).toBeLessThan(16);
    pool.beginStep();
    const small = pool.acquire(MiB / 16);
    expect(small.buffer).not.toBe(p.buffer);
    expect(small.capacity).toBe(MiB / 4);
    expect(made).toBe(3);
  });

  it('trim ends the replay: nothing destroyed is handed out again', () => {
    const destroyed: number[] = [];
    let made = 0;
    const pool = new BufferPool((size) => {
      const id = made++;
      return { size, id, destroy: () => destroyed.push(id) } as unknown as GPUBuffer;
    }, 0);
    pool.beginStep();
    const a = pool.acquire(1 << 20);
    pool.release(a);
    pool.beginStep();
    pool.trim();
    expect(destroyed).toEqual([0]);
    const b = pool.acquire(1 << 20);
    expect(b.buffer).not.toBe(a.buffer);
    expect(made).toBe(2);
  });

  it('live bytes come back to where they started after a loop of dispatches and releases', async () => {
    const gpu = await testGpu();
    await gpu.sync();
    const before = gpu.memory();
    const created: number[] = [];
    for (let step = 0; step < 20; step++) {
      const x = allocTensor(gpu, [3, 17, 19], randomArray(3 * 17 * 19, step));
      const y = allocTensor(gpu, [3, 17, 19]);
      const z = allocTensor(gpu, [3, 17, 19]);
      unary(gpu, 'relu', x, y);
      binary(gpu, 'mul', x, y, z);
      unary(gpu, 'sigmoid', z, y, { accumulate: true });
      if (step % 5 === 4) await gpu.readFloat32(z.view, 1);
      x.dispose();
      y.dispose();
      z.dispose();
      await gpu.sync();
      created.push(gpu.memory().created);
    }
    const after = gpu.memory();
    expect(after.liveBytes).toBe(before.liveBytes);
    expect(after.liveBuffers).toBe(before.liveBuffers);
    // Steady state: the pool stops creating buffers after the first step.
    expect(created.at(-1)).toBe(created[0]);
  });

  it('keeps the recorded order across shared compute passes, clears, copies and intermediate submissions', async () => {
    // Dispatches share a compute pass until a clear or a copy ends it, and the
    // encoder is submitted every few dispatches: 100 order-dependent steps
    // must still give what running them one by one gives.
    const gpu = await testGpu();
    const n = 1024;
    const x = allocTensor(gpu, [n], new Float32Array(n).fill(1));
    const y = allocTensor(gpu, [n], new Float32Array(n));
    const z = allocTensor(gpu, [n], new Float32Array(n));
    let want = 0;
    for (let i = 0; i < 100; i++) {
      if (i % 13 === 12) {
        gpu.clear(y.view);
        want = 0;
      } else if (i % 7 === 6) {
        gpu.copy(y.view, z.view);
        unary(gpu, 'affine', z, y, { alpha: 0.5, beta: 3 });
        want = 0.5 * want + 3;
      } else {
        binary(gpu, 'add', x, x, y, { accumulate: true });
        want += 2;
      }
    }
    const out = await gpu.readFloat32(y.view, n);
    expect(want).not.toBe(0);
    expect(out.every((v) => v === want)).toBe(true);
    for (const t of [x, y, z]) t.dispose();
  });

  it('submits after 16 dispatches once the GPU is idle, then after twice as many each time up to the maximum', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [64], new Float32Array(64).fill(1));
    const y = allocTensor(gpu, [64]);
    const sizes: number[] = [];
    let since = 0;
    const schedule = gpu.submitSchedule;
    const submit = gpu.device.queue.submit.bind(gpu.device.queue);
    gpu.device.queue.submit = (buffers: Iterable<GPUCommandBuffer>) => (sizes.push(since), (since = 0), submit(buffers));
    const record = (n: number) => {
      for (let i = 0; i < n; i++) {
        since++; // before: the dispatch that fills the encoder submits it
        binary(gpu, 'add', x, x, y);
      }
    };
    try {
      await gpu.sync();
      sizes.length = 0;
      record(1000);
      expect(sizes).toEqual([16, 32, 64, 128, 256, 256]);
      await gpu.sync(); // the rest (248), then the schedule starts again
      expect(sizes.slice(6)).toEqual([248]);
      sizes.length = 0;
      record(40);
      expect(sizes).toEqual([16]);
      gpu.submitSchedule = { first: 16, max: 16 };
      await gpu.sync();
      sizes.length = 0;
      record(40);
      expect(sizes).toEqual([16, 16]);
      expect(Array.from(await gpu.readFloat32(y.view, 64))).toEqual(new Array(64).fill(2));
    } finally {
      gpu.device.queue.submit = submit;
      gpu.submitSchedule = schedule;
      await gpu.sync();
      for (const t of [x, y]) t.dispose();
    }
  });

  it('reuses the bind group of a dispatch with the same kernel, buffers and uniforms, and makes a new one otherwise', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [64], new Float32Array(64).fill(2));
    const y = allocTensor(gpu, [64]);
    const z = allocTensor(gpu, [64]);
    let made = 0;
    const create = gpu.device.createBindGroup.bind(gpu.device);
    gpu.device.createBindGroup = (d: GPUBindGroupDescriptor) => (made++, create(d));
    try {
      unary(gpu, 'affine', x, y, { alpha: 0.25, beta: 1 });
      const first = made;
      unary(gpu, 'affine', x, y, { alpha: 0.25, beta: 1 }); // the same bindings and uniform block
      expect(made).toBe(first);
      unary(gpu, 'affine', x, y, { alpha: 0.5, beta: 1 }); // another uniform block
      expect(made).toBe(first + 1);
      unary(gpu, 'affine', x, z, { alpha: 0.5, beta: 1 }); // another buffer
      expect(made).toBe(first + 2);
      expect(Array.from(await gpu.readFloat32(y.view, 64))).toEqual(new Array(64).fill(2));
      expect(Array.from(await gpu.readFloat32(z.view, 64))).toEqual(new Array(64).fill(2));
    } finally {
      gpu.device.createBindGroup = create;
      for (const t of [x, y, z]) t.dispose();
    }
  });

  it('keeps every uniform block right when there are more of them than the runtime keeps', async () => {
    // 1,100 dispatches, each with a uniform block of its own (the runtime keeps
    // 1,024 and then reuses their slots), accumulating into one tensor.
    const gpu = await testGpu();
    const x = allocTensor(gpu, [64], new Float32Array(64).fill(1));
    const y = allocTensor(gpu, [64], new Float32Array(64));
    let want = 0;
    for (let i = 1; i <= 1100; i++) {
      const alpha = Math.fround(i / 1024);
      unary(gpu, 'affine', x, y, { alpha, beta: 0, accumulate: true });
      want = Math.fround(want + alpha);
    }
    const out = await gpu.readFloat32(y.view, 64);
    expect(Array.from(out)).toEqual(new Array(64).fill(want));
    for (const t of [x, y]) t.dispose();
  });

  it('a recorded dispatch keeps its uniform block when the runtime reuses slots before it is submitted', async () => {
    // A device of its own, so that the runtime's 1,024 kept blocks are exactly these.
    const gpu = await createNodeGpu({ backend: process.env.WGSL_UNET_BACKEND, adapter: process.env.WGSL_UNET_ADAPTER });
    try {
      const x = allocTensor(gpu, [64], new Float32Array(64).fill(1));
      const [y, z] = [allocTensor(gpu, [64]), allocTensor(gpu, [64])];
      const alpha = (i: number) => Math.fround(1 + i / 4096);
      for (let i = 0; i < 1024; i++) unary(gpu, 'affine', x, z, { alpha: alpha(i), beta: 0 });
      await gpu.sync();
      // Recorded, not submitted: it finds block 0 among the kept ones…
      unary(gpu, 'affine', x, y, { alpha: alpha(0), beta: 0 });
      // …and this new block needs a slot when all are taken.
      unary(gpu, 'affine', x, z, { alpha: 5, beta: 0 });
      expect(Array.from(await gpu.readFloat32(y.view, 64))).toEqual(new Array(64).fill(alpha(0)));
      expect(Array.from(await gpu.readFloat32(z.view, 64))).toEqual(new Array(64).fill(5));
    } finally {
      gpu.destroy();
    }
  });

  it('turns a GPU validation error into an exception naming the kernel and shapes', async () => {
    const gpu = await testGpu();
    const x = allocTensor(gpu, [64]);
    // Binding one buffer read-only and read-write in one dispatch is invalid.
    unary(gpu, 'relu', x, x);
    await expect(gpu.sync()).rejects.toThrow(GpuError);
    await expect(gpu.sync()).rejects.toThrow(/unary relu \[64\]/);
  });

  it('names the dispatch of an invalid bind group made first after a submit', async () => {
    // A device of its own: a GPU error fails the device for good.
    const gpu = await createNodeGpu({ backend: process.env.WGSL_UNET_BACKEND, adapter: process.env.WGSL_UNET_ADAPTER });
    try {
      const x = allocTensor(gpu, [128]);
      const y = allocTensor(gpu, [60]);
      await gpu.sync(); // no encoder open: the next dispatch starts a new batch
      // Storage bindings must start at a multiple of 256 bytes: the bind group is invalid.
      const misaligned = { shape: [60], view: { ...x.view, offset: x.view.offset + 4, size: 240 } };
      unary(gpu, 'relu', misaligned, y);
      // Caught by the batch's error scope, which lists its dispatches (not as an error outside any recorded work).
      await expect(gpu.sync()).rejects.toThrow(/while running 1 dispatch\(es\); last recorded:\s+unary relu \[60\]/);
    } finally {
      gpu.destroy();
    }
  });
});
