"""Deep convolutional GAN (DCGAN)

DCGAN with a custom train_step: two optimizers, loss trackers, seeded sampling.

The generator turns a normal code into an image with transposed convolutions and
batch norm; the discriminator, strided convolutions with LeakyReLU and dropout after
a minibatch standard-deviation channel, scores real against generated images.
Without those two, the generator collapsed onto 6 digit classes, 623 of 1,000
samples read as 8s. Each step trains the discriminator on a real and a generated
batch (real labels smoothed to 0.9), then the generator to fool it, as in keras-io's
DCGAN. The tuner's objective is the maximum mean discrepancy (MMD, Gaussian kernel)
between generated and validation images, which `fit` returns: GAN losses do not
say how good the samples are.

Default data: digits (scikit-learn's 1,797 handwritten digits, 8x8 grayscale).
Result: of 1,000 generated digits, a 10-nearest-neighbour vote trained on real digits
is sure of the class with mean top probability 0.839 (0.838-0.861), across 10 of 10
classes; uniform noise: 0.592, real test digits: 0.953 (median of 3 seeds, 1337-1339:
`python benchmarks/gan_quality.py --seeds 3`). The cnn recipe's softmax covers 10
classes (noise: 6-8) but is about as sure of noise (0.891) as of samples (0.914).
Validation MMD 0.008,
median of 3 seeds, range 0.007-0.010 (`kerasdl train gan --seed 1337|1338|1339`, the
epoch of the lowest validation MMD kept; `python benchmarks/figures.py --recipes gan`).
Parameters: 489,282 (generator and discriminator on digits)

Usage:
    kerasdl train gan
    kerasdl generate RUN --num 100 --output samples/
    kerasdl tune gan --max-trials 10    # minimises the validation MMD
    python gan.py    # standalone demo on images it draws itself
"""

import random

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras import layers
from keras import ops

TASK = "generation"
DEFAULTS = {"data": "digits", "epochs": 150, "batch_size": 64, "image_size": [32, 32]}
OBJECTIVE = keras_tuner.Objective("mmd", direction="min")


@keras.saving.register_keras_serializable(package="kerasdl")
class MinibatchStdDev(layers.Layer):
    """Appends the batch's mean feature standard deviation as one more channel.

    The discriminator can then see when a generated batch lacks variety, which
    keeps the generator from collapsing onto a few images (ProGAN, Karras et al.).
    """

    def call(self, inputs):
        spread = ops.mean(ops.std(inputs, axis=0))
        return ops.concatenate([inputs, ops.ones_like(inputs[..., :1]) * spread], axis=-1)


