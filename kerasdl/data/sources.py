"""Resolves a data argument to train/validation/test datasets and a spec."""

from pathlib import Path

import numpy as np

from kerasdl import settings as run_settings
from kerasdl.data import images as image_files
from kerasdl.data import series
from kerasdl.data import shards
from kerasdl.data import tabular
from kerasdl.data.splits import Splits
from kerasdl.data.splits import relabel
from kerasdl.data.splits import split_indices
from kerasdl.errors import DataError
from kerasdl.settings import SPLIT_SEED

PACKAGE_DATA = Path(__file__).resolve().parent

# name -> (modality, one-line description)
EMBEDDED = {
    "digits": ("images", "scikit-learn's 1,797 handwritten digits, 8x8 grayscale, 10 classes"),
    "shapes": ("images", "generated colour photos, 1,500 of 32x32: circle, square, triangle, "
               "cross or ring"),
    "xor": ("tabular", "generated XOR: 2 features, 600 points, the class is the sign of x1 * x2"),
    "blobs": ("tabular", "generated, linearly separable: 2 features, 600 points, 2 classes"),
    "digits64": ("tabular", "the digits as 64 pixel columns, 1,797 rows, 10 classes"),
    "imbalanced": ("tabular", "generated, 2,000 rows, 10 features, classes 95% / 5%"),
    "auto_mpg": ("tabular", "UCI Auto MPG, 392 cars: predict fuel use (mpg) from 7 features"),
    "diabetes": ("tabular", "scikit-learn's diabetes: 442 patients, 10 features, disease progression"),
    "seasonal": ("series", "generated hourly series, 3,000 steps: daily and weekly seasons, trend, noise"),
    "patterns": ("series", "generated sequences, 1,500 of 64 steps: sine, square or sawtooth"),
}
# A recipe's TASK -> the modality of data it takes.
TASK_MODALITY = {"regression": "tabular", "classification": "tabular",
                 "image_classification": "images", "reconstruction": "images",
                 "generation": "images", "forecasting": "series",
                 "sequence_classification": "series"}
WANTED = {"images": "image data (digits, tfds:NAME or an image folder)",
          "tabular": "tabular data (auto_mpg, diabetes or a CSV file)",
          "series": "a series (seasonal, patterns or a CSV file in time order)"}


def describe_sources():
    """Returns a one-line description of the valid data arguments."""
    return (f"an embedded data set ({', '.join(EMBEDDED)}), tfds:NAME, "
            "a CSV file, or an image folder with one sub-folder per class")


def load_data(source, task, settings, spec=None):
    """Loads `source` for a recipe of `task` and splits it.

    Args:
        source: the data argument (embedded name, `tfds:NAME`, CSV path or folder).
        task: the recipe's `TASK`.
        settings: run settings; reads `target`, `data_dir`, `image_size`,
            `split_seed`, `validation_split`, `test_split` and `skip_bad_files`.
        spec: the spec of a trained model, to load new data the way the model was
            trained: the same feature encoding, image size and class names. The
            returned `Splits` then carries this spec.

    Returns:
        A `Splits`.

    Raises:
        DataError: when the source cannot be found, read, or used for `task`.
    """
    splits = _load(str(source), task, settings, spec)
    if TASK_MODALITY.get(task) == "images" and splits.spec.get("task") != task:
        # The same images serve classifiers, autoencoders and GANs.
        splits.spec = {**splits.spec, "task": task}
    if spec is None and TASK_MODALITY.get(task) == "images" and settings.get("image_size"):
        # The size a recipe that resizes in its pipeline (vgg16, mobilenet) works at.
        splits.spec["image_size"] = list(settings["image_size"])
    if settings.get("classes") and spec is None:
        _keep_classes(splits, settings["classes"])
    if settings.get("exclude_classes") and spec is None:
        _exclude_classes(splits, settings["exclude_classes"])
    if settings.get("train_examples") and spec is None:
        _limit_train(splits, settings["train_examples"], settings.get("split_seed", SPLIT_SEED))
    return splits


