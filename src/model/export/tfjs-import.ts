/**
 * A TensorFlow.js layers model of the tutorial's U-Net (model.json and its
 * weight shards) back to its weights under Keras's names: one written by
 * export, by tfjs-layers' `model.save`, or by tfjs-converter from a Keras
 * model. The topology is matched to the U-Net by keras-topology.ts (which
 * says what is carried over); the weights are read from the manifest's
 * groups, several shards and tfjs-converter's quantisation (uint8, uint16,
 * float16) included, as tfjs reads them.
 */
import { fromHalf } from '../../gpu/tensor-view.js';
import type { NamedTensor } from '../safetensors.js';
import { ExportError, type ImportedUNet } from './keras-layers.js';
import { isObject, matchKerasUNet, outputLayerNames, topologyLayers } from './keras-topology.js';

/** A weight's entry in the manifest. */
interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  group?: string;
  quantization?: { dtype: string; scale?: number; min?: number };
}

const QUANTISED_BYTES: Record<string, number> = { uint8: 1, uint16: 2, float16: 2 };

/**
 * Reads a layers model of the U-Net: `modelJson` is model.json's text,
 * `readShard(path)` the bytes of a shard it names (relative to model.json).
 * Every refusal says which layer, weight or file and why.
 */
export function decodeTfjsUNet(modelJson: string, readShard: (path: string) => Uint8Array, source: string): ImportedUNet {
  let json: unknown;
  try {
    json = JSON.parse(modelJson);
  } catch (e) {
    throw new ExportError(`${source}: not a TensorFlow.js model.json (${(e as Error).message})`);
  }
  if (!isObject(json) || !isObject(json.modelTopology)) throw new ExportError(`${source}: not a TensorFlow.js model.json (no modelTopology)`);
  if (json.format === 'graph-model' || isObject(json.modelTopology.node) || Array.isArray(json.modelTopology.node)) {
    throw new ExportError(`${source}: a graph model (tfjs-converter's output for a TensorFlow SavedModel) holds operations, not Keras layers; convert the Keras model (its .h5 file) as a layers model`);
  }
  // tfjs-layers writes the topology itself; tfjs-converter wraps it in model_config.
  const topology = isObject(json.modelTopology.model_config) ? json.modelTopology.model_config : json.modelTopology;
  const config = isObject(topology.config) ? topology.config : undefined;
  if (!config || !Array.isArray(config.layers)) {
    throw new ExportError(`${source}: the topology is a ${String(topology.class_name)} without a layer list; the U-Net is a functional model (Model)`);
  }
  const specs = manifestWeights(json.weightsManifest, source);
  const values = readWeights(specs, readShard, source);

  const used = new Set<string>();
  const m = matchKerasUNet(topologyLayers(config.layers, source), outputLayerNames(config), {
    take(l, part) {
      const name = `${l.name}/${part}`;
      const t = values.get(name);
      if (t) used.add(name);
      return t;
    },
  }, source);

  for (const s of specs) {
    if (used.has(s.name)) continue;
    if (s.group === 'optimizer') {
      m.notes.add("the optimiser's state saved beside the weights: left out (a checkpoint's optimiser starts afresh)");
      continue;
    }
    throw new ExportError(`${source}: weight ${s.name} belongs to no layer of the U-Net`);
  }
  const extras = { ...(m.inputSize !== undefined ? { inputSize: m.inputSize } : {}), ...metadataExtras(json.userDefinedMetadata) };
  return { baseWidth: m.baseWidth, activation: m.activation, batchNorm: m.batchNorm, weights: m.weights, extras, notes: [...m.notes] };
}

