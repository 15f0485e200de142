import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { expCorrectlyRounded } from '../../src/data/exp-correctly-rounded.js';
import { resizeBilinear, resizeBilinear64, toUint8Truncate } from '../../src/data/resize.js';
import { decodeTiff } from '../../src/data/tiff.js';
import { arrayDifference } from './compare.js';
import { readFixture } from './fixtures.js';

/**
 * The references below came from scipy 1.17.1 / numpy 2.4.6 running the code
 * path of scikit-image ≥ 0.19's resize(order=1, preserve_range=True):
 *   filtered = ndi.gaussian_filter(image, max(0, (in/out − 1)/2), mode='mirror')   # when anti-aliasing
 *   out = np.clip(ndi.zoom(filtered, out/in, order=1, mode='nearest', grid_mode=True), image.min(), image.max())
 * (mirror blur, clamped sampling: see src/data/resize.ts), then np.zeros(..., uint8)[:] = out.
 */
const SCIPY_SMALL_NO_AA = [
  92.725, 188.925, 125.125, 125.32499999999999, 189.5249999999999, 95.975, 160.175, 32.375, 109.375, 192.77500000000006, 80.02499999999998,
  131.425, 195.625, 67.82499999999999, 157.625, 166.475, 102.67500000000001, 102.875, 103.07500000000005, 135.27500000000003,
];
const SCIPY_SMALL_AA = [
  105.89603252217663, 158.53772406409018, 113.33712327655591, 123.99179717497775, 162.31635730544508, 122.19949991189188, 131.18658544199846,
  104.57390290059124, 123.21042633531657, 152.23121182942316, 121.04718324866468, 125.26104257299293, 158.99178908884537, 115.32835577227519,
  136.57552954013218, 135.2777476927422, 115.62147753223891, 118.43499430739105, 115.90479500189102, 136.93051537145698,
];
const SCIPY_UP = [
  0.0, 8.333333333333332, 30.555555555555557, 52.777777777777764, 75.0, 97.2222222222222, 119.44444444444443, 141.66666666666663, 150.0,
  9.999999999999996, 18.33333333333333, 40.55555555555555, 62.77777777777776, 85.0, 107.22222222222221, 129.44444444444443, 151.66666666666663,
  160.0, 40.0, 48.33333333333333, 70.55555555555556, 92.77777777777777, 115.0, 137.2222222222222, 159.44444444444443, 181.66666666666663, 190.0,
  70.0, 78.33333333333333, 100.55555555555556, 122.77777777777777, 145.0, 167.2222222222222, 189.44444444444446, 211.66666666666663, 220.0,
  99.99999999999999, 108.33333333333331, 130.55555555555554, 152.77777777777774, 175.0, 197.2222222222222, 176.7777777777778, 150.2380952380953,
  140.2857142857143, 130.0, 138.33333333333334, 160.55555555555554, 182.77777777777777, 205.0, 227.22222222222223, 164.11111111111111,
  88.80952380952385, 60.57142857142856, 140.0, 148.33333333333331, 170.55555555555557, 192.7777777777778, 215.00000000000003, 237.22222222222223,
  159.88888888888889, 68.3333333333334, 34.0,
];
const SCIPY_F32_IN = [
  0.0, 2.890674591064453, 1.5465041399002075, -2.063298463821411, -2.6503639221191406, 0.645359992980957, 2.9956300258636475, 1.9326530694961548,
  2.7278923988342285, -0.4732370972633362, -2.9810729026794434, -1.1216299533843994, 2.3810036182403564, 2.395461320877075, 2.9563491344451904,
  1.2821396589279175, -2.2704074382781982, -2.49680233001709, 0.9346240758895874, 2.996824026107788, 0.6686697602272034, 2.589627981185913,
  -0.766623318195343, -2.999769687652588, -0.8382465243339539, 2.551309823989868, 2.2031912803649902, -1.372607707977295, 1.0049644708633423,
  -2.45483136177063, -2.318293571472168, 1.2145497798919678, 2.9680747985839844, 0.3733632564544678, -2.7683262825012207,
];
const SCIPY_F32_OUT = [1.7921911478042603, -1.795962929725647, 1.6138362884521484, -0.10763029754161835, -0.3717472553253174, 0.8126454949378967];
/** sha256 of the 96 × 96 float64 result (little-endian), of its uint8 truncation, and the uint8 sum. */
const SCIPY_KAGGLE: [file: string, antiAlias: boolean, float64Sha256: string, uint8Sha256: string, sum: number][] = [
  ['1_1.tif', false, '582472ee5aafbeda476f3be954f241a6e81984fef864e2d435feca64f4aca56e', 'ab21343da0b251bce7707eff373c0c7cc3df654ab29f141af905b8520a8880ab', 919885],
  ['1_1.tif', true, 'f20012dedd83b301034583ea4231703262041f1d6b4bbfd382fba2f56ca7880b', '64e24b065dfca17dbf681c1136e2033b21a56f6b60385d5a5e35af6d8b84a24e', 916986],
  ['1_1_mask.tif', false, 'f44999b3efd4acaf95bc9ca6c6aa60df907df912b9cd9a4f5079845fcfcd7386', 'ae6b3f181076e8c1f1bf62e4560fbc0de539045ce77a185fda57cf9a76159f8f', 45143],
  ['1_1_mask.tif', true, '6aec84bfcfd10722f5d1fcfbfcfe3d4ca5c078cd6298de9e99537d03ce796505', 'ac6ce47ab365baea930995f6d487eb2da91bff2436f7371586e2da80533c0451', 44375],
];
/** sha256 of the float64 580 × 420 result of growing the uint8 96 × 96 of 1_1_mask.tif (no anti-aliasing) back. */
const SCIPY_MASK_BACK_UP = '09f3e035f7186c7c1b2d7b97741b5d1833fb82b46f29164a760dc7c0da9416a7';

