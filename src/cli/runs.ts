import { existsSync, readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FileError } from './files.js';

/** The most recent run folder under `dir` that has a best.safetensors. */
export function latestRun(dir: string): string {
  const root = resolve(dir);
  const runs = existsSync(root)
    ? readdirSync(root)
        .map((d) => join(root, d))
        .filter((d) => existsSync(join(d, 'best.safetensors')))
        .sort((a, b) => statSync(b, { throwIfNoEntry: false })!.mtimeMs - statSync(a)!.mtimeMs)
    : [];
  if (!runs.length) throw new FileError(`no trained model in ${root}: run npm run train first, or pass --model FILE`);
  return runs[0]!;
}
