/** Drawing a frame: tissue, vessels, nerve, speckle, blur and log compression. */
import { Random, STREAM, clamp, fastHypot, hashWords, smoothstep } from './random.js';
import { type Clump, type Curve, type Nerve, type Spot, type Subject, type Vessel, nerveRadius } from './anatomy.js';
import { H, PIXELS, W } from './geometry.js';

/** exp(−t²/2) for t = i / GAUSS_STEPS, up to 3.5. */
export const GAUSS_STEPS = 64;
export const GAUSS = Float32Array.from({ length: Math.ceil(3.5 * GAUSS_STEPS) + 2 }, (_, i) => Math.exp(-0.5 * (i / GAUSS_STEPS) ** 2));
export const GAUSS_LAST = GAUSS.length - 1;
export function gauss(t: number): number {
  const i = Math.abs(t) * GAUSS_STEPS;
  return i < GAUSS_LAST ? GAUSS[i | 0]! : 0;
}

/** exp(t) for |t| ≤ 4 by table and linear interpolation (relative error < 1e-6), clamped beyond. */
export const EXP_RANGE = 4;
export const EXP_STEPS = 1024;
export const EXP = Float64Array.from({ length: 2 * EXP_RANGE * EXP_STEPS + 2 }, (_, i) => Math.exp(i / EXP_STEPS - EXP_RANGE));
export function expTable(t: number): number {
  const at = (clamp(t, -EXP_RANGE, EXP_RANGE) + EXP_RANGE) * EXP_STEPS;
  const i = at | 0;
  return EXP[i]! + (EXP[i + 1]! - EXP[i]!) * (at - i);
}

/**
 * log2 of a positive float32 given its bits: exponent plus a 4096-entry table
 * of the mantissa's top 12 bits (error < 4e-4); 0 and denormals give −126.
 */
export const LOG2_MANTISSA = Float64Array.from({ length: 4096 }, (_, i) => Math.log2(1 + (i + 0.5) / 4096));
export function log2Table(bits: number): number {
  if (bits <= 0x007fffff) return -126;
  return ((bits >>> 23) & 0xff) - 127 + LOG2_MANTISSA[(bits >>> 11) & 0xfff]!;
}

/** Value-noise grid nodes in [−1, 1] covering the frame seen with this shift, hashed from world cell coordinates. */
export function noiseNodes(subject: Subject, octave: number, cellX: number, cellY: number, shiftX: number, shiftY: number) {
  const gx0 = Math.floor(shiftX / cellX);
  const gy0 = Math.floor(shiftY / cellY);
  const nx = Math.ceil((W + shiftX) / cellX) - gx0 + 2;
  const ny = Math.ceil((H + shiftY) / cellY) - gy0 + 2;
  const nodes = new Float32Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      nodes[j * nx + i] = (hashWords([...subject.seedWords, STREAM.grid, subject.subject, octave, gx0 + i, gy0 + j]) / 4294967296) * 2 - 1;
    }
  }
  const column = new Int32Array(W);
  const columnWeight = new Float32Array(W);
  for (let x = 0; x < W; x++) {
    const g = (x + shiftX) / cellX - gx0;
    column[x] = Math.floor(g);
    columnWeight[x] = smoothstep(g - Math.floor(g));
  }
  const row = new Int32Array(H);
  const rowWeight = new Float32Array(H);
  for (let y = 0; y < H; y++) {
    const g = (y + shiftY) / cellY - gy0;
    row[y] = Math.floor(g) * nx;
    rowWeight[y] = smoothstep(g - Math.floor(g));
  }
  return { nodes, nx, column, columnWeight, row, rowWeight };
}

/**
 * The smooth background: level · exp(contrast · (coarse + 0.45 · fine value
 * noise)), laterally stretched regions of brighter and darker tissue, fixed
 * to the world so that they move with the probe.
 */
export function paintBackground(tissue: Float32Array, subject: Subject, shiftX: number, shiftY: number): void {
  const coarse = noiseNodes(subject, 0, 110, 45, shiftX, shiftY);
  const fine = noiseNodes(subject, 1, 40, 16, shiftX, shiftY);
  const wCoarse = subject.contrast;
  const wFine = subject.contrast * 0.45;
  const rowCoarse = new Float64Array(W);
  const rowFine = new Float64Array(W);
  for (let y = 0; y < H; y++) {
    interpolateRow(coarse, y, rowCoarse);
    interpolateRow(fine, y, rowFine);
    const base = y * W;
    for (let x = 0; x < W; x++) tissue[base + x] = subject.level * expTable(wCoarse * rowCoarse[x]! + wFine * rowFine[x]!);
  }
}

