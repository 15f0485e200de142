/**
 * A deterministic, seeded generator of ultrasound-like frames in the exact
 * format of the Kaggle "Ultrasound Nerve Segmentation" data: 580 wide × 420
 * high, 8-bit gray, row-major; masks 0/255. It stands in for the real data
 * (which the project may not ship) so that the whole pipeline can run end to
 * end, and it is meant to be learnable but not trivial.
 *
 * What a frame holds, from the subject's anatomy (fixed per subject, moving a
 * little from frame to frame as a probe sweep would) and the frame's own draws:
 * - tissue echogenicity: smooth, laterally stretched regions of muscle and fat,
 *   soft bright patches, many short wavy bright streaks (muscle fibres and
 *   septa), a few long bright wavy fascia bands with soft edges (one just
 *   under the skin), a bright skin line at the top;
 * - vessels: dark (anechoic) round or oval lumens with a thin bright wall and
 *   posterior acoustic enhancement below them; one often lies right beside
 *   where the subject's nerve sits, in frames with and without a nerve;
 * - decoys: small clusters of dark round spots without a bright border;
 * - the nerve, in about 41 % of frames: an oval with a bright (hyperechoic)
 *   border and a honeycomb of small dark round fascicles in a bright matrix,
 *   its mean level close to its surroundings so that brightness alone does not
 *   find it. Its mask is the label;
 * - fully developed speckle: scatterers with random phase and the local
 *   echogenicity as amplitude, blurred by an anisotropic point-spread function
 *   (laterally elongated grains, Rayleigh-distributed envelope, softened
 *   edges), lightly smoothed; then depth attenuation, gain and log compression
 *   over the subject's dynamic range to 8 bits, and the scanner's small "V"
 *   orientation mark at the top.
 * Subjects differ in gain, dynamic range, speckle grain size, attenuation,
 * texture density and contrast, fascia and vessel layout, nerve location
 * prior, how often the nerve is present, its size and its visibility.
 * A frame costs far more than its mask alone (generateMask), which callers
 * that need only masks use.
 *
 * Mask areas, positions, aspect ratios and the empty fraction follow the real
 * training masks: REAL_MASK_STATS below was derived from the competition's
 * train_masks.csv by deriveMaskStatistics (scripts/derive-mask-stats.ts prints
 * it; a test checks the constants against the file).
 *
 * Determinism: a frame depends only on (subject, frame, seed). The same
 * arguments give the same bytes in any one JavaScript engine (the generator
 * uses Math.exp/log/sin/atan2, which engines may round differently in the last
 * bit; V8 uses the same implementation on every platform).
 */
import { DataError } from './errors.js';
import { encodeRle, parseRle } from './rle.js';

export const FRAME_WIDTH = 580;
export const FRAME_HEIGHT = 420;
const W = FRAME_WIDTH;
const H = FRAME_HEIGHT;
const PIXELS = W * H;

/** A frame and its mask, 580 × 420 row-major; mask values are 0 and 255. */
export interface SyntheticFrame {
  image: Uint8Array;
  mask: Uint8Array;
}

// ---------------------------------------------------------------------------
// Statistics of the real masks
// ---------------------------------------------------------------------------

/** Value of a distribution at cumulative probability p. */
export interface QuantilePoint {
  p: number;
  value: number;
}

/** A summary of the competition's training masks, as deriveMaskStatistics computes it. */
export interface MaskStatistics {
  frames: number;
  subjects: number;
  emptyFrames: number;
  /** emptyFrames / frames, rounded to 4 decimals. */
  emptyFraction: number;
  /** Pixels of the non-empty masks (numpy's default linear quantiles, rounded to whole pixels). */
  area: QuantilePoint[];
  /** Mean and standard deviation of the mask centroids (x across, y down, pixels; 0.1 px). */
  centroid: { meanX: number; meanY: number; sdX: number; sdY: number };
  /** Standard deviation across subjects of each subject's mean centroid (subjects with ≥ 3 masks). */
  subjectCentroidSd: { x: number; y: number };
  /** Mean over subjects of the standard deviation of centroids within the subject (subjects with ≥ 3 masks). */
  withinSubjectCentroidSd: { x: number; y: number };
  /** Bounding-box width / height of the non-empty masks (0.01). */
  aspect: QuantilePoint[];
  /** Fraction of each subject's frames whose mask is empty (0.01). */
  subjectEmptyFraction: QuantilePoint[];
}

/** The cumulative probabilities at which the quantiles are kept. */
export const STAT_QUANTILES: readonly number[] = [0, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.975, 0.99, 1];

/**
 * Summarises a train_masks.csv (header `subject,img,pixels`, run-length
 * encoded 580 × 420 masks). Throws DataError naming the line for a malformed row.
 */
export function deriveMaskStatistics(csvText: string, name = 'train_masks.csv'): MaskStatistics {
  const lines = csvText.split(/\r?\n/);
  if (lines[0]?.trim() !== 'subject,img,pixels') {
    throw new DataError(`${name}: the first line is ${JSON.stringify(lines[0]?.slice(0, 60))}, not the header "subject,img,pixels": pass the competition's train_masks.csv`);
  }
  const areas: number[] = [];
  const aspects: number[] = [];
  const cxs: number[] = [];
  const cys: number[] = [];
  const bySubject = new Map<number, { frames: number; empty: number; cx: number[]; cy: number[] }>();
  let frames = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const where = `${name} line ${i + 1}`;
    const fields = line.split(',');
    const subject = Number(fields[0]);
    if (fields.length !== 3 || !Number.isInteger(subject) || !/^\d+$/.test(fields[1] ?? '')) {
      throw new DataError(`${where}: expected "subject,img,pixels" with whole numbers, got ${JSON.stringify(line.slice(0, 60))}`);
    }
    frames++;
    let entry = bySubject.get(subject);
    if (entry === undefined) bySubject.set(subject, (entry = { frames: 0, empty: 0, cx: [], cy: [] }));
    entry.frames++;
    const runs = parseRle(fields[2]!, W, H, where);
    if (runs.length === 0) {
      entry.empty++;
      continue;
    }
    let area = 0;
    let sumX = 0;
    let sumY = 0;
    let x0 = W;
    let x1 = -1;
    let y0 = H;
    let y1 = -1;
    for (const { start, length } of runs) {
      for (let p = start - 1; p < start - 1 + length; p++) {
        const x = Math.floor(p / H);
        const y = p - x * H;
        area++;
        sumX += x;
        sumY += y;
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
    }
    areas.push(area);
    aspects.push((x1 - x0 + 1) / (y1 - y0 + 1));
    cxs.push(sumX / area);
    cys.push(sumY / area);
    entry.cx.push(sumX / area);
    entry.cy.push(sumY / area);
  }
  if (areas.length === 0) throw new DataError(`${name}: no non-empty masks: pass the competition's train_masks.csv`);
  const round = (v: number, step: number): number => Math.round(v / step) * step;
  const r1 = (v: number): number => Number(round(v, 0.1).toFixed(1));
  const r2 = (v: number): number => Number(round(v, 0.01).toFixed(2));
  const quantiles = (values: number[], rounding: (v: number) => number): QuantilePoint[] => {
    const sorted = [...values].sort((a, b) => a - b);
    return STAT_QUANTILES.map((p) => {
      const at = p * (sorted.length - 1);
      const lo = Math.floor(at);
      const hi = Math.min(lo + 1, sorted.length - 1);
      return { p, value: rounding(sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (at - lo)) };
    });
  };
  const subjects = [...bySubject.values()];
  const withMasks = subjects.filter((s) => s.cx.length >= 3);
  const emptyFrames = subjects.reduce((sum, s) => sum + s.empty, 0);
  return {
    frames,
    subjects: subjects.length,
    emptyFrames,
    emptyFraction: Number((emptyFrames / frames).toFixed(4)),
    area: quantiles(areas, Math.round),
    centroid: { meanX: r1(mean(cxs)), meanY: r1(mean(cys)), sdX: r1(sd(cxs)), sdY: r1(sd(cys)) },
    subjectCentroidSd: { x: r1(sd(withMasks.map((s) => mean(s.cx)))), y: r1(sd(withMasks.map((s) => mean(s.cy)))) },
    withinSubjectCentroidSd: { x: r1(mean(withMasks.map((s) => sd(s.cx)))), y: r1(mean(withMasks.map((s) => sd(s.cy)))) },
    aspect: quantiles(aspects, r2),
    subjectEmptyFraction: quantiles(
      subjects.map((s) => s.empty / s.frames),
      r2,
    ),
  };
}