@keras.saving.register_keras_serializable(package="kerasdl")
class GAN(keras.Model):
    """A generator and a discriminator trained against each other.

    Calling the model on codes generates images; `generate(n)` draws the codes too.
    `seed` (of the codes drawn in training and sampling) None draws one from Python's
    `random`, which `keras.utils.set_random_seed` seeds: a run's `--seed` reaches it.
    The seed drawn is saved with the model.
    """

    def __init__(self, generator, discriminator, learning_rate=2e-4, seed=None, **kwargs):
        super().__init__(**kwargs)
        seed = random.randint(1, 2**31 - 1) if seed is None else seed
        self.generator = generator
        self.discriminator = discriminator
        self.learning_rate = learning_rate
        self.seed = seed
        self.latent_dim = generator.input_shape[-1]
        self.d_optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5, name="d_adam")
        self.g_optimizer = keras.optimizers.Adam(learning_rate, beta_1=0.5, name="g_adam")
        self.d_optimizer.build(discriminator.trainable_variables)
        self.g_optimizer.build(generator.trainable_variables)
        self.loss_fn = keras.losses.BinaryCrossentropy(from_logits=True)
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.d_loss_tracker = keras.metrics.Mean(name="d_loss")
        self.g_loss_tracker = keras.metrics.Mean(name="g_loss")
        self.built = True  # built from built parts

    @property
    def metrics(self):
        return [self.d_loss_tracker, self.g_loss_tracker]

    def call(self, codes, training=False):
        return self.generator(codes, training=training)

    def generate(self, num_samples, seed=None):
        """Generates `num_samples` images in [0, 1]; an integer `seed` repeats them."""
        codes = keras.random.normal((num_samples, self.latent_dim),
                                    seed=self.seed_generator if seed is None else seed)
        return self.generator(codes, training=False)

    def _codes(self, batch_size):
        return keras.random.normal((batch_size, self.latent_dim), seed=self.seed_generator)

    def _discriminator_loss(self, real, fake, training):
        real_logits = self.discriminator(real, training=training)
        fake_logits = self.discriminator(fake, training=training)
        return (self.loss_fn(ops.full_like(real_logits, 0.9), real_logits)
                + self.loss_fn(ops.zeros_like(fake_logits), fake_logits))

    def train_step(self, real):
        batch_size = ops.shape(real)[0]
        fake = self.generator(self._codes(batch_size), training=True)
        with tf.GradientTape() as tape:
            d_loss = self._discriminator_loss(real, fake, training=True)
        weights = self.discriminator.trainable_weights
        self.d_optimizer.apply(tape.gradient(d_loss, weights), weights)

        with tf.GradientTape() as tape:
            fake_logits = self.discriminator(
                self.generator(self._codes(batch_size), training=True), training=True)
            g_loss = self.loss_fn(ops.ones_like(fake_logits), fake_logits)
        weights = self.generator.trainable_weights
        self.g_optimizer.apply(tape.gradient(g_loss, weights), weights)
        return self._update_trackers(d_loss, g_loss)

    def test_step(self, real):
        fake_logits = self.discriminator(self.generate(ops.shape(real)[0]), training=False)
        g_loss = self.loss_fn(ops.ones_like(fake_logits), fake_logits)
        d_loss = self._discriminator_loss(real, self.generate(ops.shape(real)[0]), False)
        return self._update_trackers(d_loss, g_loss)

    def _update_trackers(self, d_loss, g_loss):
        self.d_loss_tracker.update_state(d_loss)
        self.g_loss_tracker.update_state(g_loss)
        return {"d_loss": self.d_loss_tracker.result(), "g_loss": self.g_loss_tracker.result()}

    def get_config(self):
        return {**super().get_config(), "learning_rate": self.learning_rate, "seed": self.seed,
                "generator": keras.saving.serialize_keras_object(self.generator),
                "discriminator": keras.saving.serialize_keras_object(self.discriminator)}

    @classmethod
    def from_config(cls, config):
        for part in ("generator", "discriminator"):
            config[part] = keras.saving.deserialize_keras_object(config[part])
        return cls(**config)


def make_pipeline(ds, spec, hp, training, batch_size=64):
    """Images scaled to [0, 1]; labels dropped: a GAN learns from images alone."""
    ds = ds.map(lambda x, y: x / 255.0, num_parallel_calls=tf.data.AUTOTUNE)
    if spec.get("cache", "memory") == "memory":  # else cached in a file, or too large
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(4096, spec.get("shuffle_buffer", 4096)))  # large images: fewer
    return ds.batch(batch_size, drop_remainder=training).prefetch(tf.data.AUTOTUNE)


