import { describe, expect, it } from 'vitest';
import { choosePostprocess } from '../../src/data/postprocess.js';
import { fitGate, gateFeatures, gateScores, GATE_FEATURES } from '../../src/data/gate.js';

const FULL = 580 * 420;
const size = 8;

/** A map with a square of side `side` at value `p` in its top-left corner. */
function square(side: number, p: number): Float32Array {
  const m = new Float32Array(size * size);
  for (let y = 0; y < side; y++) for (let x = 0; x < side; x++) m[y * size + x] = p;
  return m;
}

describe('the presence gate', () => {
  it('computes the features of each map', () => {
    const probs = new Float32Array(2 * size * size);
    probs.set(square(4, 0.6), 0);
    probs.set(square(2, 0.95), size * size);
    const f = gateFeatures(probs, 2, size);
    expect(f.length).toBe(2 * GATE_FEATURES.length);
    expect(Array.from(f.subarray(0, 5))).toEqual([Math.fround(0.6), (16 * Math.fround(0.6)) / 64, 16 / 64, 16 / 64, 0]);
    expect(f[5]).toBeCloseTo(0.95, 6);
    expect(f[9]).toBe(4 / 64);
  });

  it('learns which maps show a nerve, and lifts the metric where the threshold and minimum area cannot', () => {
    // Nerves: large squares at 0.6. False alarms: as large, at 0.95. Empty frames: nothing.
    const kinds = Array.from({ length: 30 }, (_, n) => n % 3); // 0: nerve, 1: false alarm, 2: empty
    const count = kinds.length;
    const probs = new Float32Array(count * size * size);
    const truths = new Uint8Array(count * FULL);
    kinds.forEach((k, n) => {
      if (k === 0) probs.set(square(5, 0.6), n * size * size);
      if (k === 1) probs.set(square(5, 0.95), n * size * size);
      // The true nerve: the top-left 5/8 of the frame in both directions.
      if (k === 0) for (let y = 0; y < (420 * 5) / 8; y++) truths.fill(1, n * FULL + y * 580, n * FULL + y * 580 + (580 * 5) / 8);
    });
    const features = gateFeatures(probs, count, size);
    const labels = kinds.map((k) => (k === 0 ? 1 : 0));
    const gate = fitGate(features, labels);
    const scores = gateScores(gate, features);
    kinds.forEach((k, n) => (k === 0 ? expect(scores[n]).toBeGreaterThan(0.9) : expect(scores[n]).toBeLessThan(0.1)));
    const choice = choosePostprocess(probs, size, truths, count, undefined, undefined, scores);
    expect(choice.gate!.threshold).toBeGreaterThan(0);
    expect(choice.gate!.score).toBeGreaterThan(choice.score + 0.2);
    expect(choice.gate!.score).toBeGreaterThan(0.95);
    // Without gate scores there is no gate in the answer; with useless ones it gates nothing.
    expect(choosePostprocess(probs, size, truths, count).gate).toBeUndefined();
    const flat = choosePostprocess(probs, size, truths, count, undefined, undefined, new Float32Array(count).fill(0.5));
    expect(flat.gate!.score).toBe(Math.max(flat.score, flat.emptyScore));
  });
});
