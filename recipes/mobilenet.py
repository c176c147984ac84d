"""MobileNet fine-tuning

Transfer learning with a pretrained MobileNetV2 (or V3) base and a new head, in two phases.

The base comes from `keras.applications` without its ImageNet classifier; a new head
(global pooling, dense, dropout, softmax) learns the classes. As in the Keras
transfer-learning guide, phase 1 trains the head on the frozen base; phase 2 unfreezes
the top `unfreeze_layers` of the base and trains on with a learning rate about a
hundred times lower. The base always runs in inference mode, so its batch norm
statistics stay those it was pretrained with. With `--weights none` there is nothing
to preserve: the whole network trains from the start, in one phase.

Default data: shapes (generated colour photos of 5 shapes, 32x32, resized to 96x96).
Result: pretrained from scratch on digits 0-4, then fine-tuned on 100 examples of digits
5-9 at 32x32: 0.733 test accuracy (median of seeds 1337, 1, 2; range 0.689-0.761); the
same model from scratch: 0.572 (0.544-0.606) (BENCHMARKS.md, "Transfer learning";
tests/test_transfer.py). From scratch on shapes, 10 epochs: 0.273 (0.257-0.290; chance
0.2) (`kerasdl train mobilenet --weights none`, seeds 1337-1339, `benchmarks/figures.py`):
too few images to learn from zero, which is what pretrained weights are for (ImageNet
needs a download).
Parameters: 574,821 (the default model on shapes)

Usage:
    kerasdl train mobilenet                               # ImageNet weights
    kerasdl train mobilenet --data flowers/ --image-size 160
    kerasdl train mobilenet --data tfds:tf_flowers --set version=v3_small
    kerasdl train mobilenet --weights base.weights.h5     # a base of your own
    kerasdl export RUN --format base                      # writes such a file
    python mobilenet.py    # standalone demo on images it draws itself, no download
"""

import keras
import keras_tuner
import numpy as np
import tensorflow as tf
from keras import layers

TASK = "image_classification"
DEFAULTS = {"data": "shapes", "epochs": 10, "batch_size": 32, "image_size": [96, 96],
            "weights": "imagenet"}
OBJECTIVE = "val_accuracy"
# Takes `--weights` (imagenet, none or a base weights file): the base is the layer
# named "base"; Keras keeps its ImageNet weights in these files (sha256-checked).
PRETRAINED = {"layer": "base",
              "weights_files": ["mobilenet_v2_weights_*.h5", "weights_mobilenet_v3_*.h5"]}

APPLICATIONS = {
    "v2": (keras.applications.MobileNetV2, keras.applications.mobilenet_v2.preprocess_input),
    "v3_small": (keras.applications.MobileNetV3Small,
                 keras.applications.mobilenet_v3.preprocess_input),
    "v3_large": (keras.applications.MobileNetV3Large,
                 keras.applications.mobilenet_v3.preprocess_input),
}


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
    version = hp.Choice("version", list(APPLICATIONS), default="v2")
    alpha = hp.Choice("alpha", [0.35, 0.5, 0.75, 1.0], default=0.35)
    head_units = hp.Int("head_units", 32, 512, step=32, default=128)
    dropout_rate = hp.Float("dropout_rate", 0.0, 0.6, step=0.1, default=0.2)
    learning_rate = hp.Float("learning_rate", 1e-4, 1e-2, sampling="log", default=1e-3)
    # Read by `fit` for phase 2; declared here so they belong to the search space.
    hp.Int("head_epochs", 1, 50, default=5)
    hp.Int("unfreeze_layers", 0, 150, step=10, default=30)
    hp.Float("fine_tune_learning_rate", 1e-6, 1e-3, sampling="log", default=1e-5)

    weights = spec.get("weights", "imagenet")
    pretrained = weights != "none"
    application, preprocess_input = APPLICATIONS[version]
    size = spec.get("image_size") or spec["input_shape"][:2]
    base = application(input_shape=(*size, 3), alpha=alpha, include_top=False,
                       weights=weights if pretrained else None, name="base")
    base.trainable = not pretrained
    if not pretrained:
        # Keras' MobileNets use batch norm momentum 0.999: the moving statistics need
        # thousands of steps to settle, and a model trained from scratch on a small
        # data set then scores at chance in inference mode. 0.9 settles in tens.
        for layer in base.layers:
            if isinstance(layer, layers.BatchNormalization):
                layer.momentum = 0.9

    inputs = keras.Input(shape=(*size, 3), name="image")
    x = preprocess_input(inputs)
    # training=False keeps batch norm in inference mode even once the base is unfrozen;
    # a base trained from scratch needs its batch statistics, so it follows the phase.
    x = base(x, training=False if pretrained else None)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(head_units, activation="relu", name="head")(x)
    x = layers.Dropout(dropout_rate, name="dropout")(x)
    outputs = layers.Dense(spec["num_classes"], activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="mobilenet")
    compile_model(model, learning_rate)
    return model


def compile_model(model, learning_rate):
    model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])


def unfreeze_top(base, count):
    """Makes the top `count` layers of `base` trainable, batch norm layers excepted."""
    base.trainable = True
    for index, layer in enumerate(base.layers):
        top = index >= len(base.layers) - count
        layer.trainable = top and not isinstance(layer, layers.BatchNormalization)


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
    model = build_model(hp, spec)
    train = tf.data.Dataset.from_tensor_slices((images[:500], labels[:500]))
    test = tf.data.Dataset.from_tensor_slices((images[500:], labels[500:]))
    fit(hp, model, make_pipeline(train, spec, hp, training=True), epochs=6, verbose=2)
    loss, accuracy = model.evaluate(make_pipeline(test, spec, hp, training=False), verbose=0)
    print(f"Test accuracy on the red and blue squares: {accuracy:.3f}")
