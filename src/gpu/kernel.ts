/**
 * A kernel declared once, next to the code that dispatches it:
 * - its WGSL, as parts composed after the enable directives and the integer
 *   constants (GROUP and friends) that the TypeScript sizes grids with;
 * - the element types its buffers may be stored in, as WGSL type aliases
 *   (f32 unless a dispatch says f16; `enable f16;` comes with f16);
 * - its entry points, each with the storage buffers it binds from
 *   @binding(1) on, by their WGSL names;
 * - its uniform block at @binding(0), field by field with types;
 * - the `override` constants a dispatch may set.
 * A dispatch names its buffers and uniform values; nothing is matched by
 * position and nothing is read back out of the WGSL. kernel.test.ts
 * checks every declaration against its shader's text.
 */
import type { BufferView, Gpu } from './gpu.js';
import type { DType } from './tensor-view.js';

export type UniformType = 'u32' | 'i32' | 'f32';
type Values<K extends string> = Readonly<Record<K, number>>;

export interface UniformBlock<F extends string> {
  readonly fields: readonly (readonly [F, UniformType])[];
  /** The block's bytes; every field must be given (a padding field too, as 0). */
  pack(values: Values<F>): Uint8Array;
}

/** A block of 4-byte fields packed by name; `owner` names the shader in messages. */
export function uniformBlock<F extends string>(owner: string, fields: readonly (readonly [F, UniformType])[]): UniformBlock<F> {
  return {
    fields,
    pack(values) {
      const bytes = new Uint8Array(4 * fields.length);
      const view = new DataView(bytes.buffer);
      fields.forEach(([name, type], i) => {
        const v = values[name];
        if (type === 'f32') view.setFloat32(4 * i, v, true);
        else {
          const [lo, hi] = type === 'u32' ? [0, 2 ** 32 - 1] : [-(2 ** 31), 2 ** 31 - 1];
          if (!Number.isInteger(v) || v < lo || v > hi) throw new RangeError(`${owner}: uniform ${name} must be a ${type}, got ${v}`);
          if (type === 'u32') view.setUint32(4 * i, v, true);
          else view.setInt32(4 * i, v, true);
        }
      });
      return bytes;
    },
  };
}

/**
 * WGSL put together from parts: enable directives first (WGSL wants them
 * before any declaration), then the integer constants and the type aliases,
 * then the parts.
 */
export function composeShader(parts: readonly string[], enables: readonly string[] = [], defines: Values<string> = {}, types: Readonly<Record<string, DType>> = {}): string {
  const consts = Object.entries(defines).map(([name, value]) => {
    if (!Number.isInteger(value) || value < 0) throw new Error(`shader constant ${name} must be an integer ≥ 0, not ${value}`);
    return `const ${name}: u32 = ${value}u;`;
  });
  const aliases = Object.entries(types).map(([name, type]) => {
    if (type !== 'f32' && type !== 'f16') throw new Error(`shader type ${name} must be f32 or f16, not ${String(type)}`);
    return `alias ${name} = ${type};`;
  });
  const all = Object.values(types).includes('f16') && !enables.includes('f16') ? ['f16', ...enables] : enables;
  return [...all.map((e) => `enable ${e};`), ...consts, ...aliases, ...parts].join('\n');
}

export interface KernelDeclaration<E extends string, B extends string, U extends string, O extends string> {
  /** Names the shader in labels, pipelines and messages. */
  name: string;
  /** The WGSL, composed in this order. */
  parts: readonly string[];
  enables?: readonly string[];
  /** Constants fixed for every use, such as GROUP (invocations per workgroup). */
  defines?: Values<string>;
  /** Each entry point with the storage buffers it binds, in binding order from 1. */
  entryPoints: Readonly<Record<E, readonly B[]>>;
  /** The fields of the uniform struct at @binding(0); absent when there is none. */
  uniforms?: readonly (readonly [U, UniformType])[];
  /** The struct's name in the WGSL (Params unless given). */
  struct?: string;
  /** The `override` constants a dispatch may set. */
  overrides?: readonly O[];
  /** Type aliases the WGSL uses for stored elements: f32 unless a dispatch gives f16. */
  types?: readonly string[];
}

