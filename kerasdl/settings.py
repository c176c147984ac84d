"""Run settings: recipe defaults, then a config file, then the command line."""

import json
import sys
from pathlib import Path

from kerasdl.errors import UsageError

DEFAULT_SEED = 1337
# The seed of the train/validation/test split, apart from `seed` (kerasdl.data.splits).
SPLIT_SEED = 1337
# Every key a config file may hold, with its meaning (for error messages and docs).
KEYS = {
    "data": "data source",
    "target": "CSV target column",
    "sep": "field separator of a CSV file (one character; tab as \\t)",
    "drop": "CSV columns left out of the features",
    "time_column": "CSV column of dates: rows are sorted by it (forecasting), not a feature",
    "categorical": "CSV columns read as categories whatever they hold",
    "numeric": "CSV columns read as numbers (text in them is an error)",
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
    "skip_bad_files": "leave out image files that cannot be decoded (true/false)",
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
    settings = {"seed": DEFAULT_SEED, "split_seed": SPLIT_SEED, "validation_split": 0.2,
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


# The options the commands share (`kerasdl.cli`'s shared decorators), by setting:
# each is None when not given; the repeatable ones arrive as tuples.
OPTION_SETTINGS = ("data", "target", "data_dir", "skip_bad_files", "image_size", "classes",
                   "train_examples", "weights", "epochs", "batch_size", "seed", "sep",
                   "time_column", "device", "mixed_precision", "jit", "steps_per_execution",
                   "strategy", "output")
REPEATABLE_OPTIONS = ("drop", "categorical", "numeric", "exclude_classes")
# Options that are not settings themselves: `--set` pairs and the `--config` file.
OTHER_OPTIONS = ("assignments", "config_file")


DEVICE_OPTIONS = ("device", "mixed_precision", "jit", "steps_per_execution", "strategy")


def check_resume(recipe, options):
    """Refuses a recipe or settings given with `train --resume` (exit 2).

    The run's config.json holds its settings; device options may still be given. A
    flag left off (False, None) or an option not repeated (an empty tuple) is not given.

    Raises:
        UsageError: naming the options given.
    """
    given = [name for name, value in options.items() if name not in DEVICE_OPTIONS
             and not (value is None or value is False or value == ())]
    if recipe or given:
        received = ", ".join(["RECIPE"] * bool(recipe)
                             + [f"--{OPTION_FLAGS.get(name, name).replace('_', '-')}"
                                for name in given])
        raise UsageError("`--resume RUN_DIR` takes no recipe or settings: the run's "
                         f"config.json holds them. Received: {received}")


# The flags of the options whose Click name is not their flag's.
OPTION_FLAGS = {"assignments": "set", "config_file": "config", "exclude_classes": "exclude_class"}


def from_options(defaults, options, command="train", info=None):
    """Turns a command's shared option values into its checked settings.

    The one way from the command line to settings: `defaults` < the `--config` file <
    the options given, then the values and the data are checked (`check`, `check_data`)
    before TensorFlow starts.

    Args:
        defaults: the recipe's `DEFAULTS` (or a preset's changes of them).
        options: option values by their Click names: those of `OPTION_SETTINGS`,
            `REPEATABLE_OPTIONS` and `OTHER_OPTIONS`; any may be left out.
        command: the command's name: `--strategy multiworker` is for `train` only.
        info: the recipe's `registry.contract_info`: its search space checks `--set`.

    Returns:
        The settings dict, as `resolve` gives it.

    Raises:
        UsageError: for a bad value or data, or multiworker outside `train`.
        TypeError: for an option name none of the lists holds (a programming error).
    """
    from kerasdl import hparams

    unknown = sorted(set(options) - set(OPTION_SETTINGS + REPEATABLE_OPTIONS + OTHER_OPTIONS))
    if unknown:
        raise TypeError(f"Not a settings option: {', '.join(unknown)}")
    if options.get("strategy") == "multiworker" and command != "train":
        raise UsageError(f"`--strategy multiworker` is for `kerasdl train`, not `kerasdl "
                         f"{command}`. Valid here: auto, default or mirrored"
                         + (" (and `--workers N`, Keras Tuner's parallel trials)."
                            if command == "tune" else "."))
    config = read_config(options["config_file"]) if options.get("config_file") else {}
    given = {name: options.get(name) for name in OPTION_SETTINGS}
    given.update({name: list(options.get(name) or ()) or None for name in REPEATABLE_OPTIONS})
    given["set"] = hparams.parse_assignments(options.get("assignments") or ())
    resolved = resolve(defaults, config, given)
    check_data(resolved, info)
    if resolved.get("output"):  # a run directory: new or empty, before TensorFlow starts
        from kerasdl.runs import check_output

        check_output(resolved["output"])
    return resolved


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
    if settings.get("keep_best") is not None and not isinstance(settings["keep_best"], bool):
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
    if channels is not None and (isinstance(channels, bool) or channels not in (1, 3)):
        raise UsageError(f"`channels` must be 1 or 3. Received: channels={channels!r}")
    _check_csv_settings(settings)
    return settings


SEPARATOR_NAMES = {"\\t": "\t", "tab": "\t", "comma": ",", "semicolon": ";", "pipe": "|",
                   "space": " "}


def normalise_sep(sep):
    """`sep` as one character (`tab`, `\\t`, `semicolon`... named); None stays None.

    Raises:
        UsageError: for anything but one character other than a quote or a newline.
    """
    if sep is None:
        return None
    character = SEPARATOR_NAMES.get(str(sep).lower(), str(sep))
    if len(character) != 1 or character in ('"', "\n", "\r"):
        raise UsageError("`sep` must be one character, such as , ; | or \\t (tab). "
                         f"Received: sep={sep!r}")
    return character


def _check_csv_settings(settings):
    """Normalises `sep`, `drop`, `categorical`, `numeric` and `time_column`."""
    if settings.get("sep") is not None:
        settings["sep"] = normalise_sep(settings["sep"])
    seen = {}
    for key in ("drop", "categorical", "numeric", "time_column"):
        names = settings.get(key)
        if names is None or names == [] or names == ():
            settings[key] = None
            continue
        if key == "time_column":
            if not isinstance(names, str):
                raise UsageError(f"`time_column` must be one column name. "
                                 f"Received: time_column={names!r}")
            listed = [names]
        else:
            listed = [names] if isinstance(names, (str, int, float)) else list(names)
            listed = [str(name) for name in listed]
            settings[key] = listed
        for name in listed:
            if name in seen and seen[name] != key:
                raise UsageError(f"Column {name!r} is given to both `{seen[name]}` and "
                                 f"`{key}`; give it to one of them.")
            seen[name] = key
    target = settings.get("target")
    if target is not None and str(target) in seen:
        raise UsageError(f"The target column {target!r} cannot also be "
                         f"`{seen[str(target)]}`.")


def csv_header(path, sep=None):
    """The column names of a CSV file, read alone; None for a file pandas cannot read."""
    import pandas as pd

    try:
        return [str(name) for name in pd.read_csv(path, nrows=0, sep=sep or ",").columns]
    except (ValueError, OSError, UnicodeDecodeError):  # the loader names what is wrong
        return None


def check_csv_input(path, sep, columns_wanted=(), what="the run's"):
    """A CSV input's header read with `sep` against the columns a run needs (exit 2).

    A header that reads as one column holding another usual separator is refused with
    the `--sep` to pass; other mismatches are left to the loader, which names them.
    """
    columns = csv_header(path, sep)
    if columns is None:
        return
    hint = _separator_hint(columns, sep)
    wanted = [str(name) for name in columns_wanted]
    if hint and wanted != columns:
        shown = ", ".join(wanted[:8]) + (", ..." if len(wanted) > 8 else "")
        needs = f"; {what} columns are {shown}" if wanted else ""
        raise UsageError(f"{str(path)!r} read with the separator {sep or ','!r} has the one "
                         f"column {columns[0]!r}{hint}{needs}.")


CSV_SUFFIXES = (".csv", ".tsv", ".txt")


def check_run_input(run, input_path, sep=None, target=None, id_column=None):
    """A CSV input against run `run`'s columns, before TensorFlow starts (exit 2).

    `sep` must go with a CSV file, and a header that reads as one column under it
    (None: the run's recorded separator) is refused with the `--sep` to pass.
    `id_column` must be one of the input's columns.

    Returns:
        `sep`, normalised (`normalise_sep`).

    Raises:
        UsageError: naming the input and what would be valid.
    """
    from kerasdl.runs import run_spec

    sep = normalise_sep(sep)
    path = Path(input_path)
    if "://" in str(input_path) or not path.exists():
        pass  # the loader names what is wrong with it
    elif not (path.is_file() and path.suffix.lower() in CSV_SUFFIXES):
        if sep is not None:
            raise UsageError(f"`--sep` says how to read a CSV file, but {str(input_path)!r} "
                             f"is {'a folder' if path.is_dir() else 'not a .csv file'}. "
                             "Leave --sep out.")
    else:
        spec = run_spec(run) if Path(run).is_dir() else {}
        wanted = []
        if spec.get("columns") or spec.get("feature_names"):
            from kerasdl.data.tabular import schema_columns

            wanted = list(schema_columns(spec))
        target = target or spec.get("target")
        if target is not None and str(target) not in wanted:
            wanted.append(str(target))
        check_csv_input(path, sep or (spec.get("csv") or {}).get("sep"), wanted)
    if id_column is not None:
        if not path.is_file():
            raise UsageError("`--id-column` names a column of a CSV file; "
                             f"{str(input_path)!r} is a folder.")
        spec = run_spec(run)
        columns = csv_header(input_path, sep or (spec.get("csv") or {}).get("sep"))
        if columns is not None and id_column not in columns:
            raise UsageError(f"`--id-column` {id_column!r} is not a column of "
                             f"{str(input_path)!r}. Columns: {', '.join(columns)}")
    return sep


def check_scoring_data(run, data=None, target=None, sep=None):
    """`evaluate`'s `--data`, `--target` and `--sep` against run `run`, before TensorFlow.

    Returns:
        `sep`, normalised.

    Raises:
        UsageError: for bad data, or `sep` without a CSV file to read.
    """
    if data is None:
        if sep is not None:
            raise UsageError("`--sep` says how to read a CSV file given with --data; the "
                             "run's own data is read the way it was in training. Give --data "
                             "FILE.csv, or leave --sep out.")
        return None
    sep = normalise_sep(sep)
    check_data({"data": data, "target": target, "sep": sep})
    return check_run_input(run, data, sep, target)


def _separator_hint(columns, sep):
    """`; pass --sep ';'` when a one-column header holds another usual separator."""
    if len(columns) == 1:
        for other in (";", "\t", "|", ","):
            if other != (sep or ",") and other in columns[0]:
                shown = "\\t" if other == "\t" else other
                return f" (the header reads as one column: pass --sep '{shown}')"
    return ""


def _check_target_column(path, target, task, settings=None):
    """`--target` and the CSV settings against a CSV file's header, read alone.

    A damaged file is left to the loader, which names what is wrong.
    """
    settings = settings or {}
    columns = csv_header(path, settings.get("sep"))
    if columns is None:
        return
    hint = _separator_hint(columns, settings.get("sep"))
    if target is not None and str(target) not in columns:
        raise UsageError(f"Target column {target!r} not found in {str(path)!r}{hint}. "
                         f"Columns: {', '.join(columns)}")
    for key, flag in (("drop", "--drop"), ("categorical", "--categorical"),
                      ("numeric", "--numeric"), ("time_column", "--time-column")):
        names = settings.get(key) or []
        unknown = [name for name in ([names] if isinstance(names, str) else names)
                   if str(name) not in columns]
        if unknown:
            raise UsageError(f"`{flag}` names column(s) {', '.join(map(repr, unknown))} that "
                             f"{str(path)!r} does not have{hint}. Columns: {', '.join(columns)}")
    if target is None and task in ("regression", "classification"):
        raise UsageError(f"Data {str(path)!r} needs `--target COLUMN` (the column to predict). "
                         f"Columns: {', '.join(columns)}")
    if target is not None and task == "regression":
        _check_regression_target(path, str(target), settings.get("sep"))


# Rows of a target column read before TensorFlow starts; text further on is found in training.
TARGET_CHECK_ROWS = 10_000


def _check_regression_target(path, target, sep=None):
    """A regression target holding text (class labels) in its first rows is a usage error."""
    import pandas as pd

    from kerasdl.data.tabular import regression_target_error

    try:
        column = pd.read_csv(path, sep=sep or ",", usecols=[target],
                             nrows=TARGET_CHECK_ROWS)[target]
    except (ValueError, OSError, UnicodeDecodeError):  # the loader names what is wrong
        return
    text = pd.to_numeric(column, errors="coerce").isna() & column.notna()
    if text.any():
        raise regression_target_error(target, column[text].iloc[0])


def embedded_columns(name):
    """The columns of embedded tabular or series data set `name` (None: it has none)."""
    generated = {"xor": 2, "blobs": 2, "digits64": 64, "imbalanced": 10}
    if name in generated:
        return [f"x{i + 1}" for i in range(generated[name])] + ["label"]
    if name == "auto_mpg":
        return csv_header(Path(__file__).resolve().parent / "data" / "auto_mpg.csv")
    if name == "diabetes":  # scikit-learn's load_diabetes(as_frame=True).frame
        return ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]
    if name == "seasonal":
        return ["value"]
    return None


def check_data(settings, info=None):
    """Checks the data argument and `--set` values before TensorFlow starts (exit 2).

    A path that does not exist, an embedded name that is not one, and `target` with
    data that has no columns (an image folder, TFDS or an embedded image set) are
    usage errors: a silently ignored `--target` would train on something else.

    Args:
        settings: resolved settings (reads `data` and `target`).
        info: the recipe's `registry.recipe_info`: its search space checks `set`.

    Raises:
        UsageError: naming the data and what would be valid.
    """
    from kerasdl import registry

    data, target = settings.get("data"), settings.get("target")
    if data is None:
        return
    data = str(data)
    embedded = registry.data_sets()
    valid = (f"an embedded data set ({', '.join(embedded)}), tfds:NAME, a CSV file or an "
             "image folder")
    if data in embedded:
        modality = embedded[data][0]
    elif data.startswith("tfds:"):
        modality = "images"
    else:
        path = Path(data).expanduser()
        if not path.exists():
            raise UsageError(f"Data not found: {data!r}. Valid data: {valid}.")
        modality = "images" if path.is_dir() else "tabular"
    given = [key for key in ("sep", "drop", "time_column", "categorical", "numeric")
             if settings.get(key)]
    if given and (modality == "images" or data in embedded):
        flag = "--" + given[0].replace("_", "-")
        raise UsageError(f"`{flag}` says how to read a CSV file, but {data!r} is "
                         f"{'an embedded data set' if data in embedded else 'image data'}. "
                         "Give --data FILE.csv, or leave the option out.")
    if target and data in embedded and modality != "images":
        columns = embedded_columns(data)
        if not columns or str(target) not in columns:
            has = (f"whose columns are {', '.join(columns)}" if columns
                   else "with its own labels")
            raise UsageError(f"`--target` applies to a CSV file (--data FILE.csv); {data!r} is "
                             f"an embedded data set {has}. Received: --target {target}")
    if target and modality == "images":
        kind = "an image folder" if Path(data).is_dir() else f"image data ({data})"
        raise UsageError(f"`--target` names a column of a CSV file, but {data!r} is {kind}: "
                         f"its classes are its labels. Received: --target {target}")
    if modality == "tabular" and data not in embedded:
        _check_target_column(Path(data).expanduser(), target, (info or {}).get("task"),
                             settings)
    if info is not None:  # the recipe's search space, read without TensorFlow
        from kerasdl.hparams import check_overrides

        if settings.get("weights") is not None and not info.get("pretrained"):
            raise UsageError(f"`--weights` is for recipes that declare a pretrained base "
                             f"(PRETRAINED: vgg16, mobilenet); {info['name']} has none. "
                             f"Received: --weights {settings['weights']}")

        check_overrides(settings.get("set") or {}, info["search_space"])
        check_epoch_parameters(settings, info["search_space"])


def available_memory():
    """Bytes of memory available to a new allocation (MemAvailable), or None if unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        import os

        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def _gib(count):
    return f"{count / 2 ** 30:.1f} GiB"


def train_examples(splits):
    """How many training examples `splits` hold, or None when unknown."""
    count = ((splits.spec or {}).get("num_examples") or {}).get("train")
    if count is None:
        count = int(splits.train.cardinality())
    return count if count and count > 0 else None


def check_fits(settings, splits, cached=None, memory=None, default_batch_size=None):
    """Refuses a batch size or image size that cannot work, before training starts.

    Args:
        settings: resolved settings (reads `batch_size` and `image_size`).
        splits: the loaded data (`kerasdl.data.Splits`: its spec and training set).
        cached: whether the pipeline keeps the decoded training set in memory; by
            default the data's cache choice (`spec["cache"]`, "memory" when absent).
        memory: bytes available (default: what the system reports).
        default_batch_size: the recipe's own; above a small data set's size it is not
            refused (nobody asked for it) but noted: each epoch is then one batch.

    Raises:
        UsageError: for a batch larger than the training set, or images that need more
            memory than is available; the message gives the figures.
    """
    spec = splits.spec
    count = train_examples(splits)
    batch_size = settings.get("batch_size")
    # With --train-examples a batch larger than the few examples is one step an epoch.
    if (batch_size and count and batch_size > count and default_batch_size is not None
            and batch_size == default_batch_size):
        print(f"Note: the default batch size {batch_size} is more than the {count} training "
              f"examples: each epoch is one batch of {count}.", file=sys.stderr)
    elif batch_size and count and batch_size > count and not settings.get("train_examples"):
        raise UsageError(f"`batch_size` must be at most the number of training examples "
                         f"({count:,} of {settings.get('data')}). "
                         f"Received: batch_size={batch_size}")
    shape = list((spec or {}).get("input_shape") or [])
    if settings.get("image_size") and len(shape) == 3:
        shape = [*settings["image_size"], shape[2]]
    if len(shape) != 3:
        return
    if cached is None:
        cache = (spec or {}).get("cache", "memory")
    else:
        cache = "memory" if cached else "none"
    check_memory(settings, shape, count, cache, memory)


CACHE_WORDS = {"memory": "cached in memory", "file": "cached in a file",
               "none": "decoded each epoch"}


def check_memory(settings, shape, count, cache="memory", memory=None):
    """Refuses images that need more memory than is available, before anything is decoded.

    The estimate: a batch of float32 images, its augmented copy and the first layer's
    activations (4 batches: a floor, the model holds more), plus every image when the
    data is cached in memory (`cache` "memory"), else the training shuffle buffer
    ("file" and "none" keep only batches and that buffer).

    Args:
        settings: resolved settings (reads `batch_size`).
        shape: `[height, width, channels]` of the images a model takes.
        count: the number of images, or None when unknown.
        cache: "memory", "file" or "none" (`kerasdl.data.images.cache_choice`).
        memory: bytes available (default: what the system reports).

    Raises:
        UsageError: giving the estimate, the memory available and what to change.
    """
    values = 1
    for side in shape:
        values *= int(side)
    image_bytes = 4 * values  # float32 pixels
    batch_size = settings.get("batch_size") or 32
    needed = 4 * image_bytes * batch_size
    if cache == "memory" and count:
        needed += image_bytes * count
    else:  # the training shuffle buffer (`kerasdl.data.images.shuffle_buffer`)
        from kerasdl.data.images import shuffle_buffer

        buffer = shuffle_buffer(shape[:2], shape[2], batch_size)
        needed += image_bytes * (min(buffer, count) if count else buffer)
    memory = available_memory() if memory is None else memory
    if memory and needed > memory:
        raise UsageError(
            f"`image_size` {shape[0]}x{shape[1]} needs at least {_gib(needed)} of memory "
            f"({count or '?'} images of {image_bytes / 2 ** 20:.1f} MiB "
            f"{CACHE_WORDS.get(cache, cache)}, batches of {batch_size}); "
            f"{_gib(memory)} is available. Give a smaller --image-size or --batch-size.")


def check_epoch_parameters(settings, search_space):
    """Refuses `--set` and `--epochs` values that contradict each other.

    A hyperparameter counted in epochs (`head_epochs`: the epochs of a first phase)
    cannot exceed `epochs`, or the phase would be cut short without a word.

    Raises:
        UsageError: naming both values and the valid range.
    """
    epochs = settings.get("epochs")
    if not epochs:
        return
    for param in search_space:
        name = param.get("name", "")
        if not name.endswith("_epochs") or param.get("type") not in ("Int", "Fixed"):
            continue
        pinned = (settings.get("set") or {}).get(name)
        if pinned is None:
            continue
        try:
            value = int(str(pinned))
        except ValueError:
            continue
        if value > epochs:
            low = param.get("min_value", 1)
            raise UsageError(
                f"`{name}` must be in [{low}, {min(epochs, param.get('max_value', epochs))}] "
                f"with epochs={epochs} (its phase is part of the {epochs} epochs). "
                f"Received: {name}={value}; raise --epochs or lower {name}")
