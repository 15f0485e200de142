import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { decodeNpy, encodeNpy } from '../../src/data/npy.js';
import { arrayDifference } from './compare.js';

/** The bytes before the data, as numpy 2.4's np.save wrote them for these arrays. */
const NUMPY_HEADERS: [what: string, array: Uint8Array | Int32Array | Float32Array, shape: number[], header: string][] = [
  ['uint8 (2, 3, 4)', new Uint8Array(24), [2, 3, 4], "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 3, 4), }"],
  ['int32 (5,)', new Int32Array(5), [5], "{'descr': '<i4', 'fortran_order': False, 'shape': (5,), }"],
  ['float32 (2, 3)', new Float32Array(6), [2, 3], "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"],
  ['uint8 (5, 420, 580)', new Uint8Array(5 * 420 * 580), [5, 420, 580], "{'descr': '|u1', 'fortran_order': False, 'shape': (5, 420, 580), }"],
  ['float32 scalar ()', new Float32Array(1), [], "{'descr': '<f4', 'fortran_order': False, 'shape': (), }"],
];

/** numpy's padding: 21 − digits of the first axis spaces of room to grow, then spaces to 128 bytes, then '\n'. */
function numpyPrefix(header: string, shape: number[]): Uint8Array {
  const growth = shape.length > 0 ? ' '.repeat(21 - String(shape[0]).length) : '';
  const text = header + growth;
  const padded = text + ' '.repeat(128 - 10 - text.length - 1) + '\n';
  return new Uint8Array([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0, padded.length & 255, padded.length >> 8, ...new TextEncoder().encode(padded)]);
}

/** A .npy file with any header text and version, for the reader's edge cases. */
function npyWithHeader(header: string, data: Uint8Array, major = 1): Uint8Array {
  const lengthSize = major === 1 ? 2 : 4;
  const prefix = 8 + lengthSize;
  const padded = header + ' '.repeat((64 - ((prefix + header.length + 1) % 64)) % 64) + '\n';
  const text = new TextEncoder().encode(padded);
  const out = new Uint8Array(prefix + text.length + data.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, major, 0]);
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, text.length, true);
  else view.setUint32(8, text.length, true);
  out.set(text, prefix);
  out.set(data, prefix + text.length);
  return out;
}

function expectDataError(run: () => unknown, name: string, message: RegExp): void {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(DataError);
  expect((caught as Error).message).toContain(name);
  expect((caught as Error).message).toMatch(message);
}

describe('encodeNpy', () => {
  for (const [what, array, shape, header] of NUMPY_HEADERS) {
    it(`writes the header numpy writes for ${what}`, () => {
      const file = encodeNpy(array, shape);
      const expected = numpyPrefix(header, shape);
      expect(arrayDifference(file.subarray(0, expected.length), expected)).toBe('equal');
      expect(file.length).toBe(expected.length + array.byteLength);
      expect(expected.length % 64).toBe(0);
    });
  }

  it('adds a whole 64 spaces when the header would already end on a 64-byte boundary, as numpy does', () => {
    // numpy 2.4 writes a 192-byte prefix for this shape: 10 + 117 + '\n' is 128 already, and it pads 64 more.
    const shape = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 100];
    const file = encodeNpy(new Uint8Array(100), shape);
    expect(file.length - 100).toBe(192);
    expect(new TextDecoder().decode(file.subarray(10, 192))).toBe(
      "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 100), }" + ' '.repeat(84) + '\n',
    );
  });

  it('round-trips every dtype, special floats included', () => {
    const cases: [Uint8Array | Int32Array | Float32Array, number[]][] = [
      [new Uint8Array([0, 1, 127, 128, 255, 42]), [2, 3]],
      [new Int32Array([0, -1, 2147483647, -2147483648, 5508]), [5]],
      [new Float32Array([0.5, -1.25, 1e-30, 3.4e38, NaN, Infinity, -Infinity, -0]), [2, 2, 2]],
      [new Float32Array([7]), []],
      [new Int32Array(0), [0, 3]],
    ];
    for (const [array, shape] of cases) {
      const back = decodeNpy(encodeNpy(array, shape), 'round-trip.npy');
      expect(back.shape).toEqual(shape);
      expect(back.data.constructor).toBe(array.constructor);
      expect(arrayDifference(back.data, array)).toBe('equal');
    }
  });

  it('writes only the view it is given', () => {
    const backing = new Uint8Array([9, 9, 1, 2, 3, 9]);
    const back = decodeNpy(encodeNpy(backing.subarray(2, 5), [3]), 'view.npy');
    expect(Array.from(back.data)).toEqual([1, 2, 3]);
  });

  it('rejects a shape that does not fit the array', () => {
    expectDataError(() => encodeNpy(new Uint8Array(5), [2, 3]), 'encodeNpy', /holds 6 values but the array has 5/);
    expectDataError(() => encodeNpy(new Uint8Array(0), [-1]), 'encodeNpy', /non-negative integers/);
  });
});

