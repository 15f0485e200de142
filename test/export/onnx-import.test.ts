/**
 * `import --format onnx`: our own ONNX export comes back bit for bit; a
 * graph of the same network in another exporter's form (NCHW, [skip,
 * upsampled] concatenations, convolutions without a bias before ONNX's
 * default batch-normalisation ε, Identity and Dropout nodes, values in
 * float_data), run by onnxruntime, gives what the engine gives on the
 * imported checkpoint; graphs wired otherwise are refused, naming the node.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { testGpu } from '../helpers/gpu.js';
import { maxAbsError } from '../helpers/compare.js';
import { decodeCheckpoint } from '../../src/model/checkpoint.js';
import { type KerasLayer, kerasUNetLayers, kernelToOIHW } from '../../src/model/export/keras-layers.js';
import { onnxModelType } from '../../src/model/export/onnx.js';
import { exportModel, importModel } from '../../src/model/export/interop.js';
import { fromHalf, toHalf } from '../../src/gpu/tensor-view.js';
import { FRAME_COUNT, type FixtureModel, expectRoundTrip, fixtureModel, predictWithCheckpoint, range, runCli } from './fixture-model.js';

const made: FixtureModel[] = [];
afterAll(() => made.forEach((m) => m.cleanup()));

interface ForeignOptions {
  /** The first decoder level joins the skip of the level above its own. */
  wrongSkip?: boolean;
  /** An Add node the U-Net has no counterpart for. */
  extraAdd?: boolean;
  /** The image transposed by another permutation than NHWC → NCHW. */
  badTranspose?: boolean;
  /** The head's logits as the output, without the sigmoid. */
  logits?: boolean;
  /** Dilated max-pooling. */
  dilatedPool?: boolean;
  /** The bottom's Dropout in training mode (its third input a constant true). */
  trainingDropout?: boolean;
  /** Channel 0 of every batch normalisation with a running variance far below the engine's ε (2e-4). */
  tinyVariance?: boolean;
}

/**
 * The fixture's network as another exporter might write it: NCHW throughout,
 * Concat([skip, upsampled]) with the next kernel's input channels in that
 * order, no bias on a convolution before a batch normalisation (its bias moved
 * into the running mean), ONNX's default ε 1e-5 (the variance moved by the
 * difference), weights behind Identity nodes or in float_data, a Dropout at
 * the bottom. It computes what the fixture's engine model computes.
 */
