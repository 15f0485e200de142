/**
 * Convolutions: the ops (ops.ts), the planner that picks how each runs
 * (plan.ts), the GEMM that carries a plan out (gemm.ts), and the per-device
 * precision and overrides (device.ts). The software adapter's formulations
 * live in src/software/.
 */
export * from './kernel.js';
export { type Activation, type ConvOverrides, type Formulation, type MmaTile, type Precision, type SubgroupTiles, type TileShape, MMA_AUTO_TILES, MMA_DEFAULT_TILE, MMA_TILES, TILE_SHAPES, mmaConstants, mmaTileFor, planGemm, rowsPerLaneFor, subgroupTileName, tileShapeFor } from './plan.js';
export { activationType, canRunMixed, convFormulation, convOverrides, defaultPrecision, precisionOf, setConvOverrides, setPrecision } from './device.js';