function mean(values: number[]): number {
  return values.reduce((a, b) => a + b, 0) / values.length;
}

/** Population standard deviation. */
function sd(values: number[]): number {
  const m = mean(values);
  return Math.sqrt(mean(values.map((v) => (v - m) ** 2)));
}

/**
 * The real training masks, summarised by deriveMaskStatistics from the
 * competition's train_masks.csv (../shared/fixtures/kaggle-sample/, all 5,635
 * masks); regenerate with `npx tsx scripts/derive-mask-stats.ts`. The
 * generator draws mask areas, aspect ratios, positions and how often a subject
 * shows its nerve from these numbers; test/data/synthetic.test.ts checks them
 * against the file.
 */
export const REAL_MASK_STATS: MaskStatistics = {
  frames: 5635,
  subjects: 47,
  emptyFrames: 3312,
  emptyFraction: 0.5878,
  area: [
    { p: 0, value: 2684 }, { p: 0.01, value: 3847 }, { p: 0.025, value: 4298 }, { p: 0.05, value: 4664 }, { p: 0.1, value: 5072 },
    { p: 0.15, value: 5333 }, { p: 0.2, value: 5587 }, { p: 0.25, value: 5806 }, { p: 0.3, value: 6053 }, { p: 0.35, value: 6300 },
    { p: 0.4, value: 6516 }, { p: 0.45, value: 6737 }, { p: 0.5, value: 6976 }, { p: 0.55, value: 7180 }, { p: 0.6, value: 7385 },
    { p: 0.65, value: 7619 }, { p: 0.7, value: 7861 }, { p: 0.75, value: 8120 }, { p: 0.8, value: 8461 }, { p: 0.85, value: 8852 },
    { p: 0.9, value: 9420 }, { p: 0.95, value: 10347 }, { p: 0.975, value: 11097 }, { p: 0.99, value: 12501 }, { p: 1, value: 17439 },
  ],
  centroid: { meanX: 334.3, meanY: 145.1, sdX: 41.9, sdY: 36.3 },
  subjectCentroidSd: { x: 23.4, y: 35.6 },
  withinSubjectCentroidSd: { x: 34.5, y: 18.7 },
  aspect: [
    { p: 0, value: 0.29 }, { p: 0.01, value: 0.45 }, { p: 0.025, value: 0.48 }, { p: 0.05, value: 0.51 }, { p: 0.1, value: 0.55 },
    { p: 0.15, value: 0.58 }, { p: 0.2, value: 0.6 }, { p: 0.25, value: 0.63 }, { p: 0.3, value: 0.65 }, { p: 0.35, value: 0.67 },
    { p: 0.4, value: 0.7 }, { p: 0.45, value: 0.73 }, { p: 0.5, value: 0.76 }, { p: 0.55, value: 0.78 }, { p: 0.6, value: 0.81 },
    { p: 0.65, value: 0.84 }, { p: 0.7, value: 0.88 }, { p: 0.75, value: 0.92 }, { p: 0.8, value: 0.96 }, { p: 0.85, value: 1.02 },
    { p: 0.9, value: 1.09 }, { p: 0.95, value: 1.24 }, { p: 0.975, value: 1.4 }, { p: 0.99, value: 1.55 }, { p: 1, value: 7.22 },
  ],
  subjectEmptyFraction: [
    { p: 0, value: 0.11 }, { p: 0.01, value: 0.12 }, { p: 0.025, value: 0.13 }, { p: 0.05, value: 0.19 }, { p: 0.1, value: 0.24 },
    { p: 0.15, value: 0.37 }, { p: 0.2, value: 0.42 }, { p: 0.25, value: 0.43 }, { p: 0.3, value: 0.46 }, { p: 0.35, value: 0.49 },
    { p: 0.4, value: 0.5 }, { p: 0.45, value: 0.55 }, { p: 0.5, value: 0.59 }, { p: 0.55, value: 0.63 }, { p: 0.6, value: 0.71 },
    { p: 0.65, value: 0.73 }, { p: 0.7, value: 0.74 }, { p: 0.75, value: 0.77 }, { p: 0.8, value: 0.82 }, { p: 0.85, value: 0.83 },
    { p: 0.9, value: 0.85 }, { p: 0.95, value: 0.92 }, { p: 0.975, value: 0.95 }, { p: 0.99, value: 0.97 }, { p: 1, value: 0.98 },
  ],
};

// ---------------------------------------------------------------------------
// Random numbers: every draw comes from a generator seeded by hashing
// (seed, stream, subject, frame), so any frame can be made on its own.
// ---------------------------------------------------------------------------

const STREAM = { subject: 1, frame: 2, speckle: 3, grid: 4, layout: 5 } as const;

function rotl32(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** MurmurHash3's mixing of 32-bit words, finalised. */
function hashWords(words: readonly number[]): number {
  let h = 0x5eed1e55;
  for (const word of words) {
    let k = Math.imul(word | 0, 0xcc9e2d51);
    k = Math.imul(rotl32(k, 15), 0x1b873593);
    h = (Math.imul(rotl32(h ^ k, 13), 5) + 0xe6546b64) | 0;
  }
  h ^= words.length * 4;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** The seed's low and high 32 bits, so that seeds beyond 2^32 still differ. */
function seedWords(seed: number): [number, number] {
  return [seed >>> 0, Math.floor(seed / 4294967296) >>> 0];
}

/** sfc32: a small, fast generator with good statistical quality. */
class Random {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spareNormal: number | undefined;

  constructor(words: readonly number[]) {
    this.a = hashWords([...words, 1]);
    this.b = hashWords([...words, 2]);
    this.c = hashWords([...words, 3]);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.uint32();
  }

  uint32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = rotl32(this.c, 21);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  /** Fills `out` with random 32-bit words (the same words uint32() would give, faster). */
  fill(out: Uint32Array): void {
    let a = this.a;
    let b = this.b;
    let c = this.c;
    let d = this.d;
    for (let i = 0; i < out.length; i++) {
      const t = (((a + b) | 0) + d) | 0;
      d = (d + 1) | 0;
      a = b ^ (b >>> 9);
      b = (c + (c << 3)) | 0;
      c = ((c << 21) | (c >>> 11)) + t;
      c |= 0;
      out[i] = t;
    }
    this.a = a;
    this.b = b;
    this.c = c;
    this.d = d;
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.uint32() / 4294967296;
  }

  range(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** An integer in [lo, hi], both included. */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.next() < p;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.spareNormal !== undefined) {
      const v = this.spareNormal;
      this.spareNormal = undefined;
      return v;
    }
    const u = 1 - this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    const angle = 2 * Math.PI * this.next();
    this.spareNormal = r * Math.sin(angle);
    return r * Math.cos(angle);
  }
}

/** The standard normal CDF (Abramowitz & Stegun 7.1.26, error < 1.5e-7). */
function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? 0.5 * (1 + erf) : 0.5 * (1 - erf);
}

