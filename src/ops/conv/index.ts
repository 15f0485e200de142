/**
 * Convolutions: the ops (ops.ts), the planner that picks how each runs
 * (plan.ts), the GEMM that carries a plan out (gemm.ts), and the per-device
 * precision, overrides and tuned table (device.ts, tune.ts). The software
 * adapter's formulations live in src/software/.
 */
export * from './kernel.js';
export { type Activation, type ConvOverrides, type Formulation, type MmaChoice, type MmaTile, type Precision, type SubgroupTiles, type TileShape, MMA_AUTO_TILES, MMA_DEFAULT_TILE, MMA_TILES, TILE_SHAPES, gemmKey, mmaConstants, mmaTileFor, planGemm, rowsPerLaneFor, subgroupTileName, tileShapeFor } from './plan.js';
export { activationType, canRunMixed, convFormulation, convOverrides, defaultPrecision, precisionOf, setConvOverrides, setPrecision, setTunedConvolutions, tunedConvolutions } from './device.js';
export { type TuneOptions, type TuneReport, type TuningRecord, TUNE_CANDIDATES, TUNING_FORMAT, TuningStoppedError, applyTuning, describeTuning, mmaChoice, parseTuning, tuneConvolutions, tuningRecord } from './tune.js';
