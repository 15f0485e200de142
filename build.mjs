// Builds the Node CLI, the browser bundle and the browser page (web/) from the same sources,
// and the library (dist/lib: a Node and a browser ES module, with type declarations).
// WGSL files are inlined as strings by esbuild's text loader.
import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { promisify } from 'node:util';
import { build } from 'esbuild';

// The library's declarations come from tsc (esbuild writes none), run beside the bundles.
const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const declarations = promisify(execFile)(process.execPath, [tsc, '-p', 'tsconfig.lib.json']).catch((e) => {
  throw new Error(`tsc -p tsconfig.lib.json failed:\n${e.stdout}${e.stderr}`);
});

const common = { bundle: true, format: 'esm', sourcemap: true, loader: { '.wgsl': 'text' }, logLevel: 'warning' };

// The page's and the library's chunks are named by their hashes: old ones go before a build.
rmSync('dist/web', { recursive: true, force: true });
rmSync('dist/lib/chunks', { recursive: true, force: true });

await Promise.all([
  build({
    ...common,
    entryPoints: { cli: 'src/cli/main.ts' },
    outdir: 'dist',
    platform: 'node',
    target: 'node20',
    // h5wasm (the HDF5 library, 4 MB of WebAssembly) is loaded from node_modules rather than copied into cli.js.
    external: ['webgpu', 'h5wasm'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
  }),
  build({
    ...common,
    entryPoints: { bench: 'bench/main.ts', soak: 'bench/soak.ts', postprocess: 'bench/postprocess.ts', memory: 'bench/memory.ts' },
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
  // The library: `webgpu` (Dawn) stays a dependency of the package, loaded by
  // the Node entry only, and so does h5wasm (HDF5), loaded with the Keras
  // formats' chunk. Each model format's code is a chunk loaded on first use.
  build({
    ...common,
    entryPoints: { node: 'src/index.ts' },
    outdir: 'dist/lib',
    splitting: true,
    chunkNames: 'chunks/node-[name]-[hash]',
    platform: 'node',
    target: 'node20',
    external: ['webgpu', 'h5wasm'],
  }),
  build({
    ...common,
    entryPoints: { browser: 'src/index.browser.ts' },
    outdir: 'dist/lib',
    splitting: true,
    chunkNames: 'chunks/browser-[name]-[hash]',
    platform: 'browser',
    target: 'es2022',
    external: ['h5wasm'],
  }),
  declarations,
  // The page, split: the import module and the readers it loads (HDF5's WebAssembly among them) come as chunks when a foreign model is picked.
  build({
    ...common,
    entryPoints: { app: 'web/app.ts' },
    outdir: 'dist/web',
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    platform: 'browser',
    target: 'es2022',
  }),
]);

// The page's static files next to its script.
mkdirSync('dist/web', { recursive: true });
for (const file of ['index.html', 'style.css']) copyFileSync(`web/${file}`, `dist/web/${file}`);
