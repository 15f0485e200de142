import { describe, expect, it } from 'vitest';
import UTIF from 'utif';
import { DataError } from '../../src/data/errors.js';
import { lzwEncode } from '../../src/data/lzw.js';
import { decodeTiff, encodeTiffGray8 } from '../../src/data/tiff.js';
import { arrayDifference } from './compare.js';
import { readFixture } from './fixtures.js';

const SHORT = 3;
const LONG = 4;

interface TiffSpec {
  width: number;
  height: number;
  bitsPerSample: number[];
  photometric: number;
  /** Sample bytes exactly as they go into the file (byte order included). */
  samples: Uint8Array;
  compression?: 1 | 5 | 7;
  bigEndian?: boolean;
  rowsPerStrip?: number;
  predictor?: 2;
  colorMap?: number[];
}

/**
 * A deliberately independent little TIFF writer for the formats the project's
 * writer does not produce: any byte order, sample count, depth and strip count.
 * Layout: header, strips, IFD, then the IFD's out-of-line values.
 */
function buildTiff(spec: TiffSpec): Uint8Array {
  const samplesPerPixel = spec.bitsPerSample.length;
  const rowBytes = (spec.width * samplesPerPixel * spec.bitsPerSample[0]!) / 8;
  const rowsPerStrip = spec.rowsPerStrip ?? spec.height;
  const strips: Uint8Array[] = [];
  for (let row = 0; row < spec.height; row += rowsPerStrip) {
    const raw = spec.samples.subarray(row * rowBytes, Math.min(spec.height, row + rowsPerStrip) * rowBytes);
    strips.push(spec.compression === 5 ? lzwEncode(raw) : raw);
  }
  const stripOffsets: number[] = [];
  let at = 8;
  for (const strip of strips) {
    stripOffsets.push(at);
    at += strip.length + (strip.length % 2);
  }
  const entries: [tag: number, type: number, values: number[]][] = [
    [256, LONG, [spec.width]],
    [257, LONG, [spec.height]],
    [258, SHORT, spec.bitsPerSample],
    [259, SHORT, [spec.compression ?? 1]],
    [262, SHORT, [spec.photometric]],
    [273, LONG, stripOffsets],
    [277, SHORT, [samplesPerPixel]],
    [278, LONG, [rowsPerStrip]],
    [279, LONG, strips.map((s) => s.length)],
  ];
  if (spec.predictor) entries.push([317, SHORT, [spec.predictor]]);
  if (spec.colorMap) entries.push([320, SHORT, spec.colorMap]);

  const ifdAt = at;
  let valuesAt = ifdAt + 2 + 12 * entries.length + 4;
  const size = valuesAt + entries.reduce((sum, [, type, values]) => sum + (values.length * (type === SHORT ? 2 : 4) > 4 ? values.length * 4 : 0), 0);
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  const le = !spec.bigEndian;
  out.set(le ? [0x49, 0x49] : [0x4d, 0x4d]);
  view.setUint16(2, 42, le);
  view.setUint32(4, ifdAt, le);
  strips.forEach((strip, i) => out.set(strip, stripOffsets[i]));
  view.setUint16(ifdAt, entries.length, le);
  entries.forEach(([tag, type, values], i) => {
    const entryAt = ifdAt + 2 + 12 * i;
    view.setUint16(entryAt, tag, le);
    view.setUint16(entryAt + 2, type, le);
    view.setUint32(entryAt + 4, values.length, le);
    const itemSize = type === SHORT ? 2 : 4;
    let target = entryAt + 8;
    if (values.length * itemSize > 4) {
      view.setUint32(entryAt + 8, valuesAt, le);
      target = valuesAt;
      valuesAt += values.length * 4;
    }
    values.forEach((v, k) => (itemSize === 2 ? view.setUint16(target + 2 * k, v, le) : view.setUint32(target + 4 * k, v, le)));
  });
  return out;
}

/** Deterministic pseudo-random bytes. */
function noise(length: number, seed: number, levels = 256): Uint8Array {
  let state = seed >>> 0 || 1;
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    out[i] = (state >>> 0) % levels;
  }
  return out;
}