def _keep_classes(splits, names):
    """Keeps only the examples of classes `names`, relabelled 0..len(names)-1 in that order.

    A task of its own from a data set: pretrain on some digits, fine-tune on the others.
    """
    import tensorflow as tf

    class_names = splits.spec.get("class_names")
    if not class_names or splits.arrays is not None:
        raise DataError("`classes` needs image data with classes (digits, shapes, tfds:NAME "
                        "or an image folder).")
    names = [str(name) for name in names]
    unknown = [name for name in names if name not in class_names]
    if unknown or len(set(names)) != len(names) or len(names) < 2:
        raise DataError(f"`classes` must name at least 2 different classes of the data: "
                        f"{', '.join(class_names)}. Received: {', '.join(names)}")
    mapping = np.full(len(class_names), -1, np.int32)
    for new, name in enumerate(names):
        mapping[class_names.index(name)] = new
    mapping = tf.constant(mapping)

    def keep(dataset):
        dataset = dataset.map(lambda x, y: (x, tf.gather(mapping, tf.cast(y, tf.int32))))
        return _cached(dataset.filter(lambda x, y: y >= 0), splits.spec)

    splits.train, splits.validation, splits.test = (
        keep(splits.train), keep(splits.validation), keep(splits.test))
    splits.spec = {**splits.spec, "class_names": names, "num_classes": len(names)}
    if splits.spec.get("num_examples"):
        splits.spec["num_examples"] = {
            name: sum(1 for _ in dataset) for name, dataset in
            zip(("train", "validation", "test"), (splits.train, splits.validation, splits.test))}


def _limit_train(splits, count, seed):
    """Keeps `count` training examples drawn at random with `seed` (few-shot experiments).

    Validation and test splits are unchanged, so scores compare with full-data runs.
    """
    available = (splits.spec.get("num_examples") or {}).get("train")
    if available is None:
        available = int(splits.train.cardinality())
    if available >= 0 and count > available:
        raise DataError(f"`train_examples` must be at most the {available} training examples "
                        f"of the data. Received: train_examples={count}")
    if splits.arrays is not None:
        import tensorflow as tf

        keep = np.sort(np.random.default_rng(seed).permutation(available)[:count])
        x, y = splits.arrays["train"]
        splits.arrays = {**splits.arrays, "train": (x[keep], y[keep])}
        splits.train = tf.data.Dataset.from_tensor_slices(splits.arrays["train"])
    elif splits.spec.get("cache", "memory") == "memory":
        splits.train = splits.train.shuffle(max(available, 1), seed=seed).take(count).cache()
    else:  # the same examples each epoch, without a buffer of every decoded image
        import tensorflow as tf

        keep = tf.constant(np.random.default_rng(seed).permutation(available)[:count])
        splits.train = (splits.train.enumerate()
                        .filter(lambda i, example: tf.reduce_any(tf.equal(i, keep)))
                        .map(lambda i, example: example))
    if splits.spec.get("num_examples"):
        splits.spec["num_examples"] = {**splits.spec["num_examples"], "train": count}


def _cached(dataset, spec):
    """`dataset` cached in memory when the cache choice is memory (`images.image_cache`)."""
    return dataset.cache() if spec.get("cache", "memory") == "memory" else dataset


def _exclude_classes(splits, names):
    """Leaves classes out of the train and validation splits; the test split keeps them.

    A model trained this way has never seen those classes: an autoencoder's
    reconstruction error on the test split then measures how well it spots them.
    """
    import tensorflow as tf

    class_names = splits.spec.get("class_names")
    if not class_names:
        raise DataError("`exclude_classes` needs data with classes.")
    unknown = [str(name) for name in names if str(name) not in class_names]
    if unknown:
        raise DataError(f"Unknown class(es) in `exclude_classes`: {', '.join(unknown)}. "
                        f"Valid classes: {', '.join(class_names)}")
    excluded = tf.constant([class_names.index(str(name)) for name in names],
                           dtype=tf.int32)

    def kept(x, y):
        return tf.reduce_all(tf.not_equal(tf.cast(y, tf.int32), excluded))

    splits.train = splits.train.filter(kept)
    splits.validation = splits.validation.filter(kept)
    splits.spec = {**splits.spec, "excluded_classes": [str(name) for name in names]}
    if splits.spec.get("num_examples"):
        splits.spec["num_examples"] = {
            **splits.spec["num_examples"],
            "train": sum(1 for _ in splits.train),
            "validation": sum(1 for _ in splits.validation)}


