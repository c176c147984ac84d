"""Image files and image folders (one sub-folder per class)."""

from pathlib import Path

import numpy as np

from kerasdl.errors import DataError

IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
# The first bytes of each format TensorFlow decodes.
SIGNATURES = (b"\x89PNG", b"\xff\xd8", b"GIF8", b"BM")


def check_signatures(paths):
    """Raises DataError naming the first file that is not a PNG, JPEG, GIF or BMP image.

    Reads a few bytes of each file, so a broken file is named before training starts
    rather than failing a decode op in the middle of an epoch.
    """
    for path in paths:
        with open(path, "rb") as handle:
            if not handle.read(4).startswith(SIGNATURES):
                raise DataError(f"Not a readable image: {str(path)!r} (expected PNG, JPEG, "
                                "GIF or BMP content).")


def list_image_folder(path):
    """Lists an image folder laid out as one sub-folder per class.

    Uses `keras.utils.image_dataset_from_directory`'s own listing (same file
    types, same class order).

    Returns:
        `(file_paths, labels, class_names)`.

    Raises:
        DataError: for a folder with no images or fewer than two classes.
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
    check_signatures(paths)
    index = {name: i for i, name in enumerate(class_names)}
    labels = np.array([index[Path(p).parent.name] for p in paths], dtype=np.int32)
    return paths, labels, class_names


def decode_image(path, image_size, channels):
    """Reads, decodes and resizes one image file inside a tf.data pipeline."""
    import tensorflow as tf

    image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
    image = tf.image.resize(image, image_size)
    return tf.ensure_shape(image, (*image_size, channels))


def image_dataset(paths, labels, image_size, channels):
    """Returns an unbatched dataset of `(image, label)` decoded in parallel."""
    import tensorflow as tf

    image_size = tuple(int(side) for side in image_size)
    dataset = tf.data.Dataset.from_tensor_slices((list(paths), labels))
    return dataset.map(
        lambda path, label: (decode_image(path, image_size, channels), label),
        num_parallel_calls=tf.data.AUTOTUNE,
    )


def load_images(path, image_size, channels):
    """Loads one image file or every image under a folder, for prediction.

    Returns:
        `(file_paths, images)` with images a float32 array in [0, 255].

    Raises:
        DataError: for a missing path, a folder without images or an unreadable image.
    """
    import tensorflow as tf

    path = Path(path)
    if path.is_dir():
        paths = sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        if not paths:
            raise DataError(
                f"No images ({', '.join(IMAGE_EXTENSIONS)}) found under {str(path)!r}."
            )
    elif path.is_file():
        paths = [path]
    else:
        raise DataError(f"Input not found: {str(path)!r}.")
    images = []
    for file in paths:
        try:
            images.append(decode_image(str(file), tuple(image_size), channels).numpy())
        except (tf.errors.InvalidArgumentError, tf.errors.NotFoundError):
            raise DataError(
                f"Cannot decode image {str(file)!r}; supported: {', '.join(IMAGE_EXTENSIONS)}."
            ) from None
    return [str(p) for p in paths], np.stack(images).astype(np.float32)
