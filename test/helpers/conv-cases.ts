/** Convolution shapes the fp32 and mixed-precision kernel tests share. */
import type { Shape4 } from '../reference/conv.js';

// [x shape, kernel size, out channels]: odd sizes, 1 input channel (the U-Net's
// first layer), channel counts that are not multiples of 4, tiles larger
// than one workgroup in every GEMM dimension, and a weight gradient whose
// reduction over 2,304 pixels is split across workgroups.
export const CONV_CASES: [Shape4, number, number][] = [
  [[2, 5, 7, 3], 3, 5],
  [[2, 8, 8, 1], 3, 4],
  [[1, 6, 6, 4], 1, 1],
  [[2, 12, 12, 16], 3, 70],
  [[1, 9, 11, 66], 3, 7],
  [[4, 24, 24, 8], 3, 36],
];

// [x shape, out channels] of 2 × 2 transposed convolutions.
export const UP_CASES: [Shape4, number][] = [
  [[2, 3, 5, 3], 5],
  [[1, 4, 4, 8], 4],
  [[2, 6, 6, 20], 70],
  [[4, 24, 24, 12], 16],
];
