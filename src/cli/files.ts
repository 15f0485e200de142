/** File helpers for the CLI: atomic writes and readable errors. */
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * Writes via a temporary file and a rename, so a crash never leaves a
 * half-written file; the file is flushed to disk before the rename and the
 * folder after it, so that a power loss keeps the old file or the new one.
 */
export function writeAtomic(path: string, data: Uint8Array | string): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeDurably(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    const full = (e as NodeJS.ErrnoException).code === 'ENOSPC' ? ' (the disk is full)' : '';
    throw new FileError(`cannot write ${path}${full}: ${(e as Error).message}; ${existsSync(path) ? 'the previous version is kept' : 'nothing was written'}`);
  }
  syncFolder(dirname(path));
}

/** Writes a file and flushes it to disk. */
export function writeDurably(path: string, data: Uint8Array | string): void {
  const fd = openSync(path, 'w');
  try {
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    for (let at = 0; at < bytes.length; ) at += writeSync(fd, bytes, at, bytes.length - at);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Flushes a folder's entries (renames into it) to disk, where the platform allows opening a folder. */
export function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = openSync(dir, 'r');
  } catch {
    return; // Windows cannot open a folder; its renames are durable as they are
  }
  try {
    fsyncSync(fd);
  } catch {
    // some file systems refuse fsync on a folder: nothing more can be done there
  } finally {
    closeSync(fd);
  }
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
