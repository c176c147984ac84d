"""VGG16 fine-tuning

Transfer learning with a pretrained VGG16 base and a new head, in two phases.

The convolutional base of `keras.applications.VGG16` (13 conv layers in 5 blocks)
comes without its ImageNet classifier; a new head (global pooling, dense, dropout,
softmax) learns the classes. As in the Keras transfer-learning guide, phase 1 trains
the head on the frozen base; phase 2 unfreezes the top `unfreeze_layers` layers of
the base (4: block 5) and trains on with a learning rate about a hundred times lower.
VGG16 has no batch norm; its inputs are preprocessed the way it was pretrained
(`vgg16.preprocess_input`: BGR, ImageNet means subtracted). With `--weights none`
the whole network trains from the start, in one phase.

Default data: shapes (generated colour photos of 5 shapes, 32x32, resized to 64x64).
Result: needs its ImageNet weights (a download). From scratch (`--weights none`) it stays
at chance on shapes: 0.200 test accuracy (0.183-0.200, median of seeds 1337-1339; loss
ln 5): 14.7 million weights without batch norm, 900 images. The standalone demo (an easy
colour task, learning rate 1e-4) reaches 1.000. CPU time per epoch on shapes at 64x64:
phase 1 (frozen base) 8-9 s, phase 2 (block 5) 9-10 s, from scratch 20 s (2 cores).
Parameters: 14,780,997 (the default model on shapes)

Usage:
    kerasdl train vgg16                                   # ImageNet weights
    kerasdl train vgg16 --data pets/ --image-size 160 --set unfreeze_layers=8
    kerasdl train vgg16 --data tfds:cats_vs_dogs
    kerasdl train vgg16 --weights base.weights.h5         # a base of your own
    kerasdl export RUN --format base                      # writes such a file
    python vgg16.py    # standalone demo on images it draws itself, no download
"""

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras import layers

TASK = "image_classification"
DEFAULTS = {"data": "shapes", "epochs": 10, "batch_size": 32, "image_size": [64, 64],
            "weights": "imagenet"}
OBJECTIVE = "val_accuracy"
# Takes `--weights` (imagenet, none or a base weights file): the base is the layer
# named "base"; Keras keeps its ImageNet weights in these files (sha256-checked).
PRETRAINED = {"layer": "base", "weights_files": ["vgg16_weights_*.h5"]}

