"""Loads a pruned SavedModel with TensorFlow's own Python loader and prints, for every variable
and for every checkpoint key, how many values are zero. Needs tensorflow-cpu 2.21 (a virtual
environment). Example, from the repository root:

  cargo run --release --features tf --example prune_savedmodel -- \
      tests/fixtures/keras_mlp/saved_model /tmp/pruned examples/configs/keras_mlp.yaml
  python scripts/check_pruned_savedmodel.py /tmp/pruned
"""
import sys

import tensorflow as tf

path = sys.argv[1]
model = tf.saved_model.load(path)
for v in model.variables:
    a = v.numpy()
    print(f"variable {v.name} {a.shape}: {int((a == 0).sum())} of {a.size} zero")
reader = tf.train.load_checkpoint(f"{path}/variables/variables")
for key in sorted(reader.get_variable_to_shape_map()):
    if "VARIABLE_VALUE" in key:
        a = reader.get_tensor(key)
        print(f"checkpoint {key} {a.shape}: {int((a == 0).sum())} of {a.size} zero")
