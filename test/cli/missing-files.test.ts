/**
 * A missing or unreadable input file ends a command with one line that names
 * it (exit status 1), not a stack trace: through the built CLI.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/data/npy.js';

const cli = join(__dirname, '../../dist/cli.js');
const root = mkdtempSync(join(tmpdir(), 'wgsl-unet-missing-'));
const empty = join(root, 'empty');
mkdirSync(empty);
// Valid predicted masks, so that submit gets as far as the test ids.
const masks = join(root, 'imgs_mask_test.npy');
writeFileSync(masks, encodeNpy(new Float32Array(2 * 8 * 8), [2, 8, 8]));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Runs the CLI in `root`; stderr without Dawn's own warnings. */
function run(args: string[]) {
  const r = spawnSync(process.execPath, [cli, ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  const lines = r.stderr.split('\n').filter((l) => l.trim() && !l.startsWith('Warning: '));
  return { code: r.status, lines };
}

describe('a missing input file', () => {
  const cases: [string, string[], RegExp][] = [
    ['predict --model with no such file', ['predict', '--model', join(root, 'nope.safetensors')], /checkpoint not found: .*nope\.safetensors/],
    ['predict without any trained run', ['predict', '--data', empty], /no trained model in .*runs/],
    ['submit --masks with no such file', ['submit', '--masks', join(root, 'nope.npy'), '--data', empty], /not found: .*nope\.npy/],
    ['submit --data an empty folder', ['submit', '--masks', masks, '--data', empty], /test ids not found: .*empty.imgs_id_test\.npy/],
    ['train --resume a folder without last.safetensors', ['train', '--resume', empty], /checkpoint to resume not found: .*empty.last\.safetensors/],
  ];
  for (const [what, args, message] of cases) {
    it(`${what}: one line naming it, exit status 1`, () => {
      const r = run(args);
      expect(r.code).toBe(1);
      expect(r.lines, r.lines.join('\n')).toHaveLength(1);
      expect(r.lines[0]).toMatch(/^error: /);
      expect(r.lines[0]).toMatch(message);
    });
  }
});
