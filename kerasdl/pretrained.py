"""Pretrained weights: clear download failures, sha256 records, and base weights files.

Keras downloads ImageNet weights into `~/.keras/models` (`$KERAS_HOME/models`) and
checks VGG16's with an md5 hash, but passes no hash at all for MobileNetV2. kerasdl
records the sha256 of every weights file of `keras.applications` it uses the first time
(`kerasdl-sha256.json` beside them) and refuses a file that later differs: a download
cut short or replaced is caught before training starts, not as poor accuracy.

Which files those are, and which layer of the model is the pretrained base, a recipe
declares in `PRETRAINED` (recipes/README.md): `{"layer": "base", "weights_files":
["vgg16_*.h5"]}`. Nothing here knows a recipe by its name.
"""

import contextlib
import fnmatch
import hashlib
import json
import os
import re
from pathlib import Path

from kerasdl.errors import DataError

RECORD = "kerasdl-sha256.json"
# Without a recipe's `weights_files`: every weights file Keras keeps.
ALL_WEIGHTS_FILES = ("*.h5",)


def models_dir():
    """The folder where Keras keeps downloaded weights."""
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    return Path(home) / "models"


@contextlib.contextmanager
def downloads():
    """Turns Keras' failed weight download into a one-line DataError saying what to do."""
    try:
        yield
    except Exception as error:
        match = re.search(r"URL fetch failure on (\S+?):? ", str(error))
        if not match:
            raise
        url = match.group(1)
        name = url.rsplit("/", 1)[-1]
        raise DataError(
            f"Cannot download the pretrained weights {name} (no network?). Fetch {url} "
            f"on a machine with internet and put it in {models_dir()}/, or train with "
            "`--weights none` (from scratch) or `--weights FILE`."
        ) from None


def sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_downloads(folder=None, patterns=None):
    """Checks each `keras.applications` weights file in `folder` against its sha256 record.

    A file seen for the first time is recorded; a file whose sha256 differs from the
    record raises.

    Args:
        folder: Keras' weights folder (default `models_dir()`).
        patterns: glob patterns of the file names to check, a recipe's
            `PRETRAINED["weights_files"]`; by default every `.h5` file.

    Raises:
        DataError: naming the file, both hashes and how to fetch it again.
    """
    folder = Path(folder) if folder else models_dir()
    if not folder.is_dir():
        return
    record_path = folder / RECORD
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    changed = False
    for path in sorted(folder.iterdir()):
        if not path.is_file() or not any(fnmatch.fnmatchcase(path.name, pattern)
                                         for pattern in patterns or ALL_WEIGHTS_FILES):
            continue
        seen = record.get(path.name)
        digest = sha256(path)
        if seen == digest:
            continue
        if seen:
            raise DataError(
                f"The weights file {path} changed since kerasdl first used it (sha256 "
                f"{digest[:16]}... instead of {seen[:16]}...). Delete it so that "
                "Keras downloads it again."
            )
        record[path.name] = digest
        changed = True
    if changed:
        from kerasdl import runs

        runs.write_json(record_path, record)


def base_model(model, declaration):
    """Returns the pretrained base of a transfer model: the layer its recipe declares.

    Args:
        declaration: the recipe's `PRETRAINED` dict (None: the recipe declares no base).

    Raises:
        DataError: for a recipe without `PRETRAINED`, or a model without that layer.
    """
    if not declaration:
        raise DataError("This run's recipe declares no pretrained base (`PRETRAINED`); "
                        "`--format base` exports the base of a recipe that does, such as "
                        "vgg16 and mobilenet.")
    name = declaration["layer"]
    try:
        return model.get_layer(name)
    except ValueError:
        raise DataError(f"This run's model has no layer {name!r}, the pretrained base its "
                        "recipe declares.") from None
