/**
 * submit through the built CLI, whose post-processing runs on worker threads:
 * the same CSV as the single-threaded reference (binarize, formatSubmission).
 */
import { spawnSync } from 'node:child_process';
import { availableParallelism, tmpdir } from 'node:os';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/data/npy.js';
import { binarize, fullSizeProbabilities } from '../../src/data/postprocess.js';
import { formatSubmission } from '../../src/data/submission.js';

const cli = join(__dirname, '../../dist/cli.js');
const root = mkdtempSync(join(tmpdir(), 'wgsl-unet-submit-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('submit on worker threads', () => {
  it('writes the CSV the reference post-processing writes', () => {
    const count = 150;
    const size = 32;
    const probs = new Float32Array(count * size * size);
    for (let n = 0; n < count; n++) {
      // Blobs of growing size; every fifth map stays under the threshold, and small blobs under the minimum area.
      const r = 0.6 + (n % 11);
      const peak = n % 5 === 0 ? 0.45 : 1;
      const cx = 4 + (n % 23);
      const cy = 3 + ((n * 7) % 26);
      for (let y = 0; y < size; y++) for (let x = 0; x < size; x++) probs[(n * size + y) * size + x] = peak * Math.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (r * r));
    }
    const ids = Int32Array.from({ length: count }, (_, n) => count - n); // not in id order
    writeFileSync(join(root, 'imgs_mask_test.npy'), encodeNpy(probs, [count, size, size]));
    writeFileSync(join(root, 'imgs_id_test.npy'), encodeNpy(ids, [count]));
    const r = spawnSync(process.execPath, [cli, 'submit', '--masks', 'imgs_mask_test.npy', '--data', '.', '--out', 'submission.csv', '--threshold', '0.5', '--min-area', '1000'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    expect(r.status, r.stderr).toBe(0);
    if (availableParallelism() >= 2) expect(r.stderr).toMatch(/masks\/s on \d+ worker threads/);
    const reference = formatSubmission(
      Array.from({ length: count }, (_, n) => ({ id: ids[n]!, mask: binarize(fullSizeProbabilities(probs.subarray(n * size * size, (n + 1) * size * size), size), 0.5, 1000) })),
      1000,
    );
    const written = readFileSync(join(root, 'submission.csv'), 'utf8');
    expect(written).toBe(reference);
    expect(written.split('\n').filter((l) => /^\d+,$/.test(l)).length).toBeGreaterThanOrEqual(count / 5);
  });
});
