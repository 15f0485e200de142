/**
 * Keras 3's files of the U-Net: the model file (`model.save('unet.keras')`),
 * a zip archive of config.json (the model's configuration), metadata.json
 * and model.weights.h5; and the weights alone (`model.save_weights(
 * 'unet.weights.h5')`), that HDF5 file by itself.
 *
 * In the weights file a layer's variables sit at layers/<class>/vars/<i>:
 * <class> is the layer's class in snake case, with _k after it for the k-th
 * earlier layer of that class in the model's list (conv2d, conv2d_1, …,
 * conv2d_transpose, …; not the layer's name, which Keras numbers on across
 * models), and i follows the order the layer makes them: kernel, bias; γ, β
 * (where the layer scales and centres), moving mean, moving variance.
 *
 * The archive's configuration is matched to the U-Net by keras-topology.ts.
 * Weights alone carry no wiring: as Keras's load_weights does, each class's
 * layers are taken in order (the U-Net's Conv2D layers in the tutorial's
 * order, likewise its transposed convolutions and normalisations).
 */
import { unzipSync } from 'fflate';
import type { NamedTensor } from '../safetensors.js';
import { decodeKerasH5 } from './keras-h5.js';
import { ExportError, type ImportedUNet, checkUNetWeights, kerasUNetLayers, layerTensors } from './keras-layers.js';
import { type TopologyLayer, isObject, matchKerasUNet, outputLayerNames, topologyLayers } from './keras-topology.js';

const WEIGHTS_FILE = 'model.weights.h5';
/** Most bytes an entry of the archive may inflate to: the U-Net of base width 128 takes 0.5 GiB. */
const MAX_ENTRY_BYTES = 2 ** 30;

/** A class name in snake case, as Keras names a layer's place in the weights file (Conv2DTranspose → conv2d_transpose). */
export function snakeCase(className: string): string {
  return className
    .replace(/\W+/g, '')
    .replace(/(.)([A-Z][a-z]+)/g, '$1_$2')
    .replace(/([a-z])([A-Z])/g, '$1_$2')
    .toLowerCase();
}

/** The group of the weights file that holds the variables of the (k+1)-th layer of a class (snake case): layers/conv2d, layers/conv2d_1, … */
const place = (base: string, k: number) => `layers/${k ? `${base}_${k}` : base}`;

/** The parts of a layer's variables in the order it makes them. */
function variableParts(className: string, config: Record<string, unknown>): string[] {
  if (className === 'BatchNormalization') {
    return [...(config.scale === false ? [] : ['gamma']), ...(config.center === false ? [] : ['beta']), 'moving_mean', 'moving_variance'];
  }
  return ['kernel', ...(config.use_bias === false ? [] : ['bias'])];
}

