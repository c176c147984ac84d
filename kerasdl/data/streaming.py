"""CSV files too large to hold: one streaming statistics pass, then tf.data reads batches.

Above `stream_threshold()` bytes (`KERASDL_CSV_STREAM_MB`, default 64), a CSV file for
a tabular recipe is never read whole:
- one pass of pandas chunks checks every row (a value that is missing, not finite, or
  of another type than the column had in the first chunk is an error naming the column
  and the row), assigns each row to train, validation or test (a seeded hash of its row
  number, so the split is deterministic and needs no memory), and sums what the spec
  needs: the normalisation statistics of the training rows, the category vocabularies,
  the class names, and the Gram matrix of the linear baseline;
- a second pass over the test rows scores the baseline;
- training reads the file again in chunks (tf.data from a generator over pandas chunks),
  encodes them as the spec says and keeps the rows of its split.
Memory is then bounded by the chunk size, not the file size.
"""

import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from kerasdl.data import tabular
from kerasdl.errors import DataError

DEFAULT_STREAM_MB = 64
CHUNK_ROWS = 100_000
READ_BATCH = 4096
SPLITS = ("train", "validation", "test")
# The row hash: three rounds of a quadratic map modulo the prime 2**31 - 1, in int64
# arithmetic (every product stays below 2**62).
PRIME = 2_147_483_647
MULTIPLIERS = (1_103_515_245, 747_796_405, 1_664_525, 1_013_904_223)


def stream_threshold():
    """Bytes above which a CSV file streams (`KERASDL_CSV_STREAM_MB`, default 64 MB).

    Raises:
        DataError: for a value that is not a non-negative number.
    """
    value = os.environ.get("KERASDL_CSV_STREAM_MB", str(DEFAULT_STREAM_MB))
    try:
        megabytes = float(value)
    except ValueError:
        megabytes = -1.0
    if not megabytes >= 0:
        raise DataError(f"KERASDL_CSV_STREAM_MB must be a number of megabytes >= 0 (0: "
                        f"always stream). Received: {value!r}")
    return megabytes * 2 ** 20


def should_stream(path, task):
    """Whether CSV file `path` streams: a tabular recipe and a file above the threshold."""
    if task not in ("regression", "classification"):
        return False
    return Path(path).stat().st_size > stream_threshold()


def row_fractions(rows, seed):
    """A number in [0, 1) per row number, from a seeded hash: the row's split draw."""
    rows = np.asarray(rows, np.int64) % PRIME
    a, b, c, d = MULTIPLIERS
    h = (rows * a % PRIME + (int(seed) % PRIME) * b % PRIME + c) % PRIME
    h = (h * h + d) % PRIME
    h = (h * h + a) % PRIME
    return h.astype(np.float64) / PRIME


def split_names(rows, settings):
    """`0` train, `1` validation, `2` test per row number, with `split_seed`."""
    fractions = row_fractions(rows, settings.get("split_seed", 1337))
    test = float(settings.get("test_split", 0.2))
    validation = float(settings.get("validation_split", 0.2))
    return np.where(fractions < test, 2, np.where(fractions < test + validation, 1, 0))


class _Progress:
    """One line on stderr every few seconds of a long pass over a file."""

    def __init__(self, path, what):
        self.path, self.what = Path(path), what
        self.size = max(self.path.stat().st_size, 1)
        self.started = self.last = time.monotonic()

    def update(self, rows, final=False):
        now = time.monotonic()
        if final or now - self.last >= 2.0:
            self.last = now
            print(f"{self.what} {self.path.name}: {rows:,} rows"
                  f"{' done' if final else ''} ({now - self.started:.0f} s)",
                  file=sys.stderr, flush=True)


class _Moments:
    """Count, mean and sum of squared deviations, merged chunk by chunk (Chan et al.)."""

    def __init__(self, width):
        self.count = 0
        self.mean = np.zeros(width)
        self.m2 = np.zeros(width)

    def add(self, values):
        if len(values) == 0:
            return
        count = len(values)
        mean = values.mean(axis=0)
        m2 = ((values - mean) ** 2).sum(axis=0)
        total = self.count + count
        delta = mean - self.mean
        self.mean = self.mean + delta * count / total
        self.m2 = self.m2 + m2 + delta ** 2 * self.count * count / total
        self.count = total

    def variance(self):
        return self.m2 / max(self.count, 1)


