import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

// src/data runs in browsers too: no Node modules or globals.
const dataDir = fileURLToPath(new URL('../../src/data/', import.meta.url));
const forbidden: [RegExp, string][] = [
  [/from\s+['"](node:|fs['"]|path['"]|os['"]|crypto['"]|buffer['"])/, 'a Node module import'],
  [/\brequire\s*\(/, 'require()'],
  [/\bBuffer\b/, 'Buffer'],
  [/\bprocess\./, 'process'],
  [/__dirname|__filename/, '__dirname/__filename'],
];

describe('src/data is browser-safe', () => {
  const files = readdirSync(dataDir).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts'));

  it('has the data modules', () => {
    expect(files).toEqual(expect.arrayContaining(['errors.ts', 'tiff.ts', 'npy.ts', 'rle.ts', 'resize.ts', 'metrics.ts', 'submission.ts']));
  });

  for (const file of files) {
    it(`${file} uses no Node APIs`, () => {
      // Comments may mention them (e.g. why Buffer.slice is avoided); code may not.
      const code = readFileSync(dataDir + file, 'utf8')
        .replace(/\/\*[\s\S]*?\*\//g, '')
        .replace(/\/\/.*$/gm, '');
      const found = forbidden.filter(([pattern]) => pattern.test(code)).map(([, what]) => what);
      expect(found).toEqual([]);
    });
  }
});
