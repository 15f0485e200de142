/**
 * Training killed with SIGKILL (no chance to clean up) at points that vary
 * with a seed, one of them while a checkpoint is being written: every file
 * of the run folder is then a whole old or new version, and --resume
 * reproduces the uninterrupted run to the last bit. Through the built CLI.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeNpy } from '../../src/data/npy.js';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { rng } from '../helpers/random.js';

const cli = join(__dirname, '../../dist/cli.js');
const W = 580;
const H = 420;
const EPOCHS = 30;
let root = '';
let dataDir = '';
// A constant learning rate: these runs are cut short of --epochs 500 and
// resumed to fewer, which would move a schedule that spans the epochs.
const args = () => ['train', '--data', dataDir, '--base-width', '2', '--input-size', '16', '--batch-size', '4', '--seed', '6', '--skip-predict', '--schedule', 'constant'];

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'wgsl-unet-faults-'));
  dataDir = join(root, 'data');
  mkdirSync(dataDir);
  const r = rng(9);
  const n = 20;
  const imgs = new Uint8Array(n * W * H);
  const masks = new Uint8Array(n * W * H);
  for (let i = 0; i < n; i++) {
    const cy = 100 + r() * 220;
    const cx = 120 + r() * 340;
    for (let y = 0; y < H; y++)
      for (let x = 0; x < W; x++) {
        const inside = i % 2 === 0 && ((y - cy) / 50) ** 2 + ((x - cx) / 70) ** 2 < 1;
        imgs[i * W * H + y * W + x] = Math.min(255, Math.floor(60 + 40 * r() + (inside ? 90 : 0)));
        masks[i * W * H + y * W + x] = inside ? 255 : 0;
      }
  }
  writeFileSync(join(dataDir, 'imgs_train.npy'), encodeNpy(imgs, [n, H, W]));
  writeFileSync(join(dataDir, 'imgs_mask_train.npy'), encodeNpy(masks, [n, H, W]));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

const losses = (dir: string) =>
  readFileSync(join(dir, 'log.jsonl'), 'utf8').split('\n').filter(Boolean).map((l) => {
    const { seconds: _s, ...rest } = JSON.parse(l) as Record<string, number>;
    return rest;
  });

/**
 * Starts training and kills it with SIGKILL once `when` says so, given the
 * run folder and the milliseconds since its first checkpoint appeared.
 */
async function killed(out: string, when: (dir: string, sinceFirstMs: number) => boolean): Promise<string | null> {
  const child = spawn(process.execPath, [cli, ...args(), '--epochs', '500', '--out', out]);
  child.stdout.resume();
  child.stderr.resume();
  let first = 0;
  await new Promise<void>((ok) => {
    const poll = setInterval(() => {
      const dir = existsSync(out) ? readdirSync(out).map((d) => join(out, d))[0] : undefined;
      if (!dir || !existsSync(join(dir, 'last.safetensors'))) return;
      first ||= Date.now();
      if (when(dir, Date.now() - first)) {
        clearInterval(poll);
        child.kill('SIGKILL');
        ok();
      }
    }, 1);
  });
  await new Promise((ok) => child.on('exit', ok));
  return readdirSync(out).map((d) => join(out, d))[0] ?? null;
}

