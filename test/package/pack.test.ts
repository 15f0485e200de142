/**
 * The package as a user gets it: `npm pack` of the built dist/lib,
 * the tarball installed into an empty folder, examples/tiny-net.mjs run from
 * there against the installed `wgsl-unet`, and the installed type
 * declarations checked by tsc from a consumer's point of view.
 */
import { execFile } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
    cpSync(join(root, 'examples/tiny-net.mjs'), join(app, 'tiny-net.mjs'));
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

  it('bundles the shaders in, keeps webgpu external, and leaves the CLI out of the Node entry', () => {
    const lib = join(app, 'node_modules/wgsl-unet/dist/lib');
    const node = readFileSync(join(lib, 'node.js'), 'utf8');
    const browser = readFileSync(join(lib, 'browser.js'), 'utf8');
    // Static imports and re-exports at the start of a line, and dynamic import("…").
    const specifiers = (js: string) =>
      [...js.matchAll(/^(?:import|export)\b[^;'"]*?\bfrom\s*["']([^"']+)["']|^import\s*["']([^"']+)["']|\bimport\(\s*["']([^"']+)["']/gm)].map((m) => m[1] ?? m[2] ?? m[3]);
    // The Node entry may use Node's own modules; its one package is webgpu.
    expect(new Set(specifiers(node).filter((s) => !s?.startsWith('node:')))).toEqual(new Set(['webgpu']));
    expect(specifiers(browser)).toEqual([]);
    // esbuild heads each bundled module with a `// path` comment.
    expect(node).toContain('// src/autograd/tape.ts');
    expect(node).not.toMatch(/^\/\/ src\/cli\//m);
    for (const js of [node, browser]) expect(js).toMatch(/@compute\s*@workgroup_size/);
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

  it('type-checks a Node and a browser consumer against the installed declarations', async () => {
    writeFileSync(
      join(app, 'node-use.ts'),
      [
        "import { Adam, ParameterStore, Tape, Tensor, conv2d, createGpu, diceLoss, type ConvActivation, type Gpu } from 'wgsl-unet';",
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
