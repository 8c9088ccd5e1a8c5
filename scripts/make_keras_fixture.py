"""Builds tests/fixtures/keras_mlp: a small Keras 3 MLP (64 -> 32 -> 10) exported with
`model.export()` as a TensorFlow SavedModel, plus reference.json (an input and the model's
output for it) so that the Rust loader can be checked against TensorFlow's own result.

Needs tensorflow-cpu 2.21 (a virtual environment: pip install tensorflow-cpu==2.21.0).
Run from the repository root:  python scripts/make_keras_fixture.py
"""
import json
import os
import shutil

import numpy as np
import keras
import tensorflow as tf

OUT = os.path.join("tests", "fixtures", "keras_mlp")

keras.utils.set_random_seed(7)
model = keras.Sequential(
    [
        keras.Input(shape=(64,), name="pixels"),
        keras.layers.Dense(32, activation="relu", name="dense1"),
        keras.layers.Dense(10, name="dense2"),
    ]
)
x = np.random.default_rng(3).uniform(0.0, 1.0, size=(2, 64)).astype("float32")
y = model(x).numpy()

saved = os.path.join(OUT, "saved_model")
shutil.rmtree(saved, ignore_errors=True)
model.export(saved)

with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump({"input": x.tolist(), "output": y.tolist(), "tensorflow": tf.__version__, "keras": keras.__version__}, f)
print("wrote", saved)
