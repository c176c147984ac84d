"""Self-attention sequence classifier

A small transformer encoder: multi-head self-attention over the time steps of a sequence.

Each step and its neighbours are projected to `model_dim` features by a convolution
(`token_width` steps wide) and given a learned position embedding (attention itself
ignores order). Each encoder block is multi-head self-attention and a
feed-forward network, both with a residual connection and layer normalization, as in
"Attention is all you need" and keras-io's timeseries transformer. Global average
pooling over the steps and a softmax give the class.

Default data: patterns (generated sequences, 64 steps: sine, square or sawtooth).
Result: 0.990 test accuracy, median of 3 seeds, range 0.987-0.997 (`kerasdl train attention
--seed 1337|1338|1339`; `python benchmarks/figures.py --recipes attention`); the lstm
recipe's GRU: 0.967 (0.897-0.977).
Parameters: 10,883 (the default model on patterns)

Usage:
    kerasdl train attention
    kerasdl train attention --set num_heads=4 --set num_blocks=2
    kerasdl compare attention --vary num_blocks=1,2,3 --seeds 3
    python attention.py    # standalone demo on sequences it generates itself
"""

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras import layers
from keras import ops

TASK = "sequence_classification"
DEFAULTS = {"data": "patterns", "epochs": 30, "batch_size": 64}
OBJECTIVE = "val_accuracy"


@keras.saving.register_keras_serializable(package="kerasdl")
class PositionEmbedding(layers.Layer):
    """Adds a learned embedding of each time step's position to the sequence."""

    def __init__(self, steps, dim, **kwargs):
        super().__init__(**kwargs)
        self.steps, self.dim = steps, dim
        self.embedding = layers.Embedding(steps, dim)

    def call(self, inputs):
        return inputs + self.embedding(ops.arange(self.steps))

    def get_config(self):
        return {**super().get_config(), "steps": self.steps, "dim": self.dim}


def encoder_block(x, num_heads, model_dim, ff_dim, dropout_rate, name):
    """Self-attention then a feed-forward network, each residual and layer-normalized."""
    attention = layers.MultiHeadAttention(num_heads, model_dim // num_heads,
                                          dropout=dropout_rate, name=f"{name}_attention")(x, x)
    x = layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm1")(x + attention)
    feed = layers.Dense(ff_dim, activation="relu", name=f"{name}_ff1")(x)
    feed = layers.Dropout(dropout_rate, name=f"{name}_dropout")(feed)
    feed = layers.Dense(model_dim, name=f"{name}_ff2")(feed)
    return layers.LayerNormalization(epsilon=1e-6, name=f"{name}_norm2")(x + feed)


def make_pipeline(ds, spec, hp, training, batch_size=64):
    """Batches `(sequence, label)` pairs; shuffles in training only."""
    if spec.get("cache", "memory") == "memory":  # else cached in a file, or too large
        ds = ds.cache()
    if training:
        ds = ds.shuffle(10_000)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def build_model(hp, spec):
    """Builds and compiles the transformer encoder classifier."""
    model_dim = hp.Choice("model_dim", [16, 32, 64, 128], default=32)
    num_heads = hp.Choice("num_heads", [1, 2, 4, 8], default=2)
    ff_dim = hp.Int("ff_dim", 16, 256, step=16, default=64)
    dropout_rate = hp.Float("dropout_rate", 0.0, 0.5, step=0.1, default=0.1)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    steps = spec["input_shape"][0]

    inputs = keras.Input(shape=spec["input_shape"], name="sequence")
    # Each token sees a few neighbouring steps (a convolution), so that attention
    # compares local shapes (edges, slopes), not single values.
    x = layers.Conv1D(model_dim, hp.Int("token_width", 1, 9, step=2, default=5),
                      padding="same", name="tokens")(inputs)
    x = PositionEmbedding(steps, model_dim, name="positions")(x)
    for block in range(1, hp.Int("num_blocks", 1, 4, default=1) + 1):
        x = encoder_block(x, num_heads, model_dim, ff_dim, dropout_rate, f"block{block}")
    x = layers.GlobalAveragePooling1D(name="pool")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(spec["num_classes"], activation="softmax", name="predictions")(x)

    model = keras.Model(inputs, outputs, name="attention")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


if __name__ == "__main__":
    # Is there a spike in the first or the second half of a noisy sequence of 32 steps?
    rng = np.random.default_rng(0)
    x = rng.normal(0, 0.3, (1200, 32, 1)).astype("float32")
    y = rng.integers(0, 2, 1200).astype("int32")
    for sequence, label in zip(x, y):
        sequence[rng.integers(0, 16) + 16 * label] += 3.0
    spec = {"input_shape": [32, 1], "num_classes": 2}
    hp = keras_tuner.HyperParameters()
    model = build_model(hp, spec)
    train = tf.data.Dataset.from_tensor_slices((x[:1000], y[:1000]))
    test = tf.data.Dataset.from_tensor_slices((x[1000:], y[1000:]))
    model.fit(make_pipeline(train, spec, hp, training=True), epochs=15, verbose=2)
    _, accuracy = model.evaluate(make_pipeline(test, spec, hp, training=False), verbose=0)
    print(f"Test accuracy at telling where the spike is: {accuracy:.3f}")
