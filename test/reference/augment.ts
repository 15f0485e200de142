/**
 * A plain reference of augment.wgsl in float64: each output pixel's source
 * point through the affine map and the elastic lattice, clamped into the
 * image, read bilinearly.
 */
export function augmentReference(images: Float32Array, masks: Float32Array, n: number, size: number, draws: Float32Array, grid: number): { x: Float64Array; y: Float64Array } {
  const stride = 8 + 2 * grid * grid;
  const x = new Float64Array(n * size * size);
  const y = new Float64Array(n * size * size);
  const read = (src: Float32Array, base: number, sx: number, sy: number) => {
    const x0 = Math.floor(sx);
    const y0 = Math.floor(sy);
    const x1 = Math.min(x0 + 1, size - 1);
    const y1 = Math.min(y0 + 1, size - 1);
    const fx = sx - x0;
    const fy = sy - y0;
    const at = (r: number, c: number) => src[base + r * size + c]!;
    return (1 - fy) * ((1 - fx) * at(y0, x0) + fx * at(y0, x1)) + fy * ((1 - fx) * at(y1, x0) + fx * at(y1, x1));
  };
  for (let k = 0; k < n; k++) {
    const d = draws.subarray(k * stride, (k + 1) * stride);
    for (let oy = 0; oy < size; oy++) {
      for (let ox = 0; ox < size; ox++) {
        let sx = d[0]! * ox + d[1]! * oy + d[2]!;
        let sy = d[3]! * ox + d[4]! * oy + d[5]!;
        if (grid >= 2) {
          const gx = (ox * (grid - 1)) / (size - 1);
          const gy = (oy * (grid - 1)) / (size - 1);
          const i0 = Math.min(Math.floor(gx), grid - 2);
          const j0 = Math.min(Math.floor(gy), grid - 2);
          const fx = gx - i0;
          const fy = gy - j0;
          for (const axis of [0, 1]) {
            const v = (i: number, j: number) => d[8 + 2 * (j * grid + i) + axis]!;
            const shift = (1 - fy) * ((1 - fx) * v(i0, j0) + fx * v(i0 + 1, j0)) + fy * ((1 - fx) * v(i0, j0 + 1) + fx * v(i0 + 1, j0 + 1));
            if (axis === 0) sx += shift;
            else sy += shift;
          }
        }
        sx = Math.min(Math.max(sx, 0), size - 1);
        sy = Math.min(Math.max(sy, 0), size - 1);
        const base = k * size * size;
        x[base + oy * size + ox] = d[6]! * read(images, base, sx, sy) + d[7]!;
        y[base + oy * size + ox] = read(masks, base, sx, sy);
      }
    }
  }
  return { x, y };
}