def _load(source, task, settings, spec):
    if spec is not None and "input_shape" in spec and len(spec["input_shape"]) == 3:
        settings = {**settings, "image_size": spec["input_shape"][:2],
                    "channels": spec["input_shape"][2]}
    modality = TASK_MODALITY.get(task, "images")
    if source in EMBEDDED:
        kind = EMBEDDED[source][0]
        _check_modality(source, kind, modality, task)
        if source == "digits":
            return _digits(settings)
        if source == "shapes":
            return _shapes(settings)
        if source == "patterns":
            return series.patterns(settings)
        if source == "seasonal":
            return series.windows(series.seasonal_frame(), settings.get("target") or "value",
                                  source, settings, spec)
        return _tabular(*_embedded_frame(source, settings), task, settings, spec)
    if source.startswith("tfds:"):
        _check_modality(source, "images", modality, task)
        from kerasdl.data.tfds import load_tfds

        return _matching(load_tfds(source[len("tfds:"):], settings), spec)
    path = Path(source)
    if path.is_dir():
        _check_modality(source, "images", modality, task)
        return _matching(_image_folder(path, settings), spec)
    if path.is_file():
        if path.suffix.lower() not in (".csv", ".txt", ".tsv"):
            raise DataError(f"Unsupported data file {source!r}: give a .csv file. "
                            f"Valid data: {describe_sources()}.")
        target = settings.get("target") or (spec or {}).get("target")
        if modality != "series":
            _check_modality(source, "tabular", modality, task)
        return _csv_file(path, target, source, task, settings, spec)
    raise DataError(f"Data not found: {source!r}. Valid data: {describe_sources()}.")


def _csv_file(path, target, source, task, settings, spec=None):
    """A CSV file, read with the CSV settings (`--sep`, `--drop`, ...) or a run's."""
    from kerasdl.data import streaming

    if spec is not None and source == spec.get("source") and task in ("regression",
                                                                      "classification"):
        # A run's own file is split the way it was in training (hash or stratified).
        stream = bool(spec.get("streamed"))
    else:
        stream = streaming.should_stream(path, task)
    if stream:
        return _streamed_csv(path, target, source, task, settings, spec)
    if spec is None:
        reading = {key: settings.get(key) for key in tabular.CSV_SETTINGS}
    else:  # new data for a trained model: the way its training file was read
        reading = spec.get("csv") or {}
    frame = tabular.read_csv(path, sep=reading.get("sep") or ",",
                             categorical=reading.get("categorical"))
    # A series' steps may well be numbered: only a table of examples has ID columns.
    frame, record = tabular.prepare_frame(frame, reading, target, source, learn=spec is None,
                                          numeric_ids=task in ("regression", "classification"))
    if task == "sequence_classification":
        splits = series.sequences(frame, target, source, settings, spec)
    elif TASK_MODALITY.get(task) == "series":
        splits = series.windows(frame, target, source, settings, spec)
    else:
        splits = _tabular(frame, target, source, task, settings, spec)
    if spec is None:
        splits.spec["csv"] = record
    return splits


def _streamed_csv(path, target, source, task, settings, spec=None):
    """A CSV file above the streaming threshold: checked and summed in one pass, then read
    in batches by tf.data (`kerasdl.data.streaming`)."""
    from kerasdl.data import streaming

    scanned, weights = streaming.scan(path, target, source, task, settings, spec)
    baseline = (streaming.score_baseline(path, scanned, weights, settings)
                if weights is not None else None)
    datasets = streaming.datasets(path, scanned, settings)
    # The recipes' pipelines keep nothing in memory (`spec["cache"]`).
    return Splits(*datasets, spec=scanned if spec is None else {**spec, "cache": "none"},
                  baseline=baseline, shard=(datasets[0], lambda worker, workers: (
                      streaming.train_share(path, scanned, settings, worker, workers))))


def _matching(splits, spec):
    """Checks that image data has the classes a trained model knows, in its order."""
    if spec is None:
        return splits
    if splits.spec["class_names"] != spec.get("class_names"):
        raise DataError(
            f"The data's classes ({', '.join(splits.spec['class_names'])}) differ from the "
            f"model's ({', '.join(spec.get('class_names') or [])})."
        )
    # Read the model's way, cached as this data's size allows.
    splits.spec = {**spec, "cache": splits.spec.get("cache", "memory")}
    return splits


# What a recipe of each task can take, in a refusal's words.
WANTED_BY_TASK = {"classification": "tabular data with classes (xor, blobs, digits64, "
                                    "imbalanced or a CSV file with --target)"}
KIND_WORDS = {"images": "images", "tabular": "a table", "series": "a series"}


def _check_modality(source, kind, modality, task):
    if kind != modality:
        words = task.replace("_", " ")
        raise DataError(f"Data {source!r} holds {KIND_WORDS.get(kind, kind)}; "
                        f"{'an' if words[0] in 'aeiou' else 'a'} {words} recipe needs "
                        f"{WANTED_BY_TASK.get(task, WANTED[modality])}.")


