/**
 * TIFF in and out, for the competition's frames and masks (580 × 420, 8-bit
 * gray, LZW, one strip). Reading goes through the `utif` package after our own
 * checks of the file's structure, since utif does not report truncated files;
 * writing is our own minimal baseline writer.
 */
import UTIF, { type UtifIfd } from 'utif';
import { DataError } from './errors.js';
import { checkLzwStream, lzwEncode } from './lzw.js';

/** An 8-bit grayscale image, row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Uint8Array;
  /** decodeTiff: the file holds more pages after the one decoded (the first). */
  morePages?: boolean;
}

const TAG = {
  imageWidth: 256,
  imageLength: 257,
  bitsPerSample: 258,
  compression: 259,
  photometric: 262,
  stripOffsets: 273,
  samplesPerPixel: 277,
  rowsPerStrip: 278,
  stripByteCounts: 279,
  xResolution: 282,
  yResolution: 283,
  planarConfiguration: 284,
  resolutionUnit: 296,
  predictor: 317,
  colorMap: 320,
  tileWidth: 322,
  tileLength: 323,
  tileOffsets: 324,
  tileByteCounts: 325,
  sampleFormat: 339,
} as const;

const PHOTOMETRIC = { whiteIsZero: 0, blackIsZero: 1, rgb: 2, palette: 3 } as const;
const COMPRESSION_NAMES: Record<number, string> = { 1: 'none', 5: 'LZW', 8: 'Deflate', 32773: 'PackBits' };
const COMPRESSION_NONE = 1;
const COMPRESSION_LZW = 5;

/** Bytes per value of each TIFF field type (BYTE, ASCII, SHORT, LONG, RATIONAL, ... IFD). */
const FIELD_TYPE_SIZE: Record<number, number> = { 1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4 };

/** Decoded images larger than this are refused rather than allocated (a corrupt size field). */
const MAX_DECODED_BYTES = 1 << 30;

/**
 * Decodes the first image of a TIFF file to 8-bit gray.
 * - 8-bit gray (BlackIsZero) is returned as is; WhiteIsZero is inverted (255 − v).
 * - 16-bit samples keep their high byte (v >> 8), which is exact for 8-bit
 *   data stored as v · 257 and never rounds up past 255.
 * - RGB, RGBA and palette images become ITU-R BT.601 luma,
 *   round(0.299 R + 0.587 G + 0.114 B), computed on the 8-bit values.
 * - Extra samples (alpha) are ignored.
 * Throws DataError naming `name` for a truncated, corrupt or unsupported file.
 */
export function decodeTiff(bytes: Uint8Array, name: string): GrayImage {
  const structure = checkStructure(bytes, name);
  // utif reads the whole IFD chain; cutting it after the first IFD in our copy
  // means a looping or broken chain later in the file cannot hang or break it.
  // (A fresh copy, never bytes.slice(): on a Node Buffer that is a view of a shared pool.)
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  const buffer = copy.buffer;
  new DataView(buffer).setUint32(structure.nextIfdPointerAt, 0, structure.littleEndian);

  try {
    const ifds = UTIF.decode(buffer);
    const ifd = ifds[0]!;
    const layout = readLayout(ifd, bytes.length, name);
    if (layout.compression === COMPRESSION_LZW) checkLzwChunks(bytes, layout, name);
    avoidRawCopyQuirk(ifd, layout, name);
    UTIF.decodeImage(buffer, ifd, ifds);
    const image = toGray(ifd.data, layout, name);
    return structure.nextIfd !== 0 ? { ...image, morePages: true } : image;
  } catch (error) {
    if (error instanceof DataError) throw error;
    throw new DataError(`${name}: the TIFF decoder failed (${String(error)}): the file is corrupt or uses an unsupported TIFF feature`, {
      cause: error,
    });
  }
}

interface TiffStructure {
  littleEndian: boolean;
  nextIfdPointerAt: number;
  /** Where the second page's directory starts; 0 where there is none. */
  nextIfd: number;
}

