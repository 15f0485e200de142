/**
 * The data `train` uses when it finds no caches: the competition's frames if
 * raw/ holds them, else the embedded synthetic data set, generated once into
 * raw-synthetic/ and cached into the data folder.
 */
import { existsSync } from 'node:fs';
import { data } from './data.js';

/** A synthetic set sized for the preset: small on software adapters, the competition's size otherwise. */
export const DEFAULT_SYNTHETIC = {
  cpu: { subjects: 8, frames: 40, test: 60 },
  full: { subjects: 47, frames: 120, test: 5508 },
} as const;

export async function ensureDefaultData(dataDir: string, preset: 'cpu' | 'full'): Promise<void> {
  if (existsSync('raw/train')) {
    console.log(`no caches in ${dataDir}: building them from raw/ (the competition's layout)`);
    await data(['--raw', 'raw', '--out', dataDir]);
    return;
  }
  const s = DEFAULT_SYNTHETIC[preset];
  console.log(
    `no caches in ${dataDir} and no raw/ folder: using the embedded synthetic data set ` +
      `(${s.subjects} subjects × ${s.frames} frames, ${s.test} test frames, written to raw-synthetic/)`,
  );
  await data(['--synthetic', '--raw', 'raw-synthetic', '--out', dataDir, '--subjects', String(s.subjects), '--frames', String(s.frames), '--test', String(s.test)]);
}
