"""Tabular data: CSV files through pandas, numeric features, one-hot categories."""

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from kerasdl.errors import DataError
from kerasdl.errors import UsageError

MAX_CATEGORIES = 50


def read_csv(path, sep=",", categorical=(), **options):
    """Reads a CSV file into a DataFrame.

    Args:
        sep: the field separator, one character.
        categorical: columns read as text whatever they hold (`--categorical`), so
            `1` and `01` stay the categories they are in the file.
        options: passed to `pandas.read_csv` (`chunksize`, `nrows`).

    Raises:
        DataError: when the file is missing, empty or not CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file not found: {str(path)!r}.")
    try:
        frame = pd.read_csv(path, sep=sep or ",",
                            dtype={name: str for name in categorical or ()} or None, **options)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"Cannot read {str(path)!r} as CSV: {reason}") from None
    _refuse_repeated_names(path, sep)
    if options.get("chunksize"):
        return frame
    if frame.empty:
        raise DataError(f"CSV file {str(path)!r} has no rows.")
    if not isinstance(frame.index, pd.RangeIndex):
        # pandas makes the extra leading fields of longer rows the index: columns lost.
        extra = frame.index.nlevels
        raise DataError(f"{str(path)!r} has rows with {extra} more field(s) than its header "
                        f"names ({len(frame.columns)}: {', '.join(map(str, frame.columns))}); "
                        "give every column a name in the first line, or remove the trailing "
                        "delimiters of its rows.")
    return frame


def _refuse_repeated_names(path, sep):
    """pandas renames a repeated header name (`alcohol`, `alcohol.1`): a column the user
    did not name, which training would take and `predict` would then ask for."""
    header = pd.read_csv(path, sep=sep or ",", header=None, nrows=1, dtype=str,
                         keep_default_na=False).iloc[0].tolist()
    places = {}
    for number, name in enumerate(header, 1):
        places.setdefault(str(name), []).append(number)
    repeated = {name: numbers for name, numbers in places.items() if len(numbers) > 1}
    if repeated:
        raise DataError(f"{str(path)!r} names more than one column the same: " + "; ".join(
            f"{name!r} (columns {', '.join(map(str, numbers))})"
            for name, numbers in repeated.items()) + "; give each column its own name.")


# The settings that say how to read a CSV file; a run records them (`spec["csv"]`) so
# that new files are read the same way.
CSV_SETTINGS = ("sep", "drop", "time_column", "categorical", "numeric")
# Fewer rows than this cannot tell an ID column from a column of categories.
MIN_ID_ROWS = 20
# Names of whole-number columns that identify rows: `id`, `sample_id`, `CustomerID`,
# `row`, `index`, `key`, `patient_no`, and pandas' own written index (`Unnamed: 0`); not
# `paid` or `valid`.
ID_NAME = re.compile(r"(?:^|[^a-z])(?:id|ids|idx|index|key|row|no|num|number|uuid)$|"
                     r"(?<=[a-z])(?-i:I[Dd])$|^unnamed: ?0$", re.IGNORECASE)


def _note(message):
    print(f"Note: {message}", file=sys.stderr, flush=True)


def time_order(frame, column, source):
    """Parses `column` as dates and sorts the rows by it (stable: ties keep file order).

    Returns:
        `(frame, times)`: the sorted frame without the time column (its index: the
        rows' numbers in the file) and the parsed times, in the same order.

    Raises:
        DataError: for missing or unparseable dates, naming the row.
    """
    values = frame[column]
    missing = values.isna()
    if missing.any():
        raise DataError(f"Time column {column!r} of {source!r} has missing dates at "
                        f"{row_places(frame.index[missing])}; fill or drop those rows.")
    import warnings

    with warnings.catch_warnings():  # "could not infer format": the mixed ones are checked
        warnings.simplefilter("ignore")
        times = pd.to_datetime(values.astype(str), errors="coerce", format="mixed")
    bad = times.isna()
    if bad.any():
        raise DataError(f"Time column {column!r} of {source!r} holds values that are not "
                        f"dates: {values[bad].iloc[0]!r} at {row_places(frame.index[bad])}; give "
                        "dates such as 2024-05-01 or 2024-05-01 13:00, or another "
                        "--time-column.")
    order = np.argsort(times.to_numpy(), kind="stable")
    return frame.drop(columns=[column]).iloc[order], times.iloc[order]


def _numbers_rows(column, name):
    """Whether a whole-number column with every value different identifies rows: it is
    named like an ID (`ID_NAME`), or its values are consecutive (0..n-1, 1001..1000+n:
    row numbers, in any order)."""
    if pd.api.types.is_bool_dtype(column):
        return False
    values = column.dropna()
    if len(values) != len(column):
        return False
    if not pd.api.types.is_integer_dtype(values):
        if not np.all(np.isfinite(values)) or not np.all(values == np.round(values)):
            return False
    if ID_NAME.search(str(name).strip()):
        return True
    return int(values.max() - values.min()) == len(values) - 1


def _looks_like_dates(column):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sample = column.head(20).astype(str)
        return bool(pd.to_datetime(sample, errors="coerce", format="mixed").notna().all())


def prepare_frame(frame, options, target, source, learn=True, numeric_ids=True):
    """Applies the CSV reading settings (`CSV_SETTINGS`) to a frame read with `read_csv`.

    In training (`learn`), ID-like columns are found and dropped with a note: text with
    every value distinct, and (with `numeric_ids`, for tables of examples, not series)
    whole numbers with every value distinct that are named like an ID or number the rows
    (`_numbers_rows`); reading new data for a run (`learn` false), the run's recorded
    settings are applied as they are.

    Args:
        options: `sep`, `drop`, `time_column`, `categorical`, `numeric` (from the
            settings, or a run's `spec["csv"]`, which also holds the `ids` dropped).
        target: the target column (never dropped).

    Returns:
        `(frame, record)`: the frame in time order (when there is a time column) with
        the dropped and time columns removed, and the settings to record in the spec.

    Raises:
        DataError: for unknown columns, dates that do not parse, text in a
            `numeric` column.
    """
    options = options or {}
    frame = frame.rename(columns=str)
    columns = list(frame.columns)
    drop = [str(name) for name in options.get("drop") or []]
    time_column = options.get("time_column")
    categorical = [str(name) for name in options.get("categorical") or []]
    numeric = [str(name) for name in options.get("numeric") or []]
    if learn:
        for flag, names in (("--drop", drop), ("--categorical", categorical),
                            ("--numeric", numeric),
                            ("--time-column", [time_column] if time_column else [])):
            unknown = [name for name in names if name not in columns]
            if unknown:
                raise DataError(f"{flag} names column(s) {', '.join(map(repr, unknown))} that "
                                f"{source!r} does not have. Columns: {', '.join(columns)}")
    for name in numeric:
        if name in frame.columns and not pd.api.types.is_numeric_dtype(frame[name]):
            values = pd.to_numeric(frame[name], errors="coerce")
            text = values.isna() & frame[name].notna()
            if text.any():
                raise DataError(f"--numeric column {name!r} holds text: "
                                f"{frame[name][text].iloc[0]!r} at {row_places(frame.index[text])}. "
                                "Fix those values, or leave the column to --categorical "
                                "or --drop.")
            frame[name] = values
    ids = list(options.get("ids") or [])
    if learn:
        fixed = {target, time_column, *drop, *categorical, *numeric}
        texts, numbers = [], []
        for name in frame.columns:
            column = frame[name]
            if name in fixed or len(frame) < MIN_ID_ROWS or column.nunique() != len(frame):
                continue
            if not pd.api.types.is_numeric_dtype(column):
                texts.append(name)
            elif numeric_ids and _numbers_rows(column, name):
                numbers.append(name)
        ids += texts + numbers
        if texts:
            dates = [name for name in texts if _looks_like_dates(frame[name])]
            _note(f"dropped ID-like column(s) {', '.join(map(repr, texts))} of {source!r} "
                  "(text, every value different, so nothing to learn from); keep one as a "
                  "category with --categorical COLUMN"
                  + (f", or order the rows by dates with --time-column {dates[0]}."
                     if dates else "."))
        if numbers:
            _note(f"dropped ID-like column(s) {', '.join(map(repr, numbers))} of {source!r} "
                  "(whole numbers, every value different, named like an ID or numbering "
                  "the rows: a model would learn the order of the file, which new rows do "
                  "not share); keep one as a feature with --numeric COLUMN.")
    frame = frame.drop(columns=[name for name in (*drop, *ids) if name in frame.columns])
    if time_column and time_column in frame.columns:
        frame, _ = time_order(frame, time_column, source)
    elif time_column:
        _note(f"no time column {time_column!r} in {source!r}: rows are read in file order.")
    record = {"sep": options.get("sep") or ",", "drop": drop, "ids": ids,
              "time_column": time_column, "categorical": categorical, "numeric": numeric}
    return frame, record


def ignored_by_reading(spec):
    """Columns a run's CSV settings leave out on purpose (dropped, IDs, the time column)."""
    csv = spec.get("csv") or {}
    return {*(csv.get("drop") or []), *(csv.get("ids") or []),
            *([csv["time_column"]] if csv.get("time_column") else [])}


def split_target(frame, target, task, source):
    """Separates the target column from the features.

    Returns:
        `(features_frame, labels, target_info)` where `labels` is float32 for
        regression and int32 class indices for classification, and `target_info`
        holds `class_names` for classification.

    Raises:
        DataError: for a missing target column, missing target values, or a
            non-numeric regression target.
    """
    if target is None:
        raise DataError(
            f"Data {source!r} needs `--target COLUMN`. Columns: {', '.join(map(str, frame.columns))}"
        )
    if target not in frame.columns:
        raise DataError(
            f"Target column {target!r} not found in {source!r}. "
            f"Columns: {', '.join(map(str, frame.columns))}"
        )
    column = frame[target]
    if column.isna().any():
        raise DataError(
            f"Target column {target!r} has {int(column.isna().sum())} missing values; "
            "fill or drop those rows."
        )
    features = frame.drop(columns=[target])
    if features.shape[1] == 0:
        raise DataError(f"{source!r} has no feature columns besides the target {target!r}.")
    if task == "regression":
        if not pd.api.types.is_numeric_dtype(column):
            example = column[pd.to_numeric(column, errors="coerce").isna()].iloc[0]
            raise regression_target_error(target, example)
        return features, column.to_numpy(np.float32), {}
    distinct = column.nunique()
    if pd.api.types.is_numeric_dtype(column) and (
            distinct > MAX_CATEGORIES or not np.all(np.mod(column.to_numpy(float), 1) == 0)):
        raise DataError(
            f"Target column {target!r} holds {distinct} distinct numbers, not classes: a "
            f"classifier needs a column of class labels. To predict the number, train the "
            f"regression recipe (`kerasdl train regression --data ... --target {target}`).")
    class_names = sorted(column.astype(str).unique())
    labels = column.astype(str).map({name: i for i, name in enumerate(class_names)})
    return features, labels.to_numpy(np.int32), {"class_names": class_names}


def regression_target_error(target, example, where=""):
    """The usage error for a regression target that holds text (class labels)."""
    return UsageError(
        f"Target column {target!r} must be numeric for regression. Received: {example!r}"
        f"{where}. A classifier recipe such as perceptron takes class targets; `kerasdl list` "
        "shows which recipes classify (TASK classification)."
    )


# The index name of a frame of rows sent to a server (`kerasdl serve`), not read from a file.
REQUEST_ROWS = "request row"


def row_places(index, limit=5):
    """Rows named by the frame's index (0-based data rows of a file, as pandas reads them).

    `data row 4 (line 5)` or `data rows 4, 9, 10 (lines 5, 10, 11) and 4 more`: counted
    from 1 below the header, with the line of the file (the header is line 1). Rows of
    a server request (index named `REQUEST_ROWS`) are `row 2 of the request`.
    """
    request = getattr(index, "name", None) == REQUEST_ROWS
    index = list(index)
    if not all(isinstance(row, (int, np.integer)) for row in index):  # not row numbers
        shown = ", ".join(str(row) for row in index[:limit])
        more = f" and {len(index) - limit} more" if len(index) > limit else ""
        return f"row{'s' if len(index) > 1 else ''} {shown}{more}"
    index = [int(row) for row in index]
    plural = "s" if len(index) > 1 else ""
    more = f" and {len(index) - limit} more" if len(index) > limit else ""
    shown = ", ".join(str(row + 1) for row in index[:limit])
    if request:
        return f"row{plural} {shown} of the request{more}"
    lines = ", ".join(str(row + 2) for row in index[:limit])
    return f"data row{plural} {shown} (line{plural} {lines}){more}"


def _numeric(frame, name):
    """Column `name` as float64; raises DataError for text, missing or infinite values."""
    column = frame[name]
    values = pd.to_numeric(column, errors="coerce")
    text = values.isna() & column.notna()
    if text.any():
        raise DataError(
            f"Column {name!r} must be numeric, as it was in training. Received: "
            f"{column[text].iloc[0]!r} at {row_places(column.index[text])}"
        )
    values = values.astype(np.float64)
    infinite = np.isinf(values.to_numpy())
    if infinite.any():
        raise DataError(
            f"Column {name!r} holds non-finite numbers ({values[infinite].iloc[0]}) at "
            f"{row_places(column.index[infinite])}; every value must be a finite number."
        )
    return values


def check_missing(frame):
    missing = frame.columns[frame.isna().any()].tolist()
    if missing:
        counts = "; ".join(f"{name!r} ({int(frame[name].isna().sum())}) at "
                           f"{row_places(frame.index[frame[name].isna()])}" for name in missing)
        raise DataError(f"Missing values in column(s) {counts}; fill or drop those rows.")


def features_from_frame(frame, categories=None, feature_names=None):
    """Turns a DataFrame of features into a float32 matrix.

    Numeric columns pass through; text columns are one-hot encoded. Given the
    `categories` and `feature_names` of a trained model's spec, the same encoding
    and column order are reproduced (unknown categories encode as all zeros; use
    `frame_to_features` to read new data with the checks of a run's schema).

    Returns:
        `(matrix, feature_names, categories)`.

    Raises:
        DataError: for missing or infinite values, a text column with too many
            distinct values, or columns the model was trained with but the frame lacks.
    """
    check_missing(frame)
    if categories is None:
        categories = {}
        for name in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[name]):
                values = sorted(frame[name].astype(str).unique())
                if len(values) > MAX_CATEGORIES:
                    raise DataError(
                        f"Column {name!r} holds text with {len(values)} distinct values "
                        f"(at most {MAX_CATEGORIES} can be one-hot encoded); leave it out with "
                        f"--drop {name} or read it as numbers with --numeric {name}."
                    )
                categories[str(name)] = values
    columns = {}
    for name in frame.columns:
        name = str(name)
        if name in categories:
            text = frame[name].astype(str)
            for value in categories[name]:
                columns[f"{name}={value}"] = (text == value).astype(np.float32)
        else:
            columns[name] = _numeric(frame, name).astype(np.float32)
    encoded = pd.DataFrame(columns, index=frame.index)
    if feature_names is not None:
        absent = [name for name in feature_names if name not in encoded.columns
                  and "=" not in name]
        if absent:
            raise DataError(f"Missing feature column(s): {', '.join(absent)}")
        encoded = encoded.reindex(columns=feature_names, fill_value=0.0)
    return encoded.to_numpy(np.float32), list(encoded.columns), categories


def schema_columns(spec):
    """The raw input columns of a trained model and their types, `{name: type}`.

    `type` is `"number"` or `"category"`. Runs record them as `spec["columns"]`; for
    older runs they are recovered from `feature_names` and `categories`.
    """
    if spec.get("columns"):
        return dict(spec["columns"])
    categories = spec.get("categories") or {}
    encoded = {f"{name}={value}": name for name, values in categories.items()
               for value in values}
    columns = {}
    for feature in spec.get("feature_names") or []:
        if feature in encoded:
            columns.setdefault(encoded[feature], "category")
        else:
            columns.setdefault(feature, "number")
    return columns


def _warn(message):
    print(message, file=sys.stderr, flush=True)


def frame_to_features(frame, spec, target=None, warn=None, unseen_counts=None):
    """Reads new rows with a trained model's schema; returns its feature matrix.

    The one place where new tabular data meets a run's schema (`predict`,
    `evaluate --data`, and a server answering rows). Checks, against the columns,
    types and categories the model was trained on:
    - a missing column is an error naming it;
    - a value that is missing, infinite, or text in a numeric column is an error
      naming the column and the row (rows are named by the frame's index);
    - a category the model never saw still gives predictions (it encodes as none of
      the known ones), with one warning naming the values and their counts;
    - columns the model does not use are ignored with one warning naming them
      (the `target` column, or the spec's, is not one of them).

    Args:
        frame: a pandas DataFrame of rows.
        spec: the run's spec (`config.json`'s `spec`).
        target: a column to leave out silently (default: the spec's target, for
            a tabular model; a forecasting model reads its target as an input).
        warn: called with each warning line; default: print it on stderr.
        unseen_counts: a dict `{column: {value: count}}` to add the unseen categories
            to, instead of warning about them (a file read in chunks warns once).

    Returns:
        A float32 matrix of shape `(rows, len(spec["feature_names"]))`, in the
        model's feature order.

    Raises:
        DataError: for rows that do not fit the schema.
    """
    warn = warn or _warn
    columns = schema_columns(spec)
    categories = spec.get("categories") or {}
    frame = frame.rename(columns=str)
    absent = [name for name in columns if name not in frame.columns]
    if absent:
        raise DataError(f"Missing column(s) {', '.join(map(repr, absent))}: the model was "
                        f"trained on {', '.join(columns)}.")
    if target is None and spec.get("task") != "forecasting":
        target = spec.get("target")
    skipped = ignored_by_reading(spec)
    extra = [name for name in frame.columns
             if name not in columns and name != target and name not in skipped]
    if extra:
        warn(f"Ignored column(s) the model was not trained on: {', '.join(map(repr, extra))}.")
    if len(frame) == 0:
        raise DataError("No rows to read.")
    used = frame[list(columns)]
    check_missing(used)
    features = {}
    unseen = []
    for name, kind in columns.items():
        if kind == "category":
            known = categories.get(name, [])
            text = used[name].astype(str)
            new = text[~text.isin(known)]
            if len(new) == len(text) and pd.api.types.is_numeric_dtype(used[name]):
                raise DataError(f"Column {name!r} held text in training ({', '.join(known)}); "
                                f"received numbers such as {used[name].iloc[0]!r}.")
            if len(new):
                counts = new.value_counts()
                if unseen_counts is not None:
                    found = unseen_counts.setdefault(name, {})
                    for value, count in counts.items():
                        found[value] = found.get(value, 0) + int(count)
                unseen.append(f"{name!r}: " + ", ".join(
                    f"{value!r} ({count})" for value, count in counts.items()))
            for value in known:
                features[f"{name}={value}"] = (text == value).to_numpy(np.float32)
        else:
            features[name] = _numeric(used, name).to_numpy(np.float32)
    if unseen and unseen_counts is None:
        warn("Categories unseen in training, encoded as none of the known ones: "
             + "; ".join(unseen) + ".")
    names = spec.get("feature_names") or list(features)
    return np.stack([features[name] for name in names], axis=1).astype(np.float32)


def frame_to_inputs(frame, spec, warn=None):
    """Turns a DataFrame of new input into a trained model's inputs.

    The form is the form of the model's training data:
    - tabular models (`classification`, `regression`): one example per row
      (`frame_to_features`);
    - `sequence_classification`: one sequence per row, its steps in the columns in
      time order (`steps * features` numeric columns, features of a step side by
      side); a column named like the spec's target is left out;
    - `forecasting`: a series in time order with the columns trained on; one
      prediction per window of `window` consecutive rows.

    Args:
        frame: a pandas DataFrame.
        spec: the run's spec.
        warn: called with each warning line; default: print it on stderr.

    Returns:
        `(inputs, ids)`: the model's input array and, per input, the frame index
        of its row (for forecasting, of the last row of its window).

    Raises:
        DataError: for data that does not fit the model.
    """
    task = spec.get("task")
    time_column = (spec.get("csv") or {}).get("time_column")
    if task == "forecasting" and time_column and str(time_column) in map(str, frame.columns):
        # A series in time order, as in training (other models keep the rows' order).
        frame, _ = time_order(frame.rename(columns=str), str(time_column), "the input")
    if task == "sequence_classification":
        return _sequences(frame, spec, warn or _warn), list(frame.index)
    matrix = frame_to_features(frame, spec, warn=warn)
    if task != "forecasting":
        return matrix, list(frame.index)
    window = int(spec["window"])
    if len(matrix) < window:
        raise DataError(f"The series has {len(matrix)} rows; the model needs at least "
                        f"window = {window} consecutive rows.")
    windows = np.lib.stride_tricks.sliding_window_view(matrix, window, axis=0)
    return np.ascontiguousarray(windows.transpose(0, 2, 1)), list(frame.index[window - 1:])


def read_inputs(path, spec, id_column=None, warn=None):
    """Reads a CSV file of new input the way a run read its training file.

    The run's CSV settings (`spec["csv"]`: separator, categorical columns, dropped
    columns, time column) apply; the target column, when present, is ignored with a
    note; `id_column` names each output row by its value instead of its row number.

    Returns:
        `(inputs, ids, id_name)`: as `frame_to_inputs` (an id is the value of
        `id_column`, else the time of a run with a time column, else the row number),
        and the name of the id column of the output (`id`, or `id_column`).

    Raises:
        DataError: for a file or rows that do not fit the model, or an unknown
            `id_column`.
    """
    csv = spec.get("csv") or {}
    frame = read_csv(path, sep=csv.get("sep") or ",", categorical=csv.get("categorical"))
    frame = frame.rename(columns=str)
    warn = warn or _warn
    target = spec.get("target")
    if (target is not None and str(target) in frame.columns
            and spec.get("task") != "forecasting"):
        warn(f"Note: column {target!r} is the model's target: it is ignored (predictions "
             "are made from the other columns).")
        frame = frame.drop(columns=[str(target)])
    time_column = csv.get("time_column")
    if id_column is not None and id_column not in frame.columns:
        raise DataError(f"--id-column {id_column!r} is not a column of {str(path)!r}. "
                        f"Columns: {', '.join(frame.columns)}")
    if id_column is not None:
        names = frame[id_column]
    elif (time_column and time_column in frame.columns
          and spec.get("task") == "forecasting"):
        # The series is read in time order; each forecast is named by its time.
        names = frame[time_column]
    else:
        names = None
    if (id_column is not None and id_column not in schema_columns(spec)
            and id_column != time_column):
        frame = frame.drop(columns=[id_column])
    inputs, rows = frame_to_inputs(frame, spec, warn=warn)
    if names is None:
        return inputs, rows, "id"
    return inputs, names.loc[rows].tolist(), id_column or "id"


def unseen_message(unseen_counts):
    """The warning line for `frame_to_features`' `unseen_counts`."""
    return ("Categories unseen in training, encoded as none of the known ones: "
            + "; ".join(f"{name!r}: " + ", ".join(f"{value!r} ({count})"
                                                   for value, count in values.items())
                        for name, values in unseen_counts.items()) + ".")


# Rows per chunk when predicting on a CSV file: output appears as it is computed,
# and memory does not grow with the file.
PREDICT_CHUNK_ROWS = 50_000


def read_input_chunks(path, spec, id_column=None, warn=None, chunk_rows=None):
    """Reads a CSV file of new input in chunks, the way `read_inputs` reads it whole.

    For tabular models and sequence classifiers (one example per row); a forecasting
    model's series is read whole (its rows are sorted in time and windows cross chunks).
    Each warning is given once for the file: ignored columns on the first chunk,
    unseen categories counted over every chunk at the end.

    Yields:
        `(inputs, ids, id_name)` per chunk, as `read_inputs`.

    Raises:
        DataError: as `read_inputs`, naming rows by their number in the file.
    """
    warn = warn or _warn
    if spec.get("task") == "forecasting":
        yield read_inputs(path, spec, id_column=id_column, warn=warn)
        return
    csv = spec.get("csv") or {}
    chunks = read_csv(path, sep=csv.get("sep") or ",", categorical=csv.get("categorical"),
                      chunksize=chunk_rows or PREDICT_CHUNK_ROWS)
    target = spec.get("target")
    given = set()
    unseen = {}
    rows = 0
    for chunk in chunks:
        chunk = chunk.rename(columns=str)
        rows += len(chunk)
        if target is not None and str(target) in chunk.columns:
            if "target" not in given:
                warn(f"Note: column {target!r} is the model's target: it is ignored "
                     "(predictions are made from the other columns).")
                given.add("target")
            chunk = chunk.drop(columns=[str(target)])
        if id_column is not None and id_column not in chunk.columns:
            raise DataError(f"--id-column {id_column!r} is not a column of {str(path)!r}. "
                            f"Columns: {', '.join(chunk.columns)}")
        names = chunk[id_column] if id_column is not None else None
        if id_column is not None and id_column not in schema_columns(spec):
            chunk = chunk.drop(columns=[id_column])

        def once(line):
            if line not in given:
                given.add(line)
                warn(line)

        if spec.get("task") == "sequence_classification":
            inputs, ids = _sequences(chunk, spec, once), list(chunk.index)
        else:
            inputs, ids = frame_to_features(chunk, spec, warn=once,
                                            unseen_counts=unseen), list(chunk.index)
        if names is not None:
            ids = names.loc[ids].tolist()
        yield inputs, ids, id_column or "id"
    if rows == 0:
        raise DataError(f"CSV file {str(path)!r} has no rows.")
    if unseen:
        warn(unseen_message(unseen))


def _sequences(frame, spec, warn):
    steps, num_features = (list(spec["input_shape"]) + [1])[:2]
    frame = frame.rename(columns=str)
    target = spec.get("target") or "label"
    if target in frame.columns:
        frame = frame.drop(columns=[target])
    wanted = steps * num_features
    if frame.shape[1] != wanted:
        raise DataError(
            f"The model classifies sequences of {steps} steps x {num_features} feature(s): "
            f"give one sequence per row in {wanted} numeric columns (steps in time order). "
            f"Received {frame.shape[1]} column(s).")
    check_missing(frame)
    matrix = np.stack([_numeric(frame, name).to_numpy(np.float32) for name in frame.columns],
                      axis=1)
    return matrix.reshape(len(frame), steps, num_features)
