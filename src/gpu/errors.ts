/** A GPU-side failure (validation, out of memory, device lost) tied to the work that caused it. */
export class GpuError extends Error {
  constructor(
    message: string,
    /** 'validation' | 'out-of-memory' | 'internal' | 'device-lost' */
    readonly kind: string,
    /** Labels of the dispatches involved: kernel name and shapes. */
    readonly dispatches: readonly string[] = [],
  ) {
    super(message);
    this.name = 'GpuError';
  }
}

/** A caller error caught before anything reaches the GPU: wrong shapes, bad arguments. */
export class ShapeError extends Error {
  constructor(op: string, detail: string) {
    super(`${op}: ${detail}`);
    this.name = 'ShapeError';
  }
}

export function shapeStr(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}
