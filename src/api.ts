/**
 * The library's public API, shared by the Node entry (src/index.ts) and the
 * browser entry (src/index.browser.ts), which add only how a device is made.
 * Everything here runs on any WebGPU device and uses no Node APIs.
 * docs/api.md documents each name; keep the two in step.
 */

// The device: what every tensor lives on, and its errors.
export { Gpu, formatAdapter, type AdapterDescription } from './gpu/gpu.js';
export { GpuError, ShapeError } from './gpu/errors.js';

// The precision: fp32, or mixed (f16 subgroup matrices with f32 sums, f16 activations) where the device has them.
export { type Precision, canRunMixed, defaultPrecision, precisionOf, setPrecision } from './ops/conv/index.js';
// Mixed precision's convolutions tuned by measurement on this device: each GEMM in the configuration it ran fastest in.
export { type TuneOptions, type TuneReport, type TuningRecord, TuningStoppedError, applyTuning, describeTuning, parseTuning, setTunedConvolutions, tuneConvolutions, tuningRecord } from './ops/conv/index.js';
export { tuneForTraining } from './model/tune.js';

// Tensors, the tape, and the ops with their backward rules.
export { Tensor, Tape, noGrad, scope, isGradEnabled } from './autograd/index.js';
export { conv2d, convTranspose2x2, relu, sigmoid, elu, dropout, batchNorm, scale, add, mul, sum, maxPool2x2, concat, diceLoss } from './autograd/index.js';
export { BATCH_NORM_DEFAULTS, type BatchNormOptions, type RunningStats } from './ops/batchnorm/kernel.js';

// Parameters, their initialisation, and the optimiser.
export { ParameterStore, type ParameterInfo, type NamedArrays, type ShapedArray } from './model/parameters.js';
export { Adam, TUTORIAL_ADAM, type AdamOptions } from './model/adam.js';
export { glorotUniform, glorotUniformKeras } from './model/init.js';
export { Rng } from './model/rng.js';

// The tutorial's U-Net, its training loop and checkpoints.
export { UNet, createUNet, type UNetOptions, type UNetConfig, type HiddenActivation } from './model/unet.js';
export { Trainer, NonFiniteLossError, predictBatch, predictProbabilities, trainingStep, trainingLoss, TRAINING_LOSSES, type ImageSet, type StepReport, type StepLoss, type TrainingLoss } from './model/trainer.js';
export { fit, type EpochLog, type FitOptions, type FitResult } from './model/fit.js';
export { CHECKPOINT_FORMAT, CheckpointError, encodeCheckpoint, encodeCheckpointTensors, decodeCheckpoint, loadWeights, type Checkpoint, type CheckpointMeta } from './model/checkpoint.js';
export { encodeSafetensors, decodeSafetensors, SafetensorsError, type NamedTensor } from './model/safetensors.js';

// Frames in, masks out: prepared, predicted and post-processed as predict and submit do.
export { type SegmentSettings, type Segmentation, type SegmentOptions, segmentFrames, segmentSettings } from './model/segment.js';
export { TTA_CHOICES, type TestTransform } from './model/ensemble.js';

// Other frameworks' models of the U-Net (ONNX, TensorFlow.js, Keras) to and from checkpoints.
export { EXPORT_FORMATS, exportModel, importModel, type ExportFormat, type ImportedModel } from './model/export/interop.js';
export { IMPORT_FORMATS, type ImportChoices, type ImportFormat, type ModelFile } from './model/export/import.js';
export { ExportError } from './model/export/keras-layers.js';

// Data helpers: NumPy files, TIFF frames, the competition's run-length encoding and defaults, Dice scores, normalisation.
export { encodeNpy, decodeNpy, type NpyArray, type NpyDtype } from './data/npy.js';
export { encodeRle, decodeRle } from './data/rle.js';
export { decodeTiff, encodeTiffGray8, type GrayImage } from './data/tiff.js';
export { DEFAULT_MIN_AREA, DEFAULT_THRESHOLD } from './data/submission.js';
export { diceScoreBinary, meanDice, batchDice } from './data/metrics.js';
export { meanStd, normalize, masksToUnit } from './data/prepare.js';
export { DataError } from './data/errors.js';

import type { conv2d } from './autograd/index.js';
/** The activations conv2d can fuse: 'none', 'relu', 'sigmoid' or 'elu' (α = 1). */
export type ConvActivation = NonNullable<Parameters<typeof conv2d>[3]>;
