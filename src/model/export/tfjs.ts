/**
 * The U-Net in TensorFlow.js's layers format: model.json (a Keras functional
 * model's topology, format 'layers-model', and a weights manifest) plus one
 * binary shard of little-endian float32 weights, in the manifest's order.
 * `tf.loadLayersModel` reads it. The topology is written here as JSON:
 * exporting needs no tfjs.
 *
 * Input [batch, inputSize, inputSize, 1] (NHWC, as Keras and the engine):
 * frames resized, then (pixel − mean) / std; output the probabilities
 * [batch, inputSize, inputSize, 1]. The preparation travels in
 * userDefinedMetadata.wgsl_unet.
 */
import { type ExportableUNet, type KerasLayer, checkUNetWeights, exportVariant, kerasUNetLayers, layerTensors } from './keras-layers.js';
import { BATCH_NORM_DEFAULTS } from '../../ops/batchnorm/kernel.js';

export const TFJS_SHARD_NAME = 'group1-shard1of1.bin';

export interface TfjsModelFiles {
  /** model.json's text. */
  modelJson: string;
  /** The weights, under the name model.json gives them (TFJS_SHARD_NAME). */
  shard: Uint8Array;
}

const inbound = (...names: string[]) => [names.map((n) => [n, 0, 0, {}])];

/** One layer's entry in the topology's `layers`, as tfjs-layers and Keras serialise it. */
function layerJson(layer: KerasLayer, inputSize: number): object {
  switch (layer.kind) {
    case 'input':
      return {
        class_name: 'InputLayer',
        name: layer.name,
        config: { batch_input_shape: [null, inputSize, inputSize, 1], dtype: 'float32', sparse: false, name: layer.name },
        inbound_nodes: [],
      };
    case 'conv2d':
    case 'conv2d_transpose': {
      const { spec } = layer;
      const [kh, kw] = spec.kernelShape;
      const stride = layer.kind === 'conv2d' ? 1 : 2;
      return {
        class_name: layer.kind === 'conv2d' ? 'Conv2D' : 'Conv2DTranspose',
        name: layer.name,
        config: {
          name: layer.name,
          trainable: true,
          filters: spec.filters,
          kernel_size: [kh, kw],
          strides: [stride, stride],
          padding: 'same',
          data_format: 'channels_last',
          dilation_rate: [1, 1],
          activation: spec.activation === 'none' ? 'linear' : spec.activation,
          use_bias: true,
          kernel_initializer: { class_name: 'VarianceScaling', config: { scale: 1, mode: 'fan_avg', distribution: 'uniform', seed: null } },
          bias_initializer: { class_name: 'Zeros', config: {} },
        },
        inbound_nodes: inbound(layer.input),
      };
    }
    case 'batch_normalization':
      return {
        class_name: 'BatchNormalization',
        name: layer.name,
        config: {
          name: layer.name,
          trainable: true,
          axis: -1,
          momentum: BATCH_NORM_DEFAULTS.momentum,
          epsilon: BATCH_NORM_DEFAULTS.epsilon,
          center: true,
          scale: true,
          beta_initializer: { class_name: 'Zeros', config: {} },
          gamma_initializer: { class_name: 'Ones', config: {} },
          moving_mean_initializer: { class_name: 'Zeros', config: {} },
          moving_variance_initializer: { class_name: 'Ones', config: {} },
        },
        inbound_nodes: inbound(layer.input),
      };
    case 'activation':
      return { class_name: 'Activation', name: layer.name, config: { name: layer.name, trainable: true, activation: layer.activation }, inbound_nodes: inbound(layer.input) };
    case 'max_pooling2d':
      return {
        class_name: 'MaxPooling2D',
        name: layer.name,
        config: { name: layer.name, trainable: true, pool_size: [2, 2], strides: [2, 2], padding: 'valid', data_format: 'channels_last' },
        inbound_nodes: inbound(layer.input),
      };
    case 'concatenate':
      return { class_name: 'Concatenate', name: layer.name, config: { name: layer.name, trainable: true, axis: 3 }, inbound_nodes: inbound(...layer.inputs) };
  }
}

export function encodeTfjs(model: ExportableUNet, producerVersion: string, source: string): TfjsModelFiles {
  checkUNetWeights(model.weights, model.baseWidth, source, model.batchNorm);
  const layers = kerasUNetLayers(model.baseWidth, exportVariant(model));
  const last = layers[layers.length - 1]!.name;
  const specs: { name: string; shape: number[]; dtype: 'float32' }[] = [];
  const values: Float32Array[] = [];
  for (const layer of layers) {
    if (layer.kind !== 'conv2d' && layer.kind !== 'conv2d_transpose' && layer.kind !== 'batch_normalization') continue;
    // Keras's order: kernel, bias; gamma, beta, moving_mean, moving_variance.
    for (const [name] of layerTensors(layer.spec)) {
      const t = model.weights.get(name)!;
      specs.push({ name, shape: [...t.shape], dtype: 'float32' });
      values.push(t.data);
    }
  }
  const shard = new Uint8Array(values.reduce((n, v) => n + v.length * 4, 0));
  const view = new DataView(shard.buffer);
  let at = 0;
  for (const v of values) for (let i = 0; i < v.length; i++, at += 4) view.setFloat32(at, v[i]!, true);

  const json = {
    format: 'layers-model',
    generatedBy: `wgsl-unet ${producerVersion}`,
    convertedBy: null,
    modelTopology: {
      class_name: 'Model',
      config: {
        name: 'unet',
        layers: layers.map((l) => layerJson(l, model.inputSize)),
        input_layers: [[layers[0]!.name, 0, 0]],
        output_layers: [[last, 0, 0]],
      },
      keras_version: `wgsl-unet ${producerVersion}`,
      backend: 'tensor_flow.js',
    },
    weightsManifest: [{ paths: [TFJS_SHARD_NAME], weights: specs }],
    userDefinedMetadata: {
      wgsl_unet: { inputSize: model.inputSize, baseWidth: model.baseWidth, activation: model.activation, batchNorm: model.batchNorm, mean: model.preprocessing.mean, std: model.preprocessing.std, antiAlias: model.preprocessing.antiAlias },
    },
  };
  return { modelJson: JSON.stringify(json), shard };
}