def _generated_frame(name):
    """The generated tabular data sets, as DataFrames with a `label` column."""
    import pandas as pd

    rng = np.random.default_rng(0)
    if name == "xor":
        x = rng.uniform(-1, 1, (600, 2))
        labels = (x[:, 0] * x[:, 1] > 0).astype(int)
    elif name == "blobs":
        labels = np.arange(600) % 2
        x = rng.normal(0, 0.6, (600, 2)) + np.where(labels[:, None] == 1, 1.0, -1.0)
    elif name == "digits64":
        from sklearn.datasets import load_digits

        digits = load_digits()
        x, labels = digits.data, digits.target
    else:
        from sklearn.datasets import make_classification

        x, labels = make_classification(2000, n_features=10, n_informative=4, n_redundant=2,
                                        weights=[0.95, 0.05], class_sep=0.8, random_state=0)
    frame = pd.DataFrame(x, columns=[f"x{i + 1}" for i in range(x.shape[1])])
    frame["label"] = labels
    return frame


def _embedded_frame(name, settings):
    if name in ("xor", "blobs", "digits64", "imbalanced"):
        return _generated_frame(name), settings.get("target") or "label", name
    if name == "auto_mpg":
        frame = tabular.read_csv(PACKAGE_DATA / "auto_mpg.csv")
        default_target = "mpg"
    else:
        from sklearn.datasets import load_diabetes

        frame = load_diabetes(as_frame=True, scaled=False).frame
        default_target = "target"
    return frame, settings.get("target") or default_target, name


def _tabular(frame, target, source, task, settings, spec=None):
    import tensorflow as tf

    features, labels, target_info = tabular.split_target(frame, target, task, source)
    if spec is None:
        matrix, feature_names, categories = tabular.features_from_frame(features)
    else:
        matrix = tabular.frame_to_features(features, spec, target=target)
        if task != "regression":
            labels = relabel(labels, target_info["class_names"], spec["class_names"])
    parts = split_indices(len(matrix), labels, settings)
    arrays = {name: (matrix[index], labels[index])
              for name, index in zip(("train", "validation", "test"), parts)}
    datasets = [tf.data.Dataset.from_tensor_slices(pair) for pair in arrays.values()]
    if spec is None:
        x_train, y_train = arrays["train"]
        spec = {
            "task": task,
            "source": source,
            "input_shape": [matrix.shape[1]],
            "feature_names": feature_names,
            "columns": {str(name): "category" if str(name) in categories else "number"
                        for name in features.columns},
            "categories": categories,
            "target": target,
            "feature_mean": x_train.mean(axis=0).tolist(),
            "feature_variance": x_train.var(axis=0).tolist(),
            "num_examples": {name: len(pair[1]) for name, pair in arrays.items()},
        }
        if task == "regression":
            spec.update(num_targets=1, target_mean=float(y_train.mean()),
                        target_std=float(y_train.std()) or 1.0)
        else:
            spec.update(num_classes=len(target_info["class_names"]), **target_info)
    return Splits(*datasets, spec=spec, arrays=arrays)


def _digits(settings):
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 0..16 ink levels to the 0..255 range of image files, so a model trained here
    # predicts on PNGs of digits too.
    images = (digits.images[..., np.newaxis] * (255.0 / 16.0)).astype(np.float32)
    labels = digits.target.astype(np.int32)
    parts = split_indices(len(images), labels, settings)
    spec = {
        "task": "image_classification",
        "source": "digits",
        "input_shape": list(images.shape[1:]),
        "num_classes": 10,
        "class_names": [str(i) for i in range(10)],
        "num_examples": {name: len(index)
                         for name, index in zip(("train", "validation", "test"), parts)},
    }
    datasets = [tf.data.Dataset.from_tensor_slices((images[index], labels[index]))
                for index in parts]
    return Splits(*datasets, spec=spec)


SHAPES = ("circle", "square", "triangle", "cross", "ring")


