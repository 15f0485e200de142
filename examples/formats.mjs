// A U-Net's checkpoint out to ONNX, TensorFlow.js and Keras files and back in
// with exportModel and importModel: each model read back predicts what the
// checkpoint predicts.
import { CHECKPOINT_FORMAT, EXPORT_FORMATS, Rng, createGpu, createUNet, decodeCheckpoint, encodeCheckpoint, exportModel, formatAdapter, importModel, loadWeights, predictProbabilities } from 'wgsl-unet';

const gpu = await createGpu();
console.log(`adapter: ${formatAdapter(gpu.adapterInfo)}`);

// A small U-Net with seeded weights, and its checkpoint (the training frames' normalisation recorded in it).
const model = createUNet(gpu, { baseWidth: 4, inputSize: 32, seed: 5 });
const meta = {
  format: CHECKPOINT_FORMAT, version: 'example', config: model.config, normalization: { mean: 99.5, std: 52.1 },
  epoch: 0, step: 0, metrics: {}, adapter: formatAdapter(gpu.adapterInfo), createdAt: new Date().toISOString(),
};
const checkpoint = decodeCheckpoint(await encodeCheckpoint(model, meta), 'example.safetensors');

// Four normalised 32 × 32 frames, and the checkpoint's maps of them.
const rng = new Rng(11);
const frames = Float32Array.from({ length: 4 * 32 * 32 }, () => 2 * rng.next() - 1);
const expected = await predictProbabilities(model, frames, 4, 32, 4);
model.dispose();

for (const format of EXPORT_FORMATS) {
  const files = await exportModel(checkpoint, format);
  const back = await importModel(files); // the files record the normalisation: no choices needed
  const again = createUNet(gpu, back.checkpoint.meta.config);
  loadWeights(again, back.checkpoint, files[0].name);
  const maps = await predictProbabilities(again, frames, 4, 32, 4);
  again.dispose();
  const diff = maps.reduce((m, v, i) => Math.max(m, Math.abs(v - expected[i])), 0);
  const bytes = files.reduce((n, f) => n + f.bytes.length, 0);
  console.log(`${format}: ${files.map((f) => f.name).join(' + ')} (${bytes} bytes), read back as ${back.format}, mean ${back.checkpoint.meta.normalization.mean}, max |difference| ${diff}`);
}
await gpu.close();
