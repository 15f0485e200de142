/**
 * The U-Net as an ONNX model (opset 13) with its weights inside, encoded by
 * protobufjs from the part of ONNX's schema (onnx/onnx.proto) a model of
 * plain tensors needs. Field numbers are ONNX's; nothing else is declared.
 *
 * I/O layout: input `image` [N, H, W, 1] float32 (frames prepared as for the
 * engine: resized, then (pixel − mean) / std; H and W multiples of 16),
 * output `mask` [N, H, W, 1] probabilities: NHWC like the engine, with a
 * Transpose to NCHW after the input and one back before the output, since
 * ONNX's Conv, ConvTranspose and MaxPool are NCHW. N, H and W are symbolic.
 * The preparation's mean, std, input size and anti-aliasing travel in the
 * model's metadata_props (wgsl_unet.*).
 */
import protobuf from 'protobufjs';
import { BATCH_NORM_DEFAULTS } from '../../ops/batchnorm/kernel.js';
import { type ExportableUNet, checkUNetWeights, exportVariant, kerasUNetLayers, kernelToOIHW, layerTensors } from './keras-layers.js';

const field = (id: number, type: string, repeated = false) => (repeated ? { id, type, rule: 'repeated' } : { id, type });

/** The subset of onnx.proto (proto2) written here and read by import (onnx-import.ts), as a protobufjs JSON descriptor. */
const SCHEMA = {
  nested: {
    onnx: {
      nested: {
        ModelProto: {
          fields: {
            irVersion: field(1, 'int64'),
            producerName: field(2, 'string'),
            producerVersion: field(3, 'string'),
            docString: field(6, 'string'),
            graph: field(7, 'GraphProto'),
            opsetImport: field(8, 'OperatorSetIdProto', true),
            metadataProps: field(14, 'StringStringEntryProto', true),
          },
        },
        OperatorSetIdProto: { fields: { domain: field(1, 'string'), version: field(2, 'int64') } },
        StringStringEntryProto: { fields: { key: field(1, 'string'), value: field(2, 'string') } },
        GraphProto: {
          fields: {
            node: field(1, 'NodeProto', true),
            name: field(2, 'string'),
            initializer: field(5, 'TensorProto', true),
            input: field(11, 'ValueInfoProto', true),
            output: field(12, 'ValueInfoProto', true),
          },
        },
        NodeProto: {
          fields: {
            input: field(1, 'string', true),
            output: field(2, 'string', true),
            name: field(3, 'string'),
            opType: field(4, 'string'),
            attribute: field(5, 'AttributeProto', true),
            domain: field(7, 'string'),
          },
        },
        AttributeProto: {
          fields: {
            name: field(1, 'string'),
            f: field(2, 'float'),
            i: field(3, 'int64'),
            s: field(4, 'bytes'),
            t: field(5, 'TensorProto'),
            floats: field(7, 'float', true),
            ints: field(8, 'int64', true),
            type: field(20, 'int32'),
          },
        },
        TensorProto: {
          fields: {
            dims: field(1, 'int64', true),
            dataType: field(2, 'int32'),
            floatData: field(4, 'float', true),
            int32Data: field(5, 'int32', true),
            name: field(8, 'string'),
            rawData: field(9, 'bytes'),
            doubleData: field(10, 'double', true),
            externalData: field(13, 'StringStringEntryProto', true),
            dataLocation: field(14, 'int32'),
          },
        },
        ValueInfoProto: { fields: { name: field(1, 'string'), type: field(2, 'TypeProto') } },
        TypeProto: { fields: { tensorType: field(1, 'TypeProtoTensor') } },
        // TypeProto.Tensor in onnx.proto; a nested message's name does not travel on the wire.
        TypeProtoTensor: { fields: { elemType: field(1, 'int32'), shape: field(2, 'TensorShapeProto') } },
        TensorShapeProto: { fields: { dim: field(1, 'Dimension', true) } },
        Dimension: { fields: { dimValue: field(1, 'int64'), dimParam: field(2, 'string') } },
      },
    },
  },
};

/** ONNX's TensorProto.DataType.FLOAT and AttributeProto.AttributeType INT / INTS. */
const FLOAT = 1;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;
/** IR version 7 is the one that goes with opset 13. */
const IR_VERSION = 7;
const OPSET = 13;

export const onnxModelType = protobuf.Root.fromJSON(SCHEMA).lookupType('onnx.ModelProto');

interface Node {
  opType: string;
  name: string;
  input: string[];
  output: string[];
  attribute: { name: string; type: number; f?: number; i?: number; ints?: number[] }[];
}

const ints = (name: string, values: number[]) => ({ name, type: ATTR_INTS, ints: values });

function littleEndianBytes(values: Float32Array): Uint8Array {
  const bytes = new Uint8Array(values.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < values.length; i++) view.setFloat32(i * 4, values[i]!, true);
  return bytes;
}

const ONNX_ACTIVATIONS = { relu: 'Relu', elu: 'Elu', sigmoid: 'Sigmoid' } as const;

