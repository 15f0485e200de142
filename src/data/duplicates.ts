/**
 * Contradictory near-duplicates: two frames of one subject that show nearly
 * the same image, one with a nerve mask and the other without. The real
 * training set holds about 45 such pairs; the top teams removed them, since a
 * model cannot learn both answers for one picture.
 *
 * A frame's signature is its image averaged over square cells, with its mean
 * taken out and scaled to unit length, so that the dot product of two
 * signatures is their correlation: speckle, which differs between two takes
 * of one scene, averages out within a cell, while a probe moved by a few
 * pixels or a nerve come into view changes many cells. Frames are compared
 * only within their subject.
 */
import { DataError } from './errors.js';

export interface DuplicateOptions {
  /** Correlation of the cell signatures from which two frames count as near-duplicates (default DUPLICATE_THRESHOLD). */
  threshold?: number;
  /** Side of the averaging cells in pixels (default DUPLICATE_CELL). */
  cell?: number;
}

/** Default correlation from which two frames count as near-duplicates. */
export const DUPLICATE_THRESHOLD = 0.97;
/** Default side of the signature's cells: small enough that a probe moved by a few pixels decorrelates them. */
export const DUPLICATE_CELL = 5;

export interface NearDuplicate {
  subject: number;
  /** The frame numbers, and their rows in the caches. */
  frames: [number, number];
  rows: [number, number];
  /** Correlation of the two signatures. */
  similarity: number;
  /** The row of the frame without a mask. */
  unmaskedRow: number;
}

export interface DuplicateReport {
  threshold: number;
  cell: number;
  /** Frames compared, and near-duplicate pairs found (contradictory or not). */
  frames: number;
  nearDuplicates: number;
  /** The contradictory pairs, by subject and frame. */
  contradictions: NearDuplicate[];
}

/** Unit-length, zero-mean cell averages of one frame. */
function signature(image: Uint8Array, offset: number, width: number, height: number, cell: number): Float32Array {
  const cw = Math.ceil(width / cell);
  const ch = Math.ceil(height / cell);
  const sums = new Float64Array(cw * ch);
  for (let y = 0; y < height; y++) {
    const row = offset + y * width;
    const base = Math.floor(y / cell) * cw;
    for (let x = 0; x < width; x++) sums[base + Math.floor(x / cell)]! += image[row + x]!;
  }
  const out = new Float32Array(cw * ch);
  let mean = 0;
  for (let i = 0; i < sums.length; i++) {
    const cx = Math.min(cell, width - (i % cw) * cell);
    const cy = Math.min(cell, height - Math.floor(i / cw) * cell);
    out[i] = sums[i]! / (cx * cy);
    mean += out[i]!;
  }
  mean /= out.length;
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    out[i]! -= mean;
    norm += out[i]! * out[i]!;
  }
  const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
  for (let i = 0; i < out.length; i++) out[i]! *= scale;
  return out;
}

function hasMask(masks: Uint8Array, offset: number, pixels: number): boolean {
  for (let i = offset; i < offset + pixels; i++) if (masks[i] !== 0) return true;
  return false;
}

/**
 * Finds the near-duplicate pairs among `count` frames of width × height
 * (row-major, one after another in `images` and `masks`), whose subject and
 * frame numbers are `index` (count × 2, as imgs_train_index.npy holds them),
 * and reports the contradictory ones. `onProgress(done, count)` as signatures are made.
 */
export function findContradictions(
  images: Uint8Array,
  masks: Uint8Array,
  index: Int32Array,
  count: number,
  width: number,
  height: number,
  options: DuplicateOptions = {},
  onProgress?: (done: number, total: number) => void,
): DuplicateReport {
  const threshold = options.threshold ?? DUPLICATE_THRESHOLD;
  const cell = options.cell ?? DUPLICATE_CELL;
  const pixels = width * height;
  if (!(threshold > 0 && threshold <= 1)) throw new DataError(`near-duplicates: the threshold must be a correlation in (0, 1], got ${threshold}`);
  if (!Number.isInteger(cell) || cell < 1 || cell > Math.min(width, height)) throw new DataError(`near-duplicates: the cell must be a whole number of pixels in [1, ${Math.min(width, height)}], got ${cell}`);
  if (images.length < count * pixels || masks.length < count * pixels || index.length < 2 * count) {
    throw new DataError(`near-duplicates: ${count} frames of ${width}×${height} need ${count * pixels} pixels and ${2 * count} index entries; got ${images.length} image pixels, ${masks.length} mask pixels and ${index.length} index entries`);
  }
  const bySubject = new Map<number, number[]>();
  for (let row = 0; row < count; row++) {
    const subject = index[2 * row]!;
    const rows = bySubject.get(subject);
    if (rows) rows.push(row);
    else bySubject.set(subject, [row]);
  }
  const signatures: Float32Array[] = new Array(count);
  const masked: boolean[] = new Array(count);
  for (let row = 0; row < count; row++) {
    signatures[row] = signature(images, row * pixels, width, height, cell);
    masked[row] = hasMask(masks, row * pixels, pixels);
    onProgress?.(row + 1, count);
  }
  let nearDuplicates = 0;
  const contradictions: NearDuplicate[] = [];
  for (const [subject, rows] of [...bySubject].sort((a, b) => a[0] - b[0])) {
    for (let i = 0; i < rows.length; i++) {
      const a = signatures[rows[i]!]!;
      for (let j = i + 1; j < rows.length; j++) {
        const b = signatures[rows[j]!]!;
        let dot = 0;
        for (let k = 0; k < a.length; k++) dot += a[k]! * b[k]!;
        if (dot < threshold) continue;
        nearDuplicates++;
        const [ra, rb] = [rows[i]!, rows[j]!];
        if (masked[ra] === masked[rb]) continue;
        contradictions.push({
          subject,
          frames: [index[2 * ra + 1]!, index[2 * rb + 1]!],
          rows: [ra, rb],
          similarity: dot,
          unmaskedRow: masked[ra] ? rb : ra,
        });
      }
    }
  }
  return { threshold, cell, frames: count, nearDuplicates, contradictions };
}
