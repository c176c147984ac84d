"""Image files and image folders (one sub-folder per class)."""

import atexit
import os
import re
import shutil
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from kerasdl import diskspace
from kerasdl.errors import DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# Folders at least this large get a progress bar while they are scanned.
PROGRESS_FROM = 500


def _note(message):
    print(message, file=sys.stderr, flush=True)


def _decodable(path, channels):
    """Returns None when TensorFlow decodes `path` as training will, else the reason."""
    import tensorflow as tf

    try:
        data = tf.io.read_file(path)
        if int(tf.strings.length(data)) == 0:
            return "empty file"
        tf.io.decode_image(data, channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError,
            tf.errors.OutOfRangeError, tf.errors.DataLossError) as error:
        # "{{function_node ...}} Invalid PNG data, size 49 [Op:DecodeImage] name:"
        reason = re.sub(r"\{\{.*?\}\}|\[Op:.*$", "", str(error.message).splitlines()[0])
        return reason.strip().rstrip(".") or type(error).__name__
    return None


def find_bad_images(paths, channels=3):
    """Decodes every image file in parallel and returns those TensorFlow cannot decode.

    Every file is decoded the way the training pipeline decodes it, on a thread pool
    (TensorFlow's decoders release the GIL), so all broken files are found before
    training starts instead of one "Graph execution error" per run mid-epoch. A
    progress bar goes to stderr for folders of `PROGRESS_FROM` files or more.

    Returns:
        A list of `(path, reason)` pairs, in the order of `paths`.
    """
    paths = [str(path) for path in paths]
    if not paths:
        return []
    workers = min(32, (os.cpu_count() or 1) * 4)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        reasons = pool.map(lambda path: _decodable(path, channels), paths, chunksize=16)
        if len(paths) >= PROGRESS_FROM:
            from tqdm import tqdm

            reasons = tqdm(reasons, total=len(paths), desc="Checking images", unit="file",
                           file=sys.stderr, leave=False)
        reasons = list(reasons)
    return [(path, reason) for path, reason in zip(paths, reasons) if reason is not None]


def drop_bad_images(paths, skip_bad_files, where, channels=3):
    """Checks that every file of `paths` decodes; returns the indices of the good ones.

    Args:
        paths: image file paths.
        skip_bad_files: when True, undecodable files are left out with a count on
            stderr; when False they are an error.
        where: the folder or file the paths come from, for messages.

    Raises:
        DataError: naming every undecodable file, unless `skip_bad_files`.
    """
    bad = find_bad_images(paths, channels)
    if bad and not skip_bad_files:
        listed = "; ".join(f"{path} ({reason})" for path, reason in bad)
        raise DataError(f"{len(bad)} of {len(paths)} image file(s) under {where!r} cannot be "
                        f"decoded: {listed}. Fix or remove them, or pass --skip-bad-files "
                        "to use the other images.")
    if bad:
        if len(bad) == len(paths):
            raise DataError(f"None of the {len(paths)} image file(s) under {where!r} can be "
                            f"decoded (e.g. {bad[0][0]}: {bad[0][1]}).")
        _note(f"Skipped {len(bad)} undecodable image file(s) of {len(paths)} under {where!r} "
              "(--skip-bad-files).")
    bad_paths = {path for path, _ in bad}
    return [i for i, path in enumerate(paths) if str(path) not in bad_paths]


def _report_ignored(folder, listed, top_level):
    """Says on stderr how many files under `folder` are not used as images."""
    listed = {os.path.normpath(path) for path in listed}
    other, loose = [], 0
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.normpath(os.path.join(root, name))
            if path in listed:
                continue
            if top_level and Path(root) == Path(folder) and name.lower().endswith(IMAGE_EXTENSIONS):
                loose += 1
            else:
                other.append(name)
    if other:
        kinds = sorted({Path(name).suffix.lower() or name for name in other})
        _note(f"Ignored {len(other)} non-image file(s) under {str(folder)!r} "
              f"({', '.join(kinds[:8])}{', ...' if len(kinds) > 8 else ''}); images are "
              f"{', '.join(IMAGE_EXTENSIONS)} files.")
    if loose:
        _note(f"Ignored {loose} image file(s) directly in {str(folder)!r}: an image belongs "
              "to the class sub-folder it is in.")


