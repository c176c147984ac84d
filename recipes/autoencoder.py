"""Autoencoders

Six autoencoders behind one `variant` hyperparameter; reconstruction error flags anomalies.

- undercomplete: a deep dense encoder and decoder around a narrow bottleneck;
- sparse: the same with an L1 penalty on the bottleneck's activity;
- denoising: the same, trained to undo Gaussian noise added in the training pipeline only;
- convolutional: strided convolutions down, transposed convolutions up;
- contractive: a sigmoid bottleneck penalised by the Frobenius norm of its Jacobian;
- variational: an encoder of means and log-variances, a sampled code, and a custom
  `train_step` that adds the KL divergence to the reconstruction loss.
Models take images in [0, 255] and reconstruct them in [0, 1].

Default data: digits (scikit-learn's 1,797 handwritten digits, 8x8 grayscale).
Result: 0.0097 test MSE (undercomplete; sparse 0.0092, denoising 0.0112, convolutional
0.0084, contractive 0.0119, variational 0.0382), medians of 3 seeds (ranges 0.0086-0.0123,
0.0087-0.0119, 0.0110-0.0142, 0.0084-0.0130, 0.0101-0.0131, 0.0363-0.0382; `kerasdl train
autoencoder --set variant=NAME --seed 1337|1338|1339`; `python benchmarks/figures.py
--recipes autoencoder`). Trained without the 0s (`--exclude-class 0`), its reconstruction
error ranks the test 0s as anomalies with ROC AUC 0.996 (0.995-0.999).
Parameters: 103,248 (the default model on digits)

Usage:
    kerasdl train autoencoder
    kerasdl train autoencoder --set variant=variational --set bottleneck=8
    kerasdl train autoencoder --exclude-class 0    # metrics.json: anomaly_roc_auc
    kerasdl predict RUN images/    # reconstruction error per image: high means unusual
    python autoencoder.py    # standalone demo on images it draws itself
"""

import math
import random

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras import layers
from keras import ops

TASK = "reconstruction"
DEFAULTS = {"data": "digits", "epochs": 60, "batch_size": 32, "image_size": [32, 32]}
OBJECTIVE = keras_tuner.Objective("val_mse", direction="min")
VARIANTS = ["undercomplete", "sparse", "denoising", "convolutional", "contractive", "variational"]


def _variant(hp):
    return hp.Choice("variant", VARIANTS, default="undercomplete")


@keras.saving.register_keras_serializable(package="kerasdl")
class ContractiveDense(layers.Dense):
    """A sigmoid Dense layer that adds `contraction * ||dh/dx||_F^2` to the loss.

    For h = sigmoid(Wx + b) the Jacobian's squared norm is
    sum_j (h_j (1 - h_j))^2 sum_i W_ij^2, so no second backward pass is needed.
    """

    def __init__(self, units, contraction=1e-3, **kwargs):
        kwargs["activation"] = "sigmoid"
        super().__init__(units, **kwargs)
        self.contraction = contraction

    def call(self, inputs):
        code = super().call(inputs)
        slope = ops.square(code * (1.0 - code))
        penalty = ops.sum(slope * ops.sum(ops.square(self.kernel), axis=0), axis=1)
        self.add_loss(self.contraction * ops.mean(penalty))
        return code

    def get_config(self):
        return {**super().get_config(), "contraction": self.contraction}


