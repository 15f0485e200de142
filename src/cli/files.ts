/** File helpers for the CLI: atomic writes and readable errors. */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes via a temporary file and a rename, so a crash never leaves a half-written file. */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

/** A file the CLI needs is missing or cannot be read; the message names it, and main prints just that line. */
export class FileError extends Error {
  override name = 'FileError';
}

export function readBytes(path: string, what: string): Uint8Array {
  if (!existsSync(path)) throw new FileError(`${what} not found: ${path}`);
  try {
    const b = readFileSync(path);
    return new Uint8Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  } catch (e) {
    throw new FileError(`cannot read ${what} ${path}: ${(e as Error).message}`);
  }
}
