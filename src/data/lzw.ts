/**
 * TIFF-flavour LZW (TIFF 6.0 section 13, as libtiff writes it): codes packed
 * most-significant bit first, 9 to 12 bits wide, Clear = 256, EndOfInformation
 * = 257, and the "early change" of code width that TIFF readers expect.
 *
 * lzwEncode writes a stream; checkLzwStream walks a stream without building the
 * strings, so that a corrupt or truncated strip is reported before the
 * third-party decoder sees it (that decoder loops forever when EOI is missing).
 */
import { DataError } from './errors.js';

const CLEAR = 256;
const EOI = 257;
const FIRST_FREE_CODE = 258;
const MIN_WIDTH = 9;
const MAX_WIDTH = 12;
/** libtiff clears the table when the next free code reaches 4094, so a reader never needs 13 bits. */
const CLEAR_AT = (1 << MAX_WIDTH) - 2;

/** Appends codes of varying width, most significant bit first. */
class BitWriter {
  private bytes: Uint8Array;
  private length = 0;
  private pending = 0; // bits not yet written, right-aligned
  private pendingBits = 0;

  constructor(capacity: number) {
    this.bytes = new Uint8Array(Math.max(16, capacity));
  }

  write(code: number, width: number): void {
    this.pending = (this.pending << width) | code;
    this.pendingBits += width;
    while (this.pendingBits >= 8) {
      this.pendingBits -= 8;
      this.push((this.pending >>> this.pendingBits) & 0xff);
    }
    this.pending &= (1 << this.pendingBits) - 1; // keeps the accumulator small
  }

  finish(): Uint8Array {
    if (this.pendingBits > 0) this.push((this.pending << (8 - this.pendingBits)) & 0xff);
    this.pendingBits = 0;
    return this.bytes.slice(0, this.length);
  }

  private push(byte: number): void {
    if (this.length === this.bytes.length) {
      const grown = new Uint8Array(this.bytes.length * 2);
      grown.set(this.bytes);
      this.bytes = grown;
    }
    this.bytes[this.length++] = byte;
  }
}

/** Compresses bytes into one TIFF LZW stream (starting with Clear, ending with EOI). */
export function lzwEncode(input: Uint8Array): Uint8Array {
  const out = new BitWriter(input.length / 2);
  // Key: prefix code · 256 + next byte; value: the code of that string.
  const table = new Map<number, number>();
  let nextCode = FIRST_FREE_CODE;
  let width = MIN_WIDTH;

  // After each code the reader adds one table entry (it learns the entry one
  // code late, except for the last), so the writer grows the width as soon as
  // the next free code no longer fits, and clears before the table is full.
  const afterEntryAdded = (): void => {
    nextCode++;
    if (nextCode === CLEAR_AT) {
      out.write(CLEAR, width);
      table.clear();
      nextCode = FIRST_FREE_CODE;
      width = MIN_WIDTH;
    } else if (nextCode === 1 << width) {
      width++;
    }
  };

  out.write(CLEAR, width);
  if (input.length > 0) {
    let prefix = input[0]!;
    for (let i = 1; i < input.length; i++) {
      const byte = input[i]!;
      const key = prefix * 256 + byte;
      const known = table.get(key);
      if (known !== undefined) {
        prefix = known;
        continue;
      }
      out.write(prefix, width);
      table.set(key, nextCode);
      afterEntryAdded();
      prefix = byte;
    }
    out.write(prefix, width);
    afterEntryAdded(); // the reader adds an entry for the last code too, which can widen EOI
  }
  out.write(EOI, width);
  return out.finish();
}

/**
 * Walks an LZW stream in bytes[start, end) as a TIFF reader would and returns
 * the number of bytes it decodes to. Throws DataError (naming `where`) when the
 * stream does not start with Clear, holds a code that is not in the table yet,
 * overflows the 12-bit table, or runs out before EndOfInformation.
 */
export function checkLzwStream(bytes: Uint8Array, start: number, end: number, where: string): number {
  const stringLength = new Uint32Array(1 << MAX_WIDTH);
  stringLength.fill(1, 0, 256);
  const endBit = end * 8;
  let bit = start * 8;
  let width = MIN_WIDTH;
  let nextCode = FIRST_FREE_CODE;
  let previous = -1; // -1: just after Clear
  let decoded = 0;

  const readCode = (): number => {
    if (bit + width > endBit) {
      throw new DataError(
        `${where}: the LZW stream ends without an EndOfInformation code after ${decoded} decoded bytes: the file is truncated or corrupt; re-export it`,
      );
    }
    let code = 0;
    for (let i = 0; i < width; i++, bit++) {
      code = (code << 1) | ((bytes[bit >>> 3]! >>> (7 - (bit & 7))) & 1);
    }
    return code;
  };

  if (readCode() !== CLEAR) {
    throw new DataError(`${where}: the LZW stream does not start with a Clear code: it is corrupt or an old-style LZW variant that is not supported; re-save the file with a current TIFF writer`);
  }
  for (;;) {
    const code = readCode();
    if (code === EOI) return decoded;
    if (code === CLEAR) {
      width = MIN_WIDTH;
      nextCode = FIRST_FREE_CODE;
      previous = -1;
      continue;
    }
    if (previous < 0) {
      if (code > 255) {
        throw new DataError(`${where}: LZW code ${code} follows a Clear code, where only a literal byte (0-255) can: the strip is corrupt`);
      }
      decoded += 1;
      previous = code;
      continue;
    }
    if (code > nextCode) {
      throw new DataError(`${where}: LZW code ${code} is not in the table yet (next free code ${nextCode}): the strip is corrupt`);
    }
    // A new entry: the previous string plus the first byte of this one.
    stringLength[nextCode] = stringLength[previous]! + 1;
    decoded += stringLength[code]!; // code === nextCode is the string just added
    nextCode++;
    // Readers widen one code early ("early change"); writers clear before 13 bits would be needed.
    if (nextCode + 1 === 1 << width) {
      if (width === MAX_WIDTH) {
        throw new DataError(`${where}: the LZW table fills all 12 bits without a Clear code: the strip is corrupt`);
      }
      width++;
    }
    previous = code;
  }
}
