import { describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { randomArray } from '../helpers/random.js';
import { PARAMETER_ALIGNMENT_FLOATS, ParameterStore } from '../../src/model/parameters.js';
import { Adam, TUTORIAL_ADAM } from '../../src/model/adam.js';

// Odd sizes so that every parameter but the first needs padding before it.
const SHAPES: Record<string, number[]> = {
  'a/kernel': [3, 3, 1, 5],
  'a/bias': [5],
  'b/kernel': [2, 2, 3, 7],
  'b/bias': [1],
};
const NAMES = Object.keys(SHAPES);
const size = (s: readonly number[]) => s.reduce((x, y) => x * y, 1);

function initial(seed: number): Map<string, Float32Array> {
  return new Map(NAMES.map((k, i) => [k, randomArray(size(SHAPES[k]!), seed + i)]));
}

async function makeStore(seed = 1): Promise<ParameterStore> {
  const gpu = await testGpu();
  const store = new ParameterStore();
  for (const [k, v] of initial(seed)) store.add(k, SHAPES[k]!, v);
  store.finalize(gpu);
  return store;
}

describe('ParameterStore', () => {
  it('lays parameters out at 256-byte offsets with zero padding, and reads them back in one go', async () => {
    const gpu = await testGpu();
    const store = await makeStore();
    expect(store.count).toBe(45 + 5 + 84 + 1);
    expect(store.params.map((p) => p.offset)).toEqual([0, 64, 128, 256]);
    for (const p of store.params) expect(p.offset % PARAMETER_ALIGNMENT_FLOATS).toBe(0);
    expect(store.length).toBe(320);
    expect(store.flatParams.shape).toEqual([320]);
    const got = await store.readAll();
    expect([...got.keys()]).toEqual(NAMES);
    for (const [k, v] of initial(1)) expect(got.get(k)).toEqual(v);
    // The padding is zero in both buffers.
    const flat = await gpu.readFloat32(store.flatParams.view);
    const grads = await gpu.readFloat32(store.flatGrads.view);
    const inParam = new Uint8Array(store.length);
    for (const p of store.params) inParam.fill(1, p.offset, p.offset + p.size);
    for (let i = 0; i < store.length; i++) {
      if (!inParam[i]) expect(flat[i]).toBe(0);
      expect(grads[i]).toBe(0);
    }
    // Parameter tensors are views into the flat buffers.
    const bk = store.get('b/kernel');
    expect(bk.requiresGrad).toBe(true);
    expect(bk.view.buffer).toBe(store.flatParams.view.buffer);
    expect(bk.view.offset).toBe(128 * 4);
    expect(bk.grad!.view.buffer).toBe(store.flatGrads.view.buffer);
    expect(await bk.read()).toEqual(initial(1).get('b/kernel'));
    expect(() => store.get('c/kernel')).toThrow(/no parameter named c\/kernel/);
    store.dispose();
  });

  it('load() checks every name and shape before writing anything', async () => {
    const store = await makeStore();
    const before = await store.readAll();
    const wrong = initial(50);
    wrong.set('b/kernel', new Float32Array(83));
    expect(() => store.load(wrong)).toThrow(/b\/kernel expects shape \[2, 2, 3, 7\] \(84 values\) but got 83 values/);
    const shaped = new Map<string, Float32Array | { shape: number[]; data: Float32Array }>(initial(50));
    shaped.set('a/kernel', { shape: [3, 3, 5, 1], data: new Float32Array(45) });
    expect(() => store.load(shaped)).toThrow(/a\/kernel expects shape \[3, 3, 1, 5\] but got \[3, 3, 5, 1\]/);
    const missing = initial(50);
    missing.delete('a/bias');
    expect(() => store.load(missing)).toThrow(/a\/bias \(shape \[5\]\) is missing/);
    const extra = initial(50);
    extra.set('z/bias', new Float32Array(3));
    expect(() => store.load(extra)).toThrow(/unexpected tensor z\/bias/);
    expect(await store.readAll()).toEqual(before); // nothing was written
    // A correct load round-trips, shaped or not.
    const good = new Map<string, Float32Array | { shape: number[]; data: Float32Array }>(initial(50));
    good.set('a/kernel', { shape: [3, 3, 1, 5], data: initial(50).get('a/kernel')! });
    store.load(good);
    expect(await store.readAll()).toEqual(initial(50));
    store.dispose();
  });

  it('zeroGrads clears the whole gradient buffer with one clear', async () => {
    const gpu = await testGpu();
    const store = await makeStore();
    gpu.upload(store.flatGrads.view, randomArray(store.length, 9));
    expect((await store.readGrads()).get('a/bias')!.some((v) => v !== 0)).toBe(true);
    store.zeroGrads();
    const grads = await gpu.readFloat32(store.flatGrads.view);
    expect(grads.every((v) => v === 0)).toBe(true);
    store.dispose();
  });

  it('refuses misuse with specific errors', async () => {
    const gpu = await testGpu();
    const store = new ParameterStore();
    expect(() => store.get('x')).toThrow(/call finalize\(gpu\) first/);
    store.add('x', [2, 3], 'zeros');
    expect(() => store.add('x', [2], 'zeros')).toThrow(/named x already exists/);
    expect(() => store.add('y', [2, 0], 'zeros')).toThrow(/invalid shape \[2, 0\]/);
    expect(() => store.add('y', [2, 2], new Float32Array(3))).toThrow(/3 initial values given for shape \[2, 2\]/);
    store.finalize(gpu);
    expect(() => store.add('z', [1], 'zeros')).toThrow(/already finalized/);
    expect(await store.get('x').read()).toEqual(new Float32Array(6));
    store.dispose();
    expect(() => store.zeroGrads()).toThrow(/disposed/);
  });
});

/** The Keras update in float64, per parameter. */
function kerasAdam(p: Float64Array, m: Float64Array, v: Float64Array, g: Float32Array, t: number, lr: number): void {
  const { beta1, beta2, epsilon } = TUTORIAL_ADAM;
  const lrT = (lr * Math.sqrt(1 - beta2 ** t)) / (1 - beta1 ** t);
  for (let i = 0; i < p.length; i++) {
    m[i] = beta1 * m[i]! + (1 - beta1) * g[i]!;
    v[i] = beta2 * v[i]! + (1 - beta2) * g[i]! * g[i]!;
    p[i] = p[i]! - (lrT * m[i]!) / (Math.sqrt(v[i]!) + epsilon);
  }
}

describe('Adam over a ParameterStore', () => {
  it('follows the Keras update, keeps the padding at zero, and resumes from saved state', async () => {
    const gpu = await testGpu();
    const lr = 1e-2;
    const store = await makeStore();
    const adam = new Adam(store, { lr });
    expect(adam.options).toEqual({ ...TUTORIAL_ADAM, lr });
    const ref = new Map([...initial(1)].map(([k, v]) => [k, { p: Float64Array.from(v), m: new Float64Array(v.length), v: new Float64Array(v.length) }]));
    const gradsAt = (t: number) => initial(100 * t);
    const stepBoth = (a: Adam, t: number) => {
      const g = gradsAt(t);
      gpu.upload(store.flatGrads.view, store.pack(g, 'test'));
      a.step();
      for (const [k, r] of ref) kerasAdam(r.p, r.m, r.v, g.get(k)!, t, lr);
    };
    stepBoth(adam, 1);
    stepBoth(adam, 2);
    expect(adam.t).toBe(2);
    const saved = await adam.readState();
    expect(saved.t).toBe(2);
    for (const [k, r] of ref) {
      const got = saved.m.get(k)!;
      for (let i = 0; i < got.length; i++) expect(Math.abs(got[i]! - r.m[i]!)).toBeLessThan(1e-6);
    }
    // A fresh optimiser loaded from the saved state continues exactly where the first stopped.
    adam.dispose();
    const resumed = new Adam(store, { lr });
    resumed.loadState(saved);
    expect(resumed.t).toBe(2);
    stepBoth(resumed, 3);
    const got = await store.readAll();
    for (const [k, r] of ref) {
      const p = got.get(k)!;
      for (let i = 0; i < p.length; i++) expect(Math.abs(p[i]! - r.p[i]!)).toBeLessThan(1e-5);
    }
    const flat = await gpu.readFloat32(store.flatParams.view);
    expect(flat.slice(45, 64).every((v) => v === 0)).toBe(true);
    // Bad state is refused with the tensor's name.
    const bad = { ...saved, v: new Map(saved.v) };
    bad.v.set('a/bias', Float32Array.of(1, 1, -1, 1, 1));
    expect(() => resumed.loadState(bad)).toThrow(/a\/bias\[2\] is -1/);
    const short = { ...saved, m: new Map(saved.m) };
    short.m.delete('b/bias');
    expect(() => resumed.loadState(short)).toThrow(/Adam\.loadState \(m\): tensor b\/bias/);
    resumed.dispose();
    store.dispose();
  });
});