/** Checks the header and the first IFD lie inside the file, which utif does not do. */
function checkStructure(bytes: Uint8Array, name: string): TiffStructure {
  if (bytes.length < 8) {
    throw new DataError(`${name}: ${bytes.length} bytes is too short for a TIFF header (8 bytes): the file is empty or truncated`);
  }
  const order = String.fromCharCode(bytes[0]!, bytes[1]!);
  if (order !== 'II' && order !== 'MM') {
    throw new DataError(`${name}: does not start with a TIFF byte-order mark ('II' or 'MM'): it is not a TIFF file`);
  }
  const littleEndian = order === 'II';
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const magic = view.getUint16(2, littleEndian);
  if (magic === 43) throw new DataError(`${name}: is a BigTIFF file, which is not supported: re-save it as a classic TIFF`);
  if (magic !== 42) throw new DataError(`${name}: has TIFF version ${magic} where 42 is required: it is not a TIFF file or is corrupt`);

  const ifdAt = view.getUint32(4, littleEndian);
  if (ifdAt < 8 || ifdAt + 2 > bytes.length) {
    throw new DataError(`${name}: the first image directory is at byte ${ifdAt}, outside the file's ${bytes.length} bytes: the file is truncated`);
  }
  const entries = view.getUint16(ifdAt, littleEndian);
  const nextIfdPointerAt = ifdAt + 2 + 12 * entries;
  if (nextIfdPointerAt + 4 > bytes.length) {
    throw new DataError(`${name}: the image directory (${entries} entries at byte ${ifdAt}) runs past the end of the file (${bytes.length} bytes): the file is truncated`);
  }
  for (let i = 0; i < entries; i++) {
    const at = ifdAt + 2 + 12 * i;
    const tag = view.getUint16(at, littleEndian);
    const size = FIELD_TYPE_SIZE[view.getUint16(at + 2, littleEndian)];
    if (size === undefined) continue; // unknown types are skipped by readers too
    const total = size * view.getUint32(at + 4, littleEndian);
    if (total <= 4) continue; // stored inside the entry
    const valuesAt = view.getUint32(at + 8, littleEndian);
    if (valuesAt + total > bytes.length) {
      throw new DataError(`${name}: the values of TIFF tag ${tag} (bytes ${valuesAt}..${valuesAt + total}) lie past the end of the file (${bytes.length} bytes): the file is truncated`);
    }
  }
  return { littleEndian, nextIfdPointerAt, nextIfd: view.getUint32(nextIfdPointerAt, littleEndian) };
}

/** What decodeTiff needs to know about the pixel layout, validated. */
interface Layout {
  width: number;
  height: number;
  bitsPerSample: 8 | 16;
  samplesPerPixel: number;
  photometric: number;
  compression: number;
  colorMap: number[] | undefined;
  /** Byte ranges of the strips (or tiles) and how many bytes each decodes to. */
  chunks: { offset: number; byteCount: number; decodedBytes: number }[];
  tiled: boolean;
  /** Size of the buffer utif decompresses each strip or tile into. */
  utifTargetBytes: number;
}

