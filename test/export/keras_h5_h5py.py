"""Keras 2 HDF5 weights files through h5py, as Keras 2 uses it.

read FILE      reads FILE the way Keras 2's load_weights does and prints what it
               found as JSON: the attributes Keras decodes (each name must be a byte
               string, since Keras calls .decode on it) and each weight's shape,
               dtype and the SHA-256 of its values as little-endian float32.
copy FILE OUT  writes OUT the way Keras 2's save_weights does (names as lists of
               bytes, an empty list for a weightless layer) with FILE's weights.
"""
import hashlib
import json
import sys

import h5py
import numpy as np


def names(group, attr):
    return [n.decode('utf8') for n in group.attrs[attr]]


def read(path):
    with h5py.File(path, 'r') as f:
        found = {
            'keras_version': f.attrs['keras_version'].decode('utf8'),
            'backend': f.attrs['backend'].decode('utf8'),
            'layer_names': names(f, 'layer_names'),
            'layers': {},
        }
        for layer in found['layer_names']:
            g = f[layer]
            found['layers'][layer] = [
                {
                    'name': w,
                    'shape': list(g[w].shape),
                    'dtype': str(g[w].dtype),
                    'sha256': hashlib.sha256(np.asarray(g[w]).astype('<f4').tobytes()).hexdigest(),
                }
                for w in names(g, 'weight_names')
            ]
        print(json.dumps(found))


def copy(path, out):
    with h5py.File(path, 'r') as src, h5py.File(out, 'w') as dst:
        layer_names = names(src, 'layer_names')
        dst.attrs['layer_names'] = [n.encode('utf8') for n in layer_names]
        dst.attrs['backend'] = b'tensorflow'
        dst.attrs['keras_version'] = b'2.2.4'
        for layer in layer_names:
            g = dst.create_group(layer)
            weight_names = names(src[layer], 'weight_names')
            g.attrs['weight_names'] = [n.encode('utf8') for n in weight_names]
            for w in weight_names:
                g.create_dataset(w, data=np.asarray(src[layer][w]))


if sys.argv[1] == 'read':
    read(sys.argv[2])
else:
    copy(sys.argv[2], sys.argv[3])
