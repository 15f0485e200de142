/**
 * NumPy .npy files, the tutorial's array cache (imgs_train.npy and friends):
 * uint8 images and masks, int32 ids, float32 probability masks.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import { DataError } from './errors.js';

export type NpyDtype = 'uint8' | 'int32' | 'float32';

export type NpyArray =
  | { dtype: 'uint8'; shape: number[]; data: Uint8Array }
  | { dtype: 'int32'; shape: number[]; data: Int32Array }
  | { dtype: 'float32'; shape: number[]; data: Float32Array };

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
/** numpy aligns the data to 64 bytes so that it can be memory-mapped. */
const ALIGNMENT = 64;
/** numpy leaves room for the growing axis to reach this many digits, so files can be appended to in place. */
const GROWTH_AXIS_MAX_DIGITS = 21;

const DESCR_OF: Record<NpyDtype, string> = { uint8: '|u1', int32: '<i4', float32: '<f4' };
/** Little-endian (or byte-sized) descriptors we read, and the dtype each means. */
const DTYPE_OF: Record<string, NpyDtype> = {
  '|u1': 'uint8',
  '<u1': 'uint8',
  u1: 'uint8',
  '<i4': 'int32',
  '<f4': 'float32',
};
const ITEM_SIZE: Record<NpyDtype, number> = { uint8: 1, int32: 4, float32: 4 };

// Typed arrays use the platform's byte order; every platform with WebGPU is little-endian.
const platformIsLittleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

function dtypeOf(array: Uint8Array | Int32Array | Float32Array): NpyDtype {
  if (array instanceof Uint8Array) return 'uint8';
  if (array instanceof Int32Array) return 'int32';
  return 'float32';
}