/** Where the one strip of a Kaggle file lies (its StripOffsets and StripByteCounts). */
function kaggleStrip(file: Uint8Array): Uint8Array {
  const ifds = UTIF.decode(new Uint8Array(file).buffer);
  const offset = ifds[0]!.t273![0] as number;
  const count = ifds[0]!.t279![0] as number;
  return file.subarray(offset, offset + count);
}

describe('decodeTiff on the real Kaggle files', () => {
  for (let n = 1; n <= 5; n++) {
    it(`decodes 1_${n}.tif as a 580 × 420 gray frame`, () => {
      const image = decodeTiff(readFixture(`1_${n}.tif`), `1_${n}.tif`);
      expect([image.width, image.height, image.data.length]).toEqual([580, 420, 243_600]);
      expect(new Set(image.data).size).toBeGreaterThan(100); // an ultrasound frame, not a mask
    });

    it(`decodes 1_${n}_mask.tif to values 0 and 255 only`, () => {
      const mask = decodeTiff(readFixture(`1_${n}_mask.tif`), `1_${n}_mask.tif`);
      expect([mask.width, mask.height]).toEqual([580, 420]);
      const values = [...new Set(mask.data)].sort((a, b) => a - b);
      expect(values).toEqual(n === 5 ? [0] : [0, 255]);
    });
  }

  // libtiff wrote these strips; re-encoding our decoded pixels with our own LZW
  // writer gives the same bytes, which checks the decoder and the encoder at once.
  // (libtiff also clears its table early when the compression ratio stops
  // improving, which the non-empty masks trigger, so their streams differ.)
  for (const name of ['1_1.tif', '1_2.tif', '1_3.tif', '1_4.tif', '1_5.tif', '1_5_mask.tif']) {
    it(`re-encodes ${name} to libtiff's LZW strip byte for byte`, () => {
      const file = readFixture(name);
      const image = decodeTiff(file, name);
      expect(arrayDifference(lzwEncode(image.data), kaggleStrip(file))).toBe('equal');
    });
  }

  it('reads a view with a byte offset and leaves the caller’s bytes alone', () => {
    const file = readFixture('1_1_mask.tif');
    const padded = new Uint8Array(file.length + 3);
    padded.set(file, 3);
    const before = padded.slice();
    const fromView = decodeTiff(padded.subarray(3), 'padded.tif');
    expect(arrayDifference(fromView.data, decodeTiff(file, '1_1_mask.tif').data)).toBe('equal');
    expect(arrayDifference(padded, before)).toBe('equal');
  });
});

describe('encodeTiffGray8', () => {
  const sizes: [number, number][] = [
    [1, 1],
    [3, 1],
    [1, 5],
    [17, 13],
    [580, 420],
  ];
  for (const compression of ['none', 'lzw'] as const) {
    for (const [width, height] of sizes) {
      it(`round-trips noise ${width} × ${height}, compression ${compression}`, () => {
        const data = noise(width * height, width * 31 + height);
        const file = encodeTiffGray8(width, height, data, { compression });
        const image = decodeTiff(file, 'round-trip.tif');
        expect([image.width, image.height]).toEqual([width, height]);
        expect(arrayDifference(image.data, data)).toBe('equal');
      });
    }
  }

  it('round-trips images that stress LZW: many table clears, long runs, few levels', () => {
    const cases = [
      noise(1000 * 700, 5), // the 12-bit table fills and is cleared dozens of times
      new Uint8Array(1000 * 700).fill(200), // strings grow to thousands of bytes
      noise(1000 * 700, 9, 3),
      new Uint8Array(1000 * 700).map((_, i) => (i >> 9) & 255),
    ];
    for (const data of cases) {
      const file = encodeTiffGray8(1000, 700, data, { compression: 'lzw' });
      expect(arrayDifference(decodeTiff(file, 'stress.tif').data, data)).toBe('equal');
    }
  });

  it('writes files utif decodes on its own, with the baseline tags', () => {
    const data = noise(40 * 30, 77);
    for (const compression of ['none', 'lzw'] as const) {
      const file = encodeTiffGray8(40, 30, data, { compression });
      const ifds = UTIF.decode(file.slice().buffer);
      const ifd = ifds[0]!;
      UTIF.decodeImage(file.slice().buffer, ifd, ifds);
      expect(ifd.data!.subarray(0, data.length)).toEqual(data);
      expect([ifd.t256![0], ifd.t257![0], ifd.t258![0], ifd.t262![0], ifd.t277![0], ifd.t278![0]]).toEqual([40, 30, 8, 1, 1, 30]);
      expect(ifd.t259![0]).toBe(compression === 'lzw' ? 5 : 1);
      expect(Array.from(file.subarray(0, 4))).toEqual([0x49, 0x49, 42, 0]); // little-endian classic TIFF
    }
  });

  it('writes one strip and round-trips an LZW strip exactly as long as the image', () => {
    // LZW of six equal bytes is six bytes long; utif would copy such a strip raw.
    const data = new Uint8Array(6).fill(7);
    expect(lzwEncode(data).length).toBe(6);
    expect(decodeTiff(encodeTiffGray8(3, 2, data, { compression: 'lzw' }), 'six.tif').data).toEqual(data);
  });

  it('rejects a size that does not match the data', () => {
    expect(() => encodeTiffGray8(4, 4, new Uint8Array(15))).toThrow(DataError);
    expect(() => encodeTiffGray8(0, 4, new Uint8Array(0))).toThrow(/positive integers/);
  });
});