/** The encoded ONNX model (a .onnx file's bytes). */
export function encodeOnnx(model: ExportableUNet, producerVersion: string, source: string): Uint8Array {
  checkUNetWeights(model.weights, model.baseWidth, source, model.batchNorm);
  const nodes: Node[] = [];
  const initializers: { name: string; dims: number[]; dataType: number; rawData: Uint8Array }[] = [];
  const constant = (name: string, dims: number[], values: Float32Array) => {
    initializers.push({ name, dims, dataType: FLOAT, rawData: littleEndianBytes(values) });
    return name;
  };

  nodes.push({ opType: 'Transpose', name: 'image_to_nchw', input: ['image'], output: ['input_1'], attribute: [ints('perm', [0, 3, 1, 2])] });
  for (const layer of kerasUNetLayers(model.baseWidth, exportVariant(model))) {
    switch (layer.kind) {
      case 'input':
        break;
      case 'conv2d':
      case 'conv2d_transpose': {
        const { spec } = layer;
        const kernel = model.weights.get(`${spec.name}/kernel`)!;
        const [kh, kw, a, b] = kernel.shape as [number, number, number, number];
        const w = constant(`${spec.name}/kernel`, [b, a, kh, kw], kernelToOIHW(kernel));
        const bias = constant(`${spec.name}/bias`, [spec.filters], model.weights.get(`${spec.name}/bias`)!.data);
        const activated = spec.activation !== 'none';
        const out = activated ? `${spec.name}/linear` : spec.name;
        if (layer.kind === 'conv2d') {
          // 'same' for odd kernels: (k − 1) / 2 on each side.
          const pad = (kh - 1) / 2;
          nodes.push({
            opType: 'Conv',
            name: spec.name,
            input: [layer.input, w, bias],
            output: [out],
            attribute: [ints('kernel_shape', [kh, kw]), ints('pads', [pad, pad, pad, pad]), ints('strides', [1, 1])],
          });
        } else {
          // 2 × 2 kernel, stride 2, no padding: each input pixel becomes a 2 × 2 block, as Keras's 'same' gives.
          nodes.push({
            opType: 'ConvTranspose',
            name: spec.name,
            input: [layer.input, w, bias],
            output: [out],
            attribute: [ints('kernel_shape', [kh, kw]), ints('strides', [2, 2])],
          });
        }
        if (activated) {
          // ONNX's Elu has α = 1 by default, as the model's.
          nodes.push({ opType: ONNX_ACTIVATIONS[spec.activation], name: `${spec.name}/${spec.activation}`, input: [out], output: [spec.name], attribute: [] });
        }
        break;
      }
      case 'batch_normalization': {
        // Inference: the running statistics, with Keras's ε.
        const inputs = layerTensors(layer.spec).map(([name, dims]) => constant(name, [...dims], model.weights.get(name)!.data));
        nodes.push({ opType: 'BatchNormalization', name: layer.name, input: [layer.input, ...inputs], output: [layer.name], attribute: [{ name: 'epsilon', type: ATTR_FLOAT, f: BATCH_NORM_DEFAULTS.epsilon }] });
        break;
      }
      case 'activation':
        nodes.push({ opType: ONNX_ACTIVATIONS[layer.activation], name: layer.name, input: [layer.input], output: [layer.name], attribute: [] });
        break;
      case 'max_pooling2d':
        nodes.push({
          opType: 'MaxPool',
          name: layer.name,
          input: [layer.input],
          output: [layer.name],
          attribute: [ints('kernel_shape', [2, 2]), ints('strides', [2, 2])],
        });
        break;
      case 'concatenate':
        nodes.push({ opType: 'Concat', name: layer.name, input: [...layer.inputs], output: [layer.name], attribute: [{ name: 'axis', type: ATTR_INT, i: 1 }] });
        break;
    }
  }
  const head = nodes[nodes.length - 1]!.output[0]!;
  nodes.push({ opType: 'Transpose', name: 'mask_to_nhwc', input: [head], output: ['mask'], attribute: [ints('perm', [0, 2, 3, 1])] });

  const nhwc = (name: string) => ({
    name,
    type: { tensorType: { elemType: FLOAT, shape: { dim: [{ dimParam: 'batch' }, { dimParam: 'height' }, { dimParam: 'width' }, { dimValue: 1 }] } } },
  });
  const p = model.preprocessing;
  const message = onnxModelType.fromObject({
    irVersion: IR_VERSION,
    producerName: 'wgsl-unet',
    producerVersion,
    docString:
      "The Kaggle ultrasound nerve segmentation tutorial's U-Net. Input image [batch, height, width, 1]: frames resized to the input size, " +
      'then (pixel - mean) / std (metadata wgsl_unet.*); height and width multiples of 16. Output mask [batch, height, width, 1]: probabilities.',
    opsetImport: [{ domain: '', version: OPSET }],
    graph: { name: 'unet', node: nodes, initializer: initializers, input: [nhwc('image')], output: [nhwc('mask')] },
    metadataProps: [
      { key: 'wgsl_unet.mean', value: String(p.mean) },
      { key: 'wgsl_unet.std', value: String(p.std) },
      { key: 'wgsl_unet.input_size', value: String(model.inputSize) },
      { key: 'wgsl_unet.anti_alias', value: String(p.antiAlias) },
      { key: 'wgsl_unet.base_width', value: String(model.baseWidth) },
      { key: 'wgsl_unet.activation', value: model.activation },
      { key: 'wgsl_unet.batch_norm', value: String(model.batchNorm) },
    ],
  });
  return onnxModelType.encode(message).finish();
}