export function interpolateRow(n: ReturnType<typeof noiseNodes>, y: number, out: Float64Array): void {
  const { nodes, nx, column, columnWeight } = n;
  const r0 = n.row[y]!;
  const ty = n.rowWeight[y]!;
  for (let x = 0; x < W; x++) {
    const i = r0 + column[x]!;
    const tx = columnWeight[x]!;
    const top = nodes[i]! + (nodes[i + 1]! - nodes[i]!) * tx;
    const bottom = nodes[i + nx]! + (nodes[i + nx + 1]! - nodes[i + nx]!) * tx;
    out[x] = top + (bottom - top) * ty;
  }
}

export function drawCurve(tissue: Float32Array, c: Curve, shiftX: number, shiftY: number): void {
  const xStart = Math.max(0, Math.ceil(c.x0 - shiftX));
  const xEnd = Math.min(W - 1, Math.floor(c.x1 - shiftX));
  const length = c.x1 - c.x0;
  const taper = Math.min(40, length * 0.25);
  const reach = 3.2 * c.sigma;
  for (let x = xStart; x <= xEnd; x++) {
    const wx = x + shiftX;
    const along = Math.min(wx - c.x0, c.x1 - wx);
    const fade = along < taper ? smoothstep(along / taper) : 1;
    const strength = c.strength * fade * (1 - (c.beading * (1 + Math.sin(c.beadK * wx + c.beadPhase))) / 2);
    const yc = c.y0 + c.slope * (wx - c.x0) + c.wave * Math.sin(c.k * wx + c.phase) - shiftY;
    const y0 = Math.max(0, Math.ceil(yc - reach));
    const y1 = Math.min(H - 1, Math.floor(yc + reach));
    const step = GAUSS_STEPS / c.sigma;
    for (let y = y0; y <= y1; y++) {
      const g = Math.abs(y - yc) * step;
      if (g < GAUSS_LAST) tissue[y * W + x]! += strength * GAUSS[g | 0]!;
    }
  }
}

export function drawClump(tissue: Float32Array, c: Clump, shiftX: number, shiftY: number): void {
  const cx = c.x - shiftX;
  const cy = c.y - shiftY;
  const reach = 3 * Math.max(c.rx, c.ry);
  const cos = Math.cos(c.angle);
  const sin = Math.sin(c.angle);
  for (let y = Math.max(0, Math.ceil(cy - reach)); y <= Math.min(H - 1, Math.floor(cy + reach)); y++) {
    for (let x = Math.max(0, Math.ceil(cx - reach)); x <= Math.min(W - 1, Math.floor(cx + reach)); x++) {
      const dx = x - cx;
      const dy = y - cy;
      const u = (dx * cos + dy * sin) / c.rx;
      const v = (-dx * sin + dy * cos) / c.ry;
      const q = u * u + v * v;
      if (q < 9) tissue[y * W + x]! += c.strength * expTable(-q / 2);
    }
  }
}

export function drawSpot(tissue: Float32Array, s: Spot, cx: number, cy: number): void {
  const reach = s.r + 2;
  for (let y = Math.max(0, Math.ceil(cy - reach)); y <= Math.min(H - 1, Math.floor(cy + reach)); y++) {
    for (let x = Math.max(0, Math.ceil(cx - reach)); x <= Math.min(W - 1, Math.floor(cx + reach)); x++) {
      const edge = fastHypot(x - cx, y - cy) - s.r;
      const inside = 1 - smoothstep((edge + 1) / 2);
      tissue[y * W + x]! *= 1 - s.darkness * inside;
    }
  }
}

