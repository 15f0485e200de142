/**
 * A shader's uniform block, declared once next to the code that fills it:
 * the fields of its WGSL struct, in order, with their types. `pack` writes
 * values by name, so a caller cannot put a value in the wrong slot, and
 * test/uniforms.test.ts checks every declaration against its shader's
 * struct. Every field is 4 bytes (u32, i32 or f32).
 */
export type UniformType = 'u32' | 'i32' | 'f32';

export interface UniformBlock<F extends string> {
  /** The shader, for messages. */
  readonly shader: string;
  /** The WGSL that declares the struct. */
  readonly source: string;
  readonly struct: string;
  readonly fields: readonly (readonly [F, UniformType])[];
  /** The block's bytes; every field must be given (a padding field too, as 0). */
  pack(values: Readonly<Record<F, number>>): Uint8Array;
}

const declared: UniformBlock<string>[] = [];

/** Declares the uniform block `struct` (Params unless named) of `source`. */
export function uniformBlock<F extends string>(shader: string, source: string, fields: readonly (readonly [F, UniformType])[], struct = 'Params'): UniformBlock<F> {
  const block: UniformBlock<F> = {
    shader, source, struct, fields,
    pack(values) {
      const bytes = new Uint8Array(4 * fields.length);
      const view = new DataView(bytes.buffer);
      fields.forEach(([name, type], i) => {
        const v = values[name];
        if (type === 'f32') view.setFloat32(4 * i, v, true);
        else {
          const [lo, hi] = type === 'u32' ? [0, 2 ** 32 - 1] : [-(2 ** 31), 2 ** 31 - 1];
          if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${shader}: uniform ${name} must be a ${type}, got ${v}`);
          if (type === 'u32') view.setUint32(4 * i, v, true);
          else view.setInt32(4 * i, v, true);
        }
      });
      return bytes;
    },
  };
  declared.push(block as UniformBlock<string>);
  return block;
}

/** Every block declared so far (by the modules loaded). */
export function declaredUniformBlocks(): readonly UniformBlock<string>[] {
  return declared;
}
