/** The autograd engine: tensors, the tape, and the ops with their backward rules. */
export { Tensor } from './tensor.js';
export { Tape } from './tape.js';
export { noGrad, scope, isGradEnabled } from './context.js';
export { conv2d, convTranspose2x2 } from '../ops/conv/autograd.js';
export { relu, sigmoid, scale, add, mul, sum } from '../ops/elementwise/autograd.js';
export { maxPool2x2 } from '../ops/maxpool/autograd.js';
export { concat } from '../ops/concat/autograd.js';
export { diceLoss, type DiceOver } from '../ops/dice/autograd.js';
export { elu } from '../ops/elu/autograd.js';
export { dropout } from '../ops/dropout/autograd.js';
export { batchNorm } from '../ops/batchnorm/autograd.js';
