/**
 * Seeded mutation fuzzing of every decoder that reads a user's files: TIFF
 * (with its LZW), .npy, safetensors, the run-length CSV files
 * (train_masks.csv, submission.csv), and the models import reads: ONNX,
 * TensorFlow.js, Keras's HDF5 weights (Keras 2's layout and 3's) and Keras 3's
 * .keras archives. Valid files are mutated (bit flips,
 * truncations, header fields set to extremes, bytes inserted, removed or
 * repeated); each case must end in the format's own error type or in a
 * result whose sizes agree with each other, never another exception (a
 * RangeError from an allocation sized by a header field among them) and
 * never a case that takes seconds.
 *
 * WGSL_UNET_FUZZ_CASES sets the cases per format (default 2000 in CI; a
 * longer run by hand: WGSL_UNET_FUZZ_CASES=200000 npx vitest run test/fuzz).
 */
import { describe, expect, it } from 'vitest';
import { rng } from '../helpers/random.js';
import { readFixture, readFixtureText } from '../data/fixtures.js';
import { DataError } from '../../src/data/errors.js';
import { decodeTiff, encodeTiffGray8 } from '../../src/data/tiff.js';
import { decodeNpy, encodeNpy } from '../../src/data/npy.js';
import { SafetensorsError, decodeSafetensors, encodeSafetensors } from '../../src/model/safetensors.js';
import { decodeRle } from '../../src/data/rle.js';
import { parseSubmission } from '../../src/data/submission.js';
import { deriveMaskStatistics } from '../../src/data/synthetic.js';
import { ExportError } from '../../src/model/export/keras-layers.js';
import { encodeOnnx } from '../../src/model/export/onnx.js';
import { decodeOnnxUNet } from '../../src/model/export/onnx-import.js';
import { encodeTfjs } from '../../src/model/export/tfjs.js';
import { decodeTfjsUNet } from '../../src/model/export/tfjs-import.js';
import { decodeKerasH5, encodeKerasH5, unetWeightsFromKeras } from '../../src/model/export/keras-h5.js';
import { decodeKerasArchive, unetWeightsFromKeras3 } from '../../src/model/export/keras-archive.js';
import { kerasArchiveOf, keras3WeightsOf } from '../helpers/keras3.js';
import { stderrWhile } from '../helpers/console.js';
import { buildUNetParameters } from '../../src/model/unet.js';

const CASES = Number(process.env.WGSL_UNET_FUZZ_CASES ?? 2000);
/** A case that takes longer than this is reported as a (near) hang. */
const SLOW_MS = 2000;

type Mutator = (b: Uint8Array, r: () => number) => Uint8Array;
const int = (r: () => number, n: number) => Math.floor(r() * n);
const EXTREMES = [0, 1, 0x7f, 0x80, 0xff, 0x7fff, 0xffff, 0x7fffffff, 0xffffffff];

const MUTATORS: Record<string, Mutator> = {
  'bit flips': (b, r) => {
    const out = b.slice();
    for (let i = 1 + int(r, 8); i > 0; i--) out[int(r, out.length)]! ^= 1 << int(r, 8);
    return out;
  },
  truncation: (b, r) => b.slice(0, int(r, b.length)),
  'header field at an extreme': (b, r) => {
    // 16- or 32-bit fields in the first 256 bytes, either byte order.
    const out = b.slice();
    const at = int(r, Math.max(1, Math.min(out.length - 4, 256)));
    const v = EXTREMES[int(r, EXTREMES.length)]!;
    const view = new DataView(out.buffer);
    if (at + 4 <= out.length) view.setUint32(at, v >>> 0, r() < 0.5);
    else if (at + 2 <= out.length) view.setUint16(at, v & 0xffff, r() < 0.5);
    return out;
  },
  'bytes inserted': (b, r) => {
    const at = int(r, b.length + 1);
    const extra = Uint8Array.from({ length: 1 + int(r, 16) }, () => int(r, 256));
    return Uint8Array.from([...b.subarray(0, at), ...extra, ...b.subarray(at)]);
  },
  'bytes removed': (b, r) => {
    const at = int(r, b.length);
    return Uint8Array.from([...b.subarray(0, at), ...b.subarray(at + 1 + int(r, 16))]);
  },
  'region repeated': (b, r) => {
    const from = int(r, b.length);
    const len = 1 + int(r, Math.min(64, b.length - from));
    const at = int(r, b.length);
    return Uint8Array.from([...b.subarray(0, at), ...b.subarray(from, from + len), ...b.subarray(at)]);
  },
};
const MUTATOR_NAMES = Object.keys(MUTATORS);