describe('decodeTiff on other TIFF flavours', () => {
  const width = 5;
  const height = 3;
  const pixels = width * height;

  it('converts RGB to BT.601 luma, rounded', () => {
    const rgb = new Uint8Array([255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 255, 10, 20, 30]);
    const samples = new Uint8Array(pixels * 3);
    for (let p = 0; p < pixels; p++) samples.set(rgb.subarray((p % 5) * 3, (p % 5) * 3 + 3), p * 3);
    const image = decodeTiff(buildTiff({ width, height, bitsPerSample: [8, 8, 8], photometric: 2, samples }), 'rgb.tif');
    // 0.299·255 = 76.2, 0.587·255 = 149.7, 0.114·255 = 29.1, 0.299·10 + 0.587·20 + 0.114·30 = 18.15
    expect(Array.from(image.data.subarray(0, 5))).toEqual([76, 150, 29, 255, 18]);
  });

  it('ignores the alpha of RGBA, and decodes LZW with a horizontal predictor', () => {
    const rgba = noise(pixels * 4, 3);
    const expected = Array.from({ length: pixels }, (_, p) =>
      Math.round(0.299 * rgba[p * 4]! + 0.587 * rgba[p * 4 + 1]! + 0.114 * rgba[p * 4 + 2]!),
    );
    const plain = decodeTiff(buildTiff({ width, height, bitsPerSample: [8, 8, 8, 8], photometric: 2, samples: rgba }), 'rgba.tif');
    expect(Array.from(plain.data)).toEqual(expected);

    // Horizontal differencing: each sample minus the same sample of the pixel to its left.
    const differenced = rgba.slice();
    for (let y = 0; y < height; y++) {
      for (let x = width - 1; x >= 1; x--) {
        for (let s = 0; s < 4; s++) {
          const i = (y * width + x) * 4 + s;
          differenced[i] = (rgba[i]! - rgba[i - 4]!) & 255;
        }
      }
    }
    const predicted = buildTiff({ width, height, bitsPerSample: [8, 8, 8, 8], photometric: 2, samples: differenced, compression: 5, predictor: 2 });
    expect(Array.from(decodeTiff(predicted, 'rgba-predictor.tif').data)).toEqual(expected);
  });

  it('keeps the high byte of 16-bit gray, in either byte order', () => {
    const values = [0, 255, 256, 0x7fff, 0x8000, 0xffff, 0x1234, 0xff00, 257 * 100, 257 * 200, 1, 2, 3, 4, 5];
    const expected = values.map((v) => v >> 8);
    for (const bigEndian of [false, true]) {
      const samples = new Uint8Array(pixels * 2);
      const view = new DataView(samples.buffer);
      values.forEach((v, i) => view.setUint16(2 * i, v, !bigEndian));
      const image = decodeTiff(buildTiff({ width, height, bitsPerSample: [16], photometric: 1, samples, bigEndian }), 'gray16.tif');
      expect(Array.from(image.data)).toEqual(expected);
    }
  });

  it('inverts WhiteIsZero', () => {
    const samples = noise(pixels, 11);
    const image = decodeTiff(buildTiff({ width, height, bitsPerSample: [8], photometric: 0, samples }), 'white-is-zero.tif');
    expect(Array.from(image.data)).toEqual(Array.from(samples, (v) => 255 - v));
  });

  it('looks palette indices up in the ColorMap and takes their luma', () => {
    const colorMap = new Array<number>(768).fill(0);
    colorMap[1] = 0xffff; // index 1: red
    colorMap[256 + 2] = 0xffff; // index 2: green
    colorMap[512 + 3] = 0x8000; // index 3: half blue
    colorMap[4] = colorMap[256 + 4] = colorMap[512 + 4] = 0xffff; // index 4: white
    const samples = new Uint8Array(pixels).map((_, p) => p % 5);
    const image = decodeTiff(buildTiff({ width, height, bitsPerSample: [8], photometric: 3, samples, colorMap }), 'palette.tif');
    // red 0.299·255 = 76.2, green 149.7, blue 0.114·128 = 14.6
    expect(Array.from(image.data.subarray(0, 5))).toEqual([0, 76, 150, 15, 255]);
  });

  it('reads big-endian files and several strips', () => {
    const samples = noise(7 * 10, 21);
    for (const compression of [1, 5] as const) {
      const file = buildTiff({ width: 7, height: 10, bitsPerSample: [8], photometric: 1, samples, bigEndian: true, rowsPerStrip: 3, compression });
      expect(decodeTiff(file, 'strips.tif').data).toEqual(samples);
    }
  });
});

