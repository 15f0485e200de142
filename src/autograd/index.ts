/** The autograd engine: tensors, the tape, and the ops with their backward rules. */
export { Tensor } from './tensor.js';
export { Tape } from './tape.js';
export { noGrad, scope, isGradEnabled } from './context.js';
export { conv2d, convTranspose2x2 } from './ops/conv.js';
export { relu, sigmoid, scale, add, mul, sum } from './ops/elementwise.js';
export { maxPool2x2, concat } from './ops/pool.js';
export { diceLoss } from './ops/loss.js';
export { elu } from './ops/elu.js';
