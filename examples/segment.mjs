// Masks for frame files with a trained U-Net's checkpoint:
//   node segment.mjs CHECKPOINT.safetensors FRAME.tif … [--out DIR]
// Each frame is prepared as in training, predicted, and its map made a mask
// at the frame's own size with the checkpoint's threshold and minimum area;
// the mask goes to DIR/<name>_mask.tif (0/255) and its run-length encoding
// (the competition's) is printed.
import { readFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createGpu, createUNet, decodeCheckpoint, decodeTiff, encodeRle, encodeTiffGray8, formatAdapter, loadWeights, segmentFrames, segmentSettings } from 'wgsl-unet';

const args = process.argv.slice(2);
const at = args.indexOf('--out');
const out = at >= 0 ? args.splice(at, 2)[1] : 'masks';
const [checkpointPath, ...framePaths] = args;
if (!checkpointPath || framePaths.length === 0) {
  console.error('usage: node segment.mjs CHECKPOINT.safetensors FRAME.tif … [--out DIR]');
  process.exit(2);
}

const checkpoint = decodeCheckpoint(readFileSync(checkpointPath), checkpointPath);
const frames = framePaths.map((path) => decodeTiff(readFileSync(path), path));
const settings = segmentSettings(checkpoint.meta); // normalisation, threshold and minimum area as recorded
const gpu = await createGpu();
console.log(`adapter: ${formatAdapter(gpu.adapterInfo)}`);
const model = createUNet(gpu, checkpoint.meta.config);
loadWeights(model, checkpoint, checkpointPath);
const results = await segmentFrames(model, frames, settings);
model.dispose();
await gpu.close();

mkdirSync(out, { recursive: true });
results.forEach(({ mask, area, width, height }, i) => {
  const name = `${basename(framePaths[i]).replace(/\.tiff?$/i, '')}_mask.tif`;
  writeFileSync(join(out, name), encodeTiffGray8(width, height, mask.map((v) => v * 255)));
  console.log(`${framePaths[i]}: ${width} × ${height}, area ${area}, rle ${encodeRle(mask, width, height) || '(empty)'}`);
});
