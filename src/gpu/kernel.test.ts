/**
 * Every kernel declaration (kernel.ts) against its shader's text:
 * the entry points exist, each named buffer sits at the binding it is bound
 * to, the uniform fields match the WGSL struct in order and type, the
 * overrides are declared, and the constants written in front are declared
 * nowhere else. Then what a dispatch does with names.
 */
import { describe, expect, it } from 'vitest';
import type { Dispatch, Gpu } from './gpu.js';
import { declareKernel, declaredKernels, uniformBlock } from './kernel.js';
// The modules that declare kernels, loaded for their declarations.
import '../ops/adam/kernel.js';
import '../ops/concat/kernel.js';
import '../ops/dice/kernel.js';
import '../ops/elementwise/kernel.js';
import '../ops/elu/kernel.js';
import '../ops/adam/loss-scale.js';
import '../ops/maxpool/kernel.js';
import '../ops/augment/kernel.js';
import '../ops/reduce/kernel.js';
import '../ops/conv/gemm.js';
import '../ops/conv/sums.js';
import '../software/conv.js';
import '../../bench/ceiling.js';
import '../../bench/mma-ceiling.js';

const withoutComments = (wgsl: string) => wgsl.replace(/\/\/[^\n]*/g, '');

/** The fields of `struct name { … }`. */
function structFields(wgsl: string, name: string): [string, string][] {
  const body = new RegExp(`struct ${name}\\s*\\{([^}]*)\\}`).exec(wgsl);
  if (!body) throw new Error(`struct ${name} not found`);
  return body[1]!.split(',').map((f) => f.trim()).filter(Boolean).map((f) => {
    const [field, type] = f.split(':').map((s) => s.trim());
    return [field!, type!];
  });
}

/** The variable names declared at each binding of group 0. */
function bindings(wgsl: string): Map<number, { names: string[]; uniform: boolean }> {
  const out = new Map<number, { names: string[]; uniform: boolean }>();
  for (const m of wgsl.matchAll(/@group\(0\)\s*@binding\((\d+)\)\s*var<(\w+)[^>]*>\s*(\w+)/g)) {
    const slot = out.get(+m[1]!) ?? { names: [], uniform: false };
    slot.names.push(m[3]!);
    slot.uniform ||= m[2] === 'uniform';
    out.set(+m[1]!, slot);
  }
  return out;
}

const count = (wgsl: string, re: RegExp) => [...wgsl.matchAll(re)].length;

describe('kernel declarations', () => {
  const kernels = [...declaredKernels()]; // before the example below declares its own

  it('cover every shader the engine dispatches', () => {
    expect(kernels.map((k) => k.declaration.name).sort()).toEqual([
      'adam', 'augment', 'binary', 'concat', 'conv_direct', 'conv_mma', 'conv_rows', 'conv_tiled', 'dice', 'elu', 'fma_peak', 'loss_scale',
      'maxpool', 'mma_peak', 'reduce', 'split_sum', 'unary', 'weights_transpose', 'winograd2', 'winograd4',
    ]);
  });

  for (const k of kernels) {
    const d = k.declaration;
    const wgsl = withoutComments(k.source());
    describe(d.name, () => {
      it('entry points and the buffers bound to them', () => {
        const slots = bindings(wgsl);
        for (const [entry, names] of Object.entries<readonly string[]>(d.entryPoints)) {
          expect(wgsl, `entry point ${entry}`).toMatch(new RegExp(`@compute[^{]*fn ${entry}\\(`));
          names.forEach((name, i) => {
            const declared = slots.get(i + 1)?.names ?? [];
            // A vec4 view of the same buffer is the same name with a 4.
            expect(declared.filter((n) => n === name || n === `${name}4`), `${entry}: ${name} at @binding(${i + 1}) among ${declared}`).not.toEqual([]);
          });
        }
        expect(slots.get(0)?.uniform ?? false, 'a uniform block at @binding(0)').toBe(d.uniforms !== undefined);
      });

      if (d.uniforms) {
        it(`the fields of its uniform struct ${d.struct ?? 'Params'}`, () => {
          expect(d.uniforms!.map(([n, t]) => [n, t])).toEqual(structFields(wgsl, d.struct ?? 'Params'));
        });
      }

      it('overrides declared in the WGSL, and constants written only in front', () => {
        for (const o of d.overrides ?? []) expect(count(wgsl, new RegExp(`override ${o}\\b`, 'g')), `override ${o}`).toBe(1);
        for (const c of Object.keys(d.defines ?? {})) expect(count(wgsl, new RegExp(`(const|override) ${c}\\b`, 'g')), `constant ${c}`).toBe(1);
      });

      if (d.types) {
        it('element types written only in front, as f32 aliases unless a dispatch says f16, and used', () => {
          for (const t of d.types!) {
            expect(count(wgsl, new RegExp(`alias ${t} = f32;`, 'g')), `alias ${t}`).toBe(1);
            expect(count(wgsl, new RegExp(`\\b${t}\\b`, 'g')), `uses of ${t}`).toBeGreaterThan(1);
          }
          const half = k.source(undefined, { [d.types![0]!]: 'f16' });
          expect(half).toMatch(/^enable f16;/);
          expect(half).toContain(`alias ${d.types![0]} = f16;`);
        });
      }
    });
  }
});

