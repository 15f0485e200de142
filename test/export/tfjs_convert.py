"""A Keras HDF5 model converted by tensorflowjs's converter, as
`tensorflowjs_converter --input_format keras MODEL.h5 OUT_DIR` converts it:
the fixture of test/export/keras-real.test.ts.

  python3 tfjs_convert.py MODEL.h5 OUT_DIR

runs the two calls of the converter's Keras HDF5 path
(tensorflowjs.converters.converter.dispatch_keras_h5_to_tfjs_layers_model_conversion):
the topology and weight groups read by keras_h5_conversion, then
model.json and its shards written by write_artifacts. It was run on
test/export/keras/tutorial.h5 with tensorflowjs 1.7.0's Python sources
(tfjs-converter/python), h5py and numpy; TensorFlow, which that package
uses only to open the files it writes (tf.io.gfile.GFile), was stood in for
by Python's open.
"""
import os
import sys

import h5py
from tensorflowjs.converters import keras_h5_conversion as conversion


def main(h5_path, out_dir):
    with h5py.File(h5_path, 'r') as h5_file:
        model_json, groups = conversion.h5_merged_saved_model_to_tfjs_format(h5_file)
    os.makedirs(out_dir, exist_ok=True)
    conversion.write_artifacts(model_json, groups, out_dir, None, weight_shard_size_bytes=1024 * 1024 * 4)
    print(f'{h5_path} -> {out_dir}: {len(groups)} weight group(s)')


if __name__ == '__main__':
    main(sys.argv[1], sys.argv[2])
