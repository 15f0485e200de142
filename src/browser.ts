/** The browser entry point: the engine on navigator.gpu. */
export { createBrowserGpu } from './kernels/browser-gpu.js';
export { Gpu, formatAdapter } from './kernels/gpu.js';
export { allocTensor } from './kernels/tensor-view.js';
export { unary, binary } from './kernels/elementwise.js';
