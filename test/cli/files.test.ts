/** The CLI's file helpers: atomic, flushed writes and readable errors. */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FileError, readBytes, syncFolder, writeAtomic, writeDurably } from '../../src/cli/files.js';

const dir = mkdtempSync(join(tmpdir(), 'wgsl-unet-files-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('CLI file helpers', () => {
  it('writeAtomic replaces a file whole, text or bytes, in a new folder too, leaving no temporary file', () => {
    const path = join(dir, 'sub', 'a.json');
    writeAtomic(path, '{"v":1}\n');
    writeAtomic(path, '{"v":2}\n');
    expect(readFileSync(path, 'utf8')).toBe('{"v":2}\n');
    const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => i % 251);
    writeAtomic(join(dir, 'sub', 'b.bin'), bytes);
    expect(new Uint8Array(readFileSync(join(dir, 'sub', 'b.bin')))).toEqual(bytes);
    expect(readdirSync(join(dir, 'sub')).sort()).toEqual(['a.json', 'b.bin']);
  });

  it('writeDurably writes every byte; syncFolder takes any folder', () => {
    const path = join(dir, 'c.bin');
    writeFileSync(path, 'old, longer contents');
    writeDurably(path, 'new');
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(() => syncFolder(dir)).not.toThrow();
    expect(() => syncFolder(join(dir, 'no-such-folder'))).not.toThrow();
  });

  it('readBytes names a missing file in a FileError', () => {
    expect(() => readBytes(join(dir, 'nope.npy'), 'data cache')).toThrow(FileError);
    expect(() => readBytes(join(dir, 'nope.npy'), 'data cache')).toThrow(/^data cache not found: .*nope\.npy$/);
  });
});
