import { describe, expect, it } from 'vitest';
import { testGpu } from '../../test/helpers/gpu.js';
import { randomArray } from '../../test/helpers/random.js';
import { binary, unary } from '../ops/elementwise/kernel.js';
import type { PooledBuffer } from './buffer-pool.js';
import type { BufferView, Gpu } from './gpu.js';
import type { GpuTensor } from './tensor-view.js';
import { Replays } from '../autograd/replay.js';
import { Tensor } from '../autograd/tensor.js';

const SHAPE = [3, 7, 11];
const N = 3 * 7 * 11;

function pooled(gpu: Gpu, data?: Float32Array): { pb: PooledBuffer; t: GpuTensor } {
  const pb = gpu.acquire(N * 4);
  const t = { view: { buffer: pb.buffer, offset: 0, size: N * 4 }, shape: SHAPE };
  if (data) gpu.upload(t.view, data);
  return { pb, t };
}

const relu = (v: number) => Math.max(0, v);

/**
 * relu(a + b) · w + a, through a scratch buffer, a clear and a copy: the
 * work a capture must repeat. `w` is held outside (like parameters).
 */
function work(gpu: Gpu, a: GpuTensor, b: GpuTensor, w: GpuTensor): BufferView[] {
  const s = pooled(gpu);
  const u = pooled(gpu);
  const out = pooled(gpu);
  gpu.clear(out.t.view);
  binary(gpu, 'add', a, b, s.t);
  unary(gpu, 'relu', s.t, u.t);
  binary(gpu, 'mul', u.t, w, s.t);
  gpu.copy(s.t.view, u.t.view);
  binary(gpu, 'add', u.t, a, out.t);
  gpu.release(s.pb);
  gpu.release(u.pb);
  return [out.t.view];
}

function expected(a: Float32Array, b: Float32Array, w: Float32Array): Float32Array {
  const f = Math.fround;
  return a.map((v, i) => f(f(relu(f(v + b[i]!)) * w[i]!) + v));
}