def list_image_folder(path, skip_bad_files=False, channels=3, check=True):
    """Lists an image folder laid out as one sub-folder per class.

    Uses `keras.utils.image_dataset_from_directory`'s own listing (same file
    types, same class order): every image anywhere under a class sub-folder,
    at any depth, belongs to that class. Files that are not images are ignored
    with a count on stderr; every image is decoded first (`drop_bad_images`) unless
    `check` is false.

    Returns:
        `(file_paths, labels, class_names)`.

    Raises:
        DataError: for a folder with no images, fewer than two classes, or
            undecodable images (unless `skip_bad_files`).
    """
    import keras

    folder = str(path)
    try:
        listing = keras.utils.image_dataset_from_directory(
            folder, labels="inferred", batch_size=None, shuffle=False, verbose=False
        )
    except ValueError as error:
        raise DataError(
            f"No usable images in folder {folder!r} ({str(error).splitlines()[0]}). "
            "An image folder needs one sub-folder per class holding "
            f"{', '.join(IMAGE_EXTENSIONS)} files."
        ) from None
    class_names = list(listing.class_names)
    if len(class_names) < 2:
        raise DataError(
            f"Image folder {folder!r} has {len(class_names)} class sub-folder(s); "
            "a classifier needs at least 2 (one sub-folder per class)."
        )
    paths = list(listing.file_paths)
    if len(paths) >= PROGRESS_FROM:
        _note(f"Found {len(paths):,} image file(s) in {len(class_names)} classes under "
              f"{folder!r}.")
    _report_ignored(folder, paths, top_level=True)
    index = {name: i for i, name in enumerate(class_names)}
    # The class is the top-level sub-folder, however deep the file lies below it.
    labels = np.array([index[Path(p).relative_to(folder).parts[0]] for p in paths],
                      dtype=np.int32)
    if not check:
        return paths, labels, class_names
    keep = drop_bad_images(paths, skip_bad_files, folder, channels)
    return [paths[i] for i in keep], labels[keep], class_names


def decode_image(path, image_size, channels):
    """Reads, decodes and resizes one image file inside a tf.data pipeline.

    Returns uint8 pixels (the resized image rounded), so a file cache holds a quarter
    of what float32 would; `as_float` turns them into the [0, 255] floats models take.
    """
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image = tf.image.resize(image, image_size)
    image = tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)
    return tf.ensure_shape(image, (*image_size, channels))


def as_float(image):
    """uint8 pixels to float32 in [0, 255]."""
    import tensorflow as tf

    return tf.cast(image, tf.float32)


# The share of available memory a data set cached in memory may take. Small: a file
# cache is read back from the system's page cache nearly as fast, without growing the
# process (peak memory stays flat as a folder grows), and the rest of memory is for the
# model, its activations, the shuffle buffer and the other programs of the machine.
MEMORY_FRACTION = 1 / 32


def decoded_bytes(count, image_size, channels, bytes_per_value=4):
    """The bytes `count` decoded images take (float32 by default, as recipes cache them)."""
    height, width = (int(side) for side in image_size)
    return int(count) * height * width * int(channels) * bytes_per_value


SHUFFLE_BYTES = 64 * 2 ** 20


