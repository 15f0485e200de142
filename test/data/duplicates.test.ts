import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { findContradictions } from '../../src/data/duplicates.js';
import { contradictionPairs, CONTRADICTION_RATE, frameHasNerve, generateContradiction, generateFrame, syntheticLayout } from '../../src/data/synthetic.js';
import { data } from '../../src/cli/data.js';
import { duplicates } from '../../src/cli/duplicates.js';

const W = 580;
const H = 420;
const PX = W * H;

function area(mask: Uint8Array): number {
  let n = 0;
  for (const v of mask) if (v !== 0) n++;
  return n;
}

describe('contradictory near-duplicates in the synthetic data', () => {
  it('plants about the real rate by default, each pair a nerve frame and an unmasked copy of it', () => {
    // The competition's size: 47 subjects × 120 frames; pairs chosen without rendering.
    const pairs = contradictionPairs(47, 120, 1, CONTRADICTION_RATE);
    expect(pairs.length).toBeGreaterThanOrEqual(25);
    expect(pairs.length).toBeLessThanOrEqual(70);
    const seen = new Set<string>();
    for (const p of pairs) {
      expect(p.original).not.toBe(p.copy);
      expect(frameHasNerve(p.subject, p.original, 1)).toBe(true);
      for (const f of [p.original, p.copy]) {
        const key = `${p.subject}_${f}`;
        expect(seen.has(key)).toBe(false);
        seen.add(key);
      }
    }
    expect(contradictionPairs(47, 120, 1, CONTRADICTION_RATE)).toEqual(pairs);
    expect(contradictionPairs(47, 120, 2, CONTRADICTION_RATE)).not.toEqual(pairs);
    expect(contradictionPairs(47, 120, 1, 0)).toEqual([]);
    expect(() => contradictionPairs(4, 10, 1, -0.1)).toThrow(DataError);
    expect(() => contradictionPairs(4, 10, 1, Number.NaN)).toThrow(/rate of contradictory near-duplicates must be in \[0, 0.5\]/);
  });

  it('renders a copy as its original taken again: the same picture under small noise, with an empty mask', () => {
    const [p] = contradictionPairs(3, 40, 8, 0.1);
    const original = generateFrame(p!.subject, p!.original, 8);
    const copy = generateContradiction(p!.subject, p!.original, p!.copy, 8);
    expect(area(original.mask)).toBeGreaterThan(0);
    expect(area(copy.mask)).toBe(0);
    let diff = 0;
    let same = 0;
    for (let i = 0; i < PX; i++) {
      diff += Math.abs(original.image[i]! - copy.image[i]!);
      if (original.image[i] === copy.image[i]) same++;
    }
    expect(diff / PX).toBeGreaterThan(0.5); // not byte-identical
    expect(diff / PX).toBeLessThan(3); // the noise's σ is 2 gray levels
    expect(same).toBeLessThan(PX * 0.5);
    const empty = Array.from({ length: 40 }, (_, i) => i + 1).find((f) => !frameHasNerve(2, f, 8))!;
    expect(() => generateContradiction(2, empty, 1, 8)).toThrow(/shows no nerve, so no frame can contradict it/);
  });

  it('marks the copies in the layout, and renders them as copies', () => {
    const layout = syntheticLayout({ subjects: 3, framesPerSubject: 40, testFrames: 2, seed: 8, contradictions: 0.1 });
    expect(layout.contradictions).toEqual(contradictionPairs(3, 40, 8, 0.1));
    const marked = [...layout.entries()].filter((e) => e.original !== undefined);
    expect(marked.map((e) => [e.subject, e.original, e.frame])).toEqual(layout.contradictions.map((p) => [p.subject, p.original, p.copy]));
    const entry = marked[0]!;
    expect(area(layout.render(entry).mask)).toBe(0);
    expect(syntheticLayout({ subjects: 3, framesPerSubject: 40, testFrames: 2, seed: 8, contradictions: 0 }).contradictions).toEqual([]);
  });
});