/** Reads a .keras archive of the U-Net; every refusal names the entry, layer or variable and why. */
export async function decodeKerasArchive(bytes: Uint8Array, source: string): Promise<ImportedUNet> {
  let entries: Record<string, Uint8Array>;
  try {
    entries = unzipSync(bytes, {
      filter: (f) => {
        const wanted = f.name === 'config.json' || f.name === WEIGHTS_FILE || f.name === 'model.weights.npz';
        // An entry that says it inflates beyond any U-Net's file is refused before it is inflated.
        if (wanted && f.originalSize > MAX_ENTRY_BYTES) throw new ExportError(`${source}: its ${f.name} would inflate to ${f.originalSize} bytes, more than the ${MAX_ENTRY_BYTES} a U-Net's weights take`);
        return wanted;
      },
    });
  } catch (e) {
    if (e instanceof ExportError) throw e;
    throw new ExportError(`${source}: not a .keras archive (a zip file): ${(e as Error).message}`);
  }
  if (!entries['config.json']) throw new ExportError(`${source}: the archive has no config.json; a .keras file from model.save() holds config.json, metadata.json and ${WEIGHTS_FILE}`);
  if (!entries[WEIGHTS_FILE]) {
    throw new ExportError(entries['model.weights.npz'] ? `${source}: the weights are in NumPy's npz form; save the model with its weights as HDF5 (model.save's default)` : `${source}: the archive has no ${WEIGHTS_FILE}`);
  }
  let model: unknown;
  try {
    model = JSON.parse(new TextDecoder().decode(entries['config.json']));
  } catch (e) {
    throw new ExportError(`${source}: config.json is not JSON (${(e as Error).message})`);
  }
  if (!isObject(model) || !isObject(model.config) || !Array.isArray(model.config.layers)) throw new ExportError(`${source}: config.json holds no model configuration with a layer list`);
  if (model.class_name === 'Sequential') throw new ExportError(`${source}: a Sequential model; the U-Net's skips need a functional one`);
  const config = model.config;
  const layers = topologyLayers(config.layers as unknown[], source);

  const file = await decodeKerasH5(entries[WEIGHTS_FILE], `${source} (${WEIGHTS_FILE})`);
  if (!file.variables) throw new ExportError(`${source}: ${WEIGHTS_FILE} is not in Keras 3's layout (no layers/ group)`);
  const variables = file.variables;
  // Each layer's place in the weights file, counted by class in the model's list.
  const groupOf = new Map<string, string>();
  const counts = new Map<string, number>();
  for (const l of [...layers].sort((a, b) => a.index - b.index)) {
    const base = snakeCase(l.className);
    const k = counts.get(base) ?? 0;
    counts.set(base, k + 1);
    groupOf.set(l.name, place(base, k));
  }
  const used = new Set<string>();
  const m = matchKerasUNet(layers, outputLayerNames(config), {
    take(l: TopologyLayer, part: string) {
      const i = variableParts(l.className, l.config).indexOf(part);
      const path = `${groupOf.get(l.name)}/vars/${i}`;
      const t = i >= 0 ? variables.get(path) : undefined;
      if (t) used.add(path);
      return t;
    },
  }, source);
  const stray = [...variables.keys()].find((path) => !used.has(path));
  if (stray) throw new ExportError(`${source}: variable ${stray} belongs to no layer of the U-Net`);
  return { baseWidth: m.baseWidth, activation: m.activation, batchNorm: m.batchNorm, weights: m.weights, extras: m.inputSize !== undefined ? { inputSize: m.inputSize } : {}, notes: [...m.notes] };
}

/**
 * The U-Net's weights from Keras 3's weights file alone (its variables by
 * path): each of the U-Net's layers with weights takes the next place of its
 * class, in the tutorial's order. The base width comes from the first
 * kernel; a file with normalisation layers is the variant with them.
 */
export function unetWeightsFromKeras3(variables: ReadonlyMap<string, NamedTensor>, source: string): { baseWidth: number; batchNorm: boolean; weights: Map<string, NamedTensor> } {
  const first = variables.get('layers/conv2d/vars/0');
  const baseWidth = first?.shape.length === 4 ? first.shape[3]! : 0;
  if (!(baseWidth >= 1) || first!.shape[0] !== 3 || first!.shape[1] !== 3 || first!.shape[2] !== 1) {
    throw new ExportError(`${source}: the first Conv2D's kernel (layers/conv2d/vars/0) has shape [${first?.shape.join(', ') ?? ''}]; the U-Net's first layer is a 3 × 3 convolution of one input channel, (3, 3, 1, width)`);
  }
  const batchNorm = [...variables.keys()].some((path) => path.startsWith('layers/batch_normalization/'));
  const counts = new Map<string, number>();
  const weights = new Map<string, NamedTensor>();
  const used = new Set<string>();
  for (const layer of kerasUNetLayers(baseWidth, { ...(batchNorm ? { batchNorm } : {}) })) {
    if (layer.kind !== 'conv2d' && layer.kind !== 'conv2d_transpose' && layer.kind !== 'batch_normalization') continue;
    const k = counts.get(layer.kind) ?? 0;
    counts.set(layer.kind, k + 1);
    for (const [i, [name]] of layerTensors(layer.spec).entries()) {
      const path = `${place(layer.kind, k)}/vars/${i}`;
      const t = variables.get(path);
      if (!t) throw new ExportError(`${source}: no variable ${path}, the U-Net's ${name} (its ${layer.kind} number ${k + 1})`);
      weights.set(name, t);
      used.add(path);
    }
  }
  const stray = [...variables.keys()].find((path) => !used.has(path));
  if (stray) throw new ExportError(`${source}: variable ${stray} belongs to no layer of the U-Net of base width ${baseWidth}`);
  checkUNetWeights(weights, baseWidth, source, batchNorm);
  return { baseWidth, batchNorm, weights };
}