function foreignOnnx(m: FixtureModel, opts: ForeignOptions = {}): Uint8Array {
  const { baseWidth, activation, batchNorm } = m.meta.config;
  const layers = kerasUNetLayers(baseWidth, { ...(activation === 'elu' ? { activation } : {}), ...(batchNorm ? { batchNorm } : {}) });
  const w = (name: string) => m.weights.get(name)!;
  const nodes: object[] = [];
  const initializer: object[] = [];
  let constants = 0;
  const constant = (name: string, dims: number[], data: Float32Array) => {
    // Every other tensor in float_data, the rest as raw little-endian bytes.
    if (constants++ % 2) initializer.push({ name, dims, dataType: 1, floatData: Array.from(data) });
    else initializer.push({ name, dims, dataType: 1, rawData: new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)) });
    return name;
  };
  const tensor = new Map<string, string>([['input_1', 'input']]);
  const byName = new Map(layers.map((l) => [l.name, l]));
  const ints = (name: string, v: number[]) => ({ name, type: 7, ints: v });
  const pending = new Map<string, Float32Array>(); // biases moved into the next normalisation's mean
  for (const l of layers) {
    if (l.kind === 'input') continue;
    const id = `/${l.name}`;
    if (l.kind === 'conv2d' || l.kind === 'conv2d_transpose') {
      const { spec } = l;
      const kernel = w(`${spec.name}/kernel`);
      const [kh, kw, a, b] = spec.kernelShape;
      let data = kernelToOIHW(kernel);
      const source = byName.get(l.input)!;
      if (source.kind === 'concatenate') {
        // Input channels as [skip, upsampled]: foreign channel f holds Keras channel f + up (skip) or f − skip.
        const up = (byName.get(source.inputs[0]) as Extract<KerasLayer, { kind: 'conv2d' | 'conv2d_transpose' }>).spec.filters;
        const skip = a - up;
        const keras = data;
        data = new Float32Array(keras.length);
        for (let o = 0; o < b; o++) for (let f = 0; f < a; f++) data.set(keras.subarray((o * a + (f < skip ? f + up : f - skip)) * kh * kw, (o * a + (f < skip ? f + up : f - skip) + 1) * kh * kw), (o * a + f) * kh * kw);
      }
      let weight = constant(`${spec.name}.weight`, [b, a, kh, kw], data);
      if (spec.name === 'conv2d_1') {
        nodes.push({ opType: 'Identity', name: '/weight_identity', input: [weight], output: ['conv2d_1.weight.identity'] });
        weight = 'conv2d_1.weight.identity';
      }
      let input = tensor.get(l.input)!;
      if (opts.badTranspose && spec.name === 'conv2d_1') {
        nodes.push({ opType: 'Transpose', name: '/image/Transpose', input: [input], output: ['/image/Transpose_output_0'], attribute: [ints('perm', [0, 1, 3, 2])] });
        input = '/image/Transpose_output_0';
      }
      if (l.kind === 'conv2d_transpose' && spec.name === 'conv2d_transpose_1') {
        // Inputs: data, ratio (none: the default), training_mode (a BOOL constant).
        const mode = opts.trainingDropout ? ['', 'training_mode'] : [];
        if (opts.trainingDropout) initializer.push({ name: 'training_mode', dims: [], dataType: 9, int32Data: [1] });
        nodes.push({ opType: 'Dropout', name: '/bottom/Dropout', input: [input, ...mode], output: ['/bottom/Dropout_output_0'] });
        input = '/bottom/Dropout_output_0';
      }
      const biasless = batchNorm && l.kind === 'conv2d' && spec.activation === 'none';
      if (biasless) pending.set(spec.name, w(`${spec.name}/bias`).data);
      const inputs = biasless ? [input, weight] : [input, weight, constant(`${spec.name}.bias`, [spec.filters], w(`${spec.name}/bias`).data)];
      const attributes = l.kind === 'conv2d' ? [ints('kernel_shape', [kh, kw]), ints('pads', Array(4).fill((kh - 1) / 2)), ints('strides', [1, 1])] : [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])];
      const out = `${id}/${l.kind === 'conv2d' ? 'Conv' : 'ConvTranspose'}_output_0`;
      nodes.push({ opType: l.kind === 'conv2d' ? 'Conv' : 'ConvTranspose', name: `${id}/Conv`, input: inputs, output: [out], attribute: attributes });
      tensor.set(l.name, out);
      if (spec.activation !== 'none' && !(opts.logits && spec.name === 'conv2d_19')) {
        const act = spec.name === 'conv2d_19' ? 'output' : `${id}/act_output_0`;
        nodes.push({ opType: { relu: 'Relu', elu: 'Elu', sigmoid: 'Sigmoid' }[spec.activation], name: `${id}/act`, input: [out], output: [act] });
        tensor.set(l.name, act);
      }
    } else if (l.kind === 'batch_normalization') {
      const [gamma, beta, mean, variance] = ['gamma', 'beta', 'moving_mean', 'moving_variance'].map((k) => w(`${l.name}/${k}`).data);
      const bias = pending.get(l.input)!;
      const out = `${id}/BatchNormalization_output_0`;
      nodes.push({
        opType: 'BatchNormalization', name: `${id}/BatchNormalization`, output: [out],
        input: [
          tensor.get(l.input)!,
          constant(`${l.name}.weight`, [l.spec.filters], gamma!),
          constant(`${l.name}.bias`, [l.spec.filters], beta!),
          constant(`${l.name}.running_mean`, [l.spec.filters], mean!.map((v, i) => v - bias[i]!)),
          constant(`${l.name}.running_var`, [l.spec.filters], variance!.map((v, c) => (opts.tinyVariance && c === 0 ? 2e-4 : v + 1e-3 - 1e-5))),
        ],
      });
      tensor.set(l.name, out);
    } else if (l.kind === 'activation') {
      nodes.push({ opType: l.activation === 'elu' ? 'Elu' : 'Relu', name: `${id}/act`, input: [tensor.get(l.input)!], output: [`${id}/act_output_0`] });
      tensor.set(l.name, `${id}/act_output_0`);
    } else if (l.kind === 'max_pooling2d') {
      const dilation = opts.dilatedPool ? [ints('dilations', [2, 2])] : [];
      nodes.push({ opType: 'MaxPool', name: `${id}/MaxPool`, input: [tensor.get(l.input)!], output: [`${id}/MaxPool_output_0`], attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2]), ...dilation] });
      tensor.set(l.name, `${id}/MaxPool_output_0`);
    } else if (l.kind === 'concatenate') {
      let skip = tensor.get(l.inputs[1])!;
      if (opts.wrongSkip && l.name === 'concatenate_1') skip = tensor.get(layers.find((x) => x.kind === 'max_pooling2d' && x.name === 'max_pooling2d_3')!.name)!;
      let up = tensor.get(l.inputs[0])!;
      if (opts.extraAdd && l.name === 'concatenate_2') {
        nodes.push({ opType: 'Add', name: '/extra/Add', input: [up, up], output: ['/extra/Add_output_0'] });
        up = '/extra/Add_output_0';
      }
      nodes.push({ opType: 'Concat', name: `${id}/Concat`, input: [skip, up], output: [`${id}/Concat_output_0`], attribute: [{ name: 'axis', type: 2, i: 1 }] });
      tensor.set(l.name, `${id}/Concat_output_0`);
    }
  }
  const nchw = (name: string) => ({ name, type: { tensorType: { elemType: 1, shape: { dim: [{ dimParam: 'N' }, { dimValue: 1 }, { dimParam: 'H' }, { dimParam: 'W' }] } } } });
  return onnxModelType.encode(onnxModelType.fromObject({
    irVersion: 8, producerName: 'another exporter', opsetImport: [{ domain: '', version: 17 }],
    graph: { name: 'main_graph', node: nodes, initializer, input: [nchw('input')], output: [nchw(opts.logits ? tensor.get('conv2d_19')! : 'output')] },
  })).finish();
}