/** n frames of random blocks (so that unrelated frames do not correlate), with index and masks. */
function blocks(specs: { subject: number; frame: number; pattern: number; masked: boolean; noise?: number }[]) {
  const images = new Uint8Array(specs.length * PX);
  const masks = new Uint8Array(specs.length * PX);
  const index = new Int32Array(specs.length * 2);
  let state = 12345;
  const random = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  specs.forEach((s, row) => {
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        // A pattern of 20-pixel blocks chosen by `pattern`, plus per-pixel noise.
        const h = Math.imul((Math.floor(x / 20) * 31 + Math.floor(y / 20) * 977) ^ (s.pattern * 0x9e3779b1), 0x85ebca6b) >>> 24;
        images[row * PX + y * W + x] = Math.min(255, Math.max(0, h + Math.round(((s.noise ?? 2) * (random() - 0.5)))));
      }
    }
    if (s.masked) masks.fill(255, row * PX + 100 * W, row * PX + 140 * W);
    index[2 * row] = s.subject;
    index[2 * row + 1] = s.frame;
  });
  return { images, masks, index, count: specs.length };
}

describe('findContradictions', () => {
  it('reports a near-copy pair with one mask, within a subject only', () => {
    const f = blocks([
      { subject: 1, frame: 1, pattern: 1, masked: true },
      { subject: 1, frame: 2, pattern: 1, masked: false }, // contradicts frame 1
      { subject: 1, frame: 3, pattern: 2, masked: false },
      { subject: 1, frame: 4, pattern: 2, masked: false }, // a near-copy of 3, but not contradictory
      { subject: 2, frame: 1, pattern: 1, masked: false }, // frame 1's picture, in another subject
      { subject: 2, frame: 2, pattern: 3, masked: true },
    ]);
    const report = findContradictions(f.images, f.masks, f.index, f.count, W, H);
    expect(report.frames).toBe(6);
    expect(report.nearDuplicates).toBe(2);
    expect(report.contradictions.map((p) => [p.subject, p.frames, p.rows, p.unmaskedRow])).toEqual([[1, [1, 2], [0, 1], 1]]);
    expect(report.contradictions[0]!.similarity).toBeGreaterThan(0.99);
    // Heavy noise lowers the correlation under the threshold.
    const noisy = blocks([
      { subject: 1, frame: 1, pattern: 1, masked: true, noise: 400 },
      { subject: 1, frame: 2, pattern: 1, masked: false, noise: 400 },
    ]);
    expect(findContradictions(noisy.images, noisy.masks, noisy.index, 2, W, H).contradictions).toEqual([]);
  });

  it('rejects bad options and arrays too short for the count', () => {
    const f = blocks([{ subject: 1, frame: 1, pattern: 1, masked: false }]);
    expect(() => findContradictions(f.images, f.masks, f.index, 1, W, H, { threshold: 0 })).toThrow(/threshold must be a correlation in \(0, 1\]/);
    expect(() => findContradictions(f.images, f.masks, f.index, 1, W, H, { cell: 0 })).toThrow(/cell must be a whole number of pixels/);
    expect(() => findContradictions(f.images, f.masks, f.index, 2, W, H)).toThrow(DataError);
  });
});

describe('wgsl-unet duplicates', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'wgsl-unet-dup-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds every pair planted in a synthetic set and nothing else, and writes the report', async () => {
    const log = vi.spyOn(console, 'log').mockImplementation(() => {});
    try {
      const raw = join(dir, 'raw');
      const out = join(dir, 'data');
      await data(['--synthetic', '--raw', raw, '--out', out, '--subjects', '3', '--frames', '30', '--test', '1', '--seed', '4', '--contradictions', '0.06']);
      const planted = readFileSync(join(raw, 'contradictions.csv'), 'utf8').trim().split('\n');
      expect(planted.length - 1).toBeGreaterThanOrEqual(2);
      await duplicates(['--data', out]);
      const report = JSON.parse(readFileSync(join(out, 'contradictions.json'), 'utf8'));
      expect(report.score).toEqual({ known: planted.length - 1, found: planted.length - 1, falseAlarms: 0 });
      expect(report.contradictions.length).toBe(planted.length - 1);
      expect(log.mock.calls.flat().join('\n')).toMatch(new RegExp(`${planted.length - 1} of ${planted.length - 1} known pairs found, 0 other pairs reported`));
      await expect(duplicates(['--data', join(dir, 'none')])).rejects.toThrow(/imgs_train\.npy: missing; build the caches with npm run data/);
    } finally {
      log.mockRestore();
    }
  });
});
