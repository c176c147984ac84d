"""TensorFlow Datasets sources (`tfds:NAME`)."""

import socket

from kerasdl.data import images as image_files
from kerasdl.data import shards
from kerasdl.data.splits import Splits
from kerasdl.errors import DataError

# The host most TFDS archives come from; resolving it tells in a second whether a
# download can work, where tfds itself retries for minutes before failing.
DOWNLOAD_HOST = "storage.googleapis.com"


def _online(host=DOWNLOAD_HOST):
    try:
        socket.getaddrinfo(host, 443)
    except OSError:
        return False
    return True


def _split_names(splits):
    """Chooses train, validation and test split strings from a data set's splits."""
    if "train" in splits and "test" in splits:
        if "validation" in splits:
            return "train", "validation", "test"
        return "train[:85%]", "train[85%:]", "test"
    first = "train" if "train" in splits else next(iter(splits), "train")
    return f"{first}[:70%]", f"{first}[70%:85%]", f"{first}[85%:]"


def load_tfds(name, settings):
    """Loads the TFDS image classification data set `name` and splits it.

    Images of varying size are resized to `settings["image_size"]`. The decoded images
    are cached as those of an image folder are (`spec["cache"]`): in memory by the
    recipes when their estimated size (the info's examples x the image shape) fits the
    memory budget, else in a tf.data file cache, else not at all, with a note on stderr.

    Raises:
        DataError: for an unknown name, a data set that is not supervised image
            classification, or a download that cannot happen (with what to do).
        UsageError: for images that need more memory than is available.
    """
    import tensorflow as tf
    import tensorflow_datasets as tfds

    data_dir = settings.get("data_dir")
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError:
        raise DataError(
            f"Unknown TFDS data set: {name!r}. Valid names are listed by "
            "`tfds.list_builders()` and at https://www.tensorflow.org/datasets/catalog"
        ) from None
    if not builder.is_prepared() and not _online():
        raise DataError(
            f"Cannot download TFDS data set {name!r}: no network. On a machine with "
            f"internet run `tfds build {name} --data_dir DIR`, copy DIR here and pass "
            "`--data-dir DIR`."
        )
    try:
        builder.download_and_prepare()
    except Exception as error:  # tfds raises many kinds; all mean the same to the user.
        raise DataError(
            f"Cannot download TFDS data set {name!r} ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200]}). Fetch it with `tfds build {name} "
            "--data_dir DIR` and pass `--data-dir DIR`."
        ) from None
    info = builder.info
    keys = info.supervised_keys
    if not keys or len(keys) != 2:
        raise DataError(f"TFDS data set {name!r} has no (image, label) pairs to classify.")
    image_feature, label_feature = info.features[keys[0]], info.features[keys[1]]
    if not isinstance(image_feature, tfds.features.Image) or not hasattr(label_feature, "names"):
        raise DataError(f"TFDS data set {name!r} is not image classification.")
    height, width, channels = image_feature.shape
    if height is None or width is None:
        height, width = (int(side) for side in settings.get("image_size") or (64, 64))
    split_names = _split_names(list(info.splits))
    # uint8 images are cached in a file as uint8 (a quarter of float32), others as float32.
    as_uint8 = tf.as_dtype(image_feature.dtype) == tf.uint8
    cache, folder = _cache_choice(info, split_names, (height, width), channels, settings,
                                  file_bytes_per_value=1 if as_uint8 else 4)

    def prepare(image, label):
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        return tf.ensure_shape(image, (height, width, channels)), tf.cast(label, tf.int32)

    def prepare_for_file(image, label):
        if image.shape[0] != height or image.shape[1] != width:  # None: sizes vary
            image = tf.image.resize(image, (height, width))
            if as_uint8:
                image = tf.round(tf.clip_by_value(image, 0.0, 255.0))
        image = tf.cast(image, tf.uint8 if as_uint8 else tf.float32)
        return tf.ensure_shape(image, (height, width, channels)), tf.cast(label, tf.int32)

    def decoded(dataset, part):
        if folder is None:
            # Cached in memory by the recipes' pipelines ("memory"), or not at all.
            return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        # The images are written to the file on the first pass and read back on the next.
        dataset = dataset.map(prepare_for_file, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = dataset.cache(str(folder / part))
        return dataset.map(lambda image, label: (image_files.as_float(image), label),
                           num_parallel_calls=tf.data.AUTOTUNE)

    datasets = [
        decoded(builder.as_dataset(split=split, as_supervised=True, shuffle_files=False), part)
        for part, split in zip(("train", "validation", "test"), split_names)
    ]

    def share(worker, workers):
        # TFDS reads only the records of this worker's slice of the training split.
        split, size, repeat = worker_split(split_names[0], info.splits, worker, workers)
        shards.note("examples", worker_split(split_names[0], info.splits, 0, 1)[1], workers,
                    worker)
        own = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        own = own.concatenate(own.take(repeat))  # equal shares: see `shards.shard_range`
        return decoded(own, f"train-worker{worker}").apply(
            tf.data.experimental.assert_cardinality(size + repeat))

    spec = {
        "task": "image_classification",
        "source": f"tfds:{name}",
        "input_shape": [height, width, channels],
        "num_classes": label_feature.num_classes,
        "class_names": list(label_feature.names),
        "cache": cache,
    }
    if cache != "memory":  # the recipes' shuffle buffers of float32 images, bounded too
        spec["shuffle_buffer"] = image_files.shuffle_buffer(
            (height, width), channels, settings.get("batch_size") or 32)
    return Splits(*datasets, spec=spec, shard=(datasets[0], share))


def num_examples(info, split_names):
    """The examples of `split_names` (such as "train[:85%]") by the data set's info, or
    None when the info does not say."""
    try:
        return sum(int(info.splits[split].num_examples) for split in split_names)
    except (KeyError, ValueError, TypeError, AttributeError):
        return None


def _cache_choice(info, split_names, image_size, channels, settings, file_bytes_per_value):
    """The cache choice for a TFDS data set, as for an image folder: its decoded size
    estimated from its info (examples x image shape) against the memory budget.

    Returns:
        `(cache, folder)`: "memory", "file" or "none", and the file cache's folder
        (None unless "file").

    Raises:
        UsageError: for images that cannot fit in memory (`settings.check_memory`).
    """
    from kerasdl import settings as run_settings

    count = num_examples(info, split_names)
    if not count:  # unknown: cached in memory, as recipes always did
        return "memory", None
    memory = run_settings.available_memory()
    cache = image_files.image_cache(count, image_size, channels, memory, file_bytes_per_value)
    run_settings.check_memory(settings, [*image_size, channels], count, cache, memory)
    image_files.note_cache(cache, count, image_size, channels, memory)
    return cache, image_files.cache_folder() if cache == "file" else None


def worker_split(split, split_infos, index, workers):
    """Worker `index`'s contiguous slice of the TFDS split `split` (`shards.shard_range`).

    Args:
        split: a split string of `_split_names` (`"train"`, `"train[:85%]"`).
        split_infos: the data set's `info.splits` (each split's `num_examples`).

    Returns:
        `(split string, examples, repeat)`: an absolute slice such as `"train[0:25500]"`,
        the examples in it, and how many of its first to read again at the end.
    """
    import tensorflow_datasets as tfds

    (part,) = tfds.core.ReadInstruction.from_spec(split).to_absolute(split_infos)
    length = split_infos[part.splitname].num_examples
    begin = part.from_ or 0
    end = length if part.to is None else part.to
    begin, end = (value + length if value < 0 else value for value in (begin, end))
    start, stop, repeat = shards.shard_range(end - begin, index, workers)
    return f"{part.splitname}[{begin + start}:{begin + stop}]", stop - start, repeat