def _reader(path, reading, types, target, task, chunk_rows, rows=None):
    """A chunked pandas reader of the used columns, categories and classes read as text.

    `rows` `(start, stop)` reads only the data rows `start` to `stop - 1` (0 is the row
    after the header): the rows before are skipped without being parsed, unless the
    file has blank lines (`(start, stop, False)`, see `blank_lines`): those are parsed
    and left. The chunks' index is the row number in the file either way.
    """
    text = [name for name, kind in types.items() if kind == "category"]
    if task == "classification":
        text.append(target)
    used = [*types, target]
    if reading.get("time_column"):
        used.append(reading["time_column"])
    sep = reading.get("sep") or ","
    if rows is None:
        return tabular.read_csv(path, sep=sep, categorical=text, usecols=used,
                                chunksize=chunk_rows)
    start, stop, *skip = rows
    if skip and not skip[0]:
        chunks = tabular.read_csv(path, sep=sep, categorical=text, usecols=used,
                                  chunksize=chunk_rows, nrows=stop)
        return (chunk[chunk.index >= start] for chunk in chunks)
    names = [str(name) for name in pd.read_csv(path, sep=sep, nrows=0).columns]
    chunks = tabular.read_csv(path, sep=sep, categorical=text, usecols=used,
                              chunksize=chunk_rows, skiprows=start + 1, header=None,
                              names=names, nrows=stop - start)
    return (chunk.set_axis(chunk.index + start, axis=0) for chunk in chunks)


_BLANK = re.compile(rb"\n[ \t\r]*\n[ \t\r]*\S")


def blank_lines(path, block=16 * 2 ** 20):
    """Whether the file has a blank line before a later row (or looks as if it might).

    pandas leaves blank lines out of its row numbers but counts them when it skips
    lines, so a file with them is read from its start (`_reader`). A blank line in a
    quoted value counts too: the file is then read the slower, always-right way.
    """
    tail = b"\n"  # a blank first line too
    with open(path, "rb") as handle:
        while True:
            data = handle.read(block)
            if not data:
                return False
            if _BLANK.search(tail + data):
                return True
            tail = (tail + data)[-4096:]  # a blank line may span two blocks


def _check_chunk(chunk, types, target, task, source):
    """Checks a chunk's values: missing, text where numbers were, non-finite numbers."""
    tabular.check_missing(chunk)
    for name, kind in types.items():
        if kind != "number":
            continue
        column = chunk[name]
        if not pd.api.types.is_numeric_dtype(column):
            values = pd.to_numeric(column, errors="coerce")
            text = values.isna() & column.notna()
            if text.any():
                raise DataError(
                    f"Column {name!r} of {source!r} held numbers in its first rows, but holds "
                    f"text at {tabular.row_places(chunk.index[text])}: {column[text].iloc[0]!r}. "
                    "Fix those values, or read the column as categories with "
                    f"--categorical {name}.")
            chunk[name] = values
        finite = np.isfinite(chunk[name].to_numpy(np.float64))
        if not finite.all():
            raise DataError(f"Column {name!r} of {source!r} holds non-finite numbers "
                            f"({chunk[name][~finite].iloc[0]}) at "
                            f"{tabular.row_places(chunk.index[~finite])}; every value must be "
                            "a finite number.")
    if task == "regression":
        column = chunk[target]
        values = pd.to_numeric(column, errors="coerce")
        bad = ~np.isfinite(values.to_numpy(np.float64))
        text = values.isna() & column.notna()
        if text.any():
            raise tabular.regression_target_error(
                target, column[text].iloc[0], f" at {tabular.row_places(chunk.index[text])}")
        if bad.any():
            raise DataError(f"Target column {target!r} must hold finite numbers for "
                            f"regression. Received: {column[bad].iloc[0]!r} at "
                            f"{tabular.row_places(chunk.index[bad])}")
        chunk[target] = values


