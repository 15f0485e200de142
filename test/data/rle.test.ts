import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { decodeRle, encodeRle, parseRle } from '../../src/data/rle.js';
import { decodeTiff } from '../../src/data/tiff.js';
import { arrayDifference } from './compare.js';
import { readFixture, trainMasks } from './fixtures.js';

const WIDTH = 580;
const HEIGHT = 420;

/** A row-major mask from rows of '#' (on) and '.' (off). */
function mask(...rows: string[]): Uint8Array {
  return Uint8Array.from(rows.join(''), (c) => (c === '#' ? 1 : 0));
}

describe('encodeRle and decodeRle on small masks', () => {
  // Pixel numbers of a 3 × 2 mask, column by column:
  //   1 3 5
  //   2 4 6
  it('numbers pixels down each column, then across, from 1', () => {
    expect(encodeRle(mask('#..', '...'), 3, 2)).toBe('1 1');
    expect(encodeRle(mask('...', '#..'), 3, 2)).toBe('2 1');
    expect(encodeRle(mask('.#.', '...'), 3, 2)).toBe('3 1');
    expect(encodeRle(mask('...', '..#'), 3, 2)).toBe('6 1');
  });

  it('lets a run carry on from the bottom of one column to the top of the next', () => {
    expect(encodeRle(mask('.#.', '#..'), 3, 2)).toBe('2 2');
    expect(encodeRle(mask('#.#', '.##'), 3, 2)).toBe('1 1 4 3');
    expect(encodeRle(mask('..#', '.##'), 3, 2)).toBe('4 3');
  });

  it('writes the empty mask as the empty string and the full mask as one run', () => {
    expect(encodeRle(mask('...', '...'), 3, 2)).toBe('');
    expect(encodeRle(mask('###', '###'), 3, 2)).toBe('1 6');
    expect(Array.from(decodeRle('', 3, 2))).toEqual([0, 0, 0, 0, 0, 0]);
  });

  it('treats every nonzero value as on and decodes to 0 and 1', () => {
    const m = new Uint8Array([255, 0, 7, 0, 0, 1]); // rows "#.#" and "..#"
    expect(encodeRle(m, 3, 2)).toBe('1 1 5 2');
    expect(Array.from(decodeRle('1 1 5 2', 3, 2))).toEqual([1, 0, 1, 0, 0, 1]);
  });

  it('decodes what it encodes for every 3 × 3 mask', () => {
    for (let bits = 0; bits < 512; bits++) {
      const m = Uint8Array.from({ length: 9 }, (_, i) => (bits >> i) & 1);
      expect(Array.from(decodeRle(encodeRle(m, 3, 3), 3, 3))).toEqual(Array.from(m));
    }
  });

  it('encodes a mask view at any byte offset alike', () => {
    const m = Uint8Array.from({ length: 7 * 5 }, (_, i) => ((i * 13) % 7 < 3 ? 1 : 0));
    const expected = encodeRle(m, 7, 5);
    expect(expected).not.toBe('');
    for (const offset of [1, 2, 3, 4]) {
      const backing = new Uint8Array(m.length + offset);
      backing.set(m, offset);
      expect(encodeRle(backing.subarray(offset), 7, 5)).toBe(expected);
    }
  });

  it('accepts touching runs (not written by encodeRle) but not overlapping ones', () => {
    expect(Array.from(decodeRle('1 2 3 1', 3, 2))).toEqual([1, 1, 0, 1, 0, 0]);
    expect(parseRle('1 2 3 1', 3, 2)).toEqual([
      { start: 1, length: 2 },
      { start: 3, length: 1 },
    ]);
  });
});

describe('decodeRle rejects malformed strings', () => {
  const cases: [pixels: string, message: RegExp][] = [
    ['1 2 3', /odd count/],
    ['1 x', /"x" at position 2, which is not a whole number/],
    ['1 2.5', /not a whole number/],
    ['-1 2', /not a whole number/],
    ['1  2', /empty number/],
    [' 1 2', /empty number/],
    ['1 2 ', /empty number/],
    ['0 2', /at least 1/],
    ['3 0', /at least 1/],
    ['6 2', /past the last pixel 6/],
    ['1 3 2 1', /overlap or are not sorted/],
    ['4 1 1 1', /overlap or are not sorted/],
  ];
  for (const [pixels, message] of cases) {
    it(`"${pixels}"`, () => {
      let caught: unknown;
      try {
        decodeRle(pixels, 3, 2, 'masks.csv line 7');
      } catch (error) {
        caught = error;
      }
      expect(caught).toBeInstanceOf(DataError);
      expect((caught as Error).message).toMatch(/^masks\.csv line 7: /);
      expect((caught as Error).message).toMatch(message);
    });
  }

  it('rejects a mask whose size does not match', () => {
    expect(() => encodeRle(new Uint8Array(5), 3, 2)).toThrow(DataError);
    expect(() => decodeRle('1 1', 0, 2)).toThrow(/positive integers/);
  });
});

describe('the competition files', () => {
  const rows = trainMasks();

  for (let n = 1; n <= 5; n++) {
    it(`encodes 1_${n}_mask.tif to the pixels of row 1,${n} of train_masks.csv`, () => {
      const image = decodeTiff(readFixture(`1_${n}_mask.tif`), `1_${n}_mask.tif`);
      const row = rows.find((r) => r.subject === 1 && r.img === n)!;
      expect(row).toBeDefined();
      expect(encodeRle(image.data, image.width, image.height)).toBe(row.pixels);
      if (n === 5) expect(row.pixels).toBe('');
      // And back: the decoded field is the mask, as 0/1.
      const decoded = decodeRle(row.pixels, WIDTH, HEIGHT);
      expect(arrayDifference(decoded, image.data.map((v) => (v ? 1 : 0)))).toBe('equal');
    });
  }

  it('holds 5,635 masks of 47 subjects, 3,312 of them empty, the others 2,684 to 17,439 pixels', () => {
    expect(rows.length).toBe(5635);
    expect(new Set(rows.map((r) => r.subject)).size).toBe(47);
    expect(new Set(rows.map((r) => `${r.subject}_${r.img}`)).size).toBe(5635);
    const areas = rows.map((r) => parseRle(r.pixels, WIDTH, HEIGHT, `train_masks.csv line ${r.line}`).reduce((a, run) => a + run.length, 0));
    const nonEmpty = areas.filter((a) => a > 0).sort((a, b) => a - b);
    expect(areas.length - nonEmpty.length).toBe(3312);
    expect([nonEmpty[0], nonEmpty[nonEmpty.length - 1], nonEmpty[(nonEmpty.length - 1) / 2]]).toEqual([2684, 17439, 6976]);
  });

  it('decodes and re-encodes every row of train_masks.csv unchanged', () => {
    const changed: string[] = [];
    for (const row of rows) {
      const m = decodeRle(row.pixels, WIDTH, HEIGHT, `train_masks.csv line ${row.line}`);
      if (encodeRle(m, WIDTH, HEIGHT) !== row.pixels) changed.push(`${row.subject}_${row.img}`);
    }
    expect(changed).toEqual([]);
  });
});