const sha256 = (bytes: Uint8Array | Float64Array): string =>
  createHash('sha256').update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)).digest('hex');

/** (x·37 + y·101) mod 256 on a 13 × 9 grid, as the references used. */
const small = Uint8Array.from({ length: 13 * 9 }, (_, i) => ((i % 13) * 37 + Math.floor(i / 13) * 101) % 256);

describe('resizeBilinear by hand', () => {
  it('leaves an image unchanged at the same size, with or without anti-aliasing', () => {
    const src = Uint8Array.from({ length: 7 * 5 }, (_, i) => (i * 53) % 256);
    expect(Array.from(resizeBilinear(src, 7, 5, 7, 5))).toEqual(Array.from(src));
    expect(Array.from(resizeBilinear(src, 7, 5, 7, 5, { antiAlias: true }))).toEqual(Array.from(src));
  });

  it('halves 4 × 4 to 2 × 2 as the mean of each 2 × 2 block', () => {
    // Sample points fall midway between pixel centres: (dst + 0.5)·2 − 0.5 = 0.5, 2.5.
    const src = new Uint8Array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110, 120, 130, 140, 150]);
    expect(Array.from(resizeBilinear(src, 4, 4, 2, 2))).toEqual([25, 45, 105, 125]);
  });

  it('doubles 2 × 2 to 4 × 4 with quarter steps, clamped at the edges', () => {
    // Along each axis the samples lie at −0.25 (clamped to 0), 0.25, 0.75 and 1.25 (clamped to 1).
    const src = new Uint8Array([0, 100, 200, 40]);
    const row = (a: number, b: number): number[] => [a, 0.75 * a + 0.25 * b, 0.25 * a + 0.75 * b, b];
    const top = row(0, 100);
    const bottom = row(200, 40);
    const expected = [top, top.map((t, i) => 0.75 * t + 0.25 * bottom[i]!), top.map((t, i) => 0.25 * t + 0.75 * bottom[i]!), bottom].flat();
    const out = resizeBilinear64(src, 2, 2, 4, 4);
    out.forEach((v, i) => expect(v).toBeCloseTo(expected[i]!, 12));
    expect(Array.from(out.subarray(0, 4))).toEqual([0, 25, 75, 100]);
  });

  it('blurs only axes that shrink, and blurs a constant image into itself', () => {
    const src = Uint8Array.from({ length: 6 * 4 }, (_, i) => (i * 41) % 256);
    // Growing both axes: sigma is 0, so anti-aliasing changes nothing.
    expect(Array.from(resizeBilinear(src, 6, 4, 11, 9, { antiAlias: true }))).toEqual(Array.from(resizeBilinear(src, 6, 4, 11, 9)));
    // Shrinking: the blur changes the result.
    expect(Array.from(resizeBilinear(src, 6, 4, 2, 2, { antiAlias: true }))).not.toEqual(Array.from(resizeBilinear(src, 6, 4, 2, 2)));
    // The blur's weights sum to a hair over 1; like scikit-image, the result is clipped to the input's range.
    const flat = new Uint8Array(30 * 20).fill(77);
    expect(new Set(resizeBilinear64(flat, 30, 20, 7, 3, { antiAlias: true }))).toEqual(new Set([77]));
  });

  it('rejects sizes that do not fit', () => {
    expect(() => resizeBilinear(new Uint8Array(5), 2, 3, 1, 1)).toThrow(DataError);
    expect(() => resizeBilinear(new Uint8Array(6), 2, 3, 0, 1)).toThrow(/dstW is 0/);
  });
});