export function drawVessel(tissue: Float32Array, v: Vessel, frame: number, shiftX: number, shiftY: number): void {
  const pulse = 1 + v.pulse * Math.sin(frame * 1.3 + v.pulsePhase);
  const rx = v.rx * pulse;
  const ry = v.ry * pulse;
  const cx = v.x - shiftX;
  const cy = v.y - shiftY;
  const mean = Math.sqrt(rx * ry);
  // Posterior acoustic enhancement: fluid attenuates less, so the tissue below looks brighter.
  for (let x = Math.max(0, Math.ceil(cx - rx)); x <= Math.min(W - 1, Math.floor(cx + rx)); x++) {
    const t = (x - cx) / rx;
    const lateral = smoothstep((1 - Math.abs(t)) * 3);
    const bottom = cy + ry * Math.sqrt(Math.max(0, 1 - t * t));
    for (let y = Math.max(0, Math.ceil(bottom)); y < H; y++) tissue[y * W + x]! *= 1 + v.enhancement * lateral * Math.exp(-(y - bottom) / 90);
  }
  const reach = 1.3;
  for (let y = Math.max(0, Math.ceil(cy - ry * reach - 4)); y <= Math.min(H - 1, Math.floor(cy + ry * reach + 4)); y++) {
    for (let x = Math.max(0, Math.ceil(cx - rx * reach - 4)); x <= Math.min(W - 1, Math.floor(cx + rx * reach + 4)); x++) {
      const rho = fastHypot((x - cx) / rx, (y - cy) / ry);
      const edge = (rho - 1) * mean; // pixels outside the lumen's edge
      const lumen = 1 - smoothstep((edge + 2) / 3);
      const i = y * W + x;
      tissue[i] = tissue[i]! * (1 - 0.88 * lumen) + v.wall * gauss((edge - 0.8) / 1.4);
    }
  }
}

/** Paints the nerve's mask (255 inside its outline) and, given the tissue, blends the nerve into it. */
export function drawNerve(tissue: Float32Array | undefined, mask: Uint8Array, nerve: Nerve): void {
  const cos = Math.cos(nerve.angle);
  const sin = Math.sin(nerve.angle);
  const reach = Math.max(nerve.a, nerve.b) * 1.2 + 4;
  const xs = Math.max(0, Math.floor(nerve.x - reach));
  const xe = Math.min(W - 1, Math.ceil(nerve.x + reach));
  const ys = Math.max(0, Math.floor(nerve.y - reach));
  const ye = Math.min(H - 1, Math.ceil(nerve.y + reach));
  const bw = xe - xs + 1;
  const bh = ye - ys + 1;
  // The nerve's own echogenicity on its bounding box: bright matrix, dark fascicles.
  const texture = new Float32Array(tissue === undefined ? 0 : bw * bh).fill(nerve.matrix);
  for (const f of tissue === undefined ? [] : nerve.fascicles) {
    const fx = nerve.x + f.x - xs;
    const fy = nerve.y + f.y - ys;
    for (let y = Math.max(0, Math.ceil(fy - f.r - 2)); y <= Math.min(bh - 1, Math.floor(fy + f.r + 2)); y++) {
      for (let x = Math.max(0, Math.ceil(fx - f.r - 2)); x <= Math.min(bw - 1, Math.floor(fx + f.r + 2)); x++) {
        const inside = 1 - smoothstep((fastHypot(x - fx, y - fy) - f.r + 1) / 2);
        texture[y * bw + x]! *= 1 - f.darkness * inside;
      }
    }
  }
  for (let y = ys; y <= ye; y++) {
    for (let x = xs; x <= xe; x++) {
      const dx = x - nerve.x;
      const dy = y - nerve.y;
      const u = dx * cos + dy * sin;
      const v = -dx * sin + dy * cos;
      const rho = fastHypot(u, v);
      const phi = Math.atan2(v, u);
      const radius = rho > 0 ? nerveRadius(nerve, u / rho, v / rho, phi) : nerve.a;
      const edge = rho - radius; // pixels outside the outline
      const i = y * W + x;
      if (edge <= 0) mask[i] = 255;
      if (tissue === undefined) continue;
      const weight = nerve.visibility * (1 - smoothstep((edge + 1.5) / 3));
      const own = texture[(y - ys) * bw + (x - xs)]! + nerve.border * gauss((edge + 2.5) / 1.8);
      tissue[i] = tissue[i]! * (1 - weight) + own * weight;
    }
  }
}

/**
 * Turns echogenicity into echo amplitude with fully developed speckle, as a
 * scanner forms it: each pixel's scatterers (amplitude = echogenicity, random
 * phase) are smeared by the point-spread function (a laterally wide, axially
 * short blur) and the envelope is the magnitude of the sum. Edges come out
 * softened by the same blur and the grain is Rayleigh-distributed. The result
 * is normalised so that uniform echogenicity e gives mean-square amplitude e²,
 * then smoothed by a 5 × 3 box as scanners' post-processing does, which fills
 * the speckle's zeros.
 */
