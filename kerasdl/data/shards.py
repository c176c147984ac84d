"""Each worker's share of the training split under multi-worker training.

With `--strategy multiworker` (and `train --workers N`), a source that reads its training
examples from files gives each worker its own share *before* anything is read or decoded
(`Splits.worker_share`), so N workers each read about 1/N of the data:
- an image folder: every Nth file of the training split, from the worker's index on
  (`shard_positions`: the split is in class order, so every worker gets every class);
- a streamed CSV file: a contiguous range of the training rows (`shard_range`); the
  worker skips the rows before it without parsing them and stops after its last;
- TFDS: an absolute slice of the training split (`train[a:b]`), as `shard_range` says.

Every worker must run the same number of steps per epoch, so the shares are made equal:
when N does not divide the number of training examples, the workers with one example
fewer read their own first example a second time each epoch (at most N - 1 examples
repeated in all; none left out). This module is pure: positions in, positions out.
"""

import os
from pathlib import Path

import numpy as np

from kerasdl.errors import DataError

# A folder where each worker appends what its training share read, one line per example
# (`worker<index>.txt`): files for an image folder, row numbers for a CSV file. For tests
# and for checking a cluster by hand; unset, nothing is written.
RECORD_ENV = "KERASDL_SHARD_RECORD"


def share_size(count, workers):
    """The number of examples every worker reads per epoch: `ceil(count / workers)`.

    Raises:
        DataError: when there are fewer examples than workers.
    """
    count, workers = int(count), int(workers)
    if workers < 1:
        raise ValueError(f"`workers` must be a positive integer. Received: workers={workers}")
    if count < workers:
        raise DataError(f"Cannot share {count} training example(s) among {workers} workers: "
                        f"each worker needs at least one; use at most {max(count, 1)} "
                        "worker(s) or more data.")
    return -(-count // workers)


def _check_index(index, workers):
    if not 0 <= int(index) < int(workers):
        raise ValueError(f"`index` must be in [0, {workers}). Received: index={index}")


def shard_positions(count, index, workers):
    """The positions (into a list of `count` items) that worker `index` of `workers` reads.

    Strided: positions `index, index + workers, ...`, so a list in class order gives
    every worker every class. A worker with one position fewer than the others reads
    its own first position again at the end, so every share has `share_size` positions
    and the shares, as sets, are disjoint and cover the list.

    Returns:
        An int64 array of positions.

    Raises:
        DataError: when `count < workers`.
    """
    size = share_size(count, workers)
    _check_index(index, workers)
    positions = np.arange(int(index), int(count), int(workers), dtype=np.int64)
    return np.concatenate([positions, positions[:size - len(positions)]])


def shard_range(count, index, workers):
    """The contiguous range of `count` ordered items that worker `index` of `workers` reads.

    The first `count % workers` workers get one item more; each of the others reads
    its own first item again at the end, so every share has `share_size` items.

    Returns:
        `(start, stop, repeat)`: the worker reads items `start` to `stop - 1`, then
        `repeat` (0 or 1) items from `start` again.

    Raises:
        DataError: when `count < workers`.
    """
    size = share_size(count, workers)
    _check_index(index, workers)
    index, workers = int(index), int(workers)
    base, extra = divmod(int(count), workers)
    start = index * base + min(index, extra)
    stop = start + base + (1 if index < extra else 0)
    return start, stop, size - (stop - start)


def record_path(index):
    """Where worker `index` records what its share read (`RECORD_ENV`), or None."""
    folder = os.environ.get(RECORD_ENV)
    if not folder:
        return None
    Path(folder).mkdir(parents=True, exist_ok=True)
    return Path(folder) / f"worker{int(index)}.txt"


def note(what, count, workers, index):
    """One line on stderr from the chief: what each worker reads of `count` examples."""
    import sys

    if index != 0:
        return
    size = share_size(count, workers)
    repeated = size * workers - int(count)
    print(f"Note: each of the {workers} workers reads its own {size:,} of the {int(count):,} "
          f"training {what}"
          + (f" ({repeated} worker(s) read one of theirs twice, so that every worker runs "
             "as many steps)" if repeated else "")
          + "; validation is read by every worker and scored once over all of it.",
          file=sys.stderr, flush=True)