/** Piecewise-linear inverse CDF through the quantile points. */
function quantileAt(points: readonly QuantilePoint[], p: number): number {
  if (p <= points[0]!.p) return points[0]!.value;
  for (let i = 1; i < points.length; i++) {
    const hi = points[i]!;
    if (p <= hi.p) {
      const lo = points[i - 1]!;
      return lo.value + ((hi.value - lo.value) * (p - lo.p)) / (hi.p - lo.p);
    }
  }
  return points[points.length - 1]!.value;
}

function fastHypot(x: number, y: number): number {
  return Math.sqrt(x * x + y * y);
}

function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

function smoothstep(t: number): number {
  const c = clamp(t, 0, 1);
  return c * c * (3 - 2 * c);
}

// ---------------------------------------------------------------------------
// A subject's anatomy. Positions are in "world" pixels: a frame sees the world
// shifted by its probe offset, so consecutive frames of a subject look alike.
// ---------------------------------------------------------------------------

/** A thin bright wavy line: y = y0 + slope·(x − x0) + wave·sin(k·x + phase), Gaussian across. */
interface Curve {
  x0: number;
  x1: number;
  y0: number;
  slope: number;
  wave: number;
  k: number;
  phase: number;
  sigma: number;
  strength: number;
  /** Slow variation of strength along the line: strength · (1 − beading · (1 + sin(beadK·x + beadPhase)) / 2). */
  beading: number;
  beadK: number;
  beadPhase: number;
}

/** A soft bright patch: strength · exp(−(u²/rx² + v²/ry²) / 2) in axes turned by `angle`. */
interface Clump {
  x: number;
  y: number;
  rx: number;
  ry: number;
  angle: number;
  strength: number;
}

/** A vessel: dark elliptical lumen, bright thin wall, brighter tissue below. */
interface Vessel {
  x: number;
  y: number;
  rx: number;
  ry: number;
  wall: number;
  enhancement: number;
  pulse: number;
  pulsePhase: number;
}

/** A small dark round spot (decoys for the nerve's fascicles). */
interface Spot {
  x: number;
  y: number;
  r: number;
  darkness: number;
}

interface Subject {
  gain: number;
  /** Decibels shown between black and white. */
  dynamicRange: number;
  speckleRx: number;
  attenuation: number;
  level: number;
  contrast: number;
  curves: Curve[];
  clumps: Clump[];
  /** The skin line under the probe, fixed to the frame. */
  skin: Curve;
  vessels: Vessel[];
  spots: Spot[];
  /** Where the nerve sits in world pixels, its presence probability and the subject's share of its size. */
  nerveX: number;
  nerveY: number;
  presence: number;
  presencePhase: number;
  presenceRate: number;
  sizeZ: number;
  aspectZ: number;
  fascicleScale: number;
  visibility: number;
  /** Probe sweep: offset(f) = Σ amplitude · sin(2π f / period + phase), in x and y. */
  sweepX: [number, number, number][];
  sweepY: [number, number, number][];
  seedWords: [number, number];
  subject: number;
}

const GOLDEN = 0.6180339887498949;
/** Sine amplitudes of the probe sweep: standard deviations of about 24 px across and 9 px down. */
const SWEEP_X = [28, 20];
const SWEEP_Y = [10, 8];
/** Jitter of the nerve within a subject beyond the sweep, so that the total matches withinSubjectCentroidSd. */
const JITTER_X = Math.sqrt(Math.max(0, REAL_MASK_STATS.withinSubjectCentroidSd.x ** 2 - (SWEEP_X[0]! ** 2 + SWEEP_X[1]! ** 2) / 2));
const JITTER_Y = Math.sqrt(Math.max(0, REAL_MASK_STATS.withinSubjectCentroidSd.y ** 2 - (SWEEP_Y[0]! ** 2 + SWEEP_Y[1]! ** 2) / 2));

