/** Error measures for tests whose values are far from 1 (gradients, tiny updates). */

/** max |a − b| / max |b|: relative to the reference's own scale, however small. */
export function relErrorToScale(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let scale = 0;
  let err = 0;
  for (let i = 0; i < b.length; i++) {
    scale = Math.max(scale, Math.abs(b[i]!));
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  if (scale === 0) return err === 0 ? 0 : Infinity;
  return err / scale;
}

/** Largest |a − b|; NaN counts as Infinity. */
export function maxAbsError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length mismatch ${a.length} vs ${b.length}`);
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (!(d <= err)) err = Number.isNaN(d) ? Infinity : d;
  }
  return err;
}