describe('training killed with SIGKILL', () => {
  let whole: Record<string, number>[] = [];
  beforeAll(() => {
    const r = spawnSync(process.execPath, [cli, ...args(), '--epochs', String(EPOCHS), '--out', join(root, 'whole')], { encoding: 'utf8', timeout: 240_000 });
    expect(r.status, r.stderr).toBe(0);
    whole = losses(readdirSync(join(root, 'whole')).map((d) => join(root, 'whole', d))[0]!);
    expect(whole).toHaveLength(EPOCHS);
  });

  const resumed: boolean[] = [];
  const r = rng(77);
  const kills: [string, (dir: string, ms: number) => boolean][] = [
    // While a later checkpoint is being written: its temporary file exists.
    ['while a checkpoint is written', (dir) => readdirSync(dir).some((f) => /\.safetensors\.tmp-/.test(f))],
    ...[0, 1, 2].map((i): [string, (dir: string, ms: number) => boolean] => {
      const after = Math.floor(r() * 1500);
      return [`at a seeded moment (${i}: ${after} ms after the first checkpoint)`, (_dir, ms) => ms > after];
    }),
  ];
  for (const [when, at] of kills) {
    it(`${when}: every file whole, and --resume gives the uninterrupted run`, async () => {
      const out = join(root, `k-${kills.findIndex(([w]) => w === when)}`);
      const dir = await killed(out, at);
      if (!dir || !existsSync(join(dir, 'last.safetensors'))) {
        // Killed before the first epoch's checkpoint: nothing to resume, and nothing but whole files.
        console.log(`${when}: killed before the first checkpoint`);
        for (const f of dir ? readdirSync(dir) : []) expect(f.endsWith('.safetensors') ? () => decodeCheckpoint(new Uint8Array(readFileSync(join(dir!, f))), f) : () => 0).not.toThrow();
        resumed.push(false);
        return;
      }
      // Whole versions only: every checkpoint decodes, every log line parses.
      for (const f of readdirSync(dir)) {
        if (f.endsWith('.safetensors')) expect(() => decodeCheckpoint(new Uint8Array(readFileSync(join(dir, f))), f), f).not.toThrow();
      }
      const done = decodeCheckpoint(new Uint8Array(readFileSync(join(dir, 'last.safetensors'))), 'last').meta.epoch;
      console.log(`${when}: killed after epoch ${done} was saved; files ${readdirSync(dir).sort().join(', ')}`);
      expect(losses(dir).length).toBeGreaterThanOrEqual(done); // the log is written before last.safetensors
      const res = spawnSync(process.execPath, [cli, 'train', '--resume', dir, '--epochs', String(EPOCHS), '--skip-predict'], { encoding: 'utf8', timeout: 240_000 });
      expect(res.status, res.stderr).toBe(0);
      expect(losses(dir)).toEqual(whole);
      expect(readdirSync(dir).filter((f) => f.includes('.tmp-'))).toEqual([]);
      resumed.push(true);
    });
  }
  it('resumed after every kill (each came after the first checkpoint)', () => {
    expect(resumed).toEqual(kills.map(() => true));
  });
});

// Root can mount a small tmpfs in a mount namespace of its own; elsewhere this test has no disk to fill.
const canMount = process.getuid?.() === 0 && spawnSync('unshare', ['--mount', 'true']).status === 0;

describe.runIf(canMount)('a full disk', () => {
  it('stops training with one clear line, status 1, and the last good checkpoint kept', () => {
    // Room for one epoch's files but not for a second last.safetensors beside the first.
    const whole = readdirSync(join(root, 'whole')).map((d) => join(root, 'whole', d))[0]!;
    const size = (f: string) => statSync(join(whole, f)).size;
    const last = size('last.safetensors');
    const room = Math.ceil((last * 1.5 + size('best.safetensors') + 64 * 1024) / 4096) * 4096;
    const disk = join(root, 'disk');
    const copy = join(root, 'disk-copy');
    mkdirSync(disk);
    mkdirSync(copy);
    const node = [process.execPath, cli, ...args(), '--epochs', '30', '--out', disk].map((a) => `'${a}'`).join(' ');
    const script = `mount -t tmpfs -o size=${room} tmpfs '${disk}' && { ${node}; code=$?; cp -r '${disk}'/. '${copy}'; exit $code; }`;
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', script], { encoding: 'utf8', timeout: 240_000 });
    // stderr also carries the progress lines; the error is one line of its own, with no stack trace.
    const lines = r.stderr.split('\n').filter((l) => l.startsWith('error:') || /^\s+at /.test(l));
    expect(r.status, r.stderr).toBe(1);
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(/^error: cannot write .*\.safetensors \(the disk is full\): .*the previous version is kept$/);
    const run = readdirSync(copy).map((d) => join(copy, d))[0]!;
    const kept = decodeCheckpoint(new Uint8Array(readFileSync(join(run, 'last.safetensors'))), 'last');
    expect(kept.meta.epoch).toBeGreaterThanOrEqual(1);
    expect(readdirSync(run).filter((f) => f.includes('.tmp-'))).toEqual([]);
    console.log(`full disk (${room} bytes): stopped with "${lines[0]}"; last.safetensors kept at epoch ${kept.meta.epoch}`);
  });
});