type Check = (v: unknown) => string | null;
interface Counts { cases: number; rejected: number; decoded: number }

/** Case i: a seed mutated one to three times, and its description. */
function mutated(format: string, seeds: Uint8Array[], i: number, r: () => number): { bytes: Uint8Array; what: string } {
  let bytes = seeds[i % seeds.length]!;
  const applied: string[] = [];
  for (let m = 1 + int(r, 3); m > 0; m--) {
    const name = MUTATOR_NAMES[int(r, MUTATOR_NAMES.length)]!;
    applied.push(name);
    bytes = MUTATORS[name]!(bytes, r);
  }
  return { bytes, what: `${format} case ${i} (${applied.join(', ')}; ${bytes.length} bytes)` };
}

/** Counts a case's outcome; throws where it threw another error than `ownError`, was slow, or decoded to something `check` refuses. */
function tally(counts: Counts, what: string, outcome: { error?: unknown; result?: unknown }, ms: number, ownError: new (...a: never[]) => Error, check: Check): void {
  const e = outcome.error;
  if (e !== undefined) {
    if (!(e instanceof ownError)) throw new Error(`${what}: threw ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}, not a ${ownError.name}`);
    counts.rejected++;
  }
  if (ms > SLOW_MS) throw new Error(`${what}: took ${ms.toFixed(0)} ms`);
  if (outcome.result !== undefined) {
    const problem = check(outcome.result);
    if (problem) throw new Error(`${what}: decoded to something inconsistent: ${problem}`);
    counts.decoded++;
  }
  counts.cases++;
}

const report = (format: string, c: Counts, ownError: { name: string }) =>
  console.log(`fuzz ${format}: ${c.cases} cases, ${c.rejected} rejected with ${ownError.name}, ${c.decoded} decoded consistently`);

/**
 * Runs `cases` mutations of the seeds through `decode` (awaited where it
 * returns a promise): each must throw an `ownError` or return a result that
 * `check` accepts. Returns the counts.
 */
