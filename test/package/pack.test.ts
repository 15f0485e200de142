/**
 * The package as a user gets it: `npm pack` of the built dist/lib,
 * the tarball installed into an empty folder, examples/tiny-net.mjs,
 * examples/formats.mjs and examples/segment.mjs run from there against the
 * installed `wgsl-unet`,
 * and the installed type declarations checked by tsc from a consumer's
 * point of view.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeRle } from '../../src/data/rle.js';
import { decodeTiff } from '../../src/data/tiff.js';
import { encodeCheckpointTensors } from '../../src/model/checkpoint.js';
import { segmentFrames, segmentSettings } from '../../src/model/segment.js';
import { createUNet } from '../../src/model/unet.js';
import { KAGGLE_SAMPLE_DIR } from '../data/fixtures.js';
import { fixtureModel } from '../export/fixture-model.js';
import { testGpu } from '../helpers/gpu.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const tsc = join(root, 'node_modules/typescript/bin/tsc');

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

// npm's own per-run variables (npm_package_*, npm_lifecycle_*) would describe
// this repository to the npm commands run inside the temporary app.
const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_(package|lifecycle)_|^INIT_CWD$/.test(k)));

function run(cmd: string, args: string[], cwd: string, timeoutMs = 120_000): Promise<Ran> {
  return new Promise((done) => {
    execFile(cmd, args, { cwd, env, timeout: timeoutMs, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      done({ code, stdout, stderr });
    });
  });
}

function expectOk(r: Ran, what: string): void {
  if (r.code !== 0) throw new Error(`${what} exited ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`);
}

describe('the packed library', () => {
  const work = mkdtempSync(join(tmpdir(), 'wgsl-unet-pack-'));
  const app = join(work, 'app');
  let files: string[] = [];

  beforeAll(async () => {
    // dist/lib comes from the build `npm test` runs first; packing without the
    // prepack script keeps this test from rewriting dist/ under the others.
    if (!existsSync(join(root, 'dist/lib/node.js'))) throw new Error('dist/lib is missing: run `node build.mjs` (npm test does) before this test');
    const packed = await run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], root, 180_000);
    expectOk(packed, 'npm pack');
    const [info] = JSON.parse(packed.stdout) as { filename: string; size: number; files: { path: string }[] }[];
    files = info!.files.map((f) => f.path);
    console.log(`packed ${info!.filename}: ${files.length} files, ${info!.size} bytes`);

    mkdirSync(app);
    for (const example of ['tiny-net.mjs', 'formats.mjs', 'segment.mjs']) cpSync(join(root, 'examples', example), join(app, example));
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const installed = await run('npm', ['install', join(work, info!.filename), '--prefer-offline', '--no-audit', '--no-fund'], app, 180_000);
    expectOk(installed, 'npm install of the tarball');
  }, 400_000);

  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it('holds the bundles, their declarations and docs/api.md, and nothing of the tests, benchmarks or data', () => {
    for (const f of ['package.json', 'README.md', 'docs/api.md', 'dist/lib/node.js', 'dist/lib/browser.js', 'dist/lib/types/index.d.ts', 'dist/lib/types/index.browser.d.ts', 'dist/lib/types/api.d.ts']) {
      expect(files, f).toContain(f);
    }
    const stray = files.filter((f) => /^(test|bench|data|raw|runs|src|shaders|web|scripts|examples)\//.test(f) || /^dist\/(?!lib\/)/.test(f) || f.endsWith('.tsbuildinfo'));
    expect(stray).toEqual([]);
  });

  it('bundles the shaders in, keeps webgpu and h5wasm external, and leaves the CLI out of the Node entry', () => {
    const lib = join(app, 'node_modules/wgsl-unet/dist/lib');
    // Each entry with the chunks it loads (the model formats' readers and writers among them).
    const chunks = readdirSync(join(lib, 'chunks')).filter((f) => f.endsWith('.js'));
    const of = (entry: 'node' | 'browser') => [`${entry}.js`, ...chunks.filter((f) => f.startsWith(`${entry}-`)).map((f) => `chunks/${f}`)];
    const read = (file: string) => readFileSync(join(lib, file), 'utf8');
    // Static imports and re-exports at the start of a line, and dynamic import("…").
    const specifiers = (js: string) =>
      [...js.matchAll(/^(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']|^import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']/gm)].map((m) => (m[1] ?? m[2] ?? m[3])!);
    for (const entry of ['node', 'browser'] as const) {
      const files = of(entry);
      expect(files.length, entry).toBeGreaterThan(1);
      const packages = new Set<string>();
      for (const file of files) {
        for (const s of specifiers(read(file))) {
          if (s.startsWith('.')) expect(files, `${file} imports ${s}`).toContain(join(file, '..', s).replace(/^\.\//, ''));
          else if (!s.startsWith('node:') && !builtinModules.includes(s)) packages.add(s);
        }
      }
      // The Node side may use Node's own modules; its packages are Dawn and HDF5. The browser side loads only HDF5, and only for Keras files.
      expect(packages, entry).toEqual(new Set(entry === 'node' ? ['webgpu', 'h5wasm'] : ['h5wasm']));
      const all = files.map(read).join('\n');
      expect(all).toMatch(/@compute\s*@workgroup_size/);
      // esbuild heads each bundled module with a `// path` comment.
      expect(all).toContain('// src/autograd/tape.ts');
      expect(all).not.toMatch(/^\/\/ src\/cli\//m);
    }
    // HDF5 is loaded with the Keras formats' chunk alone, not by an entry.
    for (const entry of ['node.js', 'browser.js']) expect(specifiers(read(entry))).not.toContain('h5wasm');
    expect(JSON.parse(readFileSync(join(app, 'node_modules/wgsl-unet/package.json'), 'utf8')).dependencies).toHaveProperty('h5wasm');
  });

  it('runs the example from the installed package, and its loss falls', async () => {
    const r = await run(process.execPath, ['tiny-net.mjs'], app);
    expectOk(r, 'node tiny-net.mjs');
    const losses = [...r.stdout.matchAll(/^step \d+ loss (-?\d+\.\d+)$/gm)].map((m) => Number(m[1]));
    console.log(`example losses: ${losses.join(', ')}`);
    expect(losses.length).toBeGreaterThanOrEqual(3);
    // Dice loss is in [-1, 0]: from near 0 untrained to well below once the squares are found.
    expect(losses.at(-1)!).toBeLessThan(losses[0]! - 0.3);
  });

  it("runs the segment example from the installed package on two Kaggle frames: the library's masks, written and encoded", async () => {
    const m = await fixtureModel(await testGpu(), 2, 32, 7);
    try {
      // The checkpoint's own choice of threshold, so that the masks hold nerve.
      const checkpoint = join(app, 'chosen.safetensors');
      writeFileSync(checkpoint, encodeCheckpointTensors(m.weights, { ...m.meta, postprocess: { threshold: 0.485, minArea: 10 } }));
      const frames = ['1_1.tif', '1_3.tif'].map((f) => join(KAGGLE_SAMPLE_DIR, f));
      const r = await run(process.execPath, ['segment.mjs', checkpoint, ...frames, '--out', 'seg'], app);
      expectOk(r, 'node segment.mjs');
      const model = createUNet(await testGpu(), m.meta.config);
      model.parameters.load(new Map([...m.weights].map(([k, t]) => [k, t.data])));
      const expected = await segmentFrames(model, frames.map((f) => decodeTiff(new Uint8Array(readFileSync(f)), f)), segmentSettings(m.meta, { threshold: 0.485 }));
      model.dispose();
      frames.forEach((f, i) => {
        const { mask, area } = expected[i]!;
        expect(area).toBeGreaterThan(0);
        expect(r.stdout).toContain(`${f}: 580 × 420, area ${area}, rle ${encodeRle(mask, 580, 420)}`);
        const written = decodeTiff(new Uint8Array(readFileSync(join(app, 'seg', basename(f).replace('.tif', '_mask.tif')))), f);
        expect(written.data).toEqual(mask.map((v) => v * 255));
      });
    } finally {
      m.cleanup();
    }
  });

  it('runs the formats example from the installed package: ONNX, tfjs and Keras files of a checkpoint read back to the same maps', async () => {
    const r = await run(process.execPath, ['formats.mjs'], app);
    expectOk(r, 'node formats.mjs');
    const lines = r.stdout.split('\n').filter((l) => /^(onnx|tfjs|keras-h5): /.test(l));
    console.log(lines.join('\n'));
    expect(lines.map((l) => l.split(':')[0])).toEqual(['onnx', 'tfjs', 'keras-h5']);
    for (const l of lines) {
      expect(l).toMatch(/read back as (onnx|tfjs|keras-h5), mean 99\.5, max \|difference\| 0$/);
      expect(l.split(':')[0]).toBe(l.match(/read back as (\S+),/)![1]);
    }
  });

  it('type-checks a Node and a browser consumer against the installed declarations', async () => {
    writeFileSync(
      join(app, 'node-use.ts'),
      [
        "import { Adam, ParameterStore, Tape, Tensor, conv2d, createGpu, diceLoss, exportModel, importModel, type ConvActivation, type Gpu, type ImportedModel, type ModelFile } from 'wgsl-unet';",
        "const gpu: Gpu = await createGpu({ backend: 'vulkan' });",
        "const act: ConvActivation = 'relu';",
        'const store = new ParameterStore();',
        "store.add('w', [3, 3, 1, 1], 'zeros');",
        'const adam = new Adam(store, { lr: 1e-3 });',
        'const x: Tensor = Tensor.zeros(gpu, [1, 4, 4, 1]);',
        "const loss: Tensor = new Tape(gpu).run(() => diceLoss(conv2d(x, store.get('w'), store.get('w'), act), x));",
        '// @ts-expect-error: conv2d fuses only none, relu and sigmoid',
        "conv2d(x, x, x, 'tanh');",
        'void loss; adam.step();',
        "const files: ModelFile[] = [{ name: 'unet.onnx', bytes: new Uint8Array(0) }];",
        'const back: ImportedModel = await importModel(files, { mean: 0, std: 1 });',
        "await exportModel(back.checkpoint, 'tfjs');",
        "// @ts-expect-error: the formats are onnx, tfjs and keras-h5",
        "await exportModel(back.checkpoint, 'keras');",
      ].join('\n'),
    );
    writeFileSync(
      join(app, 'browser-use.ts'),
      [
        "import { createGpu, decodeRle, encodeNpy, type Gpu } from 'wgsl-unet/browser';",
        "const gpu: Gpu = await createGpu({ powerPreference: 'low-power' });",
        '// @ts-expect-error: a browser device has no Dawn backend to pick',
        "await createGpu({ backend: 'vulkan' });",
        "encodeNpy(decodeRle('1 2', 2, 2), [2, 2]);",
        'gpu.destroy();',
      ].join('\n'),
    );
    const options = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: false };
    // A Node project has Node's types; a browser project has the DOM's and none of Node's.
    const configs = {
      'tsconfig.node.json': { compilerOptions: { ...options, types: ['node'], typeRoots: [join(root, 'node_modules/@types')] }, files: ['node-use.ts'] },
      'tsconfig.browser.json': { compilerOptions: { ...options, lib: ['ES2022', 'DOM'], types: [] }, files: ['browser-use.ts'] },
    };
    for (const [name, config] of Object.entries(configs)) {
      writeFileSync(join(app, name), JSON.stringify(config));
      const r = await run(process.execPath, [tsc, '-p', name], app);
      expectOk(r, `tsc -p ${name}`);
    }
  });
});
