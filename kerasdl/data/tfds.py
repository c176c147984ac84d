"""TensorFlow Datasets sources (`tfds:NAME`)."""

import socket

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


def load_tfds(name, settings):
    """Loads the TFDS image classification data set `name` and splits it.

    Images of varying size are resized to `settings["image_size"]`.

    Raises:
        DataError: for an unknown name, a data set that is not supervised image
            classification, or a download that cannot happen (with what to do).
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

    def prepare(image, label):
        image = tf.image.resize(tf.cast(image, tf.float32), (height, width))
        return tf.ensure_shape(image, (height, width, channels)), tf.cast(label, tf.int32)

    names = _split_names(list(info.splits))
    datasets = [
        builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        .map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
        for split in names
    ]

    def share(worker, workers):
        # TFDS reads only the records of this worker's slice of the training split.
        split, size, repeat = worker_split(names[0], info.splits, worker, workers)
        shards.note("examples", worker_split(names[0], info.splits, 0, 1)[1], workers, worker)
        own = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
        own = own.concatenate(own.take(repeat))  # equal shares: see `shards.shard_range`
        return own.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).apply(
            tf.data.experimental.assert_cardinality(size + repeat))

    spec = {
        "task": "image_classification",
        "source": f"tfds:{name}",
        "input_shape": [height, width, channels],
        "num_classes": label_feature.num_classes,
        "class_names": list(label_feature.names),
    }
    return Splits(*datasets, spec=spec, shard=(datasets[0], share))
