// Builds the Node CLI and the browser bundle from the same sources.
// WGSL files are inlined as strings by esbuild's text loader.
import { build } from 'esbuild';

const common = { bundle: true, format: 'esm', sourcemap: true, loader: { '.wgsl': 'text' }, logLevel: 'warning' };

await Promise.all([
  build({
    ...common,
    entryPoints: { cli: 'src/cli/main.ts' },
    outdir: 'dist',
    platform: 'node',
    target: 'node20',
    external: ['webgpu'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  }),
  build({
    ...common,
    entryPoints: { bench: 'bench/main.ts' },
    outdir: 'dist',
    platform: 'node',
    target: 'node20',
    packages: 'external',
  }),
  build({
    ...common,
    entryPoints: { 'wgsl-unet': 'src/browser.ts' },
    outdir: 'dist/browser',
    platform: 'browser',
    target: 'es2022',
  }),
]);
