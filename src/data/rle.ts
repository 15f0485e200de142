/**
 * The competition's run-length encoding of a binary mask: pixels numbered from
 * 1 column by column (top to bottom, then left to right), written as
 * space-separated "start length" pairs. A run may carry on from the bottom of
 * one column to the top of the next. An empty mask is the empty string.
 */
import { DataError } from './errors.js';

/** Encodes a row-major mask (nonzero = on) of width × height. */
export function encodeRle(mask: Uint8Array, width: number, height: number): string {
  checkSize(mask.length, width, height, 'encodeRle');
  const [firstColumn, lastColumn] = onColumnRange(mask, width);

  const parts: string[] = [];
  let runStart = 0; // 1-based pixel number of the open run, 0 when none is open
  let pixelNumber = firstColumn * height;
  for (let x = firstColumn; x <= lastColumn; x++) {
    for (let i = x; i < mask.length; i += width) {
      pixelNumber++;
      const on = mask[i] !== 0;
      if (on && runStart === 0) {
        runStart = pixelNumber;
      } else if (!on && runStart !== 0) {
        parts.push(`${runStart} ${pixelNumber - runStart}`);
        runStart = 0;
      }
    }
  }
  if (runStart !== 0) parts.push(`${runStart} ${pixelNumber + 1 - runStart}`);
  return parts.join(' ');
}

/**
 * The first and last columns holding an on pixel ([width, −1] when none do).
 * Columns outside hold no runs, and this row-major pass, four pixels at a time
 * where the mask is aligned, costs far less than walking them column by column.
 */
function onColumnRange(mask: Uint8Array, width: number): [number, number] {
  let first = width;
  let last = -1;
  const note = (i: number): void => {
    const x = i % width;
    if (x < first) first = x;
    if (x > last) last = x;
  };
  let start = 0;
  if (mask.byteOffset % 4 === 0) {
    const words = new Uint32Array(mask.buffer, mask.byteOffset, mask.length >> 2);
    for (let w = 0; w < words.length; w++) {
      if (words[w] === 0) continue;
      for (let i = 4 * w; i < 4 * w + 4; i++) if (mask[i] !== 0) note(i);
    }
    start = words.length * 4;
  }
  for (let i = start; i < mask.length; i++) if (mask[i] !== 0) note(i);
  return [first, last];
}

/** One run: `length` pixels from pixel number `start` (1-based, column by column). */
export interface RleRun {
  start: number;
  length: number;
}

/**
 * Decodes an RLE string to a row-major width × height mask of 0s and 1s.
 * Throws DataError, naming `where` (say "train_masks.csv line 12"), when the
 * string is not pairs of positive integers separated by single spaces, or a run
 * leaves the image, overlaps the previous one or comes before it.
 */
export function decodeRle(pixels: string, width: number, height: number, where = 'RLE string'): Uint8Array {
  const runs = parseRle(pixels, width, height, where);
  const mask = new Uint8Array(width * height);
  for (const { start, length } of runs) {
    // Pixel number p (1-based) is row (p − 1) mod height of column ⌊(p − 1) / height⌋.
    let row = (start - 1) % height;
    let column = (start - 1 - row) / height;
    for (let k = 0; k < length; k++) {
      mask[row * width + column] = 1;
      if (++row === height) {
        row = 0;
        column++;
      }
    }
  }
  return mask;
}

/** Checks an RLE string as decodeRle does and returns its runs, without painting a mask. */
export function parseRle(pixels: string, width: number, height: number, where = 'RLE string'): RleRun[] {
  checkSize(width * height, width, height, 'decodeRle');
  const runs: RleRun[] = [];
  if (pixels === '') return runs;
  const tokens = pixels.split(' ');
  const fail = (what: string): never => {
    throw new DataError(`${where}: ${what}; expected "start length" pairs of positive integers, sorted, separated by single spaces`);
  };
  const numbers = tokens.map((token, index) => parseCount(token, index, fail));
  if (numbers.length % 2 !== 0) fail(`has ${numbers.length} numbers, an odd count`);

  const pixelCount = width * height;
  let previousEnd = 0; // last pixel number of the previous run
  for (let t = 0; t < numbers.length; t += 2) {
    const start = numbers[t]!;
    const length = numbers[t + 1]!;
    const end = start + length - 1;
    if (end > pixelCount) fail(`run "${start} ${length}" ends at pixel ${end}, past the last pixel ${pixelCount} of a ${width} × ${height} mask`);
    if (start <= previousEnd) {
      fail(`run "${start} ${length}" starts at or before pixel ${previousEnd}, where the previous run ends (runs overlap or are not sorted)`);
    }
    runs.push({ start, length });
    previousEnd = end;
  }
  return runs;
}

function parseCount(token: string, index: number, fail: (what: string) => never): number {
  if (!/^[0-9]+$/.test(token)) {
    return fail(token === '' ? `has an empty number at position ${index + 1} (a doubled, leading or trailing space)` : `has "${token}" at position ${index + 1}, which is not a whole number`);
  }
  const value = Number(token);
  if (value < 1) fail(`has ${token} at position ${index + 1}; starts and lengths are at least 1`);
  return value;
}

function checkSize(length: number, width: number, height: number, caller: string): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new DataError(`${caller}: mask size ${width} × ${height} is invalid: width and height must be positive integers`);
  }
  if (length !== width * height) {
    throw new DataError(`${caller}: the mask has ${length} pixels but ${width} × ${height} needs ${width * height}`);
  }
}