export function formEchoes(tissue: Float32Array, subject: Subject, rng: Random): void {
  const re = new Float32Array(PIXELS);
  const im = new Float32Array(PIXELS);
  const words = new Uint32Array(PIXELS);
  rng.fill(words);
  for (let i = 0; i < PIXELS; i++) {
    const bits = words[i]!;
    const e = tissue[i]!;
    re[i] = e * ((bits & 0xffff) / 65536 - 0.5);
    im[i] = e * ((bits >>> 16) / 65536 - 0.5);
  }
  const blurredRe = new Float32Array(PIXELS);
  const blurredIm = new Float32Array(PIXELS);
  const rx = subject.speckleRx;
  blurTriangles(re, blurredRe, rx, 1);
  blurTriangles(im, blurredIm, rx, 1);
  // Mean square of the blurred field for unit echogenicity: 2 · (1/12) · kernel energy.
  const energy = (kernel: Float64Array): number => kernel.reduce((sum, k) => sum + k * k, 0);
  const norm = 1 / Math.sqrt((2 / 12) * energy(triangle(1)) * energy(triangle(rx)));
  for (let i = 0; i < PIXELS; i++) {
    const a = blurredRe[i]!;
    const b = blurredIm[i]!;
    re[i] = Math.sqrt(a * a + b * b) * norm;
  }
  // A 5 × 3 box (across × down), edges extended.
  const rows = new Float32Array(PIXELS);
  boxColumns(re, rows, 1);
  for (let y = 0; y < H; y++) {
    const base = y * W;
    let sum = 3 * rows[base]! + rows[base + 1]! + rows[base + 2]!;
    for (let x = 0; x < W; x++) {
      tissue[base + x] = sum / 5;
      sum += rows[base + Math.min(x + 3, W - 1)]! - rows[base + Math.max(x - 2, 0)]!;
    }
  }
}

/** Two passes of a box of radius r: a triangle of width 4r + 1, normalised. */
export function triangle(r: number): Float64Array {
  const n = 2 * r + 1;
  return Float64Array.from({ length: 2 * n - 1 }, (_, i) => (n - Math.abs(i - (n - 1))) / (n * n));
}

/**
 * dst = src blurred by two passes of a box of radius `ry` down the columns and
 * two of radius `rx` along the rows (triangles of width 4r + 1), edges
 * extended. Running sums, one row at a time through padded row buffers.
 */
export function blurTriangles(src: Float32Array, dst: Float32Array, rx: number, ry: number): void {
  // Down the columns: a box of radius ry twice, as running sums over whole rows.
  const once = new Float32Array(PIXELS);
  boxColumns(src, once, ry);
  const vertical = new Float32Array(PIXELS);
  boxColumns(once, vertical, ry);
  // Along the rows.
  const pad = 2 * rx;
  const padded = new Float64Array(W + 2 * pad);
  const half = new Float64Array(W + pad);
  const n = 2 * rx + 1;
  const scale = 1 / (n * n);
  for (let y = 0; y < H; y++) {
    const base = y * W;
    for (let x = 0; x < W; x++) padded[x + pad] = vertical[base + x]!;
    const first = vertical[base]!;
    const last = vertical[base + W - 1]!;
    for (let x = 0; x < pad; x++) {
      padded[x] = first;
      padded[W + pad + x] = last;
    }
    // half[j] = Σ padded[j .. j + 2rx]
    let sum = 0;
    for (let k = 0; k < n; k++) sum += padded[k]!;
    for (let j = 0; j < W + pad; j++) {
      half[j] = sum;
      sum += padded[j + n]! - padded[j]!;
    }
    // dst[x] = Σ half[x .. x + 2rx]
    sum = 0;
    for (let k = 0; k < n; k++) sum += half[k]!;
    for (let x = 0; x < W; x++) {
      dst[base + x] = sum * scale;
      sum += half[x + n]! - half[x]!;
    }
  }
}

/** A box of radius r down the columns, edges extended. */
export function boxColumns(src: Float32Array, dst: Float32Array, r: number): void {
  const scale = 1 / (2 * r + 1);
  const sums = new Float64Array(W);
  for (let k = -r; k <= r; k++) {
    const row = clamp(k, 0, H - 1) * W;
    for (let x = 0; x < W; x++) sums[x]! += src[row + x]!;
  }
  for (let y = 0; y < H; y++) {
    const add = Math.min(y + r + 1, H - 1) * W;
    const drop = Math.max(y - r, 0) * W;
    const base = y * W;
    for (let x = 0; x < W; x++) {
      dst[base + x] = sums[x]! * scale;
      sums[x]! += src[add + x]! - src[drop + x]!;
    }
  }
}