class _Gram:
    """X'X and X'y of the training rows, over features that grow as categories appear."""

    def __init__(self):
        self.names = []
        self.xtx = np.zeros((1, 1))  # index 0: the intercept
        self.xty = None

    def add(self, encoded, targets):
        for name in encoded.columns:
            if name not in self.names:
                self.names.append(name)
        width = len(self.names) + 1
        if self.xtx.shape[0] < width:
            grown = np.zeros((width, width))
            grown[:self.xtx.shape[0], :self.xtx.shape[0]] = self.xtx
            self.xtx = grown
            if self.xty is not None:
                self.xty = np.vstack([self.xty, np.zeros((width - len(self.xty),
                                                          self.xty.shape[1]))])
        x = np.zeros((len(encoded), width))
        x[:, 0] = 1.0
        for name in encoded.columns:
            x[:, 1 + self.names.index(name)] = encoded[name].to_numpy(np.float64)
        self.xtx += x.T @ x
        part = x.T @ targets
        self.xty = part if self.xty is None else self.xty + part

    def solve(self, feature_names):
        """Least-squares weights over `[1, *feature_names]`."""
        order = [0] + [1 + self.names.index(name) if name in self.names else -1
                       for name in feature_names]
        size = len(order)
        xtx, xty = np.zeros((size, size)), np.zeros((size, self.xty.shape[1]))
        known = [i for i, index in enumerate(order) if index >= 0]
        rows = [order[i] for i in known]
        xtx[np.ix_(known, known)] = self.xtx[np.ix_(rows, rows)]
        xty[known] = self.xty[rows]
        weights, *_ = np.linalg.lstsq(xtx, xty, rcond=None)
        return weights


def _encode(chunk, types, categories):
    """The chunk's features as a float64 frame: numbers, and one-hot categories."""
    columns = {}
    for name, kind in types.items():
        if kind == "category":
            text = chunk[name].astype(str)
            for value in categories.get(name, ()):
                columns[f"{name}={value}"] = (text == value).to_numpy(np.float64)
        else:
            columns[name] = chunk[name].to_numpy(np.float64)
    return pd.DataFrame(columns, index=chunk.index)