def build_model(hp, spec):
    """Builds the generator and discriminator and compiles the GAN."""
    latent_dim = hp.Int("latent_dim", 16, 128, step=16, default=32)
    filters = hp.Int("filters", 16, 128, step=16, default=64)
    dropout_rate = hp.Float("dropout_rate", 0.0, 0.5, step=0.1, default=0.3)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-3, sampling="log", default=2e-4)
    height, width, channels = spec["input_shape"]
    if height % 4 or width % 4:
        raise ValueError(f"The GAN needs image sides divisible by 4. "
                         f"Received: image_size={[height, width]}")

    generator = keras.Sequential([
        keras.Input(shape=(latent_dim,), name="code"),
        layers.Dense(height // 4 * width // 4 * filters * 2, name="project"),
        layers.BatchNormalization(name="project_bn"),
        layers.LeakyReLU(0.2, name="project_relu"),
        layers.Reshape((height // 4, width // 4, filters * 2), name="unflatten"),
        layers.Conv2DTranspose(filters * 2, 4, strides=2, padding="same", name="up1"),
        layers.BatchNormalization(name="up1_bn"),
        layers.LeakyReLU(0.2, name="up1_relu"),
        layers.Conv2DTranspose(filters, 4, strides=2, padding="same", name="up2"),
        layers.BatchNormalization(name="up2_bn"),
        layers.LeakyReLU(0.2, name="up2_relu"),
        layers.Conv2D(channels, 3, padding="same", activation="sigmoid", name="image"),
    ], name="generator")
    discriminator = keras.Sequential([
        keras.Input(shape=(height, width, channels), name="image"),
        MinibatchStdDev(name="minibatch_stddev"),
        layers.Conv2D(filters, 3, strides=2, padding="same", name="down1"),
        layers.LeakyReLU(0.2, name="down1_relu"),
        layers.Conv2D(filters * 2, 3, strides=2, padding="same", name="down2"),
        layers.LeakyReLU(0.2, name="down2_relu"),
        layers.Flatten(name="flatten"),
        layers.Dropout(dropout_rate, name="dropout"),
        layers.Dense(1, name="logit"),
    ], name="discriminator")
    model = GAN(generator, discriminator, learning_rate=learning_rate, name="gan")
    model.compile()
    return model


def generate(model, num_samples, seed=None):
    """`num_samples` generated images in [0, 1]; the same seed gives the same images."""
    return model.generate(num_samples, seed=seed)


def serving_model(model):
    """What export writes and serve serves: the generator (latent codes in, images out)."""
    return model.generator


def mmd(real, fake):
    """Maximum mean discrepancy of two image sets, Gaussian kernel, median bandwidth."""
    real = np.asarray(real, "float64").reshape(len(real), -1)
    fake = np.asarray(fake, "float64").reshape(len(fake), -1)

    def distances(a, b):
        return np.maximum((a * a).sum(1)[:, None] + (b * b).sum(1)[None] - 2 * a @ b.T, 0)

    cross = distances(real, fake)
    bandwidth = np.median(cross)
    kernel = [np.exp(-d / bandwidth) for d in (distances(real, real), distances(fake, fake), cross)]
    return float(kernel[0].mean() + kernel[1].mean() - 2 * kernel[2].mean())


class ValidationMMD(keras.callbacks.Callback):
    """Adds `mmd` to each epoch's logs: generated (fixed codes) against validation images.

    Callbacks after it see the value, so a trainer can keep the best epoch by it.
    """

    def __init__(self, real):
        super().__init__()
        self.real = real

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["mmd"] = mmd(self.real, self.model.generate(len(self.real), seed=0))


def fit(hp, model, x, validation_data=None, callbacks=None, **kwargs):
    """Trains the GAN; returns `{"mmd": ...}` on the validation images for the tuner.

    With validation data every epoch logs its MMD (`ValidationMMD`, first among the
    callbacks); the value returned is the last epoch's.
    """
    if validation_data is None:
        return model.fit(x, callbacks=callbacks, **kwargs)
    real = np.concatenate([np.asarray(batch) for batch in validation_data])
    history = model.fit(x, callbacks=[ValidationMMD(real), *(callbacks or [])], **kwargs)
    scores = history.history.get("mmd")
    return {"mmd": scores[-1] if scores else mmd(real, model.generate(len(real), seed=0))}


if __name__ == "__main__":
    # 16x16 images of one bright square each, at random places.
    rng = np.random.default_rng(0)
    images = np.zeros((1024, 16, 16, 1), "float32")
    for image, (row, col) in zip(images, rng.integers(2, 10, (1024, 2))):
        image[row:row + 5, col:col + 5] = 255
    spec = {"input_shape": [16, 16, 1]}
    hp = keras_tuner.HyperParameters()
    model = build_model(hp, spec)
    data = tf.data.Dataset.from_tensor_slices((images, np.zeros(1024)))
    held_out = make_pipeline(data.take(256), spec, hp, training=False)
    noise = rng.uniform(0, 1, (256, 16, 16, 1))
    result = fit(hp, model, make_pipeline(data.skip(256), spec, hp, training=True),
                 validation_data=held_out, epochs=15, verbose=2)
    real = np.concatenate([np.asarray(batch) for batch in held_out])
    print(f"MMD to held-out squares: generated {result['mmd']:.3f}, noise {mmd(real, noise):.3f}")
