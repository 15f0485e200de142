/**
 * `train --resume` of a tuned mixed-precision run, through the built CLI:
 * the run folder's tuning.json is applied again where it was measured on
 * this adapter for this shape, reported and left alone where it was not,
 * and a broken one stops the run with what to do; `train --tuning FILE`
 * applies another run's and keeps it in the new run's folder; Ctrl-C while
 * tuning stops before anything is written. (Tuning itself, and the table a record
 * gives the planner, are in tune.test.ts.) Runs where the adapter has f16
 * subgroup matrices and timestamp queries (--tune's); WGSL_UNET_REQUIRE_MIXED=1
 * makes their absence a failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { testGpu } from '../helpers/gpu.js';
import { writeEllipseCaches } from '../helpers/caches.js';
import { formatAdapter } from '../../src/gpu/gpu.js';
import { TUNING_FORMAT, canRunMixed } from '../../src/ops/conv/index.js';

const cli = join(__dirname, '../../dist/cli.js');
const required = process.env.WGSL_UNET_REQUIRE_MIXED === '1';
const gpu = await testGpu();
const root = mkdtempSync(join(tmpdir(), 'wgsl-unet-tune-resume-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe.runIf((canRunMixed(gpu) && gpu.hasTimestamps) || required)('train --resume of a tuned run', () => {
  it('applies tuning.json measured on this adapter for this shape, and says why not where it was measured elsewhere, for another shape, or is broken', async () => {
    const data = join(root, 'data');
    writeEllipseCaches(data, 12, 48, 64);
    const train = (...args: string[]) => spawnSync(process.execPath, [cli, 'train', ...args], { encoding: 'utf8', timeout: 300_000 });
    const first = train('--data', data, '--precision', 'mixed', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--epochs', '1', '--skip-predict', '--out', join(root, 'runs'));
    expect(first.status, first.stderr).toBe(0);
    const dir = join(root, 'runs', readdirSync(join(root, 'runs'))[0]!);

    const shape = { baseWidth: 2, inputSize: 16, batch: 4 };
    const record = (adapter: string, workload: Record<string, number> = shape) => JSON.stringify({
      format: TUNING_FORMAT, adapter, workload, measuredAt: '2026-12-07T10:00:00.000Z',
      report: { configurations: ['planner', '64x64x32'], unfit: [], failed: [], plannerMs: 2, tunedMs: 1, seconds: 1, gemms: [
        { key: 'a GEMM this run has not', label: 'conv', ms: { planner: 2, '64x64x32': 1 }, best: '64x64x32' },
        { key: 'another', label: 'conv', ms: { planner: 1, '64x64x32': 2 }, best: 'planner' },
      ] },
    });
    const tuning = join(dir, 'tuning.json');
    writeFileSync(tuning, record(formatAdapter(gpu.adapterInfo)));
    const resumed = train('--resume', dir, '--epochs', '2', '--skip-predict');
    expect(resumed.status, resumed.stderr).toBe(0);
    expect(resumed.stdout).toContain(`tuning: 1 of 2 GEMMs in their measured configurations, from ${tuning} (measured 2026-12-07T10:00:00.000Z)`);

    writeFileSync(tuning, record('another GPU'));
    const elsewhere = train('--resume', dir, '--epochs', '3', '--skip-predict');
    expect(elsewhere.status, elsewhere.stderr).toBe(0);
    expect(elsewhere.stdout).toContain(`tuning: ${tuning} not applied: measured on another GPU, not on this adapter, ${formatAdapter(gpu.adapterInfo)}; the planner's configurations run (--tune measures for this one)`);

    writeFileSync(tuning, record(formatAdapter(gpu.adapterInfo), { ...shape, batch: 8 }));
    const otherShape = train('--resume', dir, '--epochs', '3', '--skip-predict');
    expect(otherShape.status, otherShape.stderr).toBe(0);
    expect(otherShape.stdout).toContain(`tuning: ${tuning} not applied: measured for baseWidth 2, batch 8, inputSize 16, not for baseWidth 2, batch 4, inputSize 16;`);

    // Another run's tuning for a new run (--tuning): applied, and kept in the new run's folder for its --resume.
    const given = join(root, 'given.json');
    writeFileSync(given, record(formatAdapter(gpu.adapterInfo)));
    const second = train('--data', data, '--precision', 'mixed', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--epochs', '1', '--skip-predict', '--out', join(root, 'second'), '--tuning', given);
    expect(second.status, second.stderr).toBe(0);
    expect(second.stdout).toContain(`tuning: 1 of 2 GEMMs in their measured configurations, from ${given}`);
    const secondDir = join(root, 'second', readdirSync(join(root, 'second'))[0]!);
    expect(JSON.parse(readFileSync(join(secondDir, 'tuning.json'), 'utf8'))).toEqual(JSON.parse(readFileSync(given, 'utf8')));
    const missing = train('--data', data, '--precision', 'mixed', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--epochs', '1', '--skip-predict', '--out', join(root, 'third'), '--tuning', join(root, 'nowhere.json'));
    expect(missing.status).toBe(1);
    expect(missing.stderr).toMatch(/tuning record not found: .*nowhere\.json/);

    // Ctrl-C while tuning: it stops after the configuration being timed, before the run folder is made.
    const child = spawn(process.execPath, [cli, 'train', '--data', data, '--precision', 'mixed', '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--epochs', '1', '--skip-predict', '--out', join(root, 'stopped'), '--tune']);
    let stdout = '';
    let stderr = '';
    // Interrupted once the data is read, just before tuning begins or in its first configurations.
    let sent = false; // once: a second Ctrl-C quits at once
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && /^data: /m.test(stdout)) sent = child.kill('SIGINT');
    });
    child.stderr.on('data', (d: Buffer) => void (stderr += d.toString()));
    const code = await new Promise<number | null>((ok) => child.on('exit', ok));
    expect(code, stdout + stderr).toBe(130);
    expect(stdout).toMatch(/interrupted while tuning the convolutions \(tuning stopped after \d+ of \d+ configurations\): nothing was saved/);
    expect(existsSync(join(root, 'stopped'))).toBe(false);

    writeFileSync(tuning, '{"format": "wgsl-unet-tuning/1", "adapter": ');
    const broken = train('--resume', dir, '--epochs', '4', '--skip-predict');
    expect(broken.status).toBe(1);
    expect(broken.stderr).toMatch(/tuning\.json is not a tuning record: .*; pass --tune to measure again \(which rewrites it\), or delete it to run on the planner's configurations/);
  }, 600_000);
});