describe('capture and replay', () => {
  it('a replay records the captured work again, on the captured inputs or others of the same size', async () => {
    const gpu = await testGpu();
    const [ha, hb, hw, hc] = [1, 2, 3, 4].map((s) => randomArray(N, s));
    const a = pooled(gpu, ha!);
    const b = pooled(gpu, hb!);
    const w = pooled(gpu, hw!);
    // Other inputs, taken before the capture: taken after, they could be its idle buffers.
    const c = pooled(gpu, ha!);
    const d = pooled(gpu, hw!);
    const { result, program } = gpu.capture('test', [a.t.view, b.t.view], () => work(gpu, a.t, b.t, w.t), (r) => r);
    expect(program.dispatches).toBe(4);
    expect(await gpu.readFloat32(result[0]!, N)).toEqual(expected(ha!, hb!, hw!));
    gpu.release(gpu.findPooled(result[0]!.buffer)!);

    // New contents in the captured inputs, then other buffers, then the inputs swapped.
    gpu.upload(a.t.view, hc!);
    const d0 = gpu.dispatchCount;
    let out = gpu.replay(program, [a.t.view, b.t.view])!;
    expect(gpu.dispatchCount - d0).toBe(4);
    expect(out).toHaveLength(1);
    expect(await gpu.readFloat32({ buffer: out[0]!.buffer, offset: 0, size: N * 4 }, N)).toEqual(expected(hc!, hb!, hw!));
    gpu.release(out[0]!);
    out = gpu.replay(program, [c.t.view, d.t.view])!;
    expect(await gpu.readFloat32({ buffer: out[0]!.buffer, offset: 0, size: N * 4 }, N)).toEqual(expected(ha!, hw!, hw!));
    gpu.release(out[0]!);
    out = gpu.replay(program, [b.t.view, a.t.view])!;
    expect(await gpu.readFloat32({ buffer: out[0]!.buffer, offset: 0, size: N * 4 }, N)).toEqual(expected(hb!, hc!, hw!));
    gpu.release(out[0]!);
    expect(() => gpu.replay(program, [a.t.view])).toThrow(/inputs of .* bytes given for inputs of/);
    for (const p of [a, b, w, c, d]) gpu.release(p.pb);
    // A setting that changes what the same code records: captured programs stop replaying.
    gpu.invalidatePrograms();
    expect(gpu.replay(program, [a.t.view, b.t.view])).toBeNull();
    gpu.disposeProgram(program);
  });

  it('a replay claims the buffers the capture took, and keeps the peak the captured work had', async () => {
    const gpu = await testGpu();
    const a = pooled(gpu, randomArray(N, 5));
    const w = pooled(gpu, randomArray(N, 6));
    const { result, program } = gpu.capture('test', [a.t.view, a.t.view], () => work(gpu, a.t, a.t, w.t), (r) => r);
    gpu.release(gpu.findPooled(result[0]!.buffer)!);
    expect(program.claimed).toHaveLength(3);
    const live = gpu.memory().liveBytes;
    gpu.resetPeakMemory();
    const out = gpu.replay(program, [a.t.view, a.t.view])!;
    // The scratch buffer went back; the output is the caller's.
    expect(gpu.memory().liveBytes).toBe(live + out[0]!.capacity);
    expect(gpu.memory().peakLiveBytes).toBe(live + program.peakDelta);
    // A claimed buffer in use: the replay records nothing and gives nothing.
    const d0 = gpu.dispatchCount;
    expect(gpu.replay(program, [a.t.view, a.t.view])).toBeNull();
    expect(gpu.dispatchCount).toBe(d0);
    expect(gpu.memory().liveBytes).toBe(live + out[0]!.capacity);
    gpu.release(out[0]!);
    expect(gpu.replay(program, [a.t.view, a.t.view])).not.toBeNull();
    gpu.release(gpu.findPooled(program.outputs[0]!.buffer)!);
    // A buffer the program reads but did not take (w) has gone back to the pool.
    gpu.release(w.pb);
    expect(gpu.replay(program, [a.t.view, a.t.view])).toBeNull();
    // The capture's buffers destroyed by a trim.
    const w2 = pooled(gpu, randomArray(N, 7));
    const again = gpu.capture('test', [a.t.view, a.t.view], () => work(gpu, a.t, a.t, w2.t), (r) => r);
    gpu.release(gpu.findPooled(again.result[0]!.buffer)!);
    gpu.trimPool();
    expect(gpu.replay(again.program, [a.t.view, a.t.view])).toBeNull();
    gpu.release(a.pb);
    gpu.release(w2.pb);
  });

  it('refuses host work inside a capture, outputs it did not make, and buffers it keeps unsaid', async () => {
    const gpu = await testGpu();
    const a = pooled(gpu, randomArray(N, 8));
    expect(() => gpu.capture('test', [], () => gpu.upload(a.t.view, new Float32Array(N)), () => [])).toThrow(/upload inside Gpu.capture/);
    expect(() => gpu.capture('test', [], () => gpu.trimPool(), () => [])).toThrow(/trimPool inside Gpu.capture/);
    expect(() => gpu.capture('test', [], () => null, () => [a.t.view])).toThrow(/output 0 is not a buffer acquired inside the capture/);
    let kept: PooledBuffer | null = null;
    expect(() =>
      gpu.capture('test', [a.t.view], () => {
        kept = pooled(gpu).pb;
        return [];
      }, () => []),
    ).toThrow(/1 buffer\(s\) acquired inside the capture are still held but are not outputs/);
    gpu.release(kept!);
    // A capture that binds part of an input outside its range says so.
    const part = { ...a.t.view, size: 256 };
    const s = pooled(gpu);
    expect(() => gpu.capture('test', [part], () => unary(gpu, 'relu', a.t, s.t), () => [])).toThrow(/outside the input's range/);
    // Nothing is left capturing after a failure.
    gpu.upload(a.t.view, new Float32Array(N));
    gpu.release(s.pb);
    gpu.release(a.pb);
  });

  it('Replays runs the code once, replays it after, captures again when a replay fails, and gives up on a key that keeps failing', async () => {
    const gpu = await testGpu();
    const x = Tensor.from(gpu, SHAPE, randomArray(N, 9));
    const w = Tensor.from(gpu, SHAPE, randomArray(N, 10));
    const replays = new Replays(gpu);
    let runs = 0;
    const body = () => {
      runs++;
      const y = Tensor.empty(gpu, SHAPE);
      binary(gpu, 'mul', x, w, y);
      return [y];
    };
    const want = await (() => {
      const [y] = replays.run('k', [x], body);
      return y!.read().finally(() => y!.dispose());
    })();
    for (let i = 0; i < 3; i++) {
      const [y] = replays.run('k', [x], body);
      expect(y!.shape).toEqual(SHAPE);
      expect(await y!.read()).toEqual(want);
      y!.dispose();
    }
    expect(runs).toBe(1);
    // Outputs kept: the first replay succeeds, each later one finds its output
    // still held, so the code runs again: captured three more times (four in
    // all), then run without capture.
    const held: Tensor[] = [];
    for (let i = 0; i < 6; i++) held.push(...replays.run('k', [x], body));
    expect(runs).toBe(1 + 3 + 2);
    for (const t of held) expect(await t.read()).toEqual(want);
    for (const t of held) t.dispose();
    replays.dispose();
    x.dispose();
    w.dispose();
  });
});
