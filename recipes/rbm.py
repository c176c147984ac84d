"""Restricted Boltzmann machine

A Bernoulli RBM trained by contrastive divergence (CD-k) in a custom train_step.

Binary visible units (the pixels, ink or not) connect to binary hidden units through
one weight matrix; there are no connections within a layer. Training lowers the energy
of the data and raises that of the model's own samples: CD-k starts a Gibbs chain at a
training batch, runs k steps, and moves the weights by the difference of the data's and
the chain's correlations (Hinton, 2002). The update is handed to a Keras optimizer as a
gradient. The model's output is the mean-field reconstruction p(v | h = p(h | v)).

Default data: digits (binarised at half ink).
Result: test reconstruction MSE 0.0317 against the grey-level digits, median of 3 seeds,
range 0.0312-0.0322 (`kerasdl train rbm --seed 1337|1338|1339`; `python
benchmarks/figures.py --recipes rbm`); one epoch at learning rate 0.001, barely trained:
0.132 (0.132-0.132). Learned filters in plots/filters.png.
Parameters: 4,224 (the default model on digits)

Usage:
    kerasdl train rbm
    kerasdl train rbm --set hidden_units=128 --set cd_steps=5
    python rbm.py    # standalone demo on images it draws itself
"""

import math
import random

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras import ops

TASK = "reconstruction"
DEFAULTS = {"data": "digits", "epochs": 40, "batch_size": 32}
OBJECTIVE = keras_tuner.Objective("val_loss", direction="min")


@keras.saving.register_keras_serializable(package="kerasdl")
class RBM(keras.Model):
    """Bernoulli-Bernoulli RBM over images of `visible_shape` (pixels in [0, 255]).

    `seed` (of the initial weights and the Gibbs sampling) None draws one from Python's
    `random`, which `keras.utils.set_random_seed` seeds: a run's `--seed` reaches it.
    The seed drawn is saved with the model.
    """

    def __init__(self, visible_shape, hidden_units=64, cd_steps=1, seed=None, **kwargs):
        super().__init__(**kwargs)
        seed = random.randint(1, 2**31 - 1) if seed is None else seed
        self.visible_shape = tuple(visible_shape)
        self.hidden_units, self.cd_steps, self.seed = hidden_units, cd_steps, seed
        visible = math.prod(self.visible_shape)
        self.kernel = self.add_weight(shape=(visible, hidden_units), name="kernel",
                                      initializer=keras.initializers.RandomNormal(0, 0.01, seed))
        self.visible_bias = self.add_weight(shape=(visible,), initializer="zeros",
                                            name="visible_bias")
        self.hidden_bias = self.add_weight(shape=(hidden_units,), initializer="zeros",
                                           name="hidden_bias")
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.built = True

    @property
    def metrics(self):
        return [self.loss_tracker]

    @property
    def input_shape(self):
        return (None, *self.visible_shape)

    def _visible(self, images):
        """Binary pixels: ink above half."""
        flat = ops.reshape(images, (-1, math.prod(self.visible_shape)))
        return ops.cast(flat > 127.5, "float32")

    def hidden_given(self, visible):
        return ops.sigmoid(ops.matmul(visible, self.kernel) + self.hidden_bias)

    def visible_given(self, hidden):
        return ops.sigmoid(ops.matmul(hidden, ops.transpose(self.kernel)) + self.visible_bias)

    def _sample(self, probabilities):
        return ops.cast(keras.random.uniform(ops.shape(probabilities),
                                             seed=self.seed_generator) < probabilities, "float32")

    def call(self, images):
        visible = self.visible_given(self.hidden_given(self._visible(images)))
        return ops.reshape(visible, (-1, *self.visible_shape))

    def _reconstruction_error(self, data):
        images, targets = data
        return ops.mean(ops.square(self(images) - targets))

    def train_step(self, data):
        v0 = self._visible(data[0])
        h0 = self.hidden_given(v0)
        hidden = self._sample(h0)
        for _ in range(self.cd_steps):  # the Gibbs chain, k steps
            visible = self._sample(self.visible_given(hidden))
            hk = self.hidden_given(visible)
            hidden = self._sample(hk)
        batch = ops.cast(ops.shape(v0)[0], "float32")
        # CD-k: data correlations minus model correlations; negated for the optimizer.
        gradients = [
            -(ops.matmul(ops.transpose(v0), h0) - ops.matmul(ops.transpose(visible), hk)) / batch,
            -ops.mean(v0 - visible, axis=0),
            -ops.mean(h0 - hk, axis=0),
        ]
        self.optimizer.apply(gradients, [self.kernel, self.visible_bias, self.hidden_bias])
        self.loss_tracker.update_state(self._reconstruction_error(data))
        return {"loss": self.loss_tracker.result()}

    def test_step(self, data):
        self.loss_tracker.update_state(self._reconstruction_error(data))
        return {"loss": self.loss_tracker.result()}

    def filter_images(self):
        """Each hidden unit's weights as an image, scaled to [0, 1]."""
        filters = ops.transpose(self.kernel)
        low = ops.min(filters, axis=1, keepdims=True)
        high = ops.max(filters, axis=1, keepdims=True)
        return ops.reshape((filters - low) / (high - low + 1e-8), (-1, *self.visible_shape))

    def get_config(self):
        return {**super().get_config(), "visible_shape": list(self.visible_shape),
                "hidden_units": self.hidden_units, "cd_steps": self.cd_steps, "seed": self.seed}


def reconstruction_target(images):
    """What the model reconstructs from images in [0, 255]: the images in [0, 1]."""
    return images / 255.0


def make_pipeline(ds, spec, hp, training, batch_size=32):
    """Pairs each image with itself in [0, 1], the reconstruction target."""
    ds = ds.map(lambda x, y: (x, reconstruction_target(x)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if spec.get("cache", "memory") == "memory":  # else cached in a file, or too large
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(4096, spec.get("shuffle_buffer", 4096)))  # large images: fewer
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def image_grids(model):
    """The hidden units' weights as images, for `plots/`."""
    return {"filters": (model.filter_images(), "Learned filters")}


def build_model(hp, spec):
    """Builds the RBM and its optimizer (SGD with momentum, as in Hinton's guide)."""
    model = RBM(spec["input_shape"], hidden_units=hp.Int("hidden_units", 16, 256, step=16,
                                                         default=64),
                cd_steps=hp.Int("cd_steps", 1, 10, default=1), name="rbm")
    learning_rate = hp.Float("learning_rate", 1e-3, 0.5, sampling="log", default=0.05)
    model.compile(optimizer=keras.optimizers.SGD(learning_rate, momentum=0.5))
    return model


if __name__ == "__main__":
    # 8x8 images of one horizontal and one vertical bar, at random places.
    rng = np.random.default_rng(0)
    images = np.zeros((1200, 8, 8, 1), "float32")
    for image in images:
        image[rng.integers(8), :] = 255
        image[:, rng.integers(8)] = 255
    spec = {"input_shape": [8, 8, 1]}
    hp = keras_tuner.HyperParameters()
    model = build_model(hp, spec)
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(1200)))
    before = model.evaluate(make_pipeline(data.skip(1000), spec, hp, training=False), verbose=0)
    model.fit(make_pipeline(data.take(1000), spec, hp, training=True), epochs=30, verbose=0)
    after = model.evaluate(make_pipeline(data.skip(1000), spec, hp, training=False), verbose=0)
    print(f"Reconstruction MSE of bars: {before:.4f} untrained, {after:.4f} trained")
