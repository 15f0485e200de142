import { readFileSync } from 'node:fs';
import { defineConfig, type Plugin } from 'vitest/config';

/** Loads *.wgsl as strings, as esbuild's text loader does for the builds. */
function wgslAsText(): Plugin {
  return {
    name: 'wgsl-as-text',
    enforce: 'pre',
    load(id) {
      if (!id.endsWith('.wgsl')) return null;
      return `export default ${JSON.stringify(readFileSync(id, 'utf8'))};`;
    },
  };
}

export default defineConfig({
  plugins: [wgslAsText()],
  test: {
    // Each op's tests sit beside it (src/ops/<family>/); the rest under test/.
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The software adapter already uses every core; test files run one at a time.
    fileParallelism: false,
    testTimeout: 300_000,
    hookTimeout: 120_000,
    pool: 'forks',
  },
});
