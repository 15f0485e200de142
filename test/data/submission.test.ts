import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { decodeRle, encodeRle } from '../../src/data/rle.js';
import { formatSubmission, parseSubmission, validateSubmission } from '../../src/data/submission.js';
import { arrayDifference } from './compare.js';
import { readFixtureText } from './fixtures.js';

const W = 580;
const H = 420;

/** A 580 × 420 mask with `count` on-pixels in a vertical strip starting at column x, row y. */
function strip(count: number, x = 100, y = 50): Uint8Array {
  const mask = new Uint8Array(W * H);
  for (let k = 0; k < count; k++) mask[(y + (k % 300)) * W + x + Math.floor(k / 300)] = 1;
  return mask;
}

function expectDataError(run: () => unknown, message: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DataError);
  expect((caught as Error).message).toMatch(message);
}

describe('formatSubmission', () => {
  it('writes the header, rows sorted by id, RLE fields and a final newline', () => {
    const a = strip(12, 3, 7);
    const b = strip(700, 200, 10);
    const csv = formatSubmission([
      { id: 10, mask: a },
      { id: 2, mask: b },
      { id: 7, mask: new Uint8Array(W * H) },
    ]);
    expect(csv).toBe(`img,pixels\n2,${encodeRle(b, W, H)}\n7,\n10,${3 * H + 7 + 1} 12\n`);
    // Column 3, rows 7..18: pixel numbers 3·420 + 8 onwards.
    expect(encodeRle(a, W, H)).toBe('1268 12');
  });

  it('writes masks under minArea pixels as empty', () => {
    const csv = formatSubmission([
      { id: 1, mask: strip(9) },
      { id: 2, mask: strip(10) },
    ]);
    expect(csv.split('\n')).toEqual(['img,pixels', '1,', `2,${encodeRle(strip(10), W, H)}`, '']);
    expect(formatSubmission([{ id: 1, mask: strip(9) }], 0)).toBe(`img,pixels\n1,${encodeRle(strip(9), W, H)}\n`);
  });

  it('rejects repeated or invalid ids and masks of the wrong size', () => {
    expectDataError(() => formatSubmission([{ id: 3, mask: strip(1) }, { id: 3, mask: strip(1) }]), /image id 3 appears twice/);
    expectDataError(() => formatSubmission([{ id: 0, mask: strip(1) }]), /id 0 is not a positive integer/);
    expectDataError(() => formatSubmission([{ id: 1, mask: new Uint8Array(96 * 96) }]), /9216 pixels, not 580 × 420/);
  });
});

describe('parseSubmission', () => {
  it('reads back what formatSubmission writes', () => {
    const masks = [strip(50, 10, 10), strip(5000, 300, 100), new Uint8Array(W * H)];
    const csv = formatSubmission(masks.map((mask, i) => ({ id: 5 - i, mask })));
    const rows = parseSubmission(csv, 'submission.csv');
    expect(rows.map((r) => [r.id, r.line, r.area])).toEqual([
      [3, 2, 0],
      [4, 3, 5000],
      [5, 4, 50],
    ]);
    expect(arrayDifference(decodeRle(rows[1]!.pixels, W, H), masks[1]!)).toBe('equal');
  });

  it('reads the competition’s sample submission: 5,508 ids with the mask "1 1"', () => {
    const rows = parseSubmission(readFixtureText('sample_submission.csv'), 'sample_submission.csv');
    expect(rows.length).toBe(5508);
    expect(rows.every((r, i) => r.id === i + 1 && r.pixels === '1 1' && r.area === 1)).toBe(true);
  });

  it('accepts CRLF line endings and a missing final newline', () => {
    expect(parseSubmission('img,pixels\r\n1,1 2\r\n2,', 'windows.csv').map((r) => r.pixels)).toEqual(['1 2', '']);
  });

  it('names the file and the line of each error', () => {
    expectDataError(() => parseSubmission('id,rle\n1,\n', 'a.csv'), /^a\.csv line 1: the header is "id,rle", expected "img,pixels"/);
    expectDataError(() => parseSubmission('img,pixels\n1,\n2,3,4\n', 'b.csv'), /^b\.csv line 3: .* has 3 fields/);
    expectDataError(() => parseSubmission('img,pixels\nx,1 1\n', 'c.csv'), /^c\.csv line 2: image id "x" is not a positive integer/);
    expectDataError(() => parseSubmission('img,pixels\n1,1 1\n2,\n1,5 5\n', 'd.csv'), /^d\.csv line 4: image 1 already appears on line 2/);
    expectDataError(() => parseSubmission('img,pixels\n1,\n2,5 2 3 1\n', 'e.csv'), /^e\.csv line 3 \(image 2\): .*overlap or are not sorted/);
    expectDataError(() => parseSubmission('img,pixels\n1,243600 2\n', 'f.csv'), /^f\.csv line 2 \(image 1\): .*past the last pixel 243600/);
    expectDataError(() => parseSubmission('img,pixels\n1,\n\n2,\n', 'g.csv'), /^g\.csv line 3: "" has 1 fields/);
  });
});

