/**
 * Keras 3's files of a U-Net, written as Keras's saving code writes them:
 * the weights file with each weighted layer's tensors at
 * layers/<class>[_k]/vars/<i> (k counting that class's earlier layers), and
 * a .keras archive of that file beside config.json (here the tfjs export's
 * topology, which the importer reads alike).
 */
import { zipSync } from 'fflate';
import { writeH5 } from '../../src/model/export/keras-h5.js';
import { type ExportableUNet, exportVariant, kerasUNetLayers, layerTensors } from '../../src/model/export/keras-layers.js';
import { encodeTfjs } from '../../src/model/export/tfjs.js';

export function keras3WeightsOf(unet: ExportableUNet): Promise<Uint8Array> {
  const counts = new Map<string, number>();
  return writeH5((file) => {
    const layers = file.create_group('layers');
    for (const l of kerasUNetLayers(unet.baseWidth, exportVariant(unet))) {
      if (l.kind !== 'conv2d' && l.kind !== 'conv2d_transpose' && l.kind !== 'batch_normalization') continue;
      const k = counts.get(l.kind) ?? 0;
      counts.set(l.kind, k + 1);
      const vars = layers.create_group(k ? `${l.kind}_${k}` : l.kind).create_group('vars');
      layerTensors(l.spec).forEach(([name], i) => vars.create_dataset({ name: String(i), data: unet.weights.get(name)!.data, shape: [...unet.weights.get(name)!.shape], dtype: '<f' }));
    }
  });
}

export async function kerasArchiveOf(unet: ExportableUNet): Promise<Uint8Array> {
  const topology = (JSON.parse(encodeTfjs(unet, 'test', 'test').modelJson) as { modelTopology: object }).modelTopology;
  return zipSync({ 'config.json': new TextEncoder().encode(JSON.stringify(topology)), 'model.weights.h5': await keras3WeightsOf(unet) }, { level: 0 });
}
