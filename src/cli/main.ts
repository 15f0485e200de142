/** The wgsl-unet command line: `node dist/cli.js <command> [options]`. */
import { UsageError } from './args.js';
import { smoke } from './smoke.js';
import { data } from './data.js';
import { train } from './train.js';
import { predict } from './predict.js';
import { submit } from './submit.js';
import { segment } from './segment.js';
import { serve } from './serve.js';
import { exportCommand, importCommand } from './export.js';
import { duplicates } from './duplicates.js';
import { oof } from './oof.js';
import { recipe } from './recipe.js';
import { isFrameWorker, runFrameWorker } from './synthetic-frames.js';
import { isTiffWorker, runTiffWorker } from './tiff-workers.js';
import { isPostprocessWorker, runPostprocessWorker } from './postprocess-workers.js';

const COMMANDS: Record<string, { run: (argv: string[]) => Promise<void>; help: string }> = {
  smoke: { run: smoke, help: 'print the adapter and check kernels against the CPU' },
  data: { run: data, help: 'build the .npy caches from raw/ (--synthetic: from a generated stand-in)' },
  duplicates: { run: duplicates, help: 'find contradictory near-duplicates in the training caches and report them' },
  train: { run: train, help: 'train the U-Net (the embedded synthetic data when no caches exist)' },
  oof: { run: oof, help: 'score the out-of-fold predictions of the folds of a k-fold run (train --folds)' },
  recipe: { run: recipe, help: 'the competition toolkit in one command: k folds, out-of-fold report, ensemble submission' },
  predict: { run: predict, help: 'predict masks for the test frames: imgs_mask_test.npy and preds/*.png' },
  submit: { run: submit, help: 'write submission.csv from the predicted masks' },
  segment: { run: segment, help: 'write a nerve mask (<name>_mask.tif) for each frame file or folder given, and masks.csv' },
  serve: { run: serve, help: 'serve the browser page (dist/web) on a loopback address' },
  export: { run: exportCommand, help: 'write a checkpoint as ONNX, a tfjs layers model or a Keras HDF5 weights file' },
  import: { run: importCommand, help: 'read a U-Net from Keras (.h5, .keras), ONNX or a tfjs model into a checkpoint' },
};

async function main(): Promise<void> {
  const [command, ...rest] = process.argv.slice(2);
  const entry = command ? COMMANDS[command] : undefined;
  if (!entry) {
    const list = Object.entries(COMMANDS).map(([k, v]) => `  ${k.padEnd(10)} ${v.help}`).join('\n');
    console.error(`${command ? `unknown command "${command}"\n` : ''}usage: wgsl-unet <command> [options]\n${list}`);
    process.exitCode = 2;
    return;
  }
  await entry.run(rest);
}

// This file is also the body of the worker threads that write synthetic frames, decode TIFFs and post-process masks.
if (isFrameWorker()) runFrameWorker();
else if (isTiffWorker()) runTiffWorker();
else if (isPostprocessWorker()) runPostprocessWorker();
else main().catch((e: unknown) => {
  const err = e instanceof Error ? e : new Error(String(e));
  // Known failure kinds get their message only; anything else keeps its stack.
  const known = ['UsageError', 'NoAdapterError', 'AdapterSelectionError', 'GpuError', 'ShapeError', 'DataError', 'CheckpointError', 'SafetensorsError', 'NonFiniteLossError', 'FileError', 'ExportError'].includes(err.name);
  console.error(known ? `error: ${err.message}` : err);
  process.exitCode = err instanceof UsageError ? 2 : 1;
});