describe('a declared kernel', () => {
  const source = `struct Params { n: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
override ACCUMULATE: bool = false;
@compute @workgroup_size(GROUP) fn main() {}`;
  const k = declareKernel({
    name: 'example', parts: [source], defines: { GROUP: 64 }, entryPoints: { main: ['x', 'y'] },
    uniforms: [['n', 'u32'], ['scale', 'f32']], overrides: ['ACCUMULATE'],
  });
  const recorded: Dispatch[] = [];
  const gpu = { kernel: (name: string) => ({ name }), dispatch: (d: Dispatch) => recorded.push(d) } as unknown as Gpu;
  const x = { buffer: 'x' as unknown as GPUBuffer, offset: 0, size: 16 };
  const y = { buffer: 'y' as unknown as GPUBuffer, offset: 0, size: 16 };
  const run = { entry: 'main', label: 'example', uniforms: { n: 4, scale: 0.5 }, workgroups: [1] } as const;

  it('binds buffers by name in the declared order and packs uniforms by name', () => {
    k.dispatch(gpu, { ...run, bind: { y, x } });
    expect(recorded.at(-1)!.storage).toEqual([x, y]);
    const u = new DataView((recorded.at(-1)!.uniforms as Uint8Array).buffer);
    expect([u.getUint32(0, true), u.getFloat32(4, true)]).toEqual([4, 0.5]);
    expect(k.source()).toMatch(/^const GROUP: u32 = 64u;\n/);
  });

  it('refuses a missing or unknown buffer, an unknown override and missing uniforms', () => {
    expect(() => k.dispatch(gpu, { ...run, bind: { x } })).toThrow('example.main: no buffer given for y');
    expect(() => k.dispatch(gpu, { ...run, bind: { x, y, z: x } as never })).toThrow('example.main binds no z');
    expect(() => k.dispatch(gpu, { ...run, bind: { x, y }, overrides: { FLIP: 1 } as never })).toThrow('example has no override FLIP');
    expect(() => k.dispatch(gpu, { ...run, bind: { x, y }, uniforms: undefined })).toThrow('example: uniforms missing');
    expect(() => k.dispatch(gpu, { ...run, entry: 'other' as never, bind: { x, y } })).toThrow('example: no entry point other');
  });

  it('refuses an element type it does not declare', () => {
    const typed = declareKernel({ name: 'typed', parts: ['@group(0) @binding(1) var<storage, read> x: array<T>;\n@compute @workgroup_size(1) fn main() {}'], entryPoints: { main: ['x'] }, types: ['T'] });
    expect(() => typed.dispatch(gpu, { entry: 'main', label: 'typed', bind: { x }, types: { U: 'f16' }, workgroups: [1] })).toThrow('typed declares no type U');
    expect(typed.source()).toContain('alias T = f32;');
  });

  it('packs four bytes a field and refuses a value its type cannot hold', () => {
    const b = uniformBlock('test', [['a', 'u32'], ['b', 'f32'], ['c', 'i32']]);
    const view = new DataView(b.pack({ c: -2, a: 7, b: 0.5 }).buffer);
    expect([view.getUint32(0, true), view.getFloat32(4, true), view.getInt32(8, true)]).toEqual([7, 0.5, -2]);
    expect(() => b.pack({ a: -1, b: 0, c: 0 })).toThrow('test: uniform a must be a u32, got -1');
    expect(() => b.pack({ a: 1.5, b: 0, c: 0 })).toThrow(/uniform a must be a u32/);
    expect(() => b.pack({ a: 0, b: 0, c: 2 ** 31 })).toThrow(/uniform c must be a i32/);
    expect(structFields('struct P { a: u32, \n b: f32, c: i32 }', 'P')).toEqual([['a', 'u32'], ['b', 'f32'], ['c', 'i32']]);
  });
});
