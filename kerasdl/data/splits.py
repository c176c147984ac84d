"""Train, validation and test splits: the `Splits` every source returns, and how they are drawn.

Splits are drawn with `split_seed` (default `kerasdl.settings.SPLIT_SEED`), independent of
the training seed, so runs with different seeds are scored on the same test examples.
This module imports no other data module: every source imports it.
"""

import dataclasses

import numpy as np

from kerasdl.errors import DataError
from kerasdl.settings import SPLIT_SEED


@dataclasses.dataclass
class Splits:
    """Train, validation and test datasets of `(features, label)` pairs, and their spec.

    `spec` is a JSON-serializable dict describing the data (input shape, classes or
    target statistics...): recipes build their model from it. `arrays` holds the
    NumPy arrays of tabular data (`{"train": (x, y), ...}`), else None. `baseline`
    holds the classic model's test scores when the source computed them itself (a
    streamed CSV file, never held in memory). `shard` is `(train, share)` for a source
    that reads its training examples from files: `share(index, workers)` returns the
    unbatched training examples worker `index` of `workers` reads, and only those
    (`kerasdl.data.shards`); see `worker_share`.
    """

    train: object
    validation: object
    test: object
    spec: dict
    arrays: dict = None
    baseline: dict = None
    shard: tuple = None

    @property
    def shardable(self):
        """Whether each worker can read its own share of `train` (`worker_share`)."""
        return self.shard is not None and self.shard[0] is self.train

    def worker_share(self, index, workers):
        """Worker `index`'s share of the training split, or None when it has none.

        None for data held in memory (the embedded sets: every worker has it all and
        keeps every Nth batch), and when `train` is no longer the split the source
        made (filtered by class, limited, resampled): a share would then hold other
        examples than the split.
        """
        if not self.shardable:
            return None
        return self.shard[1](int(index), int(workers))


def split_indices(count, labels, settings):
    """Returns train, validation and test index arrays drawn with `split_seed`.

    Classification labels are stratified so every split holds every class.
    """
    from sklearn.model_selection import train_test_split

    seed = int(settings.get("split_seed", SPLIT_SEED))
    test_split = float(settings.get("test_split", 0.2))
    validation_split = float(settings.get("validation_split", 0.2))
    indices = np.arange(count)
    stratify = labels if labels is not None and labels.dtype.kind in "iu" else None
    try:
        rest, test = train_test_split(indices, test_size=test_split, random_state=seed,
                                      stratify=stratify)
        stratify = stratify[rest] if stratify is not None else None
        train, validation = train_test_split(
            rest, test_size=validation_split / (1 - test_split), random_state=seed,
            stratify=stratify)
    except ValueError as error:
        raise DataError(f"Cannot split {count} examples into train, validation and test: "
                        f"{str(error).splitlines()[0]}") from None
    return np.sort(train), np.sort(validation), np.sort(test)


def relabel(labels, names, model_names):
    """Maps class indices over `names` to indices over a trained model's `model_names`."""
    known = {name: i for i, name in enumerate(model_names)}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise DataError(f"Target classes {', '.join(unknown)} are unknown to the model; "
                        f"it knows {', '.join(model_names)}.")
    return np.array([known[names[label]] for label in labels], dtype=np.int32)