def scan(path, target, source, task, settings, spec=None, chunk_rows=None):
    """The streaming pass: checks every row and computes the spec and the split counts.

    Returns:
        `(spec, baseline_weights)`; with a trained model's `spec`, that spec (with this
        file's `num_examples`) and None.

    Raises:
        DataError: for rows that cannot be used, naming the column and the row.
    """
    path = Path(path)
    chunk_rows = chunk_rows or CHUNK_ROWS
    if spec is None:
        reading = {key: settings.get(key) for key in tabular.CSV_SETTINGS}
        head = tabular.read_csv(path, sep=reading.get("sep") or ",",
                                categorical=reading.get("categorical"), nrows=chunk_rows)
        if target not in map(str, head.columns):
            tabular.split_target(head.rename(columns=str), target, task, source)
        head, record = tabular.prepare_frame(head, reading, target, source)
        types = {name: "number" if pd.api.types.is_numeric_dtype(head[name])
                 and name not in record["categorical"] else "category"
                 for name in head.columns if name != target}
        if not types:
            raise DataError(f"{source!r} has no feature columns besides the target {target!r}.")
        del head
    else:
        record = dict(spec.get("csv") or {})
        types = dict(tabular.schema_columns(spec))
        columns = [str(name) for name in pd.read_csv(path, sep=record.get("sep") or ",",
                                                     nrows=0).columns]
        absent = [name for name in types if name not in columns]
        if absent:
            raise DataError(f"Missing column(s) {', '.join(map(repr, absent))} in {source!r}: "
                            f"the model was trained on {', '.join(types)}.")
        if target not in columns:
            raise DataError(f"Target column {target!r} not found in {source!r}. "
                            f"Columns: {', '.join(columns)}")
        if record.get("time_column") not in columns:
            record["time_column"] = None
    categories = {name: set() for name, kind in types.items() if kind == "category"}
    known = spec.get("categories") if spec is not None else None
    counts = dict.fromkeys(SPLITS, 0)
    moments = _Moments(sum(1 for kind in types.values() if kind == "number"))
    category_counts = {name: {} for name in categories}
    classes = {}
    target_moments = _Moments(1)
    gram = _Gram()
    unseen = {}
    progress = _Progress(path, "Checking" if spec is not None else "Scanning")
    rows = 0
    options = {**record, "drop": [], "ids": []}  # the reader reads only the used columns
    for chunk in _reader(path, record, types, target, task, chunk_rows):
        chunk, _ = tabular.prepare_frame(chunk, options, target, source, learn=False)
        _check_chunk(chunk, types, target, task, source)
        parts = split_names(chunk.index.to_numpy(), settings)
        for index, name in enumerate(SPLITS):
            counts[name] += int((parts == index).sum())
        if task == "classification":
            for label, count in chunk[target].astype(str).value_counts().items():
                classes[label] = classes.get(label, 0) + int(count)
            if len(classes) > 1000:
                raise DataError(f"Target column {target!r} holds over 1,000 classes; a "
                                "classifier needs a column of class labels.")
        if spec is not None:
            features = chunk[list(types)]
            tabular.frame_to_features(features, spec, target=target, warn=lambda line: None)
            for name in categories:
                new = features[name].astype(str)
                new = new[~new.isin(known.get(name, []))]
                for value, count in new.value_counts().items():
                    unseen.setdefault(name, {})
                    unseen[name][value] = unseen[name].get(value, 0) + int(count)
            rows += len(chunk)
            progress.update(rows)
            continue
        for name in categories:
            categories[name].update(chunk[name].astype(str).unique())
            if len(categories[name]) > tabular.MAX_CATEGORIES:
                raise DataError(
                    f"Column {name!r} holds text with more than {tabular.MAX_CATEGORIES} "
                    f"distinct values (at most {tabular.MAX_CATEGORIES} can be one-hot "
                    f"encoded); leave it out with --drop {name} or read it as numbers with "
                    f"--numeric {name}.")
        train = chunk[parts == 0]
        numbers = [name for name, kind in types.items() if kind == "number"]
        moments.add(train[numbers].to_numpy(np.float64))
        for name in categories:
            for value, count in train[name].astype(str).value_counts().items():
                category_counts[name][value] = category_counts[name].get(value, 0) + int(count)
        encoded = _encode(train, types, {name: sorted(values)
                                         for name, values in categories.items()})
        if task == "regression":
            targets = train[target].to_numpy(np.float64)[:, None]
            target_moments.add(targets)
        else:
            targets = train[target].astype(str)
        gram.add(encoded, targets if task == "regression" else _one_hot_classes(targets, gram))
        rows += len(chunk)
        progress.update(rows)
    progress.update(rows, final=True)
    if rows == 0:
        raise DataError(f"CSV file {str(path)!r} has no rows.")
    empty = [name for name in SPLITS if counts[name] == 0]
    if empty:
        raise DataError(f"Cannot split {rows} rows into train, validation and test: the "
                        f"{', '.join(empty)} split would be empty.")
    if spec is not None:
        if task == "classification":
            strange = sorted(set(classes) - set(spec["class_names"]))
            if strange:
                raise DataError(f"Target classes {', '.join(strange)} are unknown to the "
                                f"model; it knows {', '.join(spec['class_names'])}.")
        if unseen:
            print("Categories unseen in training, encoded as none of the known ones: "
                  + "; ".join(f"{name!r}: " + ", ".join(f"{value!r} ({count})"
                                                      for value, count in values.items())
                              for name, values in unseen.items()) + ".",
                  file=sys.stderr, flush=True)
        return {**spec, "num_examples": counts}, None
    categories = {name: sorted(values) for name, values in categories.items()}
    feature_names, means, variances = [], [], []
    number_index = 0
    for name, kind in types.items():
        if kind == "category":
            for value in categories[name]:
                share = category_counts[name].get(value, 0) / max(counts["train"], 1)
                feature_names.append(f"{name}={value}")
                means.append(share)
                variances.append(share * (1 - share))
        else:
            feature_names.append(name)
            means.append(float(moments.mean[number_index]))
            variances.append(float(moments.variance()[number_index]))
            number_index += 1
    new_spec = {
        "task": task, "source": source, "input_shape": [len(feature_names)],
        "feature_names": feature_names, "columns": types, "categories": categories,
        "target": target, "feature_mean": means, "feature_variance": variances,
        "num_examples": counts, "csv": record, "streamed": True,
        # Recipes' pipelines keep nothing in memory: the rows are read from the file.
        "cache": "none",
    }
    if task == "regression":
        new_spec.update(num_targets=1, target_mean=float(target_moments.mean[0]),
                        target_std=float(np.sqrt(target_moments.variance()[0])) or 1.0)
    else:
        class_names = sorted(classes)
        numeric = pd.to_numeric(pd.Series(class_names), errors="coerce")
        if numeric.notna().all() and (len(class_names) > tabular.MAX_CATEGORIES
                                      or not np.all(np.mod(numeric.to_numpy(), 1) == 0)):
            raise DataError(
                f"Target column {target!r} holds {len(class_names)} distinct numbers, not "
                "classes: a classifier needs a column of class labels. To predict the "
                f"number, train the regression recipe (`kerasdl train regression --data ... "
                f"--target {target}`).")
        new_spec.update(num_classes=len(class_names), class_names=class_names)
    weights = None
    if gram.xty is not None:
        if task == "classification":
            gram.xty = gram.xty[:, [gram.classes.index(name) for name in class_names]]
        weights = gram.solve(feature_names)
    return new_spec, weights


