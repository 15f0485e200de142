// A small network of its own on wgsl-unet's ops, autograd and Adam: two 3 × 3
// convolutions learn to mark the brighter square hidden in each noisy image.
import { Adam, ParameterStore, Rng, Tape, Tensor, conv2d, createGpu, diceLoss, formatAdapter, glorotUniformKeras } from 'wgsl-unet';

const gpu = await createGpu();
console.log(`adapter: ${formatAdapter(gpu.adapterInfo)}`);
const rng = new Rng(7);

// Data: n images of size × size uniform noise, 1 brighter inside a 6 × 6 square; the mask marks the square.
const [n, size] = [16, 24];
const images = new Float32Array(n * size * size);
const masks = new Float32Array(n * size * size);
for (let i = 0; i < n; i++) {
  const top = rng.nextInt(size - 6), left = rng.nextInt(size - 6);
  for (let k = i * size * size, r = 0; r < size; r++) {
    for (let c = 0; c < size; c++, k++) {
      masks[k] = r >= top && r < top + 6 && c >= left && c < left + 6 ? 1 : 0;
      images[k] = masks[k] + 2 * rng.next() - 1;
    }
  }
}

// The weights live in one parameter store, which Adam updates in one dispatch.
const params = new ParameterStore();
for (const [name, shape] of [['conv1', [3, 3, 1, 8]], ['conv2', [3, 3, 8, 1]]]) {
  params.add(`${name}/kernel`, shape, glorotUniformKeras(shape, rng));
  params.add(`${name}/bias`, [shape[3]], 'zeros');
}
params.finalize(gpu);
const w = (name) => params.get(name);
const adam = new Adam(params, { lr: 0.02 });
const x = Tensor.from(gpu, [n, size, size, 1], images);
const y = Tensor.from(gpu, [n, size, size, 1], masks);

for (let step = 0; step <= 150; step++) {
  params.zeroGrads();
  const tape = new Tape(gpu); // records the forward pass; owns its tensors until dispose
  const loss = tape.run(() => {
    const hidden = conv2d(x, w('conv1/kernel'), w('conv1/bias'), 'relu');
    return diceLoss(conv2d(hidden, w('conv2/kernel'), w('conv2/bias'), 'sigmoid'), y);
  });
  tape.backward(loss);
  adam.step();
  if (step % 25 === 0) console.log(`step ${step} loss ${(await loss.read())[0].toFixed(4)}`);
  tape.dispose();
}
for (const t of [x, y, adam, params]) t.dispose();
await gpu.close();
