/**
 * The public API from the sources: both entries export the same names but
 * for how a device is made, docs/api.md names every one of them, and the
 * checks at its edges reject bad input with a message.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import * as browserEntry from '../../src/index.browser.js';
import * as nodeEntry from '../../src/index.js';
import { testGpu } from '../helpers/gpu.js';
import { VERSION } from '../../src/version.js';

const doc = readFileSync(new URL('../../docs/api.md', import.meta.url), 'utf8');

describe('public API', () => {
  it('is the same from both entries, but for the Node-only adapter errors and process tuning', () => {
    const nodeOnly = ['AdapterSelectionError', 'NoAdapterError', 'tuneForSoftwareAdapter'];
    expect(Object.keys(nodeEntry).filter((k) => !nodeOnly.includes(k)).sort()).toEqual(Object.keys(browserEntry).sort());
    for (const k of nodeOnly) expect(Object.keys(nodeEntry)).toContain(k);
  });

  it('records the package version in what it writes', () => {
    expect(VERSION).toBe(JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version);
  });

  it('is documented name by name in docs/api.md', () => {
    const missing = Object.keys(nodeEntry).filter((name) => !new RegExp(`\\b${name}\\b`).test(doc));
    expect(missing).toEqual([]);
  });

  it('rejects bad input at its edges with a message that says what is wrong', async () => {
    const gpu = await testGpu();
    expect(() => nodeEntry.Tensor.from(gpu, [2], [1, 2] as unknown as Float32Array)).toThrow(/data must be a Float32Array, got Array/);
    expect(() => nodeEntry.Tensor.from(gpu, [3], new Float32Array(2))).toThrow(/2 values given for shape \[3\]/);
    expect(() => nodeEntry.Tensor.zeros(gpu, [2, -1])).toThrow(nodeEntry.ShapeError);
    expect(() => nodeEntry.Tensor.zeros(gpu, [1.5])).toThrow(/integers ≥ 0/);
    expect(() => nodeEntry.createGpu(null as unknown as object)).toThrow(/options must be an object/);
    const store = new nodeEntry.ParameterStore();
    store.add('w', [1], 'zeros');
    expect(() => new nodeEntry.Adam(store)).toThrow(/call finalize\(gpu\) first/);
    await expect(nodeEntry.importModel('unet.onnx' as never)).rejects.toThrow(/files must be an array of \{ name: string, bytes: Uint8Array \}/);
    await expect(nodeEntry.importModel([{ name: 'notes.txt', bytes: new Uint8Array([1, 2, 3]) }])).rejects.toThrow(new nodeEntry.ExportError('notes.txt: no model of another framework among them: a Keras .h5 or .keras file, an ONNX model (.onnx), or a TensorFlow.js model.json with its .bin shards'));
    await expect(nodeEntry.importModel([{ name: 'unet.onnx', bytes: new Uint8Array([1, 2, 3]) }])).rejects.toThrow(/^unet\.onnx: not an ONNX model/);
    await expect(nodeEntry.exportModel({} as never, 'pt' as never)).rejects.toThrow(/unknown export format "pt"; known: onnx, tfjs, keras-h5/);
    const torch = new Uint8Array(readFileSync(new URL('../export/torch/plain.onnx', import.meta.url)));
    await expect(nodeEntry.importModel([{ name: 'plain.onnx', bytes: torch }])).rejects.toThrow(/^plain\.onnx does not record how frames were normalised: give choices\.mean and choices\.std/);
    await expect(nodeEntry.importModel([{ name: 'plain.onnx', bytes: torch }], { mean: Number.NaN, std: 1 })).rejects.toThrow(/^plain\.onnx: the frames' mean must be a finite number, got NaN$/);
    await expect(nodeEntry.importModel([{ name: 'plain.onnx', bytes: torch }], { mean: 0, std: Infinity })).rejects.toThrow(/^plain\.onnx: the frames' standard deviation must be positive and finite, got Infinity$/);
  });
});
