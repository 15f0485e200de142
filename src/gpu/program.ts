/**
 * Captured work: the commands a piece of code recorded once (Gpu.capture),
 * kept with their bind groups so that Gpu.replay records the same work again
 * without running that code: no planning, no shape checks, no uniform
 * packing, no bind-group lookups. A training step's forward and backward
 * passes are the same commands on the same buffers every step; replaying
 * them leaves the host little more than Dawn's own cost per dispatch.
 *
 * What a program may touch:
 * - its inputs, given anew to each replay (the bind groups that name them
 *   are remade when they change);
 * - buffers it took from the pool while captured: at a replay it claims
 *   exactly those again, and the replay fails (returns null) when one of
 *   them is in use or was destroyed;
 * - anything else it read or wrote (parameters, gradients, optimiser state)
 *   must outlive it: a pooled one that has gone back to the pool fails the
 *   replay.
 * Host work (uploads, readbacks) cannot be captured; Gpu.capture refuses it.
 */
import type { PooledBuffer } from './buffer-pool.js';
import type { BufferView, Kernel } from './gpu.js';

/** One command as captured, before its program is built. */
export type CapturedCommand =
  | { kind: 'dispatch'; kernel: Kernel; label: string; uniforms: Uint8Array | undefined; storage: readonly BufferView[]; workgroups: readonly [number, number, number] }
  | { kind: 'clear'; view: BufferView }
  | { kind: 'copy'; src: BufferView; dst: BufferView; bytes: number };

/** A buffer range a command names: fixed, or at `delta` bytes into input `input`. */
export interface ProgramRange {
  readonly view: BufferView;
  readonly input: number | null;
  readonly delta: number;
}

export type ProgramCommand =
  | {
      kind: 'dispatch';
      kernel: Kernel;
      label: string;
      workgroups: readonly [number, number, number];
      /** @binding(0) onwards: the program's own uniform range (when the kernel has one), then the storage ranges. */
      ranges: readonly ProgramRange[];
      /** Whether ranges[0] is a uniform block (bindings then start at 0, else at 1). */
      uniform: boolean;
      /** The bind group for the inputs as captured. */
      bindGroup: GPUBindGroup;
      /** Whether any range is an input's (the bind group then depends on the inputs given). */
      readsInputs: boolean;
    }
  | { kind: 'clear'; range: ProgramRange }
  | { kind: 'copy'; src: ProgramRange; dst: ProgramRange; bytes: number };

export interface Program {
  readonly name: string;
  readonly commands: readonly ProgramCommand[];
  readonly dispatches: number;
  /** The input ranges as captured (a replay is given ranges of the same sizes). */
  readonly inputs: readonly BufferView[];
  /** Pooled buffers the capture acquired, in the order it first did. */
  readonly claimed: readonly PooledBuffer[];
  /** Those of them still held when the capture ended: the outputs, handed to the caller. */
  readonly outputs: readonly PooledBuffer[];
  /** Pooled buffers the program names but did not acquire: each must still be held at a replay. */
  readonly external: readonly PooledBuffer[];
  /** Most bytes the captured code held at once beyond what was live when it began. */
  readonly peakDelta: number;
  /** The uniform blocks of every dispatch, one 256-byte slot each. */
  readonly uniformBuffer: GPUBuffer | null;
  /** Bind groups for inputs other than the captured ones, by their ranges. */
  readonly variants: Map<string, GPUBindGroup[]>;
  /** The device's settings generation when captured (Gpu.invalidatePrograms). */
  readonly generation: number;
  disposed: boolean;
}

/** Where `view` lies: inside an input (by buffer identity) or fixed. */
export function rangeOf(view: BufferView, inputs: readonly BufferView[], what: string): ProgramRange {
  const i = inputs.findIndex((v) => v.buffer === view.buffer);
  if (i < 0) return { view, input: null, delta: 0 };
  const delta = view.offset - inputs[i]!.offset;
  if (delta < 0 || delta + view.size > inputs[i]!.size) {
    throw new Error(`Gpu.capture: ${what} binds bytes ${view.offset}–${view.offset + view.size} of input ${i}'s buffer, outside the input's range ${inputs[i]!.offset}–${inputs[i]!.offset + inputs[i]!.size}`);
  }
  return { view, input: i, delta };
}

/** The range a command names at a replay given `inputs`. */
export function resolve(r: ProgramRange, inputs: readonly BufferView[]): BufferView {
  if (r.input === null) return r.view;
  const v = inputs[r.input]!;
  return { buffer: v.buffer, offset: v.offset + r.delta, size: r.view.size };
}