@keras.saving.register_keras_serializable(package="kerasdl")
class VAE(keras.Model):
    """A variational autoencoder: `encoder` gives (z_mean, z_log_var), `decoder` an image.

    `seed` (of the sampled codes) None draws one from Python's `random`, which
    `keras.utils.set_random_seed` seeds: a run's `--seed` reaches it. The seed drawn is
    saved with the model.
    """

    def __init__(self, encoder, decoder, seed=None, **kwargs):
        super().__init__(**kwargs)
        seed = random.randint(1, 2**31 - 1) if seed is None else seed
        self.encoder = encoder
        self.decoder = decoder
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.trackers = [keras.metrics.Mean(name=name) for name in
                         ("loss", "reconstruction_loss", "kl_loss", "mse")]
        self.built = True  # built from built parts

    @property
    def metrics(self):
        return self.trackers

    @property
    def input_shape(self):
        return self.encoder.input_shape

    def call(self, inputs, training=False):
        z_mean, _ = self.encoder(inputs, training=training)
        return self.decoder(z_mean, training=training)

    def sample(self, num_samples, seed=None):
        """Decodes `num_samples` codes drawn from the standard normal prior."""
        latent_dim = self.decoder.input_shape[-1]
        codes = keras.random.normal((num_samples, latent_dim), seed=seed or self.seed_generator)
        return self.decoder(codes, training=False)

    def _vae_losses(self, data, training):
        images, targets = data
        z_mean, z_log_var = self.encoder(images, training=training)
        noise = keras.random.normal(ops.shape(z_mean), seed=self.seed_generator)
        reconstruction = self.decoder(z_mean + ops.exp(0.5 * z_log_var) * noise,
                                      training=training)
        pixels = math.prod(self.decoder.output_shape[1:])
        flat_targets = ops.reshape(targets, (-1, pixels))
        flat_outputs = ops.reshape(reconstruction, (-1, pixels))
        reconstruction_loss = ops.mean(
            keras.losses.binary_crossentropy(flat_targets, flat_outputs) * pixels)
        kl_loss = -0.5 * ops.mean(ops.sum(
            1 + z_log_var - ops.square(z_mean) - ops.exp(z_log_var), axis=1))
        mse = ops.mean(ops.square(flat_targets - flat_outputs))
        return reconstruction_loss + kl_loss, reconstruction_loss, kl_loss, mse

    def _update_trackers(self, values):
        for tracker, value in zip(self.trackers, values):
            tracker.update_state(value)
        return {tracker.name: tracker.result() for tracker in self.trackers}

    def train_step(self, data):
        with tf.GradientTape() as tape:
            values = self._vae_losses(data, training=True)
        gradients = tape.gradient(values[0], self.trainable_weights)
        self.optimizer.apply(gradients, self.trainable_weights)
        return self._update_trackers(values)

    def test_step(self, data):
        return self._update_trackers(self._vae_losses(data, training=False))

    def get_config(self):
        return {**super().get_config(), "seed": self.seed,
                "encoder": keras.saving.serialize_keras_object(self.encoder),
                "decoder": keras.saving.serialize_keras_object(self.decoder)}

    @classmethod
    def from_config(cls, config):
        config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        config["decoder"] = keras.saving.deserialize_keras_object(config["decoder"])
        return cls(**config)


def reconstruction_target(images):
    """What the model reconstructs from images in [0, 255]: the images in [0, 1]."""
    return images / 255.0