export interface KernelRun<E extends string, B extends string, U extends string, O extends string> {
  entry: E;
  /** What runs on what; appears in GPU error messages. */
  label: string;
  bind: Readonly<Partial<Record<B, BufferView>>>;
  uniforms?: Values<U>;
  overrides?: Readonly<Partial<Record<O, number>>>;
  /** Constants chosen for this use (a planner's tile), written with the declared ones. */
  defines?: Values<string>;
  /** Element types of the declared aliases that are not f32. */
  types?: Readonly<Record<string, DType>>;
  workgroups: readonly [number, number?, number?];
}

export interface DeclaredKernel<E extends string = string, B extends string = string, U extends string = string, O extends string = string> {
  readonly declaration: KernelDeclaration<E, B, U, O>;
  /** The composed WGSL with `defines` added to the declared constants, and the aliases' types (f32 unless given). */
  source(defines?: Values<string>, types?: Readonly<Record<string, DType>>): string;
  /** Records one dispatch of entry point `run.entry`. */
  dispatch(gpu: Gpu, run: KernelRun<E, B, U, O>): void;
}

const declared: DeclaredKernel[] = [];

export function declareKernel<E extends string, B extends string, U extends string = never, O extends string = never>(
  d: KernelDeclaration<E, B, U, O>,
): DeclaredKernel<E, B, U, O> {
  const block = d.uniforms && uniformBlock(d.name, d.uniforms);
  const f32s = Object.fromEntries((d.types ?? []).map((t) => [t, 'f32' as DType]));
  const fixed = composeShader(d.parts, d.enables, d.defines, f32s);
  const sources = new Map<string, string>();
  const source = (defines?: Values<string>, types?: Readonly<Record<string, DType>>) => {
    const wide = !types || Object.values(types).every((t) => t === 'f32');
    if (!defines && wide) return fixed;
    for (const name of Object.keys(types ?? {})) {
      if (!d.types?.includes(name)) throw new Error(`${d.name} declares no type ${name}`);
    }
    const key = `${Object.entries(defines ?? {}).join(';')}|${Object.entries(types ?? {}).join(';')}`;
    let s = sources.get(key);
    if (!s) sources.set(key, (s = composeShader(d.parts, d.enables, { ...d.defines, ...defines }, { ...f32s, ...types })));
    return s;
  };
  const kernel: DeclaredKernel<E, B, U, O> = {
    declaration: d,
    source,
    dispatch(gpu, run) {
      const names = d.entryPoints[run.entry];
      if (!names) throw new Error(`${d.name}: no entry point ${run.entry}`);
      const storage = names.map((name) => {
        const view = run.bind[name];
        if (!view) throw new Error(`${d.name}.${run.entry}: no buffer given for ${name}`);
        return view;
      });
      for (const name of Object.keys(run.bind)) {
        if (!names.includes(name as B)) throw new Error(`${d.name}.${run.entry} binds no ${name}`);
      }
      for (const name of Object.keys(run.overrides ?? {})) {
        if (!d.overrides?.includes(name as O)) throw new Error(`${d.name} has no override ${name}`);
      }
      if (!block !== !run.uniforms) throw new Error(`${d.name}: uniforms ${block ? 'missing' : 'given to a kernel without them'}`);
      gpu.dispatch({
        kernel: gpu.kernel(d.name, source(run.defines, run.types), run.overrides as Record<string, number> | undefined, run.entry),
        label: run.label,
        uniforms: block && run.uniforms ? block.pack(run.uniforms) : undefined,
        storage,
        workgroups: run.workgroups,
      });
    },
  };
  declared.push(kernel as unknown as DeclaredKernel);
  return kernel;
}

/** Every kernel declared by the modules loaded so far. */
export function declaredKernels(): readonly DeclaredKernel[] {
  return declared;
}