describe('validateSubmission', () => {
  const ids = [1, 2, 3, 4];
  const good = formatSubmission(ids.map((id) => ({ id, mask: id % 2 ? strip(40 * id) : new Uint8Array(W * H) })));

  it('finds nothing wrong with what formatSubmission writes', () => {
    expect(validateSubmission(good, ids)).toEqual([]);
  });

  it('reports missing, extra, repeated and unsorted ids', () => {
    expect(validateSubmission('img,pixels\n1,\n2,\n4,\n', ids)).toEqual(['1 expected image ids are missing: 3']);
    expect(validateSubmission('img,pixels\n1,\n2,\n3,\n4,\n9,\n', ids)).toEqual(['1 image ids are not test images: 9']);
    expect(validateSubmission('img,pixels\n1,\n2,\n2,\n3,\n4,\n', ids)).toEqual(['1 repeated ids: line 4: image 2 repeats line 3']);
    expect(validateSubmission('img,pixels\n1,\n3,\n2,\n4,\n', ids)).toEqual(['1 rows out of ascending id order: line 4: image 2 comes after image 3']);
  });

  it('reports the header, line endings, malformed rows and tiny masks', () => {
    expect(validateSubmission('img,rle\n1,\n2,\n3,\n4,\n', ids)).toEqual(['line 1: the header is "img,rle", expected "img,pixels"']);
    expect(validateSubmission('img,pixels\r\n1,\r\n2,\r\n3,\r\n4,\r\n', ids)).toEqual([
      'line endings: the file contains carriage returns; use "\\n" line endings',
    ]);
    expect(validateSubmission('img,pixels\n1,\n2,\n3,\n4,', ids)).toEqual(['the file does not end with a newline']);
    const malformed = validateSubmission('img,pixels\n1,1 x\n2,\n3,\n4,\n', ids);
    expect(malformed.length).toBe(2); // the bad row, and so its id counts as missing
    expect(malformed[0]).toMatch(/^1 malformed rows: line 2 \(image 1\): has "x" at position 2/);
    expect(malformed[1]).toBe('1 expected image ids are missing: 1');
    expect(validateSubmission('img,pixels\n1,\n2,1 9\n3,\n4,\n', ids)).toEqual([
      '1 masks under the minimum area: line 3: image 2 has a 9-pixel mask, under the minimum of 10; write it empty',
    ]);
    expect(validateSubmission('img,pixels\n1,\n2,1 9\n3,\n4,\n', ids, { minArea: 0 })).toEqual([]);
  });

  it('judges the sample submission: the right ids, but every "1 1" mask is under 10 pixels', () => {
    const csv = readFixtureText('sample_submission.csv');
    const all = Array.from({ length: 5508 }, (_, i) => i + 1);
    const problems = validateSubmission(csv, all);
    expect(problems.length).toBe(1);
    expect(problems[0]).toMatch(/^5508 masks under the minimum area: line 2: image 1 has a 1-pixel mask/);
    expect(validateSubmission(csv, all, { minArea: 0 })).toEqual([]);
    expect(validateSubmission(csv, all.slice(1), { minArea: 0 })).toEqual(['1 image ids are not test images: 1']);
  });
});