/** Python's repr of a tuple of ints: "()", "(5,)", "(5, 420, 580)". */
function shapeRepr(shape: number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(', ')})`;
}

/**
 * Writes an array as .npy, byte for byte as numpy ≥ 1.23's np.save does (C
 * order; version 1.0, or 2.0 if the header needs more than 65,535 bytes).
 */
export function encodeNpy(array: Uint8Array | Int32Array | Float32Array, shape: number[]): Uint8Array {
  if (!platformIsLittleEndian) throw new DataError('encodeNpy: this platform is big-endian; .npy writing assumes little-endian typed arrays');
  if (!shape.every((n) => Number.isSafeInteger(n) && n >= 0)) {
    throw new DataError(`encodeNpy: shape ${shapeRepr(shape)} must hold non-negative integers`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  if (count !== array.length) {
    throw new DataError(`encodeNpy: shape ${shapeRepr(shape)} holds ${count} values but the array has ${array.length}; pass the array's real shape`);
  }
  const dtype = dtypeOf(array);
  let dict = `{'descr': '${DESCR_OF[dtype]}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));

  // Spaces, then '\n', so that magic + version + length field + header is a multiple of 64
  // (numpy adds a whole 64 spaces when it would already be one).
  const header = (lengthFieldSize: number): string => {
    const prefix = MAGIC.length + 2 + lengthFieldSize;
    const padding = ALIGNMENT - ((prefix + dict.length + 1) % ALIGNMENT);
    return dict + ' '.repeat(padding) + '\n';
  };
  let major = 1;
  let text = header(2);
  if (text.length > 0xffff) {
    major = 2;
    text = header(4);
  }
  const headerBytes = new TextEncoder().encode(text);
  const lengthFieldSize = major === 1 ? 2 : 4;
  const dataStart = MAGIC.length + 2 + lengthFieldSize + headerBytes.length;

  const out = new Uint8Array(dataStart + array.byteLength);
  out.set(MAGIC, 0);
  out[6] = major;
  out[7] = 0;
  const view = new DataView(out.buffer);
  if (major === 1) view.setUint16(8, headerBytes.length, true);
  else view.setUint32(8, headerBytes.length, true);
  out.set(headerBytes, MAGIC.length + 2 + lengthFieldSize);
  out.set(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), dataStart);
  return out;
}

/**
 * Reads a .npy file (versions 1.0, 2.0 and 3.0) holding uint8, little-endian
 * int32 or little-endian float32 data in C order. The returned data is a copy
 * (so it is aligned whatever the header length). Throws DataError naming `name`
 * when the file is truncated, corrupt or of another type.
 */
export function decodeNpy(bytes: Uint8Array, name: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new DataError(`${name}: does not start with the .npy magic "\\x93NUMPY": it is not a NumPy .npy file (or is empty)`);
  }
  const major = bytes[6]!;
  const minor = bytes[7]!;
  if ((major !== 1 && major !== 2 && major !== 3) || minor !== 0) {
    throw new DataError(`${name}: .npy format version ${major}.${minor} is not supported (only 1.0, 2.0, 3.0): re-save it with np.save`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lengthFieldSize = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lengthFieldSize) throw new DataError(`${name}: the .npy header is truncated`);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = 8 + lengthFieldSize;
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length) {
    throw new DataError(`${name}: the .npy header claims ${headerLength} bytes but the file has only ${bytes.length - headerStart} after the length field: the file is truncated`);
  }
  const headerBytes = bytes.subarray(headerStart, dataStart);
  // Versions 1 and 2 promise latin-1 (in practice ASCII); version 3 is UTF-8.
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(headerBytes);
  const { descr, fortranOrder, shape } = parseHeader(header, name);

  const dtype = DTYPE_OF[descr];
  if (dtype === undefined) {
    const hint = descr.startsWith('>') ? 'it is big-endian; re-save it with arr.astype(arr.dtype.newbyteorder("<"))' : "re-save it as uint8, '<i4' or '<f4'";
    throw new DataError(`${name}: dtype '${descr}' is not supported (only uint8, little-endian int32 and float32): ${hint}`);
  }
  if (fortranOrder) {
    throw new DataError(`${name}: the array is stored in Fortran order, which is not supported: re-save it with np.save(f, np.ascontiguousarray(arr))`);
  }
  const count = shape.reduce((a, b) => a * b, 1);
  const expectedBytes = count * ITEM_SIZE[dtype];
  const actualBytes = bytes.length - dataStart;
  if (actualBytes !== expectedBytes) {
    throw new DataError(`${name}: shape ${shapeRepr(shape)} of ${dtype} needs ${expectedBytes} data bytes but the file has ${actualBytes}: the file is ${actualBytes < expectedBytes ? 'truncated' : 'corrupt'}`);
  }
  if (!platformIsLittleEndian && dtype !== 'uint8') throw new DataError(`${name}: reading multi-byte .npy data needs a little-endian platform`);

  const payload = new Uint8Array(expectedBytes);
  payload.set(bytes.subarray(dataStart));
  switch (dtype) {
    case 'uint8':
      return { dtype, shape, data: payload };
    case 'int32':
      return { dtype, shape, data: new Int32Array(payload.buffer) };
    case 'float32':
      return { dtype, shape, data: new Float32Array(payload.buffer) };
  }
}

interface NpyHeader {
  descr: string;
  fortranOrder: boolean;
  shape: number[];
}

/**
 * Parses the header's Python dict literal, e.g.
 * {'descr': '|u1', 'fortran_order': False, 'shape': (5, 420, 580), }
 * Only what np.save writes is accepted: string keys, and string, bool or
 * int-tuple values (Python 2's "5L" longs included).
 */
function parseHeader(header: string, name: string): NpyHeader {
  const fail = (what: string): never => {
    throw new DataError(`${name}: the .npy header ${what}: the file is corrupt (header: ${JSON.stringify(header.slice(0, 120))})`);
  };
  if (!header.endsWith('\n')) fail('does not end with a newline');
  let at = 0;
  const skipSpaces = (): void => {
    while (at < header.length && /\s/.test(header[at]!)) at++;
  };
  const expect = (char: string): void => {
    skipSpaces();
    if (header[at] !== char) fail(`has ${JSON.stringify(header[at] ?? 'end of text')} at character ${at} where ${JSON.stringify(char)} belongs`);
    at++;
  };
  const peek = (): string | undefined => {
    skipSpaces();
    return header[at];
  };
  const parseString = (): string => {
    const quote = peek();
    if (quote !== "'" && quote !== '"') return fail(`has no quoted string at character ${at}`);
    const end = header.indexOf(quote, at + 1);
    if (end < 0) fail('has an unterminated string');
    const text = header.slice(at + 1, end);
    at = end + 1;
    return text;
  };
  const parseValue = (): string | boolean | number[] => {
    const next = peek();
    if (next === "'" || next === '"') return parseString();
    for (const [word, value] of [['True', true], ['False', false]] as const) {
      if (header.startsWith(word, at)) {
        at += word.length;
        return value;
      }
    }
    if (next !== '(') return fail(`has an unexpected value at character ${at}`);
    at++;
    const items: number[] = [];
    while (peek() !== ')') {
      const match = /^(\d+)L?/.exec(header.slice(at));
      if (match === null) return fail(`has a shape entry that is not a non-negative integer at character ${at}`);
      items.push(Number(match[1]));
      at += match[0].length;
      if (peek() === ',') at++;
      else if (peek() !== ')') fail(`has a malformed shape tuple at character ${at}`);
    }
    at++;
    return items;
  };

  const dict = new Map<string, string | boolean | number[]>();
  expect('{');
  while (peek() !== '}') {
    const key = parseString();
    expect(':');
    if (dict.has(key)) fail(`repeats the key '${key}'`);
    dict.set(key, parseValue());
    if (peek() === ',') at++;
    else if (peek() !== '}') fail(`has a malformed dict at character ${at}`);
  }
  at++;
  skipSpaces();
  if (at !== header.length) fail(`has text after the dict at character ${at}`);

  const descr = dict.get('descr');
  const fortranOrder = dict.get('fortran_order');
  const shape = dict.get('shape');
  if (typeof descr !== 'string') return fail("has no string 'descr' (a structured dtype or no dtype at all)");
  if (typeof fortranOrder !== 'boolean') return fail("has no boolean 'fortran_order'");
  if (!Array.isArray(shape) || !shape.every((n) => Number.isSafeInteger(n))) return fail("has no integer tuple 'shape'");
  if (dict.size !== 3) fail(`has keys other than descr, fortran_order and shape: ${[...dict.keys()].join(', ')}`);
  return { descr, fortranOrder, shape };
}
