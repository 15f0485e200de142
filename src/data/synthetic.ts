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
 * The training set has the real set's trap (contradictionPairs): near-duplicate
 * frames of one subject, one masked and the other not.
 * Subjects differ in gain, dynamic range, speckle grain size, attenuation,
 * texture density and contrast, fascia and vessel layout, nerve location
 * prior, how often the nerve is present, its size and its visibility.
 * A frame costs far more than its mask alone (generateMask), which callers
 * that need only masks use.
 *
 * Mask areas, positions, aspect ratios and the empty fraction follow the real
 * training masks: REAL_MASK_STATS (synthetic/mask-stats.ts) was derived from the competition's
 * train_masks.csv by deriveMaskStatistics (scripts/derive-mask-stats.ts prints
 * it; a test checks the constants against the file).
 *
 * Determinism: a frame depends only on (subject, frame, seed). The same
 * arguments give the same bytes in any one JavaScript engine (the generator
 * uses Math.exp/log/sin/atan2, which engines may round differently in the last
 * bit; V8 uses the same implementation on every platform).
 */


/** A frame and its mask, 580 × 420 row-major; mask values are 0 and 255. */
export interface SyntheticFrame {
  image: Uint8Array;
  mask: Uint8Array;
}

import { DataError } from './errors.js';
import { H, PIXELS, W } from './synthetic/geometry.js';
import { type Nerve, type Subject, makeNerve, makeSubject, sweepAt } from './synthetic/anatomy.js';
import { Random, STREAM, seedWords, smoothstep } from './synthetic/random.js';
import { drawClump, drawCurve, drawNerve, drawSpot, drawVessel, formEchoes, log2Table, paintBackground } from './synthetic/render.js';
import { encodeRle } from './rle.js';
export { FRAME_WIDTH, FRAME_HEIGHT } from './synthetic/geometry.js';
export { type QuantilePoint, type MaskStatistics, STAT_QUANTILES, deriveMaskStatistics, REAL_MASK_STATS } from './synthetic/mask-stats.js';

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
  return render(planFrame(subject, frame, seed), subject, frame, seed);
}

/**
 * A contradictory near-duplicate, the trap the real training set holds about
 * 45 of: frame `frame` of `subject` is frame `original` taken again with the
 * probe held still (the same scene and, as speckle is fixed to the tissue and
 * the probe, the same speckle, under fresh electronic noise), and its mask is
 * empty, as if the annotator had missed the nerve. `original` must show a nerve.
 */
export function generateContradiction(subject: number, original: number, frame: number, seed: number): SyntheticFrame {
  checkIndex(frame, 'the frame number');
  const plan = planFrame(subject, original, seed);
  if (plan.nerve === undefined) throw new DataError(`synthetic data: frame ${original} of subject ${subject} shows no nerve, so no frame can contradict it`);
  const { image } = render(plan, subject, original, seed);
  const noise = new Random([...seedWords(seed), STREAM.traps, subject, original, frame]);
  for (let i = 0; i < image.length; i++) {
    const v = image[i]! + Math.round(NOISE_LEVEL * noise.normal());
    image[i] = v <= 0 ? 0 : v >= 255 ? 255 : v;
  }
  return { image, mask: new Uint8Array(PIXELS) };
}

/** Standard deviation of a near-duplicate's electronic noise, in gray levels. */
const NOISE_LEVEL = 2;

/** Renders a planned scene. */
function render(plan: FramePlan, subject: number, frame: number, seed: number): SyntheticFrame {
  const { anatomy, rng, shiftX, shiftY, nerve } = plan;
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
  /**
   * Contradictory near-duplicate pairs per training frame (generateContradiction);
   * default CONTRADICTION_RATE, the real set's; 0 for none.
   */
  contradictions?: number;
}

/** The real training set's rate of contradictory near-duplicates: about 45 known pairs among its 5,635 frames. */
export const CONTRADICTION_RATE = 45 / 5635;

/** A planted contradiction: frame `copy` of `subject` is a near-copy of frame `original` with an empty mask. */
export interface ContradictionPair {
  subject: number;
  original: number;
  copy: number;
}

/**
 * Which frames of each training subject are contradictory near-copies, and of
 * which frame: each frame has the chance `rate` of starting a pair; its
 * original is drawn among the subject's frames that show a nerve, and no frame
 * is in two pairs. Depends only on the arguments.
 */
export function contradictionPairs(subjects: number, framesPerSubject: number, seed: number, rate: number): ContradictionPair[] {
  if (!(rate >= 0 && rate <= 0.5)) throw new DataError(`synthetic data: the rate of contradictory near-duplicates must be in [0, 0.5], got ${rate}`);
  const pairs: ContradictionPair[] = [];
  if (rate === 0) return pairs;
  for (let subject = 1; subject <= subjects; subject++) {
    const rng = new Random([...seedWords(seed), STREAM.traps, subject, framesPerSubject]);
    const used = new Set<number>();
    let originals: number[] | undefined;
    for (let copy = 1; copy <= framesPerSubject; copy++) {
      if (!rng.chance(rate) || used.has(copy)) continue;
      originals ??= Array.from({ length: framesPerSubject }, (_, i) => i + 1).filter((f) => frameHasNerve(subject, f, seed));
      const free = originals.filter((f) => f !== copy && !used.has(f));
      if (free.length === 0) continue;
      const original = free[Math.floor(rng.next() * free.length)]!;
      used.add(copy).add(original);
      pairs.push({ subject, original, copy });
    }
  }
  return pairs;
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
  /** For a contradictory near-copy (training only): the frame whose scene it shows. */
  original?: number;
}

export interface SyntheticLayout {
  options: SyntheticLayoutOptions;
  trainCount: number;
  testCount: number;
  /** The contradictory near-duplicates planted in the training frames. */
  contradictions: ContradictionPair[];
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
  const { subjects, framesPerSubject, testFrames, seed, contradictions: rate = CONTRADICTION_RATE } = options;
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
  const contradictions = contradictionPairs(subjects, framesPerSubject, seed, rate);
  const originalOf = new Map(contradictions.map((p) => [`${p.subject}_${p.copy}`, p.original]));
  return {
    options: { ...options },
    trainCount: subjects * framesPerSubject,
    testCount: testFrames,
    contradictions,
    *entries(): Generator<SyntheticEntry> {
      for (let subject = 1; subject <= subjects; subject++) {
        for (let frame = 1; frame <= framesPerSubject; frame++) {
          const name = `${subject}_${frame}`;
          const original = originalOf.get(name);
          yield { kind: 'train', image: `train/${name}.tif`, mask: `train/${name}_mask.tif`, subject, frame, id: undefined, ...(original !== undefined ? { original } : {}) };
        }
      }
      for (let id = 1; id <= testFrames; id++) {
        const hidden = order[id - 1]!;
        const subject = subjects + 1 + Math.floor(hidden / framesPerSubject);
        const frame = 1 + (hidden % framesPerSubject);
        yield { kind: 'test', image: `test/${id}.tif`, mask: undefined, subject, frame, id };
      }
    },
    render: (entry) => (entry.original !== undefined ? generateContradiction(entry.subject, entry.original, entry.frame, seed) : generateFrame(entry.subject, entry.frame, seed)),
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