def make_pipeline(ds, spec, hp, training, batch_size=32):
    """Resizes to the model's image size, makes grayscale RGB, batches; augments in training.

    Images stay in [0, 255]: the model applies the base's own `preprocess_input`.
    """
    size = spec.get("image_size") or spec["input_shape"][:2]

    def prepare(image, label):
        image = tf.image.resize(image, size)
        if image.shape[-1] == 1:
            image = tf.image.grayscale_to_rgb(image)
        return image, label

    ds = ds.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    if spec.get("cache", "memory") == "memory":  # else cached in a file, or too large
        ds = ds.cache()
    if training:
        ds = ds.shuffle(min(2048, spec.get("shuffle_buffer", 2048)))  # large images: fewer
    ds = ds.batch(batch_size)
    if training and hp.Boolean("augment", default=False):
        augment = keras.Sequential([layers.RandomRotation(0.05),
                                    layers.RandomTranslation(0.1, 0.1),
                                    layers.RandomZoom(0.1)], name="augment")
        ds = ds.map(lambda x, y: (augment(x, training=True), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    return ds.prefetch(tf.data.AUTOTUNE)


def build_model(hp, spec):
    """Builds the base and the head, compiled for phase 1 (the base frozen).

    `spec["weights"]` is "imagenet", "none" or the path of a base weights file.
    """
    head_units = hp.Int("head_units", 32, 512, step=32, default=128)
    dropout_rate = hp.Float("dropout_rate", 0.0, 0.6, step=0.1, default=0.2)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    # Read by `fit` for phase 2; declared here so they belong to the search space.
    hp.Int("head_epochs", 1, 50, default=5)
    hp.Int("unfreeze_layers", 0, 18, default=4)
    hp.Float("fine_tune_learning_rate", 1e-6, 1e-3, sampling="log", default=1e-5)

    weights = spec.get("weights", "imagenet")
    pretrained = weights != "none"
    size = spec.get("image_size") or spec["input_shape"][:2]
    base = keras.applications.VGG16(input_shape=(*size, 3), include_top=False,
                                    weights=weights if pretrained else None, name="base")
    base.trainable = not pretrained

    inputs = keras.Input(shape=(*size, 3), name="image")
    x = keras.applications.vgg16.preprocess_input(inputs)
    # training=False: the base runs in inference mode, as pretrained bases should.
    x = base(x, training=False)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(head_units, activation="relu", name="head")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(spec["num_classes"], activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="vgg16")
    compile_model(model, learning_rate)
    return model


def compile_model(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def unfreeze_top(base, count):
    """Makes the top `count` layers of `base` trainable."""
    base.trainable = True
    for index, layer in enumerate(base.layers):
        layer.trainable = index >= len(base.layers) - count


def fit(hp, model, train_data, validation_data=None, epochs=10, initial_epoch=0, **kwargs):
    """Phase 1: the head on the frozen base for `head_epochs`; phase 2: the top of the base.

    Phase 2 recompiles with `fine_tune_learning_rate` and continues the epoch count
    where phase 1 stopped; `initial_epoch` resumes an interrupted run in either phase.
    Returns the history of both phases.
    """
    base = model.get_layer("base")
    if base.trainable:  # no pretrained weights: one phase, everything trains
        return model.fit(train_data, validation_data=validation_data, epochs=epochs,
                         initial_epoch=initial_epoch, **kwargs)
    head_epochs = min(hp.get("head_epochs"), epochs)
    history = keras.callbacks.History()
    history.history = {}
    if initial_epoch <= head_epochs:
        history = model.fit(train_data, validation_data=validation_data, epochs=head_epochs,
                            initial_epoch=initial_epoch, **kwargs)
    if head_epochs < epochs and hp.get("unfreeze_layers") > 0:
        unfreeze_top(base, hp.get("unfreeze_layers"))
        compile_model(model, hp.get("fine_tune_learning_rate"))
        fine_tune = model.fit(train_data, validation_data=validation_data, epochs=epochs,
                              initial_epoch=max(initial_epoch, head_epochs), **kwargs)
        for name, values in fine_tune.history.items():
            history.history.setdefault(name, []).extend(values)
    return history


if __name__ == "__main__":
    # A red or a blue square on grey noise, 32x32; the base trains from scratch
    # (weights "none") so that the demo needs no download.
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:32, 0:32]
    images = rng.uniform(60, 160, (600, 32, 32, 3)).astype("float32")
    labels = rng.integers(0, 2, 600).astype("int32")
    for image, label in zip(images, labels):
        cy, cx = rng.integers(8, 24, 2)
        square = (abs(yy - cy) < 6) & (abs(xx - cx) < 6)
        image[square] = [230, 40, 40] if label == 0 else [40, 40, 230]
    spec = {"input_shape": [32, 32, 3], "num_classes": 2, "weights": "none"}
    hp = keras_tuner.HyperParameters()
    hp.Fixed("learning_rate", 1e-4)  # VGG16 has no batch norm: from scratch, go slow
    model = build_model(hp, spec)
    train = tf.data.Dataset.from_tensor_slices((images[:500], labels[:500]))
    test = tf.data.Dataset.from_tensor_slices((images[500:], labels[500:]))
    fit(hp, model, make_pipeline(train, spec, hp, training=True), epochs=4, verbose=2)
    loss, accuracy = model.evaluate(make_pipeline(test, spec, hp, training=False), verbose=0)
    print(f"Test accuracy on the red and blue squares: {accuracy:.3f}")