def generate_shapes(count=1500, size=32, seed=0):
    """Draws `count` colour images of one shape each on a noisy gradient background.

    Colours, sizes, positions and rotations are random; the shape is the class.
    Returns `(images, labels)`: float32 in [0, 255] of shape (count, size, size, 3),
    and int32 indices into `SHAPES`.
    """
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % len(SHAPES)
    rng.shuffle(labels)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) + 0.5
    images = np.empty((count, size, size, 3), np.float32)
    for i, label in enumerate(labels):
        background = rng.uniform(0, 255, 3)
        image = (background + rng.uniform(-60, 60, 3) * (xx[..., None] / size - 0.5)
                 + rng.normal(0, 12, (size, size, 3)))
        colour = rng.uniform(0, 255, 3)
        while np.abs(colour - background).sum() < 180:  # visible on its background
            colour = rng.uniform(0, 255, 3)
        radius = rng.uniform(0.18, 0.32) * size
        cy, cx = rng.uniform(radius + 1, size - radius - 1, 2)
        dy, dx = yy - cy, xx - cx
        angle = rng.uniform(0, 2 * np.pi)
        if SHAPES[label] == "circle":
            mask = dy ** 2 + dx ** 2 <= radius ** 2
        elif SHAPES[label] == "square":
            u, v = np.cos(angle) * dx + np.sin(angle) * dy, np.cos(angle) * dy - np.sin(angle) * dx
            mask = (np.abs(u) <= radius * 0.8) & (np.abs(v) <= radius * 0.8)
        elif SHAPES[label] == "triangle":
            mask = np.ones_like(dx, bool)
            for k in range(3):
                side = angle + k * 2 * np.pi / 3
                mask &= np.cos(side) * dx + np.sin(side) * dy <= radius * 0.5
        elif SHAPES[label] == "cross":
            width = radius * 0.3
            mask = (((np.abs(dx) <= width) & (np.abs(dy) <= radius))
                    | ((np.abs(dy) <= width) & (np.abs(dx) <= radius)))
        else:
            distance = np.sqrt(dy ** 2 + dx ** 2)
            mask = (distance <= radius) & (distance >= radius * 0.55)
        image[mask] = colour + rng.normal(0, 12, (int(mask.sum()), 3))
        images[i] = image
    return np.clip(images, 0, 255), labels.astype(np.int32)


def _shapes(settings):
    import tensorflow as tf

    images, labels = generate_shapes()
    parts = split_indices(len(images), labels, settings)
    spec = {
        "task": "image_classification",
        "source": "shapes",
        "input_shape": list(images.shape[1:]),
        "num_classes": len(SHAPES),
        "class_names": list(SHAPES),
        "num_examples": {name: len(index)
                         for name, index in zip(("train", "validation", "test"), parts)},
    }
    datasets = [tf.data.Dataset.from_tensor_slices((images[index], labels[index]))
                for index in parts]
    return Splits(*datasets, spec=spec)


def _image_folder(path, settings):
    image_size = [int(side) for side in settings.get("image_size") or (64, 64)]
    channels = int(settings.get("channels", 3))
    skip_bad_files = bool(settings.get("skip_bad_files"))
    paths, labels, class_names = image_files.list_image_folder(
        path, skip_bad_files=skip_bad_files, channels=channels, check=False)
    memory = run_settings.available_memory()
    cache = image_files.image_cache(len(paths), image_size, channels, memory)
    # Refused before the files are checked (a minute on a large folder).
    run_settings.check_memory(settings, [*image_size, channels], len(paths), cache, memory)
    image_files.note_cache(cache, len(paths), image_size, channels, memory)
    keep = image_files.drop_bad_images(paths, skip_bad_files, str(path), channels)
    paths, labels = np.array(paths)[keep], labels[keep]
    parts = split_indices(len(paths), labels, settings)
    folder = image_files.cache_folder() if cache == "file" else None
    datasets = [image_files.image_dataset(
        paths[index], labels[index], image_size, channels,
        cache_file=None if folder is None else folder / name)
        for name, index in zip(("train", "validation", "test"), parts)]
    train_paths, train_labels = paths[parts[0]], labels[parts[0]]

    def share(worker, workers):
        # Every `workers`-th file of the training split: only these are decoded here.
        keep = shards.shard_positions(len(train_paths), worker, workers)
        shards.note("image files", len(train_paths), workers, worker)
        return image_files.image_dataset(
            train_paths[keep], train_labels[keep], image_size, channels,
            cache_file=None if folder is None else folder / f"train-{worker}-of-{workers}",
            record=shards.record_path(worker))
    spec = {
        "task": "image_classification",
        "source": str(path),
        "input_shape": [*image_size, channels],
        "num_classes": len(class_names),
        "class_names": class_names,
        "num_examples": {name: len(index)
                         for name, index in zip(("train", "validation", "test"), parts)},
        "cache": cache,
    }
    if cache != "memory":  # the recipes' shuffle buffers of float32 images, bounded too
        spec["shuffle_buffer"] = image_files.shuffle_buffer(
            image_size, channels, settings.get("batch_size") or 32)
    return Splits(*datasets, spec=spec, shard=(datasets[0], share))