function makeSubject(subject: number, seed: number): Subject {
  const words = seedWords(seed);
  const rng = new Random([...words, STREAM.subject, subject]);
  const stats = REAL_MASK_STATS;

  // How often this subject shows the nerve: a low-discrepancy walk through the
  // real per-subject empty fractions, so that any run of subjects averages close to the real 58.8 %.
  const offset = hashWords([...words, STREAM.layout]) / 4294967296;
  const u = (offset + subject * GOLDEN) % 1;
  const presence = 1 - quantileAt(stats.subjectEmptyFraction, u);

  const level = rng.range(0.3, 0.42);
  const curves: Curve[] = [];
  // Fascia: long bright bands, the first just under the skin, then mostly in the upper half; some doubled.
  const fasciaCount = rng.int(2, 4);
  for (let i = 0; i < fasciaCount; i++) {
    const y0 = i === 0 ? rng.range(18, 55) : rng.range(60, 320);
    const long = i === 0 || rng.chance(0.5);
    const x0 = long ? -120 : rng.range(-120, 300);
    const x1 = long ? 700 : x0 + rng.range(250, 520);
    const fascia: Curve = {
      x0,
      x1,
      y0,
      slope: rng.range(-0.12, 0.12),
      wave: rng.range(4, 22),
      k: (2 * Math.PI) / rng.range(220, 700),
      phase: rng.range(0, 2 * Math.PI),
      sigma: i === 0 ? rng.range(2.5, 4.5) : rng.range(1.8, 3.5),
      strength: rng.range(20, 50) * level,
      beading: rng.range(0.2, 0.9),
      beadK: (2 * Math.PI) / rng.range(90, 260),
      beadPhase: rng.range(0, 2 * Math.PI),
    };
    curves.push(fascia);
    if (rng.chance(0.45)) {
      curves.push({ ...fascia, y0: fascia.y0 + rng.range(6, 12), sigma: fascia.sigma * 0.7, strength: fascia.strength * rng.range(0.5, 0.9), beadPhase: rng.range(0, 6) });
    }
  }
  // Muscle fibres and septa: many short thin streaks everywhere.
  const streaks = Math.round(rng.range(100, 220));
  for (let i = 0; i < streaks; i++) {
    const x0 = rng.range(-150, 680);
    const length = 10 + 130 * rng.next() ** 1.7;
    curves.push({
      x0,
      x1: x0 + length,
      y0: rng.range(10, 470),
      slope: rng.range(-0.35, 0.35),
      wave: rng.range(0, 6),
      k: (2 * Math.PI) / rng.range(60, 300),
      phase: rng.range(0, 2 * Math.PI),
      sigma: rng.range(1.0, 2.8),
      strength: level * (1.5 + 14 * rng.next() ** 2),
      beading: rng.range(0, 0.8),
      beadK: (2 * Math.PI) / rng.range(15, 80),
      beadPhase: rng.range(0, 2 * Math.PI),
    });
  }

  // Clumps: soft bright patches of connective tissue, more of them deeper down.
  const clumps: Clump[] = [];
  const clumpCount = rng.int(10, 35);
  for (let i = 0; i < clumpCount; i++) {
    clumps.push({
      x: rng.range(-60, 640),
      y: 20 + 460 * Math.sqrt(rng.next()),
      rx: rng.range(8, 45),
      ry: rng.range(4, 16),
      angle: rng.range(-0.4, 0.4),
      strength: level * rng.range(1, 6),
    });
  }

  // The nerve's place: the real positions' spread across subjects.
  const nerveX = clamp(stats.centroid.meanX + stats.subjectCentroidSd.x * rng.normal(), 200, 460);
  const nerveY = clamp(stats.centroid.meanY + stats.subjectCentroidSd.y * rng.normal(), 80, 300);

  const vessels: Vessel[] = [];
  const vessel = (x: number, y: number, r: number): Vessel => {
    const flat = rng.chance(0.35) ? rng.range(0.55, 0.8) : rng.range(0.85, 1.05);
    return { x, y, rx: r, ry: r * flat, wall: level * rng.range(1.5, 3), enhancement: rng.range(0.2, 0.6), pulse: rng.range(0, 0.06), pulsePhase: rng.range(0, 2 * Math.PI) };
  };
  if (rng.chance(0.65)) {
    // An artery beside the plexus, whether or not the nerve is in view.
    const r = rng.range(14, 30);
    const angle = rng.chance(0.5) ? rng.range(-0.6, 0.9) : Math.PI + rng.range(-0.9, 0.6);
    const distance = 55 + r + rng.range(10, 35);
    vessels.push(vessel(nerveX + distance * Math.cos(angle), nerveY + distance * Math.sin(angle), r));
  }
  const others = rng.int(0, 2);
  for (let i = 0; i < others; i++) vessels.push(vessel(rng.range(20, 560), rng.range(60, 400), rng.range(8, 26)));

  // Decoys: clusters of dark spots with no bright border.
  const spots: Spot[] = [];
  const clusters = rng.int(2, 6);
  for (let c = 0; c < clusters; c++) {
    const cx = rng.range(-40, 620);
    const cy = rng.range(40, 440);
    const n = rng.int(2, 7);
    for (let i = 0; i < n; i++) spots.push({ x: cx + rng.range(-22, 22), y: cy + rng.range(-18, 18), r: rng.range(2.5, 7), darkness: rng.range(0.4, 0.8) });
  }

  const sweep = (amplitudes: number[]): [number, number, number][] =>
    amplitudes.map((a, i) => [a, i === 0 ? rng.range(60, 140) : rng.range(18, 45), rng.range(0, 2 * Math.PI)]);

  return {
    gain: rng.range(0.85, 1.15),
    dynamicRange: rng.range(36, 46),
    speckleRx: rng.int(2, 4),
    attenuation: rng.range(0.2, 0.9),
    level,
    contrast: rng.range(0.6, 1.1),
    curves,
    clumps,
    skin: { x0: -100, x1: W + 100, y0: 3, slope: 0, wave: 0, k: 0, phase: 0, sigma: 1.5, strength: level * rng.range(8, 16), beading: rng.range(0, 0.4), beadK: 0.05, beadPhase: rng.range(0, 6) },
    vessels,
    spots,
    nerveX,
    nerveY,
    presence,
    presencePhase: rng.next(),
    presenceRate: rng.range(0.02, 0.05),
    sizeZ: rng.normal(),
    aspectZ: rng.normal(),
    fascicleScale: rng.range(0.8, 1.2),
    visibility: rng.range(0.6, 0.95),
    sweepX: sweep(SWEEP_X),
    sweepY: sweep(SWEEP_Y),
    seedWords: words,
    subject,
  };
}

function sweepAt(terms: [number, number, number][], frame: number): number {
  let v = 0;
  for (const [amplitude, period, phase] of terms) v += amplitude * Math.sin((2 * Math.PI * frame) / period + phase);
  return v;
}

// ---------------------------------------------------------------------------
// The nerve of one frame
// ---------------------------------------------------------------------------

interface Nerve {
  x: number;
  y: number;
  /** Semi-axes (before wobble) and rotation. */
  a: number;
  b: number;
  angle: number;
  /** Boundary wobble: radius · (1 + Σ amp · cos(k·φ + phase)), k = 2, 3, 4. */
  wobble: [number, number][];
  fascicles: Spot[];
  visibility: number;
  matrix: number;
  border: number;
}

/** Radius of the nerve's boundary in direction φ of its own (rotated) frame. */
function nerveRadius(nerve: Nerve, cos: number, sin: number, phi: number): number {
  const ellipse = 1 / Math.sqrt((cos * cos) / (nerve.a * nerve.a) + (sin * sin) / (nerve.b * nerve.b));
  let w = 1;
  for (let k = 0; k < nerve.wobble.length; k++) w += nerve.wobble[k]![0] * Math.cos((k + 2) * phi + nerve.wobble[k]![1]);
  return ellipse * w;
}