async function onnxruntime(bytes: Uint8Array, images: Float32Array, size: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(bytes);
  try {
    const result = await session.run({ input: new ort.Tensor('float32', images, [FRAME_COUNT, 1, size, size]) });
    return result.output!.data as Float32Array;
  } finally {
    await session.release();
  }
}

describe('import --format onnx', () => {
  it('gives back our own export bit for bit, with the variant, input size and normalisation', async () => {
    const gpu = await testGpu();
    const m = await fixtureModel(gpu, 8, 48, 11, { activation: 'elu', batchNorm: true });
    made.push(m);
    expectRoundTrip(m, 'onnx', join(m.dir, 'unet.onnx'));
  });

  for (const [activation, batchNorm] of [['relu', false], ['relu', true]] as const) {
    it(`reads another exporter's form of the network and predicts as onnxruntime runs it (${activation}${batchNorm ? ', batch normalisation' : ''})`, async () => {
      const gpu = await testGpu();
      const m = await fixtureModel(gpu, 8, 48, 12, { activation, batchNorm });
      made.push(m);
      const bytes = foreignOnnx(m);
      const runtime = await onnxruntime(bytes, m.images, m.size);
      // The foreign form computes the fixture's function (so the builder above is right).
      expect(maxAbsError(runtime, m.engine)).toBeLessThanOrEqual(1e-5);

      const path = join(m.dir, 'foreign.onnx');
      writeFileSync(path, bytes);
      const out = join(m.dir, 'foreign.safetensors');
      const missing = runCli(['import', '--format', 'onnx', '--in', path, '--out', out], m.dir);
      expect(missing.code).toBe(2);
      expect(missing.errors.join('\n')).toContain('does not record how frames were normalised: give --mean and --std');
      const { mean, std } = m.meta.normalization;
      const r = runCli(['import', '--format', 'onnx', '--in', path, '--out', out, '--mean', String(mean), '--std', String(std), '--input-size', '48'], m.dir);
      expect(r.errors, r.errors.join('\n')).toEqual([]);
      expect(r.stdout).toContain("carried over: concatenations of [skip, upsampled]: the input channels of the convolutions after them reordered to Keras's [upsampled, skip]");
      if (batchNorm) {
        expect(r.stdout).toContain('carried over: convolutions without a bias: zero biases');
        expect(r.stdout).toContain("carried over: batch normalisations with ε 0.00001: γ scaled to normalise alike with the engine's ε 0.001");
      }
      const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(out)), 'foreign');
      const engine = await predictWithCheckpoint(gpu, ckpt, 'foreign', m.images, FRAME_COUNT, m.size);
      const [lo, hi] = range(engine);
      const diff = maxAbsError(engine, runtime);
      console.log(`foreign onnx (${activation}${batchNorm ? ', batch norm' : ''}): max |engine − onnxruntime| = ${diff.toExponential(2)} over probabilities in [${lo.toFixed(3)}, ${hi.toFixed(3)}]`);
      expect(hi - lo).toBeGreaterThan(0.05);
      expect(diff).toBeLessThanOrEqual(1e-5);
    });
  }

  it('normalises alike where a running variance lies far below the engine\'s ε (γ scaled, not the variance moved)', async () => {
    const gpu = await testGpu();
    const m = await fixtureModel(gpu, 8, 48, 13, { batchNorm: true });
    made.push(m);
    const bytes = foreignOnnx(m, { tinyVariance: true });
    const runtime = await onnxruntime(bytes, m.images, m.size);
    const path = join(m.dir, 'tiny.onnx');
    writeFileSync(path, bytes);
    const out = join(m.dir, 'tiny.safetensors');
    const r = runCli(['import', '--format', 'onnx', '--in', path, '--out', out, '--mean', '0', '--std', '1', '--input-size', '48'], m.dir);
    expect(r.errors, r.errors.join('\n')).toEqual([]);
    const ckpt = decodeCheckpoint(new Uint8Array(readFileSync(out)), 'tiny');
    const engine = await predictWithCheckpoint(gpu, ckpt, 'tiny', m.images, FRAME_COUNT, m.size);
    // The foreign graph differs from the fixture's, so the comparison sees the tiny variances.
    expect(maxAbsError(runtime, m.engine)).toBeGreaterThan(1e-3);
    expect(maxAbsError(engine, runtime)).toBeLessThanOrEqual(1e-5);
  });

  it('widens weights stored as float16 (in raw_data or int32_data), bfloat16 or float64 exactly, and refuses integers', async () => {
    const gpu = await testGpu();
    const m = await fixtureModel(gpu, 2, 32, 15);
    made.push(m);
    const [file] = await exportModel({ meta: m.meta, weights: m.weights }, 'onnx');
    const bf16 = (v: number) => new Float32Array(new Uint32Array([new Uint32Array(new Float32Array([v]).buffer)[0]! & 0xffff0000]).buffer)[0]!;
    // Each form: how an initializer's float32 values are stored, and the values that should come back.
    const forms = {
      'float16 raw': { store: (d: Float32Array) => ({ dataType: 10, rawData: new Uint8Array(Uint16Array.from(d, toHalf).buffer) }), back: (v: number) => fromHalf(toHalf(v)) },
      'float16 int32_data': { store: (d: Float32Array) => ({ dataType: 10, int32Data: Array.from(d, toHalf) }), back: (v: number) => fromHalf(toHalf(v)) },
      'bfloat16 raw': { store: (d: Float32Array) => ({ dataType: 16, rawData: new Uint8Array(Uint16Array.from(d, (v) => new Uint32Array(new Float32Array([v]).buffer)[0]! >>> 16).buffer) }), back: bf16 },
      'float64 double_data': { store: (d: Float32Array) => ({ dataType: 11, doubleData: Array.from(d) }), back: (v: number) => v },
      int32: { store: (d: Float32Array) => ({ dataType: 6, int32Data: Array.from(d, Math.round) }), back: (v: number) => v },
    };
    for (const [form, { store, back }] of Object.entries(forms)) {
      const model = onnxModelType.toObject(onnxModelType.decode(file!.bytes), { longs: Number, arrays: true, bytes: Array }) as { graph: { initializer: { name: string; dims: number[]; dataType: number; rawData?: number[] }[] } };
      const initializer = model.graph.initializer.map((t) => {
        if (t.dataType !== 1) return t;
        const bytes = Uint8Array.from(t.rawData ?? []);
        const data = new Float32Array(bytes.buffer, 0, bytes.length / 4);
        return { name: t.name, dims: t.dims, ...store(data) };
      });
      const bytes = onnxModelType.encode(onnxModelType.fromObject({ ...model, graph: { ...model.graph, initializer } })).finish();
      if (form === 'int32') {
        await expect(importModel([{ name: 'ints.onnx', bytes }])).rejects.toThrow(/^ints\.onnx: initializer \S+ holds ONNX data type 6, not floating point \(float32, float16, bfloat16 or float64\)$/);
        continue;
      }
      const imported = await importModel([{ name: `${form}.onnx`, bytes }]);
      for (const [name, t] of m.weights) expect(imported.checkpoint.weights.get(name)!.data, `${form}: ${name}`).toEqual(t.data.map(back));
      // Not the float32 values themselves, but for float64.
      expect([...m.weights].some(([name, t]) => imported.checkpoint.weights.get(name)!.data.some((v, i) => v !== t.data[i])), form).toBe(form !== 'float64 double_data');
    }
  });

  it('refuses a graph wired otherwise, an operator the U-Net has not, and a file that is not ONNX, naming what', async () => {
    const gpu = await testGpu();
    const m = await fixtureModel(gpu, 4, 32, 14);
    made.push(m);
    const refuse = (bytes: Uint8Array, name: string) => {
      const path = join(m.dir, name);
      writeFileSync(path, bytes);
      const r = runCli(['import', '--format', 'onnx', '--in', path, '--out', join(m.dir, 'refused.safetensors'), '--mean', '1', '--std', '1'], m.dir);
      expect(r.code).toBe(1);
      return r.errors.join('\n');
    };
    expect(refuse(foreignOnnx(m, { wrongSkip: true }), 'wrong-skip.onnx')).toMatch(/node \/concatenate_1\/Concat \(Concat\) joins max_pooling2d_3 and conv2d_transpose_1 on axis 1; the U-Net joins each upsampling with its level's skip/);
    expect(refuse(foreignOnnx(m, { extraAdd: true }), 'add.onnx')).toMatch(/node \/extra\/Add \(Add\) has no counterpart in the tutorial's U-Net/);
    expect(refuse(foreignOnnx(m, { badTranspose: true }), 'transpose.onnx')).toMatch(/node \/image\/Transpose \(Transpose\) transposes input_1 by \[0, 1, 3, 2\]/);
    expect(refuse(foreignOnnx(m, { logits: true }), 'logits.onnx')).toMatch(/the graph ends at conv2d_19 without its sigmoid/);
    expect(refuse(foreignOnnx(m, { dilatedPool: true }), 'dilated.onnx')).toMatch(/node \/max_pooling2d_1\/MaxPool \(MaxPool\) pools conv2d_2; the U-Net pools 2 × 2 with stride 2/);
    expect(refuse(foreignOnnx(m, { trainingDropout: true }), 'dropping.onnx')).toMatch(/node \/bottom\/Dropout \(Dropout\) drops in training mode/);
    expect(refuse(new TextEncoder().encode('not a model at all'), 'text.onnx')).toMatch(/text\.onnx: not an ONNX model/);
  });
});
