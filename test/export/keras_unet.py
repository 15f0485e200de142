"""The tutorial's U-Net built and saved by Keras 3 itself: the fixture of
test/export/keras-real.test.ts.

  python3 keras_unet.py OUT_DIR

writes into OUT_DIR, with base width 1 and input 32 x 32 (seeded
He-initialised kernels and small random biases, so that the maps vary):
  tutorial.h5          model.save('….h5'): the legacy HDF5 file of the whole
                       model, as the tutorial's ModelCheckpoint('weights.h5')
                       writes it (weights under model_weights/)
  tutorial.weights.h5  model.save_weights: Keras 3's weights file
  batchnorm.keras      model.save: Keras 3's archive (config and weights) of
                       the same network with Conv2D (no bias),
                       BatchNormalization (γ, β and running statistics set
                       away from 1, 0, 0 and 1) and Activation layers
  half.h5, half.weights.h5  the tutorial's weights under Keras's float16
                       dtype policy, saved as the first two (float16
                       variables, so float16 datasets)
  FORM-images.npy      the frames each ran on (N, 32, 32, 1), float32
  FORM-probabilities.npy  Keras's own predictions for them (FORM: tutorial,
                       batchnorm; half: a float32 model's with the float16
                       weights widened, as the engine computes, on the
                       tutorial's frames)

Made with Keras 3 on its torch backend (KERAS_BACKEND=torch), Debian
trixie's python3-torch (2.6), h5py and numpy:
  KERAS_BACKEND=torch python3 test/export/keras_unet.py test/export/keras
with /proc mounted (without it PyTorch cannot tell the CPU's features, and
the initialisers' last bits come out otherwise). The files are the same on
every run but the .keras archive, whose zip entries carry the time.
"""
import sys
from pathlib import Path

import numpy as np
import keras
from keras import layers

WIDTH = 1
SIZE = 32


def conv(x, filters, batchnorm):
    init = {'kernel_initializer': 'he_normal'}
    if batchnorm:
        x = layers.Conv2D(filters, (3, 3), padding='same', use_bias=False, **init)(x)
        x = layers.BatchNormalization()(x)
        return layers.Activation('relu')(x)
    bias = keras.initializers.RandomUniform(-0.1, 0.1)
    return layers.Conv2D(filters, (3, 3), activation='relu', padding='same', bias_initializer=bias, **init)(x)


def unet(batchnorm):
    inputs = keras.Input((SIZE, SIZE, 1))
    x = inputs
    skips = []
    for level in range(5):
        filters = WIDTH * 2 ** level
        x = conv(conv(x, filters, batchnorm), filters, batchnorm)
        if level < 4:
            skips.append(x)
            x = layers.MaxPooling2D(pool_size=(2, 2))(x)
    for level in reversed(range(4)):
        filters = WIDTH * 2 ** level
        up = layers.Conv2DTranspose(filters, (2, 2), strides=(2, 2), padding='same')(x)
        x = layers.concatenate([up, skips[level]], axis=3)
        x = conv(conv(x, filters, batchnorm), filters, batchnorm)
    outputs = layers.Conv2D(1, (1, 1), activation='sigmoid', kernel_initializer='he_normal')(x)
    return keras.Model(inputs=[inputs], outputs=[outputs])


def save_half(model, images, out):
    """The model's weights rounded to float16 in a model of Keras's float16
    policy, saved as the tutorial's files are, and the probabilities of a
    float32 model holding those weights widened."""
    keras.config.set_dtype_policy('float16')
    half = unet(False)
    keras.config.set_dtype_policy('float32')
    half.set_weights([w.astype(np.float16) for w in model.get_weights()])
    half.save(out / 'half.h5')
    half.save_weights(out / 'half.weights.h5')
    widened = unet(False)
    widened.set_weights([w.astype(np.float32) for w in half.get_weights()])
    probabilities = widened.predict(images, verbose=0)
    np.save(out / 'half-probabilities.npy', probabilities.astype(np.float32))
    print(f'half: variables {half.layers[1].kernel.dtype}, probabilities in [{probabilities.min():.4f}, {probabilities.max():.4f}]')


def main(out):
    out.mkdir(parents=True, exist_ok=True)
    for form in ['tutorial', 'batchnorm']:
        keras.utils.set_random_seed(3 if form == 'tutorial' else 4)
        model = unet(form == 'batchnorm')
        rng = np.random.default_rng(5)
        images = rng.standard_normal((3, SIZE, SIZE, 1)).astype(np.float32)
        if form == 'batchnorm':
            # γ, β and the running statistics away from 1, 0, 0 and 1, so that each normalisation acts.
            for layer in model.layers:
                if isinstance(layer, layers.BatchNormalization):
                    n = layer.gamma.shape[0]
                    layer.set_weights([rng.uniform(0.5, 1.5, n), rng.uniform(-0.2, 0.2, n), rng.uniform(-0.5, 0.5, n), rng.uniform(0.5, 2.0, n)])
        probabilities = model.predict(images, verbose=0)
        if form == 'tutorial':
            model.save(out / 'tutorial.h5')
            model.save_weights(out / 'tutorial.weights.h5')
            save_half(model, images, out)
        else:
            model.save(out / f'{form}.keras')
        np.save(out / f'{form}-images.npy', images)
        np.save(out / f'{form}-probabilities.npy', probabilities.astype(np.float32))
        print(f'{form}: keras {keras.__version__} ({keras.backend.backend()}), probabilities in [{probabilities.min():.4f}, {probabilities.max():.4f}]')


if __name__ == '__main__':
    main(Path(sys.argv[1]))