function makeNerve(subject: Subject, rng: Random, shiftX: number, shiftY: number): Nerve {
  const stats = REAL_MASK_STATS;
  const area = clamp(quantileAt(stats.area, clamp(normalCdf(0.6 * subject.sizeZ + 0.8 * rng.normal()), 0.002, 0.998)), 2750, 17300);
  const aspect = quantileAt(stats.aspect, clamp(normalCdf(0.5 * subject.aspectZ + 0.866 * rng.normal()), 0.02, 0.98));
  const nerve: Nerve = {
    x: 0,
    y: 0,
    a: Math.sqrt((area * aspect) / Math.PI),
    b: Math.sqrt(area / (aspect * Math.PI)),
    angle: clamp(rng.normal() * 0.2, -0.5, 0.5),
    wobble: [0, 1, 2].map(() => [rng.range(0, 0.05), rng.range(0, 2 * Math.PI)]),
    fascicles: [],
    visibility: clamp(subject.visibility + rng.range(-0.15, 0.1), 0.45, 1),
    matrix: subject.level * rng.range(1.4, 2.0),
    border: subject.level * rng.range(4, 8),
  };
  // Scale so that the wobbly outline encloses exactly `area` (½ ∮ r² dφ).
  let enclosed = 0;
  const steps = 360;
  for (let i = 0; i < steps; i++) {
    const phi = (2 * Math.PI * i) / steps;
    enclosed += nerveRadius(nerve, Math.cos(phi), Math.sin(phi), phi) ** 2;
  }
  enclosed *= Math.PI / steps;
  const scale = Math.sqrt(area / enclosed);
  nerve.a *= scale;
  nerve.b *= scale;

  // Centre: the subject's place seen through this frame's probe offset, plus jitter; kept inside the frame.
  const reach = Math.max(nerve.a, nerve.b) * 1.12 + 3;
  let x = subject.nerveX - shiftX + JITTER_X * rng.normal();
  let y = subject.nerveY - shiftY + JITTER_Y * rng.normal();
  // Keep clear of vessels: push the nerve away from any it would overlap.
  for (const vessel of subject.vessels) {
    const vx = vessel.x - shiftX;
    const vy = vessel.y - shiftY;
    const dx = x - vx;
    const dy = y - vy;
    const distance = fastHypot(dx, dy);
    const needed = reach + Math.max(vessel.rx, vessel.ry) + 6;
    if (distance < needed) {
      const ux = distance > 1e-6 ? dx / distance : 1;
      const uy = distance > 1e-6 ? dy / distance : 0;
      x = vx + ux * needed;
      y = vy + uy * needed;
    }
  }
  nerve.x = clamp(x, reach, W - 1 - reach);
  nerve.y = clamp(y, reach, H - 1 - reach);

  // Fascicles: dark round bundles packed inside, clear of the border and of each other.
  const cos = Math.cos(nerve.angle);
  const sin = Math.sin(nerve.angle);
  const tries = 500;
  for (let t = 0; t < tries; t++) {
    const r = subject.fascicleScale * rng.range(4, 9);
    const px = rng.range(-reach, reach);
    const py = rng.range(-reach, reach);
    const u = px * cos + py * sin;
    const v = -px * sin + py * cos;
    const phi = Math.atan2(v, u);
    const rho = fastHypot(u, v);
    if (rho + r + 5 > nerveRadius(nerve, Math.cos(phi), Math.sin(phi), phi)) continue;
    if (nerve.fascicles.some((f) => fastHypot(f.x - px, f.y - py) < f.r + r + 2.5)) continue;
    nerve.fascicles.push({ x: px, y: py, r, darkness: rng.range(0.75, 0.92) });
  }
  return nerve;
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

/** exp(−t²/2) for t = i / GAUSS_STEPS, up to 3.5. */
const GAUSS_STEPS = 64;
const GAUSS = Float32Array.from({ length: Math.ceil(3.5 * GAUSS_STEPS) + 2 }, (_, i) => Math.exp(-0.5 * (i / GAUSS_STEPS) ** 2));
const GAUSS_LAST = GAUSS.length - 1;
function gauss(t: number): number {
  const i = Math.abs(t) * GAUSS_STEPS;
  return i < GAUSS_LAST ? GAUSS[i | 0]! : 0;
}

/** exp(t) for |t| ≤ 4 by table and linear interpolation (relative error < 1e-6), clamped beyond. */
const EXP_RANGE = 4;
const EXP_STEPS = 1024;
const EXP = Float64Array.from({ length: 2 * EXP_RANGE * EXP_STEPS + 2 }, (_, i) => Math.exp(i / EXP_STEPS - EXP_RANGE));
function expTable(t: number): number {
  const at = (clamp(t, -EXP_RANGE, EXP_RANGE) + EXP_RANGE) * EXP_STEPS;
  const i = at | 0;
  return EXP[i]! + (EXP[i + 1]! - EXP[i]!) * (at - i);
}

/**
 * log2 of a positive float32 given its bits: exponent plus a 4096-entry table
 * of the mantissa's top 12 bits (error < 4e-4); 0 and denormals give −126.
 */
const LOG2_MANTISSA = Float64Array.from({ length: 4096 }, (_, i) => Math.log2(1 + (i + 0.5) / 4096));
function log2Table(bits: number): number {
  if (bits <= 0x007fffff) return -126;
  return ((bits >>> 23) & 0xff) - 127 + LOG2_MANTISSA[(bits >>> 11) & 0xfff]!;
}

/** Value-noise grid nodes in [−1, 1] covering the frame seen with this shift, hashed from world cell coordinates. */
function noiseNodes(subject: Subject, octave: number, cellX: number, cellY: number, shiftX: number, shiftY: number) {
  const gx0 = Math.floor(shiftX / cellX);
  const gy0 = Math.floor(shiftY / cellY);
  const nx = Math.ceil((W + shiftX) / cellX) - gx0 + 2;
  const ny = Math.ceil((H + shiftY) / cellY) - gy0 + 2;
  const nodes = new Float32Array(nx * ny);
  for (let j = 0; j < ny; j++) {
    for (let i = 0; i < nx; i++) {
      nodes[j * nx + i] = (hashWords([...subject.seedWords, STREAM.grid, subject.subject, octave, gx0 + i, gy0 + j]) / 4294967296) * 2 - 1;
    }
  }
  const column = new Int32Array(W);
  const columnWeight = new Float32Array(W);
  for (let x = 0; x < W; x++) {
    const g = (x + shiftX) / cellX - gx0;
    column[x] = Math.floor(g);
    columnWeight[x] = smoothstep(g - Math.floor(g));
  }
  const row = new Int32Array(H);
  const rowWeight = new Float32Array(H);
  for (let y = 0; y < H; y++) {
    const g = (y + shiftY) / cellY - gy0;
    row[y] = Math.floor(g) * nx;
    rowWeight[y] = smoothstep(g - Math.floor(g));
  }
  return { nodes, nx, column, columnWeight, row, rowWeight };
}

/**
 * The smooth background: level · exp(contrast · (coarse + 0.45 · fine value
 * noise)), laterally stretched regions of brighter and darker tissue, fixed
 * to the world so that they move with the probe.
 */
function paintBackground(tissue: Float32Array, subject: Subject, shiftX: number, shiftY: number): void {
  const coarse = noiseNodes(subject, 0, 110, 45, shiftX, shiftY);
  const fine = noiseNodes(subject, 1, 40, 16, shiftX, shiftY);
  const wCoarse = subject.contrast;
  const wFine = subject.contrast * 0.45;
  const rowCoarse = new Float64Array(W);
  const rowFine = new Float64Array(W);
  for (let y = 0; y < H; y++) {
    interpolateRow(coarse, y, rowCoarse);
    interpolateRow(fine, y, rowFine);
    const base = y * W;
    for (let x = 0; x < W; x++) tissue[base + x] = subject.level * expTable(wCoarse * rowCoarse[x]! + wFine * rowFine[x]!);
  }
}

function interpolateRow(n: ReturnType<typeof noiseNodes>, y: number, out: Float64Array): void {
  const { nodes, nx, column, columnWeight } = n;
  const r0 = n.row[y]!;
  const ty = n.rowWeight[y]!;
  for (let x = 0; x < W; x++) {
    const i = r0 + column[x]!;
    const tx = columnWeight[x]!;
    const top = nodes[i]! + (nodes[i + 1]! - nodes[i]!) * tx;
    const bottom = nodes[i + nx]! + (nodes[i + nx + 1]! - nodes[i + nx]!) * tx;
    out[x] = top + (bottom - top) * ty;
  }
}

function drawCurve(tissue: Float32Array, c: Curve, shiftX: number, shiftY: number): void {
  const xStart = Math.max(0, Math.ceil(c.x0 - shiftX));
  const xEnd = Math.min(W - 1, Math.floor(c.x1 - shiftX));
  const length = c.x1 - c.x0;
  const taper = Math.min(40, length * 0.25);
  const reach = 3.2 * c.sigma;
  for (let x = xStart; x <= xEnd; x++) {
    const wx = x + shiftX;
    const along = Math.min(wx - c.x0, c.x1 - wx);
    const fade = along < taper ? smoothstep(along / taper) : 1;
    const strength = c.strength * fade * (1 - (c.beading * (1 + Math.sin(c.beadK * wx + c.beadPhase))) / 2);
    const yc = c.y0 + c.slope * (wx - c.x0) + c.wave * Math.sin(c.k * wx + c.phase) - shiftY;
    const y0 = Math.max(0, Math.ceil(yc - reach));
    const y1 = Math.min(H - 1, Math.floor(yc + reach));
    const step = GAUSS_STEPS / c.sigma;
    for (let y = y0; y <= y1; y++) {
      const g = Math.abs(y - yc) * step;
      if (g < GAUSS_LAST) tissue[y * W + x]! += strength * GAUSS[g | 0]!;
    }
  }
}

function drawClump(tissue: Float32Array, c: Clump, shiftX: number, shiftY: number): void {
  const cx = c.x - shiftX;
  const cy = c.y - shiftY;
  const reach = 3 * Math.max(c.rx, c.ry);
  const cos = Math.cos(c.angle);
  const sin = Math.sin(c.angle);
  for (let y = Math.max(0, Math.ceil(cy - reach)); y <= Math.min(H - 1, Math.floor(cy + reach)); y++) {
    for (let x = Math.max(0, Math.ceil(cx - reach)); x <= Math.min(W - 1, Math.floor(cx + reach)); x++) {
      const dx = x - cx;
      const dy = y - cy;
      const u = (dx * cos + dy * sin) / c.rx;
      const v = (-dx * sin + dy * cos) / c.ry;
      const q = u * u + v * v;
      if (q < 9) tissue[y * W + x]! += c.strength * expTable(-q / 2);
    }
  }
}

function drawSpot(tissue: Float32Array, s: Spot, cx: number, cy: number): void {
  const reach = s.r + 2;
  for (let y = Math.max(0, Math.ceil(cy - reach)); y <= Math.min(H - 1, Math.floor(cy + reach)); y++) {
    for (let x = Math.max(0, Math.ceil(cx - reach)); x <= Math.min(W - 1, Math.floor(cx + reach)); x++) {
      const edge = fastHypot(x - cx, y - cy) - s.r;
      const inside = 1 - smoothstep((edge + 1) / 2);
      tissue[y * W + x]! *= 1 - s.darkness * inside;
    }
  }
}

function drawVessel(tissue: Float32Array, v: Vessel, frame: number, shiftX: number, shiftY: number): void {
  const pulse = 1 + v.pulse * Math.sin(frame * 1.3 + v.pulsePhase);
  const rx = v.rx * pulse;
  const ry = v.ry * pulse;
  const cx = v.x - shiftX;
  const cy = v.y - shiftY;
  const mean = Math.sqrt(rx * ry);
  // Posterior acoustic enhancement: fluid attenuates less, so the tissue below looks brighter.
  for (let x = Math.max(0, Math.ceil(cx - rx)); x <= Math.min(W - 1, Math.floor(cx + rx)); x++) {
    const t = (x - cx) / rx;
    const lateral = smoothstep((1 - Math.abs(t)) * 3);
    const bottom = cy + ry * Math.sqrt(Math.max(0, 1 - t * t));
    for (let y = Math.max(0, Math.ceil(bottom)); y < H; y++) tissue[y * W + x]! *= 1 + v.enhancement * lateral * Math.exp(-(y - bottom) / 90);
  }
  const reach = 1.3;
  for (let y = Math.max(0, Math.ceil(cy - ry * reach - 4)); y <= Math.min(H - 1, Math.floor(cy + ry * reach + 4)); y++) {
    for (let x = Math.max(0, Math.ceil(cx - rx * reach - 4)); x <= Math.min(W - 1, Math.floor(cx + rx * reach + 4)); x++) {
      const rho = fastHypot((x - cx) / rx, (y - cy) / ry);
      const edge = (rho - 1) * mean; // pixels outside the lumen's edge
      const lumen = 1 - smoothstep((edge + 2) / 3);
      const i = y * W + x;
      tissue[i] = tissue[i]! * (1 - 0.88 * lumen) + v.wall * gauss((edge - 0.8) / 1.4);
    }
  }
}

/** Paints the nerve's mask (255 inside its outline) and, given the tissue, blends the nerve into it. */
function drawNerve(tissue: Float32Array | undefined, mask: Uint8Array, nerve: Nerve): void {
  const cos = Math.cos(nerve.angle);
  const sin = Math.sin(nerve.angle);
  const reach = Math.max(nerve.a, nerve.b) * 1.2 + 4;
  const xs = Math.max(0, Math.floor(nerve.x - reach));
  const xe = Math.min(W - 1, Math.ceil(nerve.x + reach));
  const ys = Math.max(0, Math.floor(nerve.y - reach));
  const ye = Math.min(H - 1, Math.ceil(nerve.y + reach));
  const bw = xe - xs + 1;
  const bh = ye - ys + 1;
  // The nerve's own echogenicity on its bounding box: bright matrix, dark fascicles.
  const texture = new Float32Array(tissue === undefined ? 0 : bw * bh).fill(nerve.matrix);
  for (const f of tissue === undefined ? [] : nerve.fascicles) {
    const fx = nerve.x + f.x - xs;
    const fy = nerve.y + f.y - ys;
    for (let y = Math.max(0, Math.ceil(fy - f.r - 2)); y <= Math.min(bh - 1, Math.floor(fy + f.r + 2)); y++) {
      for (let x = Math.max(0, Math.ceil(fx - f.r - 2)); x <= Math.min(bw - 1, Math.floor(fx + f.r + 2)); x++) {
        const inside = 1 - smoothstep((fastHypot(x - fx, y - fy) - f.r + 1) / 2);
        texture[y * bw + x]! *= 1 - f.darkness * inside;
      }
    }
  }
  for (let y = ys; y <= ye; y++) {
    for (let x = xs; x <= xe; x++) {
      const dx = x - nerve.x;
      const dy = y - nerve.y;
      const u = dx * cos + dy * sin;
      const v = -dx * sin + dy * cos;
      const rho = fastHypot(u, v);
      const phi = Math.atan2(v, u);
      const radius = rho > 0 ? nerveRadius(nerve, u / rho, v / rho, phi) : nerve.a;
      const edge = rho - radius; // pixels outside the outline
      const i = y * W + x;
      if (edge <= 0) mask[i] = 255;
      if (tissue === undefined) continue;
      const weight = nerve.visibility * (1 - smoothstep((edge + 1.5) / 3));
      const own = texture[(y - ys) * bw + (x - xs)]! + nerve.border * gauss((edge + 2.5) / 1.8);
      tissue[i] = tissue[i]! * (1 - weight) + own * weight;
    }
  }
}

/**
 * Turns echogenicity into echo amplitude with fully developed speckle, as a
 * scanner forms it: each pixel's scatterers (amplitude = echogenicity, random
 * phase) are smeared by the point-spread function (a laterally wide, axially
 * short blur) and the envelope is the magnitude of the sum. Edges come out
 * softened by the same blur and the grain is Rayleigh-distributed. The result
 * is normalised so that uniform echogenicity e gives mean-square amplitude e²,
 * then smoothed by a 5 × 3 box as scanners' post-processing does, which fills
 * the speckle's zeros.
 */
function formEchoes(tissue: Float32Array, subject: Subject, rng: Random): void {
  const re = new Float32Array(PIXELS);
  const im = new Float32Array(PIXELS);
  const words = new Uint32Array(PIXELS);
  rng.fill(words);
  for (let i = 0; i < PIXELS; i++) {
    const bits = words[i]!;
    const e = tissue[i]!;
    re[i] = e * ((bits & 0xffff) / 65536 - 0.5);
    im[i] = e * ((bits >>> 16) / 65536 - 0.5);
  }
  const blurredRe = new Float32Array(PIXELS);
  const blurredIm = new Float32Array(PIXELS);
  const rx = subject.speckleRx;
  blurTriangles(re, blurredRe, rx, 1);
  blurTriangles(im, blurredIm, rx, 1);
  // Mean square of the blurred field for unit echogenicity: 2 · (1/12) · kernel energy.
  const energy = (kernel: Float64Array): number => kernel.reduce((sum, k) => sum + k * k, 0);
  const norm = 1 / Math.sqrt((2 / 12) * energy(triangle(1)) * energy(triangle(rx)));
  for (let i = 0; i < PIXELS; i++) {
    const a = blurredRe[i]!;
    const b = blurredIm[i]!;
    re[i] = Math.sqrt(a * a + b * b) * norm;
  }
  // A 5 × 3 box (across × down), edges extended.
  const rows = new Float32Array(PIXELS);
  boxColumns(re, rows, 1);
  for (let y = 0; y < H; y++) {
    const base = y * W;
    let sum = 3 * rows[base]! + rows[base + 1]! + rows[base + 2]!;
    for (let x = 0; x < W; x++) {
      tissue[base + x] = sum / 5;
      sum += rows[base + Math.min(x + 3, W - 1)]! - rows[base + Math.max(x - 2, 0)]!;
    }
  }
}

/** Two passes of a box of radius r: a triangle of width 4r + 1, normalised. */
function triangle(r: number): Float64Array {
  const n = 2 * r + 1;
  return Float64Array.from({ length: 2 * n - 1 }, (_, i) => (n - Math.abs(i - (n - 1))) / (n * n));
}

/**
 * dst = src blurred by two passes of a box of radius `ry` down the columns and
 * two of radius `rx` along the rows (triangles of width 4r + 1), edges
 * extended. Running sums, one row at a time through padded row buffers.
 */
function blurTriangles(src: Float32Array, dst: Float32Array, rx: number, ry: number): void {
  // Down the columns: a box of radius ry twice, as running sums over whole rows.
  const once = new Float32Array(PIXELS);
  boxColumns(src, once, ry);
  const vertical = new Float32Array(PIXELS);
  boxColumns(once, vertical, ry);
  // Along the rows.
  const pad = 2 * rx;
  const padded = new Float64Array(W + 2 * pad);
  const half = new Float64Array(W + pad);
  const n = 2 * rx + 1;
  const scale = 1 / (n * n);
  for (let y = 0; y < H; y++) {
    const base = y * W;
    for (let x = 0; x < W; x++) padded[x + pad] = vertical[base + x]!;
    const first = vertical[base]!;
    const last = vertical[base + W - 1]!;
    for (let x = 0; x < pad; x++) {
      padded[x] = first;
      padded[W + pad + x] = last;
    }
    // half[j] = Σ padded[j .. j + 2rx]
    let sum = 0;
    for (let k = 0; k < n; k++) sum += padded[k]!;
    for (let j = 0; j < W + pad; j++) {
      half[j] = sum;
      sum += padded[j + n]! - padded[j]!;
    }
    // dst[x] = Σ half[x .. x + 2rx]
    sum = 0;
    for (let k = 0; k < n; k++) sum += half[k]!;
    for (let x = 0; x < W; x++) {
      dst[base + x] = sum * scale;
      sum += half[x + n]! - half[x]!;
    }
  }
}

/** A box of radius r down the columns, edges extended. */
function boxColumns(src: Float32Array, dst: Float32Array, r: number): void {
  const scale = 1 / (2 * r + 1);
  const sums = new Float64Array(W);
  for (let k = -r; k <= r; k++) {
    const row = clamp(k, 0, H - 1) * W;
    for (let x = 0; x < W; x++) sums[x]! += src[row + x]!;
  }
  for (let y = 0; y < H; y++) {
    const add = Math.min(y + r + 1, H - 1) * W;
    const drop = Math.max(y - r, 0) * W;
    const base = y * W;
    for (let x = 0; x < W; x++) {
      dst[base + x] = sums[x]! * scale;
      sums[x]! += src[add + x]! - src[drop + x]!;
    }
  }
}

function checkIndex(value: number, what: string): void {
  if (!Number.isSafeInteger(value) || value < 1) throw new DataError(`synthetic data: ${what} must be a whole number ≥ 1, got ${value}`);
}

/** Whether frame `frame` of `subject` shows the nerve (cheap: no rendering). */
export function frameHasNerve(subject: number, frame: number, seed: number): boolean {
  checkIndex(subject, 'the subject number');
  checkIndex(frame, 'the frame number');
  if (!Number.isSafeInteger(seed)) throw new DataError(`synthetic data: the seed must be a whole number, got ${seed}`);
  return nervePresent(makeSubject(subject, seed), frame, new Random([...seedWords(seed), STREAM.frame, subject, frame]));
}

function nervePresent(subject: Subject, frame: number, rng: Random): boolean {
  // A slow walk (the probe moving over and off the nerve) blurred by noise; uniform over frames, so P = presence.
  const u = (subject.presencePhase + frame * subject.presenceRate + 0.55 * rng.next()) % 1;
  return u < subject.presence;
}

/** The draws a frame makes before rendering: whether the nerve shows, where, and the probe offset. */
interface FramePlan {
  anatomy: Subject;
  rng: Random;
  shiftX: number;
  shiftY: number;
  nerve: Nerve | undefined;
}

function planFrame(subject: number, frame: number, seed: number): FramePlan {
  checkIndex(subject, 'the subject number');
  checkIndex(frame, 'the frame number');
  if (!Number.isSafeInteger(seed)) throw new DataError(`synthetic data: the seed must be a whole number, got ${seed}`);
  const anatomy = makeSubject(subject, seed);
  const rng = new Random([...seedWords(seed), STREAM.frame, subject, frame]);
  const present = nervePresent(anatomy, frame, rng);
  const shiftX = sweepAt(anatomy.sweepX, frame);
  const shiftY = sweepAt(anatomy.sweepY, frame);
  const nerve = present ? makeNerve(anatomy, rng, shiftX, shiftY) : undefined;
  return { anatomy, rng, shiftX, shiftY, nerve };
}

/**
 * The mask of generateFrame(subject, frame, seed) alone, without rendering the
 * image (a small fraction of the time): for statistics over many frames.
 */
export function generateMask(subject: number, frame: number, seed: number): Uint8Array {
  const { nerve } = planFrame(subject, frame, seed);
  const mask = new Uint8Array(PIXELS);
  if (nerve !== undefined) drawNerve(undefined, mask, nerve);
  return mask;
}

/**
 * Frame `frame` (1, 2, …) of subject `subject` (1, 2, …): a 580 × 420 8-bit
 * ultrasound-like image and its nerve mask (0/255; all 0 when no nerve is in
 * view), both row-major. Depends only on the three arguments.
 */
export function generateFrame(subject: number, frame: number, seed: number): SyntheticFrame {
  const { anatomy, rng, shiftX, shiftY, nerve } = planFrame(subject, frame, seed);
  // Echogenicity: smooth regions, then fibres and fascia, decoy spots, vessels, the nerve.
  const tissue = new Float32Array(PIXELS);
  paintBackground(tissue, anatomy, shiftX, shiftY);
  for (const clump of anatomy.clumps) drawClump(tissue, clump, shiftX, shiftY);
  for (const curve of anatomy.curves) drawCurve(tissue, curve, shiftX, shiftY);
  drawCurve(tissue, anatomy.skin, 0, 0);
  for (const spot of anatomy.spots) drawSpot(tissue, spot, spot.x - shiftX, spot.y - shiftY);
  for (const vessel of anatomy.vessels) drawVessel(tissue, vessel, frame, shiftX, shiftY);
  const mask = new Uint8Array(PIXELS);
  if (nerve !== undefined) drawNerve(tissue, mask, nerve);

  formEchoes(tissue, anatomy, new Random([...seedWords(seed), STREAM.speckle, subject, frame]));

  // Display: log compression over the subject's dynamic range, to 8 bits, with
  // the gain, the darker subcutaneous layer and depth attenuation added per row in the log domain.
  const gain = anatomy.gain * rng.range(0.95, 1.05);
  const scale = 255 / Math.log2(10 ** (anatomy.dynamicRange / 20));
  const rowOffset = new Float64Array(H);
  for (let y = 0; y < H; y++) {
    const near = y < 30 ? 0.55 + 0.45 * smoothstep((y - 8) / 22) : 1;
    const factor = (gain * near * Math.exp((-anatomy.attenuation * y) / H) * (1 + 0.35 * (y / H))) / (anatomy.level * 30);
    rowOffset[y] = 255 + scale * Math.log2(factor);
  }
  const image = new Uint8Array(PIXELS);
  const bits = new Int32Array(tissue.buffer);
  for (let y = 0; y < H; y++) {
    const offset = rowOffset[y]!;
    for (let i = y * W; i < (y + 1) * W; i++) {
      const v = offset + scale * log2Table(bits[i]!);
      image[i] = v <= 0 ? 0 : v >= 255 ? 255 : v;
    }
  }
  drawMarker(image);
  return { image, mask };
}

/** The scanner's orientation mark at the top centre, a small "V" as in the real frames. */
function drawMarker(image: Uint8Array): void {
  for (let y = 0; y < 9; y++) {
    for (const x of [296 + (y >> 1), 304 - (y >> 1)]) image[y * W + x] = 200;
  }
}

// ---------------------------------------------------------------------------
// A whole data set in the Kaggle layout
// ---------------------------------------------------------------------------

export interface SyntheticLayoutOptions {
  /** Training subjects, numbered 1 … subjects. */
  subjects: number;
  /** Frames per training subject, numbered 1 … framesPerSubject. */
  framesPerSubject: number;
  /** Test frames, with ids 1 … testFrames. */
  testFrames: number;
  seed: number;
}

/** One file (or image and mask pair) of the layout. */
export interface SyntheticEntry {
  kind: 'train' | 'test';
  /** Path of the image under the raw folder: "train/3_17.tif" or "test/42.tif". */
  image: string;
  /** Path of the mask under the raw folder ("train/3_17_mask.tif"); undefined for test frames, which have none. */
  mask: string | undefined;
  /** The subject and frame that generate it; for a test frame, a hidden subject numbered after the training ones. */
  subject: number;
  frame: number;
  /** The test id (undefined for training frames). */
  id: number | undefined;
}

export interface SyntheticLayout {
  options: SyntheticLayoutOptions;
  trainCount: number;
  testCount: number;
  /** Training frames in (subject, frame) order, then test frames by id; nothing is rendered until asked. */
  entries(): Generator<SyntheticEntry>;
  /** Renders an entry's frame and mask (tens of milliseconds). */
  render(entry: SyntheticEntry): SyntheticFrame;
}

/**
 * The names and generators of a synthetic data set in the Kaggle layout:
 * train/<subject>_<frame>.tif with train/<subject>_<frame>_mask.tif, and
 * test/<id>.tif. Test frames come from subjects of their own (numbered after
 * the training subjects, as the competition's test subjects were unseen) in a
 * shuffled order, as the competition's test ids were.
 */
export function syntheticLayout(options: SyntheticLayoutOptions): SyntheticLayout {
  const { subjects, framesPerSubject, testFrames, seed } = options;
  checkIndex(subjects, 'the number of subjects');
  checkIndex(framesPerSubject, 'the number of frames per subject');
  if (!Number.isSafeInteger(testFrames) || testFrames < 0) throw new DataError(`synthetic data: the number of test frames must be a whole number ≥ 0, got ${testFrames}`);
  if (!Number.isSafeInteger(seed)) throw new DataError(`synthetic data: the seed must be a whole number, got ${seed}`);
  // Test id → hidden (subject, frame): a seeded shuffle of the test subjects' frames.
  const order = new Int32Array(testFrames).map((_, i) => i);
  const rng = new Random([...seedWords(seed), STREAM.layout, subjects, framesPerSubject, testFrames]);
  for (let i = testFrames - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  return {
    options: { ...options },
    trainCount: subjects * framesPerSubject,
    testCount: testFrames,
    *entries(): Generator<SyntheticEntry> {
      for (let subject = 1; subject <= subjects; subject++) {
        for (let frame = 1; frame <= framesPerSubject; frame++) {
          const name = `${subject}_${frame}`;
          yield { kind: 'train', image: `train/${name}.tif`, mask: `train/${name}_mask.tif`, subject, frame, id: undefined };
        }
      }
      for (let id = 1; id <= testFrames; id++) {
        const hidden = order[id - 1]!;
        const subject = subjects + 1 + Math.floor(hidden / framesPerSubject);
        const frame = 1 + (hidden % framesPerSubject);
        yield { kind: 'test', image: `test/${id}.tif`, mask: undefined, subject, frame, id };
      }
    },
    render: (entry) => generateFrame(entry.subject, entry.frame, seed),
  };
}

/** The header of the mask CSVs written beside a synthetic set: the competition's train_masks.csv, and the test truth. */
export const TRAIN_MASKS_HEADER = 'subject,img,pixels';
export const TEST_MASKS_HEADER = 'img,pixels';

/**
 * The entry's row of train_masks.csv ("subject,img,pixels") or, for a test
 * frame, of the test truth ("img,pixels"), with the competition's run-length encoding.
 */
export function maskCsvRow(entry: SyntheticEntry, mask: Uint8Array): string {
  const pixels = encodeRle(mask, W, H);
  return entry.kind === 'train' ? `${entry.subject},${entry.frame},${pixels}` : `${entry.id},${pixels}`;
}
