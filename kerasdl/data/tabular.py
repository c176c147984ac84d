"""Tabular data: CSV files through pandas, numeric features, one-hot categories."""

from pathlib import Path

import numpy as np
import pandas as pd

from kerasdl.errors import DataError

MAX_CATEGORIES = 50


def read_csv(path):
    """Reads a CSV file into a DataFrame.

    Raises:
        DataError: when the file is missing, empty or not CSV.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"CSV file not found: {str(path)!r}.")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(f"Cannot read {str(path)!r} as CSV: {reason}") from None
    if frame.empty:
        raise DataError(f"CSV file {str(path)!r} has no rows.")
    return frame


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
            raise DataError(
                f"Target column {target!r} must be numeric for regression. "
                f"Received: {example!r}"
            )
        return features, column.to_numpy(np.float32), {}
    class_names = sorted(column.astype(str).unique())
    labels = column.astype(str).map({name: i for i, name in enumerate(class_names)})
    return features, labels.to_numpy(np.int32), {"class_names": class_names}


def features_from_frame(frame, categories=None, feature_names=None):
    """Turns a DataFrame of features into a float32 matrix.

    Numeric columns pass through; text columns are one-hot encoded. Given the
    `categories` and `feature_names` of a trained model's spec, the same encoding
    and column order are reproduced (unknown categories encode as all zeros).

    Returns:
        `(matrix, feature_names, categories)`.

    Raises:
        DataError: for missing values, a text column with too many distinct values,
            or columns the model was trained with but the frame lacks.
    """
    missing = frame.columns[frame.isna().any()].tolist()
    if missing:
        counts = ", ".join(f"{name!r} ({int(frame[name].isna().sum())})" for name in missing)
        raise DataError(f"Missing values in column(s) {counts}; fill or drop those rows.")
    if categories is None:
        categories = {}
        for name in frame.columns:
            if not pd.api.types.is_numeric_dtype(frame[name]):
                values = sorted(frame[name].astype(str).unique())
                if len(values) > MAX_CATEGORIES:
                    raise DataError(
                        f"Column {name!r} holds text with {len(values)} distinct values "
                        f"(at most {MAX_CATEGORIES} can be one-hot encoded); drop it or make it numeric."
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
            values = pd.to_numeric(frame[name], errors="coerce")
            if values.isna().any():
                bad = frame[name][values.isna()].iloc[0]
                raise DataError(
                    f"Column {name!r} must be numeric, as it was in training. Received: {bad!r}"
                )
            columns[name] = values.astype(np.float32)
    encoded = pd.DataFrame(columns, index=frame.index)
    if feature_names is not None:
        absent = [name for name in feature_names if name not in encoded.columns
                  and "=" not in name]
        if absent:
            raise DataError(f"Missing feature column(s): {', '.join(absent)}")
        encoded = encoded.reindex(columns=feature_names, fill_value=0.0)
    return encoded.to_numpy(np.float32), list(encoded.columns), categories
