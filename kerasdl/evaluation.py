"""Evaluating and predicting with a trained run or model file."""

import contextlib
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kerasdl import runs
from kerasdl import settings as run_settings
from kerasdl.data import frame_to_inputs
from kerasdl.data import load_data
from kerasdl.data import images as image_files
from kerasdl.data import read_csv
from kerasdl.data.tabular import read_input_chunks
from kerasdl.errors import DataError
from kerasdl.errors import RunError
from kerasdl.errors import UsageError
from kerasdl.registry import hook_of
from kerasdl.registry import load_recipe
from kerasdl.scoring import evaluate_metrics
from kerasdl.session import fixed_hp

SPLITS = ("train", "validation", "test", "all")


def load_run(path, unsafe=False):
    """Loads a run directory or model file (in Keras safe mode unless `unsafe`).

    Importing the run's recipe first registers its custom layers for loading.

    Returns:
        `(model, config, recipe)`; `config` and `recipe` are None for a bare model file.
    """
    model_path, config = runs.resolve_run(path)
    recipe = load_recipe(config["recipe"]) if config else None
    return runs.load_model(model_path, unsafe=unsafe), config, recipe


def _task(model, config):
    if config is not None:
        return config["spec"]["task"]
    if len(model.input_shape) == 4:
        return "image_classification"
    loss = str(getattr(model, "loss", "") or "")
    return "classification" if "crossentropy" in loss else "regression"


def _with_sep(spec, sep):
    """A run's `spec` reading CSV files with separator `sep` (None: as recorded)."""
    if not spec or sep is None:
        return spec
    return {**spec, "csv": {**(spec.get("csv") or {}), "sep": sep}}


def evaluation_batches(model, config, recipe, data=None, target=None, data_dir=None,
                       split=None, batch_size=None, skip_bad_files=None, sep=None):
    """Reads the split to score, in a run's schema, batched by the run's pipeline.

    Args:
        data, target, data_dir, skip_bad_files: other data than the run's own.
        sep: the field separator of a CSV `data` file (default: the run's).
        split: `train`, `validation`, `test` or `all`; by default the test split of
            the run's data, or all of the given `data`.

    Returns:
        `(dataset, batches, split)`: the unbatched examples, the batched pipeline and the
        split's name.

    Raises:
        UsageError: for an unknown split.
    """
    split = split or ("all" if data else "test")
    if split not in SPLITS:
        raise UsageError(f"`split` must be one of {', '.join(SPLITS)}. Received: split={split!r}")
    base = dict(config["settings"]) if config else run_settings.resolve({})
    for key, value in (("data", data), ("target", target), ("data_dir", data_dir),
                       ("batch_size", batch_size), ("skip_bad_files", skip_bad_files),
                       ("sep", sep)):
        if value is not None:
            base[key] = value
    base.setdefault("batch_size", 32)
    spec = _with_sep(config["spec"], sep) if config else None
    splits = load_data(base["data"], _task(model, config), base, spec=spec)
    if split == "all":
        dataset = splits.train.concatenate(splits.validation).concatenate(splits.test)
    else:
        dataset = getattr(splits, split)
    if recipe is not None:
        # The data's spec: the run's schema, cached as this data's size allows.
        batches = recipe.make_pipeline(dataset, splits.spec,
                                       fixed_hp((config or {}).get("hyperparameters")),
                                       training=False,
                                       batch_size=base["batch_size"])
    else:
        batches = dataset.batch(base["batch_size"]).prefetch(-1)
    return dataset, batches, split