def shuffle_buffer(image_size, channels, batch_size=32):
    """How many decoded images a training shuffle buffer holds when they are not cached in
    memory: `SHUFFLE_BYTES` of float32 images, at least 8 batches (what
    `keras.utils.image_dataset_from_directory` shuffles), so the buffer does not grow
    with the image size. The files are in a random order already (the seeded split)."""
    return max(8 * int(batch_size), SHUFFLE_BYTES // decoded_bytes(1, image_size, channels))


def cache_choice(count, image_size, channels, memory, disk_free, file_bytes_per_value=1):
    """Where the decoded images of a data set are cached: "memory", "file" or "none".

    Recipes cache their decoded float32 images in memory. That is kept when it takes at
    most `MEMORY_FRACTION` of the available `memory` (small data: the fastest, and what
    the embedded sets do). Otherwise the resized uint8 images go to a tf.data file cache
    when the disk has room for them (twice over, to leave the disk usable), else nothing
    is cached and every epoch decodes the files again.

    Args:
        count: images in the data set (every split).
        memory: bytes of memory available, or None when unknown (then "memory").
        disk_free: bytes free where the file cache would go, or None for no cache folder.
        file_bytes_per_value: what the file cache stores per pixel value: 1 for uint8
            images, 4 for float32 (a TFDS image feature of another type).
    """
    if memory is None or decoded_bytes(count, image_size, channels) <= MEMORY_FRACTION * memory:
        return "memory"
    file_bytes = decoded_bytes(count, image_size, channels, file_bytes_per_value)
    if disk_free is not None and 2 * file_bytes <= disk_free:
        return "file"
    return "none"


def _recorded(path, record):
    """`path` unchanged, appended to the file `record` as the pipeline reads it."""
    import tensorflow as tf

    def write(value):
        with open(record, "a") as handle:
            handle.write(value.numpy().decode() + "\n")
        return value

    return tf.ensure_shape(tf.py_function(write, [path], tf.string), [])


def image_dataset(paths, labels, image_size, channels, cache_file=None, record=None):
    """Returns an unbatched dataset of `(image, label)` decoded in parallel.

    Args:
        cache_file: a tf.data file cache prefix: the resized uint8 images are written
            there on the first pass and read back on the next ones.
        record: a file to which each path is appended as it is read (a worker's
            share, `kerasdl.data.shards.RECORD_ENV`), or None.
    """
    import tensorflow as tf

    image_size = tuple(int(side) for side in image_size)
    dataset = tf.data.Dataset.from_tensor_slices((list(paths), labels))
    if record is not None:
        dataset = dataset.map(lambda path, label: (_recorded(path, str(record)), label),
                              num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.map(
        lambda path, label: (decode_image(path, image_size, channels), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    if cache_file is not None:
        dataset = dataset.cache(str(cache_file))
    return dataset.map(lambda image, label: (as_float(image), label),
                       num_parallel_calls=tf.data.AUTOTUNE)


def list_images(path, skip_bad_files=False, channels=3):
    """The image files to predict: one image file, or every image under a folder.

    Every file under a folder with an image extension is used, at any depth, in sorted
    order; other files are ignored with a count on stderr.

    Raises:
        DataError: for a missing path, a folder without images or undecodable
            images (unless `skip_bad_files`).
    """
    path = Path(path)
    if path.is_dir():
        found = path.rglob("*")
        if sys.stderr.isatty():
            from tqdm import tqdm

            found = tqdm(found, desc="Listing files", unit="file", file=sys.stderr,
                         leave=False)
        paths = sorted(str(p) for p in found
                       if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
        if not paths:
            raise DataError(
                f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(path)!r}."
            )
        if len(paths) >= PROGRESS_FROM:
            _note(f"Found {len(paths):,} image file(s) under {str(path)!r}.")
        _report_ignored(str(path), paths, top_level=False)
        return [paths[i] for i in drop_bad_images(paths, skip_bad_files, str(path), channels)]
    if path.is_file():
        reason = _decodable(str(path), channels)
        if reason is not None:
            raise DataError(f"Cannot decode image {str(path)!r} ({reason}); supported: "
                            f"{', '.join(IMAGE_EXTENSIONS)}.")
        return [str(path)]
    raise DataError(f"Input not found: {str(path)!r}.")


def image_batches(paths, image_size, channels, batch_size=32):
    """Batches of float32 images in [0, 255] read from `paths` in order, decoded in parallel.

    Memory holds a few batches, however many files there are.
    """
    import tensorflow as tf

    image_size = tuple(int(side) for side in image_size)
    dataset = tf.data.Dataset.from_tensor_slices(list(paths)).map(
        lambda file: as_float(decode_image(file, image_size, channels)),
        num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_images(path, image_size, channels, skip_bad_files=False):
    """Loads one image file or every image under a folder into one array.

    For a few images (tests, serving); `list_images` and `image_batches` stream.

    Returns:
        `(file_paths, images)` with images a float32 array in [0, 255].
    """
    paths = list_images(path, skip_bad_files, channels)
    images = np.concatenate(list(image_batches(paths, image_size, channels).as_numpy_iterator()))
    return paths, images


def image_cache(count, image_size, channels, memory, file_bytes_per_value=1):
    """The cache choice for `count` images (`kerasdl.data.images.cache_choice`).

    `memory` is what the system has available; the file cache goes to a folder under
    the system's temporary folder (`TMPDIR`).
    """
    try:
        disk_free = diskspace.free_bytes(tempfile.gettempdir())
    except OSError:
        disk_free = None
    return cache_choice(count, image_size, channels, memory, disk_free,
                                    file_bytes_per_value)


def note_cache(cache, count, image_size, channels, memory):
    """Says on stderr why images are not cached in memory, and where they go."""
    if cache == "memory":
        return
    size = decoded_bytes(count, image_size, channels)
    where = (f"the resized images go to a file cache under {tempfile.gettempdir()!r}"
             if cache == "file" else
             "too large for the disk too: the images are decoded again each epoch")
    print(f"Note: {count:,} decoded images take {size / 2 ** 30:.2f} GiB, more than the "
          f"memory budget of {MEMORY_FRACTION * memory / 2 ** 30:.2f} GiB "
          f"(1/{round(1 / MEMORY_FRACTION)} of the {memory / 2 ** 30:.1f} GiB "
          f"available); {where}.", file=sys.stderr)


_CACHE_FOLDERS = []


def cache_folder():
    """A new folder for tf.data file caches, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="kerasdl-cache-"))
    if not _CACHE_FOLDERS:
        atexit.register(lambda: [shutil.rmtree(f, ignore_errors=True) for f in _CACHE_FOLDERS])
    _CACHE_FOLDERS.append(folder)
    return folder