describe('resizeBilinear against scipy (scikit-image’s code path)', () => {
  it('matches bit for bit without anti-aliasing (13 × 9 → 5 × 4)', () => {
    expect(arrayDifference(resizeBilinear64(small, 13, 9, 5, 4), SCIPY_SMALL_NO_AA)).toBe('equal');
  });

  it('matches bit for bit with anti-aliasing (13 × 9 → 5 × 4)', () => {
    expect(arrayDifference(resizeBilinear64(small, 13, 9, 5, 4, { antiAlias: true }), SCIPY_SMALL_AA)).toBe('equal');
  });

  it('matches bit for bit when growing (4 × 3 → 9 × 7)', () => {
    const up = Uint8Array.from({ length: 12 }, (_, i) => ((i % 4) * 50 + Math.floor(i / 4) * 70) % 256);
    expect(arrayDifference(resizeBilinear64(up, 4, 3, 9, 7), SCIPY_UP)).toBe('equal');
  });

  it('keeps float32 input in float32 between steps, as scikit-image does (7 × 5 → 3 × 2)', () => {
    const out = resizeBilinear(Float32Array.from(SCIPY_F32_IN), 7, 5, 3, 2, { antiAlias: true });
    expect(arrayDifference(out, SCIPY_F32_OUT)).toBe('equal');
  });

  for (const [file, antiAlias, float64Sha256, uint8Sha256, sum] of SCIPY_KAGGLE) {
    it(`gives scipy's float64 and uint8 96 × 96 for ${file}${antiAlias ? ' with anti-aliasing' : ''}`, () => {
      const image = decodeTiff(readFixture(file), file);
      const values = resizeBilinear64(image.data, 580, 420, 96, 96, { antiAlias });
      const bytes = toUint8Truncate(values);
      expect(bytes.reduce((a, b) => a + b, 0)).toBe(sum);
      expect(sha256(bytes)).toBe(uint8Sha256);
      expect(sha256(values)).toBe(float64Sha256);
    });
  }

  it("gives scipy's float64 580 × 420 when growing a 96 × 96 mask back", () => {
    const mask = decodeTiff(readFixture('1_1_mask.tif'), '1_1_mask.tif');
    const small = toUint8Truncate(resizeBilinear64(mask.data, 580, 420, 96, 96));
    expect(sha256(resizeBilinear64(small, 96, 96, 580, 420))).toBe(SCIPY_MASK_BACK_UP);
  });

  it('resizeBilinear is resizeBilinear64 rounded to float32', () => {
    const image = decodeTiff(readFixture('1_2.tif'), '1_2.tif');
    const wide = resizeBilinear64(image.data, 580, 420, 96, 96, { antiAlias: true });
    expect(arrayDifference(resizeBilinear(image.data, 580, 420, 96, 96, { antiAlias: true }), Float32Array.from(wide))).toBe('equal');
  });
});

describe('toUint8Truncate', () => {
  it('truncates toward zero and clamps to 0..255', () => {
    const values = [-3.5, -0.5, 0, 0.999, 1, 99.99999999999999, 127.5, 254.9999, 255, 255.5, 1000, NaN];
    expect(Array.from(toUint8Truncate(Float64Array.from(values)))).toEqual([0, 0, 0, 0, 1, 99, 127, 254, 255, 255, 255, 0]);
    // In float32, 99.99999999999999 is 100: why the float64 results exist.
    expect(toUint8Truncate(Float32Array.from([99.99999999999999]))[0]).toBe(100);
  });
});

describe('expCorrectlyRounded', () => {
  it('rounds where V8’s Math.exp is one unit in the last place off', () => {
    // exp(−0.31473260023222455) = 0.729984045737801222…, nearer to …012 than …013
    // (a weight of the 580 → 96 Gaussian; numpy and glibc give …012).
    expect(expCorrectlyRounded(-0.31473260023222455)).toBe(0.7299840457378012);
  });

  it('agrees with Math.exp to within one unit in the last place', () => {
    for (let i = 0; i <= 200; i++) {
      const x = -40 + i * 0.2371;
      const exact = expCorrectlyRounded(x);
      expect(Math.abs(exact - Math.exp(x))).toBeLessThanOrEqual(Math.abs(exact) * 2 ** -52);
    }
    expect(expCorrectlyRounded(0)).toBe(1);
    expect(expCorrectlyRounded(1)).toBe(Math.E);
  });
});
