/** A synthetic subject's anatomy and nerve, in world pixels that frames see through a probe offset. */
import { REAL_MASK_STATS } from './mask-stats.js';
import { Random, STREAM, clamp, fastHypot, hashWords, normalCdf, quantileAt, seedWords } from './random.js';
import { H, W } from './geometry.js';

// A subject's anatomy. Positions are in "world" pixels: a frame sees the world
// shifted by its probe offset, so consecutive frames of a subject look alike.

/** A thin bright wavy line: y = y0 + slope·(x − x0) + wave·sin(k·x + phase), Gaussian across. */
export interface Curve {
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
export interface Clump {
  x: number;
  y: number;
  rx: number;
  ry: number;
  angle: number;
  strength: number;
}

/** A vessel: dark elliptical lumen, bright thin wall, brighter tissue below. */
export interface Vessel {
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
export interface Spot {
  x: number;
  y: number;
  r: number;
  darkness: number;
}

export interface Subject {
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

export const GOLDEN = 0.6180339887498949;
/** Sine amplitudes of the probe sweep: standard deviations of about 24 px across and 9 px down. */
export const SWEEP_X = [28, 20];
export const SWEEP_Y = [10, 8];
/** Jitter of the nerve within a subject beyond the sweep, so that the total matches withinSubjectCentroidSd. */
export const JITTER_X = Math.sqrt(Math.max(0, REAL_MASK_STATS.withinSubjectCentroidSd.x ** 2 - (SWEEP_X[0]! ** 2 + SWEEP_X[1]! ** 2) / 2));
export const JITTER_Y = Math.sqrt(Math.max(0, REAL_MASK_STATS.withinSubjectCentroidSd.y ** 2 - (SWEEP_Y[0]! ** 2 + SWEEP_Y[1]! ** 2) / 2));

export function makeSubject(subject: number, seed: number): Subject {
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

export function sweepAt(terms: [number, number, number][], frame: number): number {
  let v = 0;
  for (const [amplitude, period, phase] of terms) v += amplitude * Math.sin((2 * Math.PI * frame) / period + phase);
  return v;
}

// The nerve of one frame

export interface Nerve {
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
export function nerveRadius(nerve: Nerve, cos: number, sin: number, phi: number): number {
  const ellipse = 1 / Math.sqrt((cos * cos) / (nerve.a * nerve.a) + (sin * sin) / (nerve.b * nerve.b));
  let w = 1;
  for (let k = 0; k < nerve.wobble.length; k++) w += nerve.wobble[k]![0] * Math.cos((k + 2) * phi + nerve.wobble[k]![1]);
  return ellipse * w;
}

export function makeNerve(subject: Subject, rng: Random, shiftX: number, shiftY: number): Nerve {
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