def make_pipeline(ds, spec, hp, training, batch_size=32):
    """Pairs each image with itself in [0, 1]; adds noise to the inputs for `denoising`."""
    variant = _variant(hp)
    noise_stddev = hp.Float("noise_stddev", 0.05, 0.5, step=0.05, default=0.2)
    ds = ds.map(lambda x, y: (x, reconstruction_target(x)),
                num_parallel_calls=tf.data.AUTOTUNE)
    if spec.get("cache", "memory") == "memory":  # else cached in a file, or too large
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(4096, spec.get("shuffle_buffer", 4096)))  # large images: fewer
    ds = ds.batch(batch_size)
    if training and variant == "denoising":
        def add_noise(x, y):
            noise = tf.random.normal(tf.shape(x), stddev=noise_stddev * 255.0)
            return tf.clip_by_value(x + noise, 0.0, 255.0), y

        ds = ds.map(add_noise, num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def image_grids(model):
    """The variational autoencoder's images decoded from its prior, for `plots/`."""
    if isinstance(model, VAE):
        return {"prior_samples": (model.sample(64), "Decoded from the prior")}
    return {}


def _encoder_body(inputs, variant, units):
    x = layers.Rescaling(1.0 / 255, name="rescale")(inputs)
    if variant == "convolutional":
        x = layers.Conv2D(32, 3, strides=2, padding="same", activation="relu", name="conv1")(x)
        x = layers.Conv2D(64, 3, strides=2, padding="same", activation="relu", name="conv2")(x)
        return layers.Flatten(name="flatten")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dense(units, activation="relu", name="encode1")(x)
    return layers.Dense(units // 2, activation="relu", name="encode2")(x)


def _decoder(code, shape, variant, units):
    height, width, channels = shape
    if variant == "convolutional":
        x = layers.Dense(height // 4 * width // 4 * 64, activation="relu", name="expand")(code)
        x = layers.Reshape((height // 4, width // 4, 64), name="unflatten")(x)
        x = layers.Conv2DTranspose(64, 3, strides=2, padding="same", activation="relu",
                                   name="deconv1")(x)
        x = layers.Conv2DTranspose(32, 3, strides=2, padding="same", activation="relu",
                                   name="deconv2")(x)
        return layers.Conv2D(channels, 3, padding="same", activation="sigmoid",
                             name="reconstruction")(x)
    x = layers.Dense(units // 2, activation="relu", name="decode1")(code)
    x = layers.Dense(units, activation="relu", name="decode2")(x)
    x = layers.Dense(math.prod(shape), activation="sigmoid", name="pixels")(x)
    return layers.Reshape(shape, name="reconstruction")(x)


def build_model(hp, spec):
    """Builds and compiles the autoencoder of the chosen `variant`."""
    variant = _variant(hp)
    bottleneck = hp.Int("bottleneck", 2, 64, step=2, default=16)
    units = hp.Int("units", 64, 512, step=64, default=256)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    l1 = hp.Float("l1", 1e-7, 1e-3, sampling="log", default=1e-5)
    contraction = hp.Float("contraction", 1e-5, 1e-1, sampling="log", default=1e-3)
    shape = tuple(spec["input_shape"])
    if variant == "convolutional" and (shape[0] % 4 or shape[1] % 4):
        raise ValueError(f"The convolutional variant needs image sides divisible by 4. "
                         f"Received: image_size={list(shape[:2])}")
    optimizer = keras.optimizers.Adam(learning_rate)

    inputs = keras.Input(shape=shape, name="image")
    features = _encoder_body(inputs, variant, units)
    if variant == "variational":
        z_mean = layers.Dense(bottleneck, name="z_mean")(features)
        z_log_var = layers.Dense(bottleneck, name="z_log_var")(features)
        encoder = keras.Model(inputs, [z_mean, z_log_var], name="encoder")
        code = keras.Input(shape=(bottleneck,), name="code")
        decoder = keras.Model(code, _decoder(code, shape, variant, units), name="decoder")
        model = VAE(encoder, decoder, name="vae")
        model.compile(optimizer=optimizer)
        return model

    if variant == "sparse":
        regularizer = keras.regularizers.L1(l1)
        code = layers.Dense(bottleneck, activation="relu", activity_regularizer=regularizer,
                            name="code")(features)
    elif variant == "contractive":
        code = ContractiveDense(bottleneck, contraction=contraction, name="code")(features)
    else:
        code = layers.Dense(bottleneck, activation="relu", name="code")(features)
    outputs = _decoder(code, shape, variant, units)
    model = keras.Model(inputs, outputs, name=f"{variant}_autoencoder")
    model.compile(optimizer=optimizer, loss="binary_crossentropy",
                  metrics=[keras.metrics.MeanSquaredError(name="mse")])
    return model


if __name__ == "__main__":
    # 16x16 images of one bright blob each; a bar image is the anomaly to spot.
    rng = np.random.default_rng(0)
    rows, cols = np.mgrid[:16, :16]
    centres = rng.uniform(4, 12, (1000, 2))
    images = 255 * np.exp(-((rows - centres[:, :1, None]) ** 2
                            + (cols - centres[:, 1:, None]) ** 2) / 8.0)
    images = images[..., None].astype("float32")
    bar = np.zeros((1, 16, 16, 1), "float32")
    bar[0, 7:9, 2:14] = 255
    spec = {"input_shape": [16, 16, 1]}
    hp = keras_tuner.HyperParameters()
    model = build_model(hp, spec)
    train = tf.data.Dataset.from_tensor_slices((images[:900], np.zeros(900)))
    model.fit(make_pipeline(train, spec, hp, training=True), epochs=10, verbose=2)

    def error(x):
        return float(np.mean((np.asarray(model.predict(x, verbose=0))
                              - reconstruction_target(x)) ** 2))

    print(f"Reconstruction error: blobs {error(images[900:]):.4f}, the bar {error(bar):.4f}")