function readLayout(ifd: UtifIfd, fileLength: number, name: string): Layout {
  const width = singleTag(ifd, TAG.imageWidth, name);
  const height = singleTag(ifd, TAG.imageLength, name);
  if (width === undefined || height === undefined) {
    throw new DataError(`${name}: the first image directory has no ImageWidth/ImageLength: the file is corrupt or holds no image`);
  }
  if (width < 1 || height < 1) throw new DataError(`${name}: the image is ${width} × ${height}: an empty image cannot be used`);

  const bitsList = numberTag(ifd, TAG.bitsPerSample, name) ?? [1];
  const bits = bitsList[0]!;
  if (bitsList.some((b) => b !== bits) || (bits !== 8 && bits !== 16)) {
    throw new DataError(`${name}: BitsPerSample ${bitsList.join(',')} is not supported (only 8 or 16 bits, the same for every sample): convert the file to 8-bit grayscale`);
  }
  const samplesPerPixel = singleTag(ifd, TAG.samplesPerPixel, name) ?? bitsList.length;
  // utif sizes pixels from the BitsPerSample count, so it must agree with SamplesPerPixel.
  if (samplesPerPixel < 1 || bitsList.length !== samplesPerPixel) {
    throw new DataError(`${name}: SamplesPerPixel is ${samplesPerPixel} but BitsPerSample lists ${bitsList.length} values: the file is corrupt; re-save it`);
  }

  // Photometric is required by the spec; guess from the sample count when a writer left it out.
  const photometric = singleTag(ifd, TAG.photometric, name) ?? (samplesPerPixel >= 3 ? PHOTOMETRIC.rgb : PHOTOMETRIC.blackIsZero);
  if (!Object.values(PHOTOMETRIC).includes(photometric as 0 | 1 | 2 | 3)) {
    throw new DataError(`${name}: PhotometricInterpretation ${photometric} is not supported (only WhiteIsZero, BlackIsZero, RGB and palette): convert the file to grayscale`);
  }
  if (photometric === PHOTOMETRIC.rgb && samplesPerPixel < 3) {
    throw new DataError(`${name}: an RGB image needs at least 3 samples per pixel, this one has ${samplesPerPixel}: the file is corrupt`);
  }
  let colorMap: number[] | undefined;
  if (photometric === PHOTOMETRIC.palette) {
    colorMap = numberTag(ifd, TAG.colorMap, name);
    if (bits !== 8 || colorMap === undefined || colorMap.length !== 3 * 256) {
      throw new DataError(`${name}: a palette image needs 8-bit indices and a ColorMap of 768 entries (has ${bits}-bit, ${colorMap?.length ?? 0} entries): the file is corrupt or unsupported`);
    }
  }

  const compression = singleTag(ifd, TAG.compression, name) ?? COMPRESSION_NONE;
  if (COMPRESSION_NAMES[compression] === undefined) {
    throw new DataError(`${name}: TIFF compression ${compression} is not supported (only none, LZW, Deflate, PackBits): re-save the file with LZW or no compression`);
  }
  const planar = singleTag(ifd, TAG.planarConfiguration, name) ?? 1;
  if (planar !== 1 && samplesPerPixel > 1) {
    throw new DataError(`${name}: samples stored in separate planes (PlanarConfiguration ${planar}) are not supported: re-save the file with interleaved (chunky) samples`);
  }
  const predictor = singleTag(ifd, TAG.predictor, name) ?? 1;
  if (predictor !== 1 && predictor !== 2) {
    throw new DataError(`${name}: TIFF predictor ${predictor} is not supported (only none or horizontal differencing): re-save the file without a predictor`);
  }
  const sampleFormat = singleTag(ifd, TAG.sampleFormat, name) ?? 1;
  if (sampleFormat !== 1) {
    throw new DataError(`${name}: SampleFormat ${sampleFormat} (signed or floating-point samples) is not supported: convert the file to unsigned 8-bit`);
  }
  const bytesPerPixel = (samplesPerPixel * bits) / 8;
  if (width * height * bytesPerPixel > MAX_DECODED_BYTES) {
    throw new DataError(`${name}: a ${width} × ${height} image with ${bytesPerPixel} bytes per pixel is too large to decode: the size fields are probably corrupt`);
  }

  const { chunks, tiled, utifTargetBytes } = readChunks(ifd, width, height, bytesPerPixel, compression, name);
  for (const [i, chunk] of chunks.entries()) {
    if (chunk.offset + chunk.byteCount > fileLength) {
      throw new DataError(`${name}: strip ${i} occupies bytes ${chunk.offset}..${chunk.offset + chunk.byteCount} but the file has ${fileLength} bytes: the file is truncated`);
    }
  }
  return { width, height, bitsPerSample: bits, samplesPerPixel, photometric, compression, colorMap, chunks, tiled, utifTargetBytes };
}