def _one_hot_classes(labels, gram):
    """One-hot class targets over the classes seen so far (kept on `gram`)."""
    gram.classes = getattr(gram, "classes", [])
    for label in labels.unique():
        if label not in gram.classes:
            gram.classes.append(label)
    if gram.xty is not None and gram.xty.shape[1] < len(gram.classes):
        gram.xty = np.hstack([gram.xty, np.zeros((len(gram.xty),
                                                   len(gram.classes) - gram.xty.shape[1]))])
    targets = np.zeros((len(labels), len(gram.classes)))
    targets[np.arange(len(labels)), [gram.classes.index(label) for label in labels]] = 1.0
    return targets


def score_baseline(path, spec, weights, settings, chunk_rows=None):
    """Scores the linear baseline on the test rows, in a second streaming pass.

    Regression: least squares (`linear_regression`: MAE and RMSE); classification:
    least squares on one-hot classes, the class of the largest output
    (`linear_least_squares`: accuracy).
    """
    task, target = spec["task"], spec["target"]
    types = spec["columns"]
    chunk_rows = chunk_rows or CHUNK_ROWS
    progress = _Progress(path, "Scoring the baseline on")
    errors, squares, correct, count, rows = 0.0, 0.0, 0, 0, 0
    options = {**spec["csv"], "drop": [], "ids": []}
    for chunk in _reader(path, spec["csv"], types, target, task, chunk_rows):
        chunk, _ = tabular.prepare_frame(chunk, options, target, "", learn=False)
        test = chunk[split_names(chunk.index.to_numpy(), settings) == 2]
        rows += len(chunk)
        progress.update(rows)
        if len(test) == 0:
            continue
        encoded = _encode(test, types, spec["categories"])[spec["feature_names"]]
        x = np.hstack([np.ones((len(test), 1)), encoded.to_numpy(np.float64)])
        outputs = x @ weights
        count += len(test)
        if task == "regression":
            difference = outputs[:, 0] - pd.to_numeric(test[target]).to_numpy(np.float64)
            errors += float(np.abs(difference).sum())
            squares += float((difference ** 2).sum())
        else:
            names = np.array(spec["class_names"])
            correct += int((names[outputs.argmax(axis=1)] == test[target].astype(str)).sum())
    progress.update(rows, final=True)
    if task == "regression":
        return {"model": "linear_regression", "mae": errors / count,
                "rmse": float(np.sqrt(squares / count))}
    return {"model": "linear_least_squares", "accuracy": correct / count}


def _batches(path, spec, settings, index, rows=None, record=None):
    """Yields the `(features, labels)` arrays of split `index`, chunk by chunk of the file.

    `rows` `(start, stop)`: only the file's data rows `start` to `stop - 1` are read.
    `record`: a file to which the row number of each example is appended.
    """
    task, target = spec["task"], spec["target"]
    types = spec["columns"]
    classes = {name: i for i, name in enumerate(spec.get("class_names") or [])}
    options = {**(spec.get("csv") or {}), "drop": [], "ids": []}
    for chunk in _reader(path, spec.get("csv") or {}, types, target, task, CHUNK_ROWS, rows):
        chunk, _ = tabular.prepare_frame(chunk, options, target, "", learn=False)
        chunk = chunk[split_names(chunk.index.to_numpy(), settings) == index]
        if len(chunk) == 0:
            continue
        if record is not None:
            with open(record, "a") as handle:
                handle.writelines(f"{row}\n" for row in chunk.index)
        _check_chunk(chunk, types, target, task, str(path))  # the file may have changed
        features = _encode(chunk, types, spec["categories"])[spec["feature_names"]]
        features = features.to_numpy(np.float32)
        if task == "regression":
            labels = chunk[target].to_numpy(np.float32)
        else:
            labels = chunk[target].astype(str).map(classes).to_numpy()
            if np.isnan(labels.astype(np.float64)).any():
                raise DataError(f"{str(path)!r} changed since it was read: its target column "
                                f"{target!r} holds classes the model does not know.")
            labels = labels.astype(np.int32)
        for start in range(0, len(labels), READ_BATCH):
            yield features[start:start + READ_BATCH], labels[start:start + READ_BATCH]


