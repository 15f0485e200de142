/** Drawing frames, mask outlines and probability maps on canvases. */
import type { GrayImage } from '../src/browser.js';

const OUTLINE = [57, 255, 136] as const; // bright green: visible on gray speckle
const FILL_ALPHA = 0.16;

/** Magma-like colour ramp for probabilities in [0, 1] (the same stops as the CSS colour bar). */
const RAMP: readonly (readonly [number, number, number, number])[] = [
  [0, 0, 0, 4],
  [0.2, 59, 15, 112],
  [0.4, 140, 41, 129],
  [0.6, 222, 73, 104],
  [0.8, 254, 159, 109],
  [1, 252, 253, 191],
];

export function rampColor(p: number): [number, number, number] {
  const v = Math.min(1, Math.max(0, Number.isFinite(p) ? p : 0));
  for (let i = 1; i < RAMP.length; i++) {
    const [b, ...cb] = RAMP[i]!;
    if (v <= b) {
      const [a, ...ca] = RAMP[i - 1]!;
      const t = (v - a) / (b - a);
      return [0, 1, 2].map((k) => Math.round(ca[k]! + t * (cb[k]! - ca[k]!))) as [number, number, number];
    }
  }
  const last = RAMP[RAMP.length - 1]!;
  return [last[1], last[2], last[3]];
}

/** Mask pixels with a 4-neighbour outside the mask (or on the border), and the outside pixels touching them: a 2-pixel line. */
export function outlinePixels(mask: Uint8Array, width: number, height: number): Uint8Array {
  const out = new Uint8Array(mask.length);
  const on = (x: number, y: number) => x >= 0 && y >= 0 && x < width && y < height && mask[y * width + x] !== 0;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const here = on(x, y);
      const edge = on(x - 1, y) !== here || on(x + 1, y) !== here || on(x, y - 1) !== here || on(x, y + 1) !== here;
      if (edge || (here && (x === 0 || y === 0 || x === width - 1 || y === height - 1))) out[y * width + x] = 1;
    }
  }
  return out;
}

/** Draws the gray frame at its own size, with the mask (nonzero = nerve) lightly filled and outlined. */
export function drawFrame(canvas: HTMLCanvasElement, image: GrayImage, mask: Uint8Array | null): void {
  const { width, height, data } = image;
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const pixels = ctx.createImageData(width, height);
  const rgba = pixels.data;
  const edge = mask ? outlinePixels(mask, width, height) : null;
  for (let i = 0, j = 0; i < data.length; i++, j += 4) {
    const g = data[i]!;
    if (edge && edge[i]) {
      rgba[j] = OUTLINE[0];
      rgba[j + 1] = OUTLINE[1];
      rgba[j + 2] = OUTLINE[2];
    } else if (mask && mask[i]) {
      rgba[j] = g + (OUTLINE[0] - g) * FILL_ALPHA;
      rgba[j + 1] = g + (OUTLINE[1] - g) * FILL_ALPHA;
      rgba[j + 2] = g + (OUTLINE[2] - g) * FILL_ALPHA;
    } else {
      rgba[j] = rgba[j + 1] = rgba[j + 2] = g;
    }
    rgba[j + 3] = 255;
  }
  ctx.putImageData(pixels, 0, 0);
}

/** Draws a size × size probability map, one canvas pixel per model pixel (CSS scales it up). */
export function drawProbabilities(canvas: HTMLCanvasElement, probs: Float32Array, size: number): void {
  canvas.width = size;
  canvas.height = size;
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  const pixels = ctx.createImageData(size, size);
  for (let i = 0; i < size * size; i++) {
    const [r, g, b] = rampColor(probs[i]!);
    pixels.data.set([r, g, b, 255], i * 4);
  }
  ctx.putImageData(pixels, 0, 0);
}

/** A dark placeholder with a line of text, for canvases with nothing to show yet. */
export function drawPlaceholder(canvas: HTMLCanvasElement, text: string): void {
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.fillStyle = '#15181e';
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  ctx.fillStyle = '#8a93a3';
  ctx.font = `${Math.max(8, Math.round(canvas.width / 30))}px system-ui, 'DejaVu Sans', sans-serif`;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'middle';
  ctx.fillText(text, canvas.width / 2, canvas.height / 2);
}