/** Byte ranges of strips, or of tiles, each with the number of bytes it must decode to. */
function readChunks(
  ifd: UtifIfd,
  width: number,
  height: number,
  bytesPerPixel: number,
  compression: number,
  name: string,
): Pick<Layout, 'chunks' | 'tiled' | 'utifTargetBytes'> {
  const rowBytes = width * bytesPerPixel;
  const tileWidth = singleTag(ifd, TAG.tileWidth, name);
  const tileLength = singleTag(ifd, TAG.tileLength, name);
  let offsets: number[] | undefined;
  let counts: number[] | undefined;
  let decodedBytes: (index: number) => number;
  let expectedChunks: number;
  const tiled = tileWidth !== undefined && tileLength !== undefined;
  if (tiled) {
    offsets = numberTag(ifd, TAG.tileOffsets, name);
    counts = numberTag(ifd, TAG.tileByteCounts, name);
    expectedChunks = Math.ceil(width / tileWidth) * Math.ceil(height / tileLength);
    decodedBytes = () => tileWidth * tileLength * bytesPerPixel;
  } else {
    offsets = numberTag(ifd, TAG.stripOffsets, name);
    counts = numberTag(ifd, TAG.stripByteCounts, name);
    const rowsPerStrip = Math.min(singleTag(ifd, TAG.rowsPerStrip, name) ?? height, height);
    expectedChunks = Math.ceil(height / rowsPerStrip);
    decodedBytes = (i) => Math.min(rowsPerStrip, height - i * rowsPerStrip) * rowBytes;
  }
  if (offsets === undefined) throw new DataError(`${name}: the image has no strip or tile offsets: the file is corrupt`);
  // A single uncompressed strip may omit its byte count; readers then assume the whole image.
  if (counts === undefined && compression === COMPRESSION_NONE && offsets.length === 1) counts = [height * rowBytes];
  if (counts === undefined || counts.length !== offsets.length || offsets.length < expectedChunks) {
    throw new DataError(`${name}: the image has ${offsets.length} strip/tile offsets and ${counts?.length ?? 0} byte counts for ${expectedChunks} strips/tiles: the file is corrupt`);
  }
  const chunks = offsets.map((offset, i) => {
    const decoded = decodedBytes(i);
    if (compression === COMPRESSION_NONE && counts[i]! < decoded) {
      throw new DataError(`${name}: uncompressed strip ${i} holds ${counts[i]} bytes where ${decoded} are needed: the file is truncated or corrupt`);
    }
    return { offset, byteCount: counts[i]!, decodedBytes: decoded };
  });
  const utifTargetBytes = tiled ? tileWidth * tileLength * bytesPerPixel : height * rowBytes;
  return { chunks, tiled, utifTargetBytes };
}

/**
 * utif copies a compressed strip raw when its byte count happens to equal the
 * size of its output buffer. Its LZW decoder stops at EndOfInformation, so for
 * LZW we declare one byte more in our copy of the directory; for other
 * compressions we refuse rather than return garbage.
 */
function avoidRawCopyQuirk(ifd: UtifIfd, layout: Layout, name: string): void {
  if (layout.compression === COMPRESSION_NONE) return;
  const countsKey = layout.tiled ? (`t${TAG.tileByteCounts}` as const) : (`t${TAG.stripByteCounts}` as const);
  const counts = layout.chunks.map((chunk) => chunk.byteCount);
  const clash = counts.findIndex((count) => count === layout.utifTargetBytes);
  if (clash < 0) return;
  if (layout.compression !== COMPRESSION_LZW) {
    throw new DataError(`${name}: compressed strip ${clash} is exactly as long as its decoded size, which the TIFF decoder cannot tell from raw data: re-save the file with LZW or no compression`);
  }
  ifd[countsKey] = counts.map((count) => (count === layout.utifTargetBytes ? count + 1 : count));
}

function checkLzwChunks(bytes: Uint8Array, layout: Layout, name: string): void {
  for (const [i, chunk] of layout.chunks.entries()) {
    const where = `${name}: strip ${i}`;
    const decoded = checkLzwStream(bytes, chunk.offset, chunk.offset + chunk.byteCount, where);
    if (decoded < chunk.decodedBytes) {
      throw new DataError(`${where} decodes to ${decoded} bytes where ${chunk.decodedBytes} are needed: the file is truncated or corrupt`);
    }
  }
}

function toGray(data: Uint8Array | undefined, layout: Layout, name: string): GrayImage {
  const { width, height, samplesPerPixel, bitsPerSample, photometric, colorMap } = layout;
  const pixels = width * height;
  const bytesPerSample = bitsPerSample / 8;
  if (data === undefined || data.length < pixels * samplesPerPixel * bytesPerSample) {
    throw new DataError(`${name}: decoded ${data?.length ?? 0} bytes of pixel data where ${pixels * samplesPerPixel * bytesPerSample} are needed: the file is truncated or corrupt`);
  }
  // utif leaves 16-bit samples little-endian, so the high byte is the second one.
  const highByte = bytesPerSample - 1;
  const sample = (pixel: number, index: number): number => data[(pixel * samplesPerPixel + index) * bytesPerSample + highByte]!;
  const luma = (r: number, g: number, b: number): number => Math.round(0.299 * r + 0.587 * g + 0.114 * b);

  const gray = new Uint8Array(pixels);
  for (let p = 0; p < pixels; p++) {
    switch (photometric) {
      case PHOTOMETRIC.blackIsZero:
        gray[p] = sample(p, 0);
        break;
      case PHOTOMETRIC.whiteIsZero:
        gray[p] = 255 - sample(p, 0);
        break;
      case PHOTOMETRIC.rgb:
        gray[p] = luma(sample(p, 0), sample(p, 1), sample(p, 2));
        break;
      default: {
        // Palette: ColorMap holds 256 reds, then 256 greens, then 256 blues, 16 bits each.
        const index = sample(p, 0);
        gray[p] = luma(colorMap![index]! >> 8, colorMap![256 + index]! >> 8, colorMap![512 + index]! >> 8);
      }
    }
  }
  return { width, height, data: gray };
}