async function fuzz(format: string, seeds: Uint8Array[], ownError: new (...a: never[]) => Error, decode: (b: Uint8Array) => unknown, check: Check, cases = CASES): Promise<Counts> {
  const r = rng(0x5eed ^ format.length);
  const counts = { cases: 0, rejected: 0, decoded: 0 };
  for (let i = 0; i < cases; i++) {
    const { bytes, what } = mutated(format, seeds, i, r);
    const t0 = performance.now();
    let outcome: { error?: unknown; result?: unknown };
    try {
      outcome = { result: await decode(bytes) };
    } catch (error) {
      outcome = { error };
    }
    tally(counts, what, outcome, performance.now() - t0, ownError, check);
  }
  report(format, counts, ownError);
  return counts;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const pattern = (n: number, seed: number) => {
  const r = rng(seed);
  return Uint8Array.from({ length: n }, () => int(r, 256));
};

/** The U-Net of base width 1 as export takes it, with batch normalisation's running statistics where asked. */
function tinyUNet(batchNorm: boolean) {
  const store = buildUNetParameters({ baseWidth: 1, inputSize: 16, seed: 3, ...(batchNorm ? { batchNorm } : {}) });
  const weights = new Map([...store.initialValues()].map(([name, data]) => [name, { shape: [...store.params.find((p) => p.name === name)!.shape], data }]));
  if (batchNorm) for (const [name, t] of [...weights]) if (name.endsWith('/gamma')) for (const k of ['moving_mean', 'moving_variance']) weights.set(name.replace('gamma', k), { shape: t.shape, data: new Float32Array(t.data.length).fill(1) });
  return { baseWidth: 1, activation: 'relu' as const, batchNorm, inputSize: 16, weights, preprocessing: { mean: 100, std: 50, antiAlias: false } };
}

/** An imported model's check: every tensor's values fill its shape. */
function consistentWeights(v: unknown): string | null {
  for (const [name, t] of (v as { weights: Map<string, { shape: number[]; data: Float32Array }> }).weights) {
    if (prod(t.shape) !== t.data.length) return `${name}: shape ${t.shape} with ${t.data.length} values`;
  }
  return null;
}

describe(`decoders of user files, ${CASES} mutations each`, () => {
  it('TIFF (uncompressed, LZW, and a real frame)', async () => {
    const seeds = [
      encodeTiffGray8(23, 17, pattern(23 * 17, 1)),
      encodeTiffGray8(31, 9, pattern(31 * 9, 2), { compression: 'lzw' }),
      encodeTiffGray8(16, 16, new Uint8Array(256).fill(7), { compression: 'lzw' }),
      readFixture('1_1_mask.tif'),
    ];
    const c = await fuzz('tiff', seeds, DataError, (b) => decodeTiff(b, 'fuzz.tif'), (v) => {
      const img = v as { width: number; height: number; data: Uint8Array };
      return img.width * img.height === img.data.length ? null : `${img.width} × ${img.height} with ${img.data.length} pixels`;
    });
    expect(c.cases).toBe(CASES);
    expect(c.rejected).toBeGreaterThan(0);
  });

  it('.npy (uint8, int32, float32)', async () => {
    const seeds = [
      encodeNpy(pattern(60, 3), [3, 4, 5]),
      encodeNpy(Int32Array.from({ length: 12 }, (_, i) => i * 1000 - 5), [6, 2]),
      encodeNpy(Float32Array.from({ length: 7 }, (_, i) => i / 3), [7]),
    ];
    const c = await fuzz('npy', seeds, DataError, (b) => decodeNpy(b, 'fuzz.npy'), (v) => {
      const a = v as { shape: number[]; data: ArrayLike<number> };
      return prod(a.shape) === a.data.length ? null : `shape ${a.shape} with ${a.data.length} values`;
    });
    expect(c.rejected).toBeGreaterThan(0);
  });

  it('safetensors', async () => {
    const tensors = new Map([
      ['conv2d_1/kernel', { shape: [3, 3, 1, 2], data: Float32Array.from({ length: 18 }, (_, i) => i / 7) }],
      ['conv2d_1/bias', { shape: [2], data: new Float32Array([0.5, -1]) }],
    ]);
    const seeds = [encodeSafetensors(tensors, { format: 'fuzz' }), encodeSafetensors(new Map([['x', { shape: [1], data: new Float32Array([3]) }]]))];
    const c = await fuzz('safetensors', seeds, SafetensorsError, (b) => decodeSafetensors(b, 'fuzz.safetensors'), (v) => {
      for (const [name, t] of (v as { tensors: Map<string, { shape: number[]; data: Float32Array }> }).tensors) {
        if (prod(t.shape) !== t.data.length) return `${name}: shape ${t.shape} with ${t.data.length} values`;
      }
      return null;
    });
    expect(c.rejected).toBeGreaterThan(0);
  });

  it('run-length CSV: a submission, read and every mask decoded', async () => {
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    const seeds = ['img,pixels\n1,1 5 100 20\n2,\n3,243590 10\n', 'img,pixels\n7,3 2 9 4 80 1\n'].map((t) => new TextEncoder().encode(t));
    const c = await fuzz('submission-csv', seeds, DataError, (b) => {
      const rows = parseSubmission(text(b), 'fuzz.csv');
      return rows.map((row) => decodeRle(row.pixels, 580, 420, `fuzz.csv line ${row.line}`));
    }, (v) => ((v as Uint8Array[]).every((m) => m.length === 580 * 420) ? null : 'a mask of the wrong size'));
    expect(c.rejected).toBeGreaterThan(0);
  });

  it('ONNX: a U-Net of base width 1 as export writes it, and with batch normalisation', async () => {
    // A copy: protobufjs hands back a Node Buffer, whose slice() the mutators would share.
    const seeds = [false, true].map((batchNorm) => Uint8Array.from(encodeOnnx(tinyUNet(batchNorm), 'fuzz', 'fuzz')));
    for (const seed of seeds) expect(decodeOnnxUNet(seed, 'seed.onnx').baseWidth).toBe(1);
    const c = await fuzz('onnx', seeds, ExportError, (b) => decodeOnnxUNet(b, 'fuzz.onnx'), consistentWeights);
    expect(c.rejected).toBeGreaterThan(0);
  });

  it('TensorFlow.js: model.json of a U-Net of base width 1 (and with batch normalisation) as export writes it, then its weight shard', async () => {
    const files = [false, true].map((batchNorm) => encodeTfjs(tinyUNet(batchNorm), 'fuzz', 'fuzz'));
    const text = (b: Uint8Array) => new TextDecoder().decode(b);
    // Each model.json mutated and read with its own shard, then each shard with its model.json.
    for (const [i, f] of files.entries()) {
      expect(decodeTfjsUNet(f.modelJson, () => f.shard, 'seed.json').baseWidth).toBe(1);
      const models = await fuzz(`tfjs-model-json-${i}`, [new TextEncoder().encode(f.modelJson)], ExportError, (b) => decodeTfjsUNet(text(b), () => f.shard, 'fuzz.json'), consistentWeights);
      const shards = await fuzz(`tfjs-shard-${i}`, [f.shard.slice()], ExportError, (b) => decodeTfjsUNet(f.modelJson, () => b, 'fuzz.json'), consistentWeights);
      expect(models.rejected).toBeGreaterThan(0);
      expect(shards.rejected).toBeGreaterThan(0);
    }
  });

  it("Keras HDF5 weights (Keras 2's layout and Keras 3's) and a .keras archive of a U-Net of base width 1, a fifth as many cases", async () => {
    const unet = tinyUNet(false);
    const keras2 = await encodeKerasH5(unet, 'fuzz');
    const keras3 = await keras3WeightsOf(unet);
    const archive = await kerasArchiveOf(unet);
    const weightsOf = async (b: Uint8Array) => {
      const file = await decodeKerasH5(b, 'fuzz.h5');
      return file.variables ? unetWeightsFromKeras3(file.variables, 'fuzz.h5') : unetWeightsFromKeras(file, 'fuzz.h5');
    };
    for (const seed of [keras2, keras3]) expect((await weightsOf(seed)).baseWidth).toBe(1);
    expect((await decodeKerasArchive(archive, 'seed.keras')).baseWidth).toBe(1);
    // HDF5's error stack for a damaged file goes into the decoder's message, not to the console.
    const { printed } = await stderrWhile(async () => {
      const h5 = await fuzz('keras-h5', [keras2, keras3], ExportError, weightsOf, consistentWeights, CASES / 5);
      const zip = await fuzz('keras-archive', [archive], ExportError, (b) => decodeKerasArchive(b, 'fuzz.keras'), consistentWeights, CASES / 5);
      expect(h5.rejected).toBeGreaterThan(0);
      expect(zip.rejected).toBeGreaterThan(0);
    });
    expect(printed.filter((p) => /HDF5-DIAG/.test(p))).toEqual([]);
  });

  it("run-length CSV: the competition's train_masks.csv", async () => {
    // Its first 40 lines: the whole file (5,635 rows) takes a tenth of a second a case.
    const head = readFixtureText('train_masks.csv').split('\n').slice(0, 40).join('\n') + '\n';
    const seeds = [new TextEncoder().encode(head)];
    const c = await fuzz('train_masks-csv', seeds, DataError, (b) => deriveMaskStatistics(new TextDecoder().decode(b), 'fuzz.csv'), () => null);
    expect(c.rejected).toBeGreaterThan(0);
  });
});
