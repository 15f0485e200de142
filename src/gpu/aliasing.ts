/**
 * Binding checks shared by kernel wrappers. WebGPU (Dawn) rejects a dispatch
 * that binds one buffer both read-only and writable, and two writable ranges
 * that overlap would race; both are caught here, before recording, with the
 * op's name instead of a GPU validation error later.
 */
import { ShapeError } from './errors.js';
import type { GpuTensor } from './tensor-view.js';

type Named = Record<string, GpuTensor>;

function overlaps(a: GpuTensor, b: GpuTensor): boolean {
  return a.view.offset < b.view.offset + b.view.size && b.view.offset < a.view.offset + a.view.size;
}

/** Throws if a written tensor shares a buffer with a read one, or two written tensors overlap. */
export function checkNoAliasing(op: string, reads: Named, writes: Named): void {
  const written = Object.entries(writes);
  for (const [wName, w] of written) {
    for (const [rName, r] of Object.entries(reads)) {
      if (r.view.buffer === w.view.buffer) {
        throw new ShapeError(op, `${wName} (written) and ${rName} (read) lie in one GPU buffer; WebGPU cannot bind a buffer both read-only and writable in one dispatch: give them separate buffers`);
      }
    }
  }
  for (let i = 0; i < written.length; i++) {
    for (let j = i + 1; j < written.length; j++) {
      const [aName, a] = written[i]!;
      const [bName, b] = written[j]!;
      if (a.view.buffer === b.view.buffer && overlaps(a, b)) {
        throw new ShapeError(op, `${aName} and ${bName} are both written and overlap in one GPU buffer`);
      }
    }
  }
}