/** A tag's values as numbers, or undefined when absent. */
function numberTag(ifd: UtifIfd, tag: number, name: string): number[] | undefined {
  const values = ifd[`t${tag}`];
  if (values === undefined) return undefined;
  const numbers = Array.from(values as ArrayLike<unknown>);
  if (numbers.length === 0 || !numbers.every((v): v is number => typeof v === 'number' && Number.isInteger(v) && v >= 0)) {
    throw new DataError(`${name}: TIFF tag ${tag} should hold non-negative integers but holds ${JSON.stringify(numbers.slice(0, 4))}: the file is corrupt`);
  }
  return numbers as number[];
}

function singleTag(ifd: UtifIfd, tag: number, name: string): number | undefined {
  return numberTag(ifd, tag, name)?.[0];
}

/**
 * Writes a baseline grayscale TIFF: little-endian, one strip, 8 bits per
 * sample, BlackIsZero, 72 dpi, uncompressed or LZW (as the Kaggle files are).
 */
export function encodeTiffGray8(width: number, height: number, data: Uint8Array, opts?: { compression?: 'none' | 'lzw' }): Uint8Array {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width * height > 0xffffffff) {
    throw new DataError(`encodeTiffGray8: ${width} × ${height} is not a valid image size: width and height must be positive integers`);
  }
  if (data.length !== width * height) {
    throw new DataError(`encodeTiffGray8: a ${width} × ${height} image needs ${width * height} bytes but ${data.length} were given`);
  }
  const lzw = (opts?.compression ?? 'none') === 'lzw';
  const strip = lzw ? lzwEncode(data) : data;

  const SHORT = 3;
  const LONG = 4;
  const RATIONAL = 5;
  const entryCount = 12;
  const ifdAt = 8;
  const rationalsAt = ifdAt + 2 + 12 * entryCount + 4;
  const stripAt = rationalsAt + 16;
  // Tags in ascending order, as the spec requires.
  const entries: [tag: number, type: number, value: number][] = [
    [TAG.imageWidth, LONG, width],
    [TAG.imageLength, LONG, height],
    [TAG.bitsPerSample, SHORT, 8],
    [TAG.compression, SHORT, lzw ? COMPRESSION_LZW : COMPRESSION_NONE],
    [TAG.photometric, SHORT, PHOTOMETRIC.blackIsZero],
    [TAG.stripOffsets, LONG, stripAt],
    [TAG.samplesPerPixel, SHORT, 1],
    [TAG.rowsPerStrip, LONG, height],
    [TAG.stripByteCounts, LONG, strip.length],
    [TAG.xResolution, RATIONAL, rationalsAt],
    [TAG.yResolution, RATIONAL, rationalsAt + 8],
    [TAG.resolutionUnit, SHORT, 2], // inch
  ];

  const out = new Uint8Array(stripAt + strip.length);
  const view = new DataView(out.buffer);
  out[0] = out[1] = 0x49; // 'II': little-endian
  view.setUint16(2, 42, true);
  view.setUint32(4, ifdAt, true);
  view.setUint16(ifdAt, entryCount, true);
  entries.forEach(([tag, type, value], i) => {
    const at = ifdAt + 2 + 12 * i;
    view.setUint16(at, tag, true);
    view.setUint16(at + 2, type, true);
    view.setUint32(at + 4, 1, true);
    if (type === SHORT) view.setUint16(at + 8, value, true);
    else view.setUint32(at + 8, value, true); // a LONG, or the offset of a RATIONAL
  });
  view.setUint32(ifdAt + 2 + 12 * entryCount, 0, true); // no further IFD
  for (const at of [rationalsAt, rationalsAt + 8]) {
    view.setUint32(at, 72, true);
    view.setUint32(at + 4, 1, true);
  }
  out.set(strip, stripAt);
  return out;
}
