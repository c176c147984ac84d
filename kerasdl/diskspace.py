"""Disk space: check before saving, and one clear error when the disk is full."""

import contextlib
import errno
import json
import os
import shutil
from pathlib import Path

from kerasdl.errors import RunError

# Room kept free beyond a save's own size: config.json, history.csv, the rename.
MARGIN = 1 << 20


class DiskFull(RunError):
    """Saving failed, or would fail, for lack of space on the device."""


def _megabytes(count):
    return f"{count / 1e6:.1f} MB"


def _existing(folder):
    folder = Path(folder)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return folder


def free_bytes(folder):
    """The bytes free on the file system of `folder` (or of its nearest existing parent)."""
    return shutil.disk_usage(_existing(folder)).free


def ensure(folder, needed):
    """Raises DiskFull when the device of `folder` has less than `needed` + MARGIN bytes free."""
    free = free_bytes(folder)
    if free < needed + MARGIN:
        raise DiskFull(f"Not enough space to save in {str(folder)!r}: about "
                       f"{_megabytes(needed + MARGIN)} needed, {_megabytes(free)} free. "
                       "Free some space and run the command again.")


def model_bytes(model, copies=3):
    """A cheap size estimate of a saved model: its weights (and optimizer slots) in float32."""
    return int(model.count_params()) * 4 * copies


def is_disk_full(error):
    """Whether an exception is (or was caused by) a full disk."""
    while error is not None:
        if isinstance(error, DiskFull):
            return True
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(error) or "errno = 28" in str(error):
            return True
        error = error.__cause__ or error.__context__
    return False


def disk_full(folder, error=None, needed=None):
    """The DiskFull error to raise for `folder`."""
    try:
        free = _megabytes(free_bytes(folder))
    except OSError:
        free = "unknown"
    need = f"about {_megabytes(needed + MARGIN)} needed, " if needed else ""
    return DiskFull(f"No space left on the device of {str(folder)!r} while saving ({need}"
                    f"{free} free); free some space and run the command again: completed "
                    "work is kept.")


def remove_partial(*paths):
    """Removes half-written files a failed save left (a full disk frees their space)."""
    for path in paths:
        with contextlib.suppress(OSError):
            os.remove(path)


def write_status(path, data):
    """Writes a run's config.json even when the disk is full.

    First atomically (a temporary file renamed into place); when that fails for lack
    of space, in place: the new text mostly fits in the blocks the file already holds,
    so a full disk still records why the run stopped. Returns whether it was written.
    """
    from kerasdl import runs

    try:
        runs.write_json(path, data)
        return True
    except OSError:
        pass
    text = (json.dumps(data, indent=2, default=str) + "\n").encode()
    try:
        with open(path, "r+b") as handle:
            handle.write(text)
            handle.truncate()
            handle.flush()
            os.fsync(handle.fileno())
        return True
    except OSError:
        return False
