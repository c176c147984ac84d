"""Time series: forecasting windows and sequence classification."""

import numpy as np

from kerasdl.data import tabular
from kerasdl.data.splits import Splits
from kerasdl.data.splits import relabel
from kerasdl.data.splits import split_indices
from kerasdl.errors import DataError


def seasonal_frame(length=3000, seed=0):
    """A generated hourly series: daily and weekly seasons, a trend, and noise."""
    import pandas as pd

    rng = np.random.default_rng(seed)
    hours = np.arange(length)
    value = (10 * np.sin(2 * np.pi * hours / 24) + 4 * np.sin(2 * np.pi * hours / 168)
             + 0.01 * hours + rng.normal(0, 1.0, length))
    return pd.DataFrame({"value": value.astype(np.float32)})


def pattern_arrays(count=1500, length=64, seed=0):
    """Generated sequences of three shapes: sine, square and sawtooth waves.

    Each has a random period, phase, amplitude and noise, so the class is the shape.
    """
    rng = np.random.default_rng(seed)
    steps = np.arange(length)
    labels = rng.integers(0, 3, count).astype(np.int32)
    period = rng.uniform(8, 32, (count, 1))
    phase = rng.uniform(0, 1, (count, 1))
    amplitude = rng.uniform(0.5, 2.0, (count, 1))
    cycle = (steps / period + phase) % 1.0
    waves = np.stack([np.sin(2 * np.pi * cycle), np.where(cycle < 0.5, 1.0, -1.0),
                      2 * cycle - 1])
    sequences = amplitude * waves[labels, np.arange(count)] + rng.normal(0, 0.3, (count, length))
    return sequences[..., np.newaxis].astype(np.float32), labels, ["sine", "square", "sawtooth"]


def windows(frame, target, source, settings, spec=None):
    """Splits a series in time order and cuts each part into forecasting windows.

    Every numeric column (the target included) is an input; the label of a window is
    the target `horizon` steps after its last step. Train, validation and test are
    consecutive stretches (70/15/15), so no window sees the future of another split.

    Raises:
        DataError: for a missing target, text columns, or a series too short for
            the window and horizon.
    """
    import keras
    import tensorflow as tf


    if target is None or target not in frame.columns:
        wanted = "needs `--target COLUMN`" if target is None else f"has no column {target!r}"
        raise DataError(f"Series {source!r} {wanted}. Columns: {', '.join(map(str, frame.columns))}")
    if spec is None:
        matrix, names, categories = tabular.features_from_frame(frame)
        if categories:
            drops = " ".join(f"--drop {name}" for name in categories)
            raise DataError(f"Series columns must be numeric; {', '.join(categories)} hold "
                            f"text: drop them with {drops}.")
    else:  # new data for a trained model: read with its schema
        matrix, names = tabular.frame_to_features(frame, spec), list(spec["feature_names"])
    window = int((spec or {}).get("window") or settings.get("window") or 48)
    horizon = int((spec or {}).get("horizon") or settings.get("horizon") or 1)
    if window < 2 or horizon < 1:
        raise DataError(f"`window` must be >= 2 and `horizon` >= 1. Received: window={window}, "
                        f"horizon={horizon}")
    target_index = names.index(str(target))
    bounds = (np.array([0, 0.7, 0.85, 1.0]) * len(matrix)).astype(int)
    parts = [matrix[start:end] for start, end in zip(bounds[:-1], bounds[1:])]
    shortest = min(len(part) for part in parts)
    if shortest < window + horizon:
        raise DataError(
            f"The series is too short: its test split has {shortest} steps, fewer than "
            f"window + horizon = {window + horizon}. Use a longer series or a smaller window."
        )
    datasets = [
        keras.utils.timeseries_dataset_from_array(
            part[:-horizon], part[window - 1 + horizon:, target_index], sequence_length=window,
            batch_size=None)
        for part in parts
    ]
    datasets = [dataset.map(lambda x, y: (x, tf.reshape(y, (1,)))) for dataset in datasets]
    arrays = {name: part for name, part in zip(("train", "validation", "test"), parts)}
    if spec is None:
        train = parts[0]
        spec = {
            "task": "forecasting", "source": source, "input_shape": [window, len(names)],
            "feature_names": names, "columns": {name: "number" for name in names},
            "categories": {}, "target": str(target),
            "target_index": target_index, "window": window, "horizon": horizon,
            "feature_mean": train.mean(axis=0).tolist(),
            "feature_variance": (train.var(axis=0) + 1e-6).tolist(),
            "target_mean": float(train[:, target_index].mean()),
            "target_std": float(train[:, target_index].std()) or 1.0,
            "num_targets": 1,
            "num_examples": {name: len(part) - window - horizon + 1
                             for name, part in arrays.items()},
        }
    return Splits(*datasets, spec=spec, arrays=None)


def patterns(settings):
    """The embedded `patterns` data set: classify sequences by shape."""
    import tensorflow as tf


    sequences, labels, class_names = pattern_arrays()
    parts = split_indices(len(sequences), labels, settings)
    train = sequences[parts[0]]
    spec = {
        "task": "sequence_classification", "source": "patterns",
        "input_shape": list(sequences.shape[1:]), "num_classes": 3, "class_names": class_names,
        "feature_mean": train.mean(axis=(0, 1)).tolist(),
        "feature_variance": train.var(axis=(0, 1)).tolist(),
        "num_examples": {name: len(index)
                         for name, index in zip(("train", "validation", "test"), parts)},
    }
    datasets = [tf.data.Dataset.from_tensor_slices((sequences[index], labels[index]))
                for index in parts]
    return Splits(*datasets, spec=spec)


def sequences(frame, target, source, settings, spec=None):
    """A CSV of labelled sequences: one sequence per row, its steps in the columns.

    The class is the `target` column (default `label`); every other column is a time
    step, in order. A trained model's `spec` reads new data its way (the same steps
    and class names).

    Raises:
        DataError: for a missing class column, non-numeric or missing steps, or a
            number of steps other than the model's.
    """
    import tensorflow as tf


    target = target or (spec or {}).get("target") or "label"
    if target not in frame.columns:
        raise DataError(f"Sequence data {source!r} needs its class column: `--target COLUMN` "
                        f"(default label). Columns: {', '.join(map(str, frame.columns))}")
    features, labels, info = tabular.split_target(frame, target, "sequence_classification",
                                                  source)
    reading = spec or {"task": "sequence_classification",
                       "input_shape": [features.shape[1], 1], "target": target}
    matrix, _ = tabular.frame_to_inputs(features, reading)
    if spec is not None:
        labels = relabel(labels, info["class_names"], spec["class_names"])
    parts = split_indices(len(matrix), labels, settings)
    if spec is None:
        train = matrix[parts[0]]
        spec = {
            "task": "sequence_classification", "source": source, "target": str(target),
            "input_shape": list(matrix.shape[1:]), "num_classes": len(info["class_names"]),
            "class_names": info["class_names"],
            "feature_mean": train.mean(axis=(0, 1)).tolist(),
            "feature_variance": train.var(axis=(0, 1)).tolist(),
            "num_examples": {name: len(index)
                             for name, index in zip(("train", "validation", "test"), parts)},
        }
    datasets = [tf.data.Dataset.from_tensor_slices((matrix[index], labels[index]))
                for index in parts]
    return Splits(*datasets, spec=spec)
