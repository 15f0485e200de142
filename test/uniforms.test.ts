/**
 * Every uniform block the kernels declare (src/kernels/uniforms.ts) against
 * the struct in its shader: the same fields, in the same order, of the same
 * types, so that packing by name writes where the shader reads.
 */
import { describe, expect, it } from 'vitest';
import { declaredUniformBlocks, uniformBlock } from '../src/kernels/uniforms.js';
// The modules that declare blocks, loaded for their declarations.
import '../src/kernels/adam.js';
import '../src/kernels/concat.js';
import '../src/kernels/dice.js';
import '../src/kernels/elementwise.js';
import '../src/kernels/elu.js';
import '../src/kernels/loss-scale.js';
import '../src/kernels/maxpool.js';
import '../src/kernels/reduce.js';
import '../src/kernels/conv/gemm.js';
import '../src/kernels/conv/sums.js';
import '../src/kernels/software/conv.js';

/** The fields of `struct name { … }` in WGSL source, comments removed. */
function structFields(source: string, name: string): [string, string][] {
  const body = new RegExp(`struct ${name}\\s*\\{([^}]*)\\}`).exec(source.replace(/\/\/[^\n]*/g, ''));
  if (!body) throw new Error(`struct ${name} not found`);
  return body[1]!.split(',').map((f) => f.trim()).filter(Boolean).map((f) => {
    const [field, type] = f.split(':').map((s) => s.trim());
    return [field!, type!];
  });
}

describe('uniform blocks', () => {
  const blocks = declaredUniformBlocks();

  it('are declared for every kernel family with uniforms', () => {
    expect(blocks.map((b) => b.shader).sort()).toEqual(
      ['adam', 'binary', 'concat', 'conv', 'dice', 'elu', 'loss_scale', 'maxpool', 'reduce', 'split_sum', 'unary', 'weights_transpose', 'winograd'].sort(),
    );
  });

  for (const block of blocks) {
    it(`${block.shader}: the fields of its WGSL struct ${block.struct}`, () => {
      expect(block.fields.map(([n, t]) => [n, t])).toEqual(structFields(block.source, block.struct));
    });
  }

  it('packs by name, four bytes a field, and refuses a value its type cannot hold', () => {
    const b = uniformBlock('test', 'struct P { a: u32, b: f32, c: i32 }', [['a', 'u32'], ['b', 'f32'], ['c', 'i32']], 'P');
    const bytes = b.pack({ c: -2, a: 7, b: 0.5 });
    const view = new DataView(bytes.buffer);
    expect([view.getUint32(0, true), view.getFloat32(4, true), view.getInt32(8, true)]).toEqual([7, 0.5, -2]);
    expect(() => b.pack({ a: -1, b: 0, c: 0 })).toThrow('test: uniform a must be a u32, got -1');
    expect(() => b.pack({ a: 1.5, b: 0, c: 0 })).toThrow(/uniform a must be a u32/);
    expect(() => b.pack({ a: 0, b: 0, c: 2 ** 31 })).toThrow(/uniform c must be a i32/);
    expect(structFields('struct P { a: u32, // note\n b: f32, c: i32 }', 'P')).toEqual([['a', 'u32'], ['b', 'f32'], ['c', 'i32']]);
  });
});