describe('decodeNpy', () => {
  it('reads versions 2.0 and 3.0, Python 2 longs, other key orders and quotes', () => {
    const data = new Uint8Array(new Float32Array([1, 2, 3, 4, 5, 6]).buffer);
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }";
    for (const major of [2, 3]) {
      const back = decodeNpy(npyWithHeader(header, data, major), `v${major}.npy`);
      expect(back.shape).toEqual([3, 2]);
      expect(Array.from(back.data)).toEqual([1, 2, 3, 4, 5, 6]);
    }
    const old = decodeNpy(npyWithHeader("{'descr': '|u1', 'fortran_order': False, 'shape': (2L, 3L), }", new Uint8Array(6)), 'py2.npy');
    expect(old.shape).toEqual([2, 3]);
    const reordered = decodeNpy(npyWithHeader('{"shape": (4,), "fortran_order": False, "descr": "<i4"}', new Uint8Array(16)), 'reordered.npy');
    expect([reordered.dtype, reordered.shape]).toEqual(['int32', [4]]);
  });

  it('reads data at any alignment', () => {
    const file = encodeNpy(new Float32Array([1.5, -2.5]), [2]);
    const shifted = new Uint8Array(file.length + 1);
    shifted.set(file, 1);
    expect(Array.from(decodeNpy(shifted.subarray(1), 'shifted.npy').data)).toEqual([1.5, -2.5]);
  });

  it('names the file and says what is wrong', () => {
    const good = encodeNpy(new Int32Array([1, 2, 3, 4]), [2, 2]);
    const withByte = (at: number, value: number): Uint8Array => {
      const copy = good.slice();
      copy[at] = value;
      return copy;
    };
    expectDataError(() => decodeNpy(new TextEncoder().encode('PK\u0003\u0004 a zip'), 'a.npz'), 'a.npz', /not a NumPy \.npy file/);
    expectDataError(() => decodeNpy(new Uint8Array(0), 'empty.npy'), 'empty.npy', /not a NumPy/);
    expectDataError(() => decodeNpy(withByte(6, 4), 'v4.npy'), 'v4.npy', /version 4\.0 is not supported/);
    expectDataError(() => decodeNpy(good.subarray(0, 50), 'cut-header.npy'), 'cut-header.npy', /truncated/);
    expectDataError(() => decodeNpy(good.subarray(0, good.length - 1), 'cut-data.npy'), 'cut-data.npy', /needs 16 data bytes but the file has 15: the file is truncated/);
    const longer = new Uint8Array(good.length + 4);
    longer.set(good);
    expectDataError(() => decodeNpy(longer, 'long.npy'), 'long.npy', /has 20/);

    const header = (text: string, data = new Uint8Array(4)): Uint8Array => npyWithHeader(text, data);
    expectDataError(() => decodeNpy(header("{'descr': '>i4', 'fortran_order': False, 'shape': (1,), }"), 'be.npy'), 'be.npy', /big-endian/);
    expectDataError(() => decodeNpy(header("{'descr': '<f8', 'fortran_order': False, 'shape': (1,), }", new Uint8Array(8)), 'f8.npy'), 'f8.npy', /'<f8' is not supported/);
    expectDataError(() => decodeNpy(header("{'descr': '<i4', 'fortran_order': True, 'shape': (1,), }"), 'f.npy'), 'f.npy', /Fortran order/);
    expectDataError(() => decodeNpy(header("{'descr': '<i4', 'shape': (1,), }"), 'nokey.npy'), 'nokey.npy', /fortran_order/);
    expectDataError(() => decodeNpy(header("{'descr': '<i4', 'fortran_order': False, 'shape': (-1,), }"), 'neg.npy'), 'neg.npy', /shape entry/);
    expectDataError(() => decodeNpy(header("{'descr': [('a', '<i4')], 'fortran_order': False, 'shape': (1,), }"), 'rec.npy'), 'rec.npy', /corrupt/);
    expectDataError(() => decodeNpy(header("{'descr': '<i4', 'fortran_order': False, 'shape': (1,), 'x': 1}"), 'extra.npy'), 'extra.npy', /corrupt/);
  });
});

const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { stdio: 'ignore' }).status === 0;

describe.skipIf(!hasNumpy)('against numpy itself (python3 with numpy found)', () => {
  it('np.load reads what encodeNpy writes, and decodeNpy reads what np.save writes', () => {
    const dir = mkdtempSync(join(tmpdir(), 'npy-test-'));
    try {
      const images = new Uint8Array(3 * 4 * 5).map((_, i) => (i * 7) % 256);
      writeFileSync(join(dir, 'ours.npy'), encodeNpy(images, [3, 4, 5]));
      const script = [
        'import numpy as np, sys',
        'd = sys.argv[1]',
        "a = np.load(d + '/ours.npy')",
        "assert a.dtype == np.uint8 and a.shape == (3, 4, 5), (a.dtype, a.shape)",
        "assert (a.ravel() == (np.arange(60) * 7) % 256).all()",
        "np.save(d + '/ids.npy', np.array([3, 1, 5508, -7], dtype=np.int32))",
        "np.save(d + '/probs.npy', np.linspace(0, 1, 12, dtype=np.float32).reshape(2, 6))",
      ].join('\n');
      const result = spawnSync('python3', ['-c', script, dir], { encoding: 'utf8' });
      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      const ids = decodeNpy(readFileSync(join(dir, 'ids.npy')), 'ids.npy');
      expect([ids.dtype, ids.shape, Array.from(ids.data)]).toEqual(['int32', [4], [3, 1, 5508, -7]]);
      const probs = decodeNpy(readFileSync(join(dir, 'probs.npy')), 'probs.npy');
      expect([probs.dtype, probs.shape]).toEqual(['float32', [2, 6]]);
      expect(probs.data[11]).toBe(1);
      expect(probs.data[1]).toBeCloseTo(1 / 11, 7);
      // Byte for byte, too.
      const script2 = "import numpy as np, sys; np.save(sys.argv[1] + '/theirs.npy', (np.arange(60) * 7 % 256).astype(np.uint8).reshape(3, 4, 5))";
      expect(spawnSync('python3', ['-c', script2, dir]).status).toBe(0);
      expect(arrayDifference(readFileSync(join(dir, 'theirs.npy')), encodeNpy(images, [3, 4, 5]))).toBe('equal');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
