/**
 * The tutorial's U-Net and loss written with tfjs-layers (Keras's layers in
 * JavaScript): the peer model of the training-step benchmark and the oracle
 * of test/model/unet-tfjs.test.ts.
 */
import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/** The tutorial's get_unet(), written with tfjs-layers; returns the model and its weighted layers in creation order. */
export function kerasUNet(w: number, size: number): { model: tfl.LayersModel; layers: tfl.layers.Layer[] } {
  const created: tfl.layers.Layer[] = [];
  let convs = 0;
  let ups = 0;
  const conv = (x: tfl.SymbolicTensor, filters: number) => {
    const l = tfl.layers.conv2d({ filters, kernelSize: 3, activation: 'relu', padding: 'same', name: `conv2d_${++convs}` });
    created.push(l);
    return l.apply(x) as tfl.SymbolicTensor;
  };
  const up = (x: tfl.SymbolicTensor, filters: number) => {
    const l = tfl.layers.conv2dTranspose({ filters, kernelSize: 2, strides: 2, padding: 'same', name: `conv2d_transpose_${++ups}` });
    created.push(l);
    return l.apply(x) as tfl.SymbolicTensor;
  };
  const pool = (x: tfl.SymbolicTensor) => tfl.layers.maxPooling2d({ poolSize: 2 }).apply(x) as tfl.SymbolicTensor;
  const cat = (a: tfl.SymbolicTensor, b: tfl.SymbolicTensor) => tfl.layers.concatenate({ axis: 3 }).apply([a, b]) as tfl.SymbolicTensor;

  const inputs = tfl.input({ shape: [size, size, 1] });
  const c1 = conv(conv(inputs, w), w);
  const c2 = conv(conv(pool(c1), 2 * w), 2 * w);
  const c3 = conv(conv(pool(c2), 4 * w), 4 * w);
  const c4 = conv(conv(pool(c3), 8 * w), 8 * w);
  const c5 = conv(conv(pool(c4), 16 * w), 16 * w);
  const c6 = conv(conv(cat(up(c5, 8 * w), c4), 8 * w), 8 * w);
  const c7 = conv(conv(cat(up(c6, 4 * w), c3), 4 * w), 4 * w);
  const c8 = conv(conv(cat(up(c7, 2 * w), c2), 2 * w), 2 * w);
  const c9 = conv(conv(cat(up(c8, w), c1), w), w);
  const head = tfl.layers.conv2d({ filters: 1, kernelSize: 1, activation: 'sigmoid', name: `conv2d_${++convs}` });
  created.push(head);
  const outputs = head.apply(c9) as tfl.SymbolicTensor;
  return { model: tfl.model({ inputs, outputs }), layers: created };
}

export function kerasDiceLoss(yTrue: tf.Tensor, yPred: tf.Tensor): tf.Scalar {
  const t = tf.reshape(yTrue, [-1]);
  const p = tf.reshape(yPred, [-1]);
  const intersection = tf.sum(tf.mul(t, p));
  const dice = tf.div(tf.add(tf.mul(intersection, 2), 1), tf.add(tf.add(tf.sum(t), tf.sum(p)), 1));
  return tf.neg(dice) as tf.Scalar;
}
