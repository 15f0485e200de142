/**
 * `train --resume` of a mixed-precision run, through the built CLI: the
 * checkpoint keeps the loss scale's state, and the resumed run retraces the
 * uninterrupted one to the bit, the variant's dropout masks included. Runs
 * where the adapter has f16 subgroup matrices; WGSL_UNET_REQUIRE_MIXED=1
 * makes their absence a failure.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, rmSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { writeEllipseCaches } from '../helpers/caches.js';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { canRunMixed } from '../../src/ops/conv/index.js';

const cli = join(__dirname, '../../dist/cli.js');
const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';
const gpu = await testGpu();
const root = mkdtempSync(join(tmpdir(), 'wgsl-unet-mixed-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.runIf(canRunMixed(gpu) || required)('train --resume in mixed precision', () => {
  it('keeps the loss scale in the checkpoint and retraces the uninterrupted run', () => {
    const data = join(root, 'data');
    writeEllipseCaches(data, 12, 32, 32);
    const train = (...args: string[]) => spawnSync(process.execPath, [cli, 'train', ...args], { encoding: 'utf8', timeout: 300_000 });
    const fresh = (out: string, epochs: number) => train('--data', data, '--precision', 'mixed', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--epochs', String(epochs), '--seed', '2', '--dropout', '0.5', '--skip-predict', '--out', join(root, out));
    const folder = (out: string) => join(root, out, readdirSync(join(root, out))[0]!);
    const log = (dir: string) => readFileSync(join(dir, 'log.jsonl'), 'utf8').trim().split('\n').map((l) => {
      const { seconds: _s, ...rest } = JSON.parse(l) as Record<string, number>;
      return rest;
    });

    const whole = fresh('whole', 3);
    expect(whole.status, whole.stderr).toBe(0);
    const first = fresh('parts', 1);
    expect(first.status, first.stderr).toBe(0);
    const dir = folder('parts');
    const last = (d: string) => decodeCheckpoint(new Uint8Array(readFileSync(join(d, 'last.safetensors'))), 'last').meta;
    const meta = last(dir);
    expect(meta.precision).toBe('mixed');
    expect(meta.lossScale).toMatchObject({ scale: expect.any(Number), good: meta.step, skipped: 0 });
    const resumed = train('--resume', dir, '--epochs', '3', '--skip-predict');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(log(dir)).toEqual(log(folder('whole')));
    // The scale's state went on: its run of clean steps counts the first epoch's too.
    const end = last(folder('whole'));
    expect(end.lossScale!.good).toBe(end.step);
    expect(last(dir).lossScale).toEqual(end.lossScale);
  }, 600_000);
});