def datasets(path, spec, settings):
    """Train, validation and test datasets that read the CSV file in chunks.

    Each yields unbatched `(features, label)` pairs encoded as the spec says, with its
    cardinality known (`num_examples`). The file is parsed by pandas, as in the
    statistics pass (the same parser reads the same values, and faster than
    `tf.data.experimental.CsvDataset`); one chunk is held at a time.
    """
    import tensorflow as tf

    width = len(spec["feature_names"])
    label = (tf.TensorSpec([None], tf.float32) if spec["task"] == "regression"
             else tf.TensorSpec([None], tf.int32))
    signature = (tf.TensorSpec([None, width], tf.float32), label)

    def split(index):
        batches = tf.data.Dataset.from_generator(
            lambda: _batches(path, spec, settings, index), output_signature=signature)
        return batches.unbatch().apply(tf.data.experimental.assert_cardinality(
            spec["num_examples"][SPLITS[index]]))

    return [split(index) for index in range(3)]


def _train_rows(total, settings, start, stop, block=1_000_000):
    """The file rows `(first, end)` that hold the training rows `start` to `stop - 1`.

    Training rows are counted in file order; a row's split is a hash of its number, so
    this needs no reading, only the hash of every row number up to `end` (in blocks).
    """
    seen, first = 0, None
    for offset in range(0, int(total), block):
        rows = np.arange(offset, min(offset + block, int(total)), dtype=np.int64)
        train = rows[split_names(rows, settings) == 0]
        if first is None and seen + len(train) > start:
            first = int(train[start - seen])
        if seen + len(train) >= stop:
            return first, int(train[stop - 1 - seen]) + 1
        seen += len(train)
    raise DataError(f"The file holds {seen} training rows, fewer than the {stop} of its scan.")


def train_share(path, spec, settings, index, workers):
    """Worker `index`'s share of the training rows: an unbatched dataset like `datasets`'.

    A contiguous range of the training rows (`kerasdl.data.shards.shard_range`): the
    worker skips the file's rows before it unparsed and stops reading after its last.
    A worker with one row fewer than the others reads its first row again at the end
    of each epoch, so every worker runs as many steps.
    """
    import tensorflow as tf

    from kerasdl.data import shards

    counts = spec["num_examples"]
    start, stop, repeat = shards.shard_range(counts["train"], index, workers)
    size = stop - start + repeat
    first, end = _train_rows(sum(counts.values()), settings, start, stop)
    rows = (first, end, not blank_lines(path))
    shards.note("rows", counts["train"], workers, index)
    record = shards.record_path(index)
    width = len(spec["feature_names"])
    label = (tf.TensorSpec([None], tf.float32) if spec["task"] == "regression"
             else tf.TensorSpec([None], tf.int32))
    signature = (tf.TensorSpec([None, width], tf.float32), label)

    def batches():
        read = 0
        for features, labels in _batches(path, spec, settings, 0, rows, record):
            if read == 0 and repeat:
                again = (features[:repeat], labels[:repeat])
            read += len(labels)
            yield features, labels
        if read != stop - start:
            raise DataError(f"{str(path)!r} changed since it was read: rows {first} to "
                            f"{end - 1} hold {read} training rows, not {stop - start}.")
        if repeat:
            if record is not None:
                with open(record, "a") as handle:
                    handle.write(f"{first}\n")
            yield again

    dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    return dataset.unbatch().apply(tf.data.experimental.assert_cardinality(size))
