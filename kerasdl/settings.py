"""Run settings: recipe defaults, then a config file, then the command line."""

import json
from pathlib import Path

from kerasdl.errors import UsageError

DEFAULT_SEED = 1337
# Every key a config file may hold, with its meaning (for error messages and docs).
KEYS = {
    "data": "data source",
    "target": "CSV target column",
    "data_dir": "TFDS data folder",
    "epochs": "training epochs",
    "batch_size": "batch size",
    "seed": "random seed",
    "split_seed": "seed of the train/validation/test split",
    "validation_split": "fraction of examples for validation",
    "test_split": "fraction of examples for testing",
    "image_size": "[height, width] images are resized to",
    "channels": "colour channels of image folders (1 or 3)",
    "window": "time steps a forecasting model sees",
    "horizon": "how many steps ahead a forecast is",
    "classes": "keep only these classes, in this order (a task of its own)",
    "train_examples": "use only this many training examples, drawn at random (few-shot)",
    "weights": "pretrained weights of a transfer recipe: imagenet, none or a weights file",
    "early_stopping": "stop after this many epochs without a better validation loss",
    "keep_best": "keep the best validation epoch's weights (default true; false: the last)",
    "balance": "counter class imbalance: none, class_weight or oversample",
    "gradients": "record per-layer gradient norms each epoch (gradients.csv)",
    "device": "auto, cpu or gpu",
    "mixed_precision": "mixed_float16 on GPUs, mixed_bfloat16 on CPUs with bfloat16",
    "jit": "XLA compilation of the training step (true/false; default the recipe's)",
    "steps_per_execution": "training steps run per call of the compiled step (default 32)",
    "strategy": "tf.distribute strategy: auto, default, mirrored or multiworker (TF_CONFIG)",
    "exclude_classes": "classes left out of training and validation (anomaly detection)",
    "output": "run directory",
    "merge_validation": "train on train + validation, with no validation (final models)",
    "set": "hyperparameters, NAME: VALUE",
}


def read_config(path):
    """Reads a JSON or YAML config file of settings.

    Raises:
        UsageError: for a missing or malformed file, or unknown keys.
    """
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"Config file not found: {str(path)!r}.")
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            config = json.loads(text)
        else:
            import yaml

            config = yaml.safe_load(text)
    except Exception as error:  # json and yaml raise different classes for the same thing
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise UsageError(f"Malformed config file {str(path)!r}: {first}") from None
    if config is None:
        config = {}
    if not isinstance(config, dict):
        raise UsageError(
            f"Config file {str(path)!r} must hold a mapping of settings. "
            f"Valid keys: {', '.join(KEYS)}"
        )
    unknown = [key for key in config if key not in KEYS]
    if unknown:
        raise UsageError(
            f"Unknown setting(s) {', '.join(map(repr, unknown))} in {str(path)!r}. "
            f"Valid keys: {', '.join(KEYS)}"
        )
    if not isinstance(config.get("set", {}), dict):
        raise UsageError(f"`set` in {str(path)!r} must be a mapping of NAME: VALUE.")
    return config


# Small models on a CPU spend more time per step in Python and in launching the step
# than in arithmetic; running 32 steps per call pays that once (BENCHMARKS.md, "Speed").
DEFAULT_STEPS_PER_EXECUTION = 32


def resolve(defaults, config=None, cli=None):
    """Merges settings: recipe `defaults` < `config` file < `cli` (values not None).

    Returns:
        The checked settings dict; `set` holds the merged hyperparameter overrides.
    """
    settings = {"seed": DEFAULT_SEED, "split_seed": 1337, "validation_split": 0.2,
                "test_split": 0.2, "set": {}}
    for layer in (defaults or {}, config or {}, cli or {}):
        for key, value in layer.items():
            if value is None:
                continue
            if key == "set":
                settings["set"] = {**settings["set"], **value}
            else:
                settings[key] = value
    return check(settings)


def _positive_int(settings, key):
    value = settings.get(key)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise UsageError(f"`{key}` must be a positive integer. Received: {key}={value!r}")


def check(settings):
    """Checks the types and ranges of settings.

    Raises:
        UsageError: naming the setting, what is valid, and the received value.
    """
    _positive_int(settings, "epochs")
    _positive_int(settings, "batch_size")
    _positive_int(settings, "window")
    _positive_int(settings, "horizon")
    _positive_int(settings, "train_examples")
    _positive_int(settings, "early_stopping")
    _positive_int(settings, "steps_per_execution")
    if settings.get("keep_best") not in (None, True, False):
        raise UsageError("`keep_best` must be true or false. "
                         f"Received: keep_best={settings['keep_best']!r}")
    for key, valid in (("device", ("auto", "cpu", "gpu")),
                       ("strategy", ("auto", "default", "mirrored", "multiworker"))):
        if settings.get(key) is not None and settings[key] not in valid:
            raise UsageError(f"`{key}` must be one of {', '.join(valid)}. "
                             f"Received: {key}={settings[key]}")
    if settings.get("balance") not in (None, "none", "class_weight", "oversample"):
        raise UsageError("`balance` must be none, class_weight or oversample. "
                         f"Received: balance={settings['balance']}")
    weights = settings.get("weights")
    if weights is not None and str(weights) not in ("imagenet", "none"):
        path = Path(str(weights)).expanduser()
        if not path.is_file() or not path.name.endswith(".h5"):
            raise UsageError(
                "`weights` must be imagenet, none, or an existing .h5 weights file "
                f"(`kerasdl export RUN --format base` writes one). Received: weights={weights}"
            )
        settings["weights"] = str(path.resolve())
    for key in ("seed", "split_seed"):
        value = settings.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise UsageError(f"`{key}` must be a non-negative integer. Received: {key}={value!r}")
    for key in ("validation_split", "test_split"):
        value = settings[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < 0.5:
            raise UsageError(f"`{key}` must be a fraction between 0 and 0.5. Received: {key}={value!r}")
    size = settings.get("image_size")
    if size is not None:
        if isinstance(size, int):
            size = [size, size]
        if (not isinstance(size, (list, tuple)) or len(size) != 2
                or not all(isinstance(side, int) and not isinstance(side, bool) and side > 0
                           for side in size)):
            raise UsageError(
                f"`image_size` must be two positive integers [height, width]. Received: image_size={size!r}"
            )
        settings["image_size"] = list(size)
    classes = settings.get("classes")
    if isinstance(classes, str):
        settings["classes"] = [name.strip() for name in classes.split(",") if name.strip()]
    elif isinstance(classes, (int, float)):
        settings["classes"] = [classes]
    excluded = settings.get("exclude_classes")
    if excluded is not None and not isinstance(excluded, (list, tuple)):
        settings["exclude_classes"] = [excluded]
    channels = settings.get("channels")
    if channels is not None and channels not in (1, 3):
        raise UsageError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
    return settings