def evaluate(path, data=None, target=None, data_dir=None, split=None, batch_size=None,
             unsafe=False, skip_bad_files=None, sep=None):
    """Computes a trained model's metrics.

    Args:
        path: a run directory or a .keras model file.
        data: data to evaluate on; by default the run's own data.
        split: `train`, `validation`, `test` or `all`; by default the test split of
            the run's data, or all of the given `data`.
        skip_bad_files: leave out undecodable images of an image folder.
        sep: the field separator of a CSV `data` file (default: the run's).

    Returns:
        A dict of metric name to value, plus `examples` and `split`.

    Raises:
        UsageError: for a model file without `data` or an unknown split.
    """
    model, config, recipe = load_run(path, unsafe)
    if config is None and data is None:
        raise UsageError("Evaluating a bare model file needs `--data`.")
    dataset, batches, split = evaluation_batches(
        model, config, recipe, data=data, target=target, data_dir=data_dir, split=split,
        batch_size=batch_size, skip_bad_files=skip_bad_files, sep=sep)
    metrics = evaluate_metrics(model, batches)
    # Known without reading the data again (a streamed CSV file knows its counts; an image
    # folder would be decoded twice), except after a filter (`classes`, `exclude_classes`).
    examples = int(dataset.cardinality())
    if examples < 0:
        examples = sum(1 for _ in dataset)
    return {**metrics, "examples": examples, "split": split}


def predict(path, input_path, batch_size=32, unsafe=False, skip_bad_files=False,
            id_column=None, sep=None):
    """Predicts CSV rows, an image file or every image under a folder, as one DataFrame.

    The rows of `predict_chunks` put together; see there.
    """
    return pd.concat(list(predict_chunks(path, input_path, batch_size, unsafe, skip_bad_files,
                                         id_column=id_column, sep=sep)), ignore_index=True)


def predict_chunks(path, input_path, batch_size=32, unsafe=False, skip_bad_files=False,
                   id_column=None, sep=None):
    """Predicts CSV rows, an image file or every image under a folder, a chunk at a time.

    A CSV file is read with the run's schema (`kerasdl.data.frame_to_inputs`): one
    example per row for tabular models, one sequence per row for sequence
    classifiers, a series (one forecast per window) for forecasting models. Rows
    stream from the file (`kerasdl.data.tabular.read_input_chunks`): one DataFrame per
    chunk, so memory stays flat however many rows a file holds (a forecasting series is
    read whole). `id_column` (a CSV column) names each output row by its value: the
    output's first column is then that column instead of `id`; `sep` reads the CSV file
    with another field separator than the run's (a bare model's default: `,`). Images
    stream from
    disk: one DataFrame per batch, however many files a folder holds.

    Yields:
        DataFrames with an `id` column (row number or file path), then for classifiers
        `prediction` (class name), `confidence` and one probability column per class;
        for regression `prediction`; for autoencoders `reconstruction_error` (mean
        squared error in [0, 1] pixel units: high means unlike the training data);
        for forecasting `horizon` and `prediction`, with the `id` of the last row
        of each window.

    Raises:
        DataError: for an input that is missing, unreadable or does not match the model
            (before the first chunk).
    """
    model, config, recipe = load_run(path, unsafe)
    spec = _with_sep((config or {}).get("spec") or {}, sep)
    source = Path(input_path)
    task = _task(model, config)
    if task == "generation":
        raise UsageError("A generative model takes no input: use `kerasdl generate RUN`.")
    if len(model.input_shape) == 4:
        if id_column is not None:
            raise UsageError("`--id-column` names a column of a CSV file; this model takes "
                             "images, named by their paths.")
        _, height, width, channels = model.input_shape
        ids = image_files.list_images(source, skip_bad_files, channels)
        batches = image_files.image_batches(ids, (height, width), channels, batch_size)
        start = 0
        for features in batches:
            outputs = np.asarray(model.predict_on_batch(features))
            chunk = ids[start:start + len(outputs)]
            start += len(outputs)
            yield _output_frame(chunk, np.asarray(features), outputs, task, spec,
                                recipe=recipe)
        return
    if not (source.is_file() and source.suffix.lower() in (".csv", ".tsv", ".txt")):
        form = {"forecasting": "a CSV series (rows in time order)",
                "sequence_classification": "a CSV file of one sequence per row"}
        raise DataError(f"This model takes {form.get(task, 'tabular rows')}; give a .csv "
                        f"file. Received: {str(source)!r}")
    for features, ids, id_name in _csv_inputs(model, spec, task, source, id_column, sep):
        with contextlib.redirect_stdout(sys.stderr):
            outputs = np.asarray(model.predict(features, batch_size=batch_size, verbose=0))
        if task == "forecasting":
            yield pd.DataFrame({id_name: ids, "horizon": spec["horizon"],
                                "prediction": outputs.reshape(len(ids), -1)[:, 0]})
        else:
            yield _output_frame(ids, features, outputs, task, spec, id_name, recipe)