/** The manifest's weight entries, with the shard paths of each group. */
function manifestWeights(manifest: unknown, source: string): (WeightSpec & { paths: string[]; groupIndex: number })[] {
  if (!Array.isArray(manifest) || manifest.length === 0) throw new ExportError(`${source}: no weightsManifest; the U-Net's weights come with model.json`);
  return manifest.flatMap((group, groupIndex) => {
    if (!isObject(group) || !Array.isArray(group.paths) || !Array.isArray(group.weights) || !group.paths.every((p) => typeof p === 'string')) {
      throw new ExportError(`${source}: weightsManifest[${groupIndex}] needs paths and weights`);
    }
    return group.weights.map((w: unknown) => {
      if (!isObject(w) || typeof w.name !== 'string' || !Array.isArray(w.shape) || !w.shape.every((d) => Number.isInteger(d) && d >= 0) || typeof w.dtype !== 'string') {
        throw new ExportError(`${source}: weightsManifest[${groupIndex}] has an entry without a name, shape and dtype: ${JSON.stringify(w).slice(0, 200)}`);
      }
      return { ...(w as unknown as WeightSpec), paths: group.paths as string[], groupIndex };
    });
  });
}

/** Every weight's values as float32, read from its group's shards (laid end to end) as tfjs reads them. */
function readWeights(specs: ReturnType<typeof manifestWeights>, readShard: (path: string) => Uint8Array, source: string): Map<string, NamedTensor> {
  const values = new Map<string, NamedTensor>();
  const groups = new Map<number, typeof specs>();
  for (const s of specs) groups.set(s.groupIndex, [...(groups.get(s.groupIndex) ?? []), s]);
  for (const group of groups.values()) {
    const paths = group[0]!.paths;
    const shards = paths.map((p) => {
      try {
        return readShard(p);
      } catch (e) {
        throw new ExportError(`${source}: cannot read the weight shard ${p} (${(e as Error).message})`);
      }
    });
    const bytes = new Uint8Array(shards.reduce((n, s) => n + s.length, 0));
    let at = 0;
    for (const s of shards) bytes.set(s, (at += s.length) - s.length);
    at = 0;
    for (const s of group) {
      if (values.has(s.name)) throw new ExportError(`${source}: weight ${s.name} appears twice in the manifest`);
      if (s.dtype !== 'float32') throw new ExportError(`${source}: weight ${s.name} is ${s.dtype}; the U-Net's weights are float32`);
      const count = s.shape.reduce((a, b) => a * b, 1);
      const q = s.quantization;
      const width = q ? QUANTISED_BYTES[q.dtype] : 4;
      if (!width) throw new ExportError(`${source}: weight ${s.name} is quantised as ${q!.dtype}; tfjs reads uint8, uint16 and float16`);
      if (q && q.dtype !== 'float16' && !(typeof q.scale === 'number' && typeof q.min === 'number')) throw new ExportError(`${source}: weight ${s.name} is quantised as ${q.dtype} without its scale and min`);
      const end = at + count * width;
      if (end > bytes.length) throw new ExportError(`${source}: the shards of ${paths.join(', ')} hold ${bytes.length} bytes, too few for weight ${s.name} (bytes ${at}–${end})`);
      const view = new DataView(bytes.buffer, at, count * width);
      const data = new Float32Array(count);
      for (let i = 0; i < count; i++) {
        if (!q) data[i] = view.getFloat32(4 * i, true);
        else if (q.dtype === 'float16') data[i] = fromHalf(view.getUint16(2 * i, true));
        else data[i] = (q.dtype === 'uint8' ? view.getUint8(i) : view.getUint16(2 * i, true)) * q.scale! + q.min!;
      }
      values.set(s.name, { shape: s.shape, data });
      at = end;
    }
    if (at !== bytes.length) throw new ExportError(`${source}: the shards of ${paths.join(', ')} hold ${bytes.length} bytes, the manifest's weights ${at}`);
  }
  return values;
}

/** What export recorded in userDefinedMetadata.wgsl_unet, where it is there and well formed. */
function metadataExtras(meta: unknown): ImportedUNet['extras'] {
  const m = isObject(meta) && isObject(meta.wgsl_unet) ? meta.wgsl_unet : {};
  const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  return {
    ...(num(m.mean) !== undefined ? { mean: num(m.mean)! } : {}),
    ...(num(m.std) !== undefined ? { std: num(m.std)! } : {}),
    ...(num(m.inputSize) !== undefined ? { inputSize: num(m.inputSize)! } : {}),
    ...(typeof m.antiAlias === 'boolean' ? { antiAlias: m.antiAlias } : {}),
  };
}