describe('decodeTiff errors', () => {
  const good = (): Uint8Array => encodeTiffGray8(20, 10, noise(200, 4), { compression: 'lzw' });

  const expectDataError = (bytes: Uint8Array, name: string, message: RegExp): void => {
    let caught: unknown;
    try {
      decodeTiff(bytes, name);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(DataError);
    expect((caught as Error).message).toContain(name);
    expect((caught as Error).message).toMatch(message);
  };

  it('names the file and says it is truncated, wherever the cut falls', () => {
    // The Kaggle files put the directory after the strip; ours put it before.
    for (const file of [readFixture('1_1_mask.tif'), good()]) {
      for (const length of [0, 5, 100, 180, file.length - 10, file.length - 1]) {
        expectDataError(file.subarray(0, length), `cut-${length}.tif`, /truncated/);
      }
    }
  });

  it('rejects files that are not classic TIFF', () => {
    expectDataError(new TextEncoder().encode('GIF89a, not a tiff at all'), 'picture.gif', /not a TIFF file/);
    const bigTiff = good();
    bigTiff[2] = 43;
    expectDataError(bigTiff, 'big.tif', /BigTIFF/);
  });

  it('finds a corrupt LZW strip before the decoder can loop forever on it', () => {
    const noClear = good();
    noClear.fill(0, 174); // the strip starts after the header, IFD and resolutions
    expectDataError(noClear, 'zeroed.tif', /Clear code/);

    // The declared strip ends before the EndOfInformation code.
    const file = good();
    const strip = kaggleStrip(file);
    const view = new DataView(file.buffer);
    const countEntry = 8 + 2 + 12 * 8 + 8; // the ninth entry (StripByteCounts) holds the count inline
    view.setUint32(countEntry, strip.length - 20, true);
    expectDataError(file, 'short-strip.tif', /EndOfInformation|decodes to/);
  });

  it('explains unsupported formats', () => {
    const jpeg = buildTiff({ width: 2, height: 2, bitsPerSample: [8], photometric: 1, samples: new Uint8Array(4), compression: 7 });
    expectDataError(jpeg, 'jpeg.tif', /compression 7 is not supported/);
    const oneBit = buildTiff({ width: 8, height: 2, bitsPerSample: [1], photometric: 1, samples: new Uint8Array(2) });
    expectDataError(oneBit, 'bilevel.tif', /BitsPerSample 1 is not supported/);
    const cmyk = buildTiff({ width: 2, height: 2, bitsPerSample: [8, 8, 8, 8], photometric: 5, samples: new Uint8Array(16) });
    expectDataError(cmyk, 'cmyk.tif', /PhotometricInterpretation 5/);
  });
});