def _output_frame(ids, features, outputs, task, spec, id_name="id", recipe=None):
    """The prediction rows of examples `ids` (see `predict_chunks`)."""
    result = pd.DataFrame({id_name: ids})
    if task == "reconstruction":
        # A reconstruction run has its recipe, which declares what the model reconstructs.
        expected = np.asarray(hook_of(recipe, "reconstruction_target")(features))
        errors = np.square(outputs - expected).reshape(len(ids), -1).mean(axis=1)
        result["reconstruction_error"] = errors
        return result
    if task == "regression":
        result["prediction"] = outputs.reshape(len(ids), -1)[:, 0]
        return result
    names = spec.get("class_names") or [str(i) for i in range(outputs.shape[-1])]
    result["prediction"] = [names[i] for i in outputs.argmax(axis=-1)]
    result["confidence"] = outputs.max(axis=-1)
    for i, name in enumerate(names):
        result[f"probability_{name}"] = outputs[:, i]
    return result


def _csv_inputs(model, spec, task, source, id_column=None, sep=None):
    """The model inputs of a CSV file: through the run's schema, or by shape for a bare model.

    Yields:
        `(features, ids, id_name)` per chunk, as `kerasdl.data.tabular.read_input_chunks`.
    """
    if spec:
        for features, ids, id_name in read_input_chunks(source, spec, id_column=id_column):
            _check_width(model, features, source)
            yield features, ids, id_name
        return
    else:  # a bare model file has no schema: numeric columns, checked by count
        if task in ("forecasting", "sequence_classification") or len(model.input_shape) != 2:
            raise DataError(f"A bare model file of input shape {model.input_shape[1:]} has no "
                            "schema to read a CSV file with; predict with its run directory.")
        frame = read_csv(source, sep=sep or ",").rename(columns=str)
        if id_column is not None and id_column not in frame.columns:
            raise DataError(f"--id-column {id_column!r} is not a column of {str(source)!r}. "
                            f"Columns: {', '.join(frame.columns)}")
        names = {name: "number" for name in frame.columns if name != id_column}
        features, ids = frame_to_inputs(frame[list(names)], {"task": task, "columns": names})
        id_name = id_column or "id"
        if id_column is not None:
            ids = frame[id_column].loc[ids].tolist()
    _check_width(model, features, source)
    yield features, ids, id_name


def _check_width(model, features, source):
    if tuple(features.shape[1:]) != tuple(model.input_shape[1:]):
        raise DataError(f"The model takes {model.input_shape[1:]} features per example; "
                        f"{str(source)!r} gives {features.shape[1:]}.")


def generate(path, num_samples, output, seed=None, force=False, unsafe=False):
    """Writes `num_samples` PNG images generated by a GAN run into folder `output`.

    Returns:
        The list of written paths.

    Raises:
        RunError: for a model that does not generate.
        UsageError: for an `output` folder that holds files, unless `force`.
    """
    import keras

    model, _, recipe = load_run(path, unsafe)
    generate_images = hook_of(recipe, "generate") if recipe is not None else None
    if generate_images is None:
        raise RunError(f"{str(path)!r} is not a generative model: generating needs a run "
                       "folder whose recipe defines `generate` (train the gan recipe).")
    folder = Path(output)
    if folder.is_file() or (folder.is_dir() and any(folder.iterdir()) and not force):
        raise UsageError(f"`--output` {str(folder)!r} exists and is not an empty folder; "
                         "pass --force to write into it.")
    folder.mkdir(parents=True, exist_ok=True)
    images = np.asarray(generate_images(model, num_samples, seed=seed)).clip(0, 1) * 255.0
    paths = []
    for index, image in enumerate(images):
        paths.append(folder / f"sample_{index:05d}.png")
        runs.atomic_write(paths[-1], lambda tmp, image=image: keras.utils.save_img(
            tmp, image, scale=False, file_format="png"))
    return paths
