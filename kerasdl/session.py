"""One way from a recipe and its settings to data splits, a spec, a pinned search space
and a built model.

train, tune, bench, compare and check start here: `load_splits` (seeded data with the
recipe's spec), `search_space` / `pinned_space` (the recipe's whole search space, then
the `--set` values pinned in it), `build` (the model, under a strategy, with the
execution settings), `pipelines`, `balance` (a training split's class imbalance
countered) and `fixed_hp` (a run's recorded hyperparameters).
"""

import keras
import keras_tuner
import numpy as np
import tensorflow as tf

from kerasdl import devices
from kerasdl import hparams
from kerasdl import pretrained
from kerasdl import registry
from kerasdl.data import load_data
from kerasdl.errors import KerasdlError
from kerasdl.errors import UsageError
from kerasdl.registry import CLASSIFICATION
from kerasdl.settings import DEFAULT_STEPS_PER_EXECUTION
from kerasdl.settings import check_fits


def seed_everything(seed):
    """Seeds Python, NumPy and TensorFlow and makes TensorFlow ops deterministic."""
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()


def load_splits(recipe, settings):
    """Seeds everything, loads the recipe's data and gives it the recipe's spec.

    Raises:
        DataError: for data that cannot be read or used for the recipe's task.
        UsageError: for `weights` the recipe does not take, or an impossible batch or
            image size.
    """
    seed_everything(settings["seed"])
    splits = load_data(settings["data"], recipe.TASK, settings)
    splits.spec = model_spec(splits, settings, recipe)
    # An impossible batch or image size.
    check_fits(settings, splits, default_batch_size=recipe.DEFAULTS.get("batch_size"))
    return splits


def search_space(recipe, spec, train_data, batch_size):
    """The recipe's whole search space: its model's and its pipeline's `hp` calls.

    Builds the default model with a fresh `HyperParameters` (recording every knob) and
    its training pipeline; the model is thrown away.
    """
    space = keras_tuner.HyperParameters()
    with pretrained.downloads():
        recipe.build_model(space, spec)
    recipe.make_pipeline(train_data, spec, space, training=True, batch_size=batch_size)
    return space


def pinned_space(recipe, spec, overrides, train_data, batch_size):
    """`(space, hp)`: the search space, and a fresh `HyperParameters` with `overrides` fixed.

    Raises:
        UsageError: for an unknown hyperparameter or a value outside its domain.
    """
    space = search_space(recipe, spec, train_data, batch_size)
    return space, hparams.pinned(overrides or {}, space)


def fixed_hp(values):
    """A `HyperParameters` with each of `values` (name -> value) fixed: a run's or a
    search's recorded hyperparameters."""
    hp = keras_tuner.HyperParameters()
    for name, value in (values or {}).items():
        hp.Fixed(name, value)
    return hp


def build(recipe, spec, settings, train_data, strategy=None):
    """Builds a recipe's model with the `set` overrides of `settings` pinned.

    The default model is built first with a fresh `HyperParameters`, which records the
    whole search space (the model's and the pipeline's); the overrides are checked
    against it, then the model is built again from a clean session and the seed.

    Returns:
        `(model, hp)`.

    Raises:
        UsageError: for an unknown hyperparameter or a value outside its domain.
    """
    imagenet = spec.get("weights") == "imagenet"
    weights_files = (registry.pretrained_of(recipe) or {}).get("weights_files")
    if imagenet:
        pretrained.verify_downloads(patterns=weights_files)  # before Keras loads a changed file
    _, hp = pinned_space(recipe, spec, settings.get("set", {}), train_data,
                         settings["batch_size"])
    devices.clear_session()  # keeps the `--mixed-precision` policy
    seed_everything(settings["seed"])
    # Variables are created under the strategy (mirrored on each replica).
    with pretrained.downloads(), (strategy or tf.distribute.get_strategy()).scope():
        model = recipe.build_model(hp, spec)
    apply_execution_settings(model, settings)
    if imagenet:
        pretrained.verify_downloads(patterns=weights_files)  # records a file downloaded now
    return model, hp


def apply_execution_settings(model, settings):
    """Sets the `jit` (XLA) and `steps_per_execution` settings on a compiled model.

    Under a strategy of several replicas, one step per execution: Keras 3.15's loop of
    steps fails there ("Graph execution error" at `while/cond/Placeholder`).

    Raises:
        UsageError: for `steps_per_execution` above 1 with several replicas.
    """
    if settings.get("jit") is not None:
        model.jit_compile = bool(settings["jit"])
    steps = settings.get("steps_per_execution")
    if model.distribute_strategy.num_replicas_in_sync > 1:
        if steps is not None and steps > 1:
            raise UsageError(f"`steps_per_execution` {steps} does not work with a strategy "
                             "of several replicas (Keras' loop of steps fails there); "
                             "valid: 1, or leave it out.")
        steps = 1
    model.steps_per_execution = steps or DEFAULT_STEPS_PER_EXECUTION


def model_spec(splits, settings, recipe=None):
    """The data's spec, plus the `weights` setting for recipes that take pretrained weights.

    Raises:
        UsageError: for `weights` given to a recipe that declares no `PRETRAINED`.
    """
    if settings.get("weights") is not None:
        if recipe is not None and not registry.pretrained_of(recipe):
            raise UsageError(f"`weights` is for recipes that declare a pretrained base "
                             f"(PRETRAINED, such as vgg16 and mobilenet); this one has none. "
                             f"Received: weights={settings['weights']}")
        return {**splits.spec, "weights": settings["weights"]}
    return splits.spec


def pipelines(recipe, splits, hp, batch_size):
    """Returns the recipe's train, validation and test pipelines."""
    return (
        recipe.make_pipeline(splits.train, splits.spec, hp, training=True, batch_size=batch_size),
        recipe.make_pipeline(splits.validation, splits.spec, hp, training=False, batch_size=batch_size),
        recipe.make_pipeline(splits.test, splits.spec, hp, training=False, batch_size=batch_size),
    )


def balance(splits, how, seed):
    """Counters class imbalance in the training split: `class_weight` or `oversample`.

    Returns:
        The `class_weight` dict for `fit` (or None); with `oversample`, `splits.train`
        is replaced by one where every class is drawn as often as the largest.
    """
    if how in (None, "none"):
        return None
    if splits.spec.get("task") not in CLASSIFICATION:
        raise KerasdlError(f"`balance` needs a classification recipe; this one is "
                           f"{splits.spec.get('task')}.")
    labels = np.concatenate([np.asarray(y) for _, y in splits.train.batch(4096)])
    counts = np.bincount(labels, minlength=splits.spec["num_classes"])
    if how == "class_weight":
        return {i: float(len(labels) / (len(counts) * count)) if count else 0.0
                for i, count in enumerate(counts)}
    rng = np.random.default_rng(seed)
    indices = np.concatenate([rng.choice(np.flatnonzero(labels == label), counts.max())
                              for label in np.flatnonzero(counts)])
    rng.shuffle(indices)
    features = np.concatenate([np.asarray(x) for x, _ in splits.train.batch(4096)])
    splits.train = tf.data.Dataset.from_tensor_slices((features[indices], labels[indices]))
    return None
