/** Our side of a comparison with tfjs-layers: one forward, −Dice and backward of a U-Net on the GPU. */
import { Tape, Tensor, diceLoss } from '../../src/autograd/index.js';
import type { UNet } from '../../src/model/unet.js';

/** The probabilities, the loss and every parameter's gradient of −Dice (smooth 1, the whole batch) for images and masks of `shape`. */
export async function diceGradients(unet: UNet, shape: readonly number[], images: Float32Array, masks: Float32Array): Promise<{ probs: Float32Array; loss: number; grads: Map<string, Float32Array> }> {
  const x = Tensor.from(unet.gpu, shape, images);
  const y = Tensor.from(unet.gpu, shape, masks);
  const tape = new Tape(unet.gpu);
  try {
    let probs!: Tensor;
    const loss = tape.run(() => {
      probs = unet.forward(x);
      return diceLoss(probs, y);
    });
    tape.backward(loss);
    return { probs: await probs.read(), loss: (await loss.read())[0]!, grads: await unet.parameters.readGrads() };
  } finally {
    tape.dispose();
    x.dispose();
    y.dispose();
  }
}
