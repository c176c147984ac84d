"""Tabular data read with a run's schema, without training."""

import numpy as np
import pandas as pd
import pytest

from kerasdl.data import tabular
from kerasdl.errors import DataError
from kerasdl.errors import UsageError

SPEC = {"task": "classification", "target": "label",
        "feature_names": ["size", "colour=blue", "colour=red", "weight"],
        "categories": {"colour": ["blue", "red"]},
        "columns": {"size": "number", "colour": "category", "weight": "number"}}


def _frame(**overrides):
    data = {"size": [1.0, 2.0, 3.0], "colour": ["red", "blue", "red"],
            "weight": [10, 20, 30]}
    data.update(overrides)
    return pd.DataFrame(data)


def test_features_from_frame_encodes_numbers_and_categories():
    matrix, names, categories = tabular.features_from_frame(_frame())
    assert names == ["size", "colour=blue", "colour=red", "weight"]
    assert categories == {"colour": ["blue", "red"]}
    np.testing.assert_array_equal(matrix, [[1, 0, 1, 10], [2, 1, 0, 20], [3, 0, 1, 30]])
    assert matrix.dtype == np.float32
    # Given a trained model's encoding, the same columns in the same order.
    again, _, _ = tabular.features_from_frame(_frame()[["weight", "colour", "size"]],
                                              categories, names)
    np.testing.assert_array_equal(again, matrix)


def test_features_from_frame_refuses_missing_and_too_many_categories():
    with pytest.raises(DataError, match=r"Missing values in column\(s\) 'size' \(1\) at "
                                        r"data row 2 \(line 3\)"):
        tabular.features_from_frame(_frame(size=[1.0, None, 3.0]))
    many = pd.DataFrame({"id": [f"x{i}" for i in range(60)], "y": range(60)})
    with pytest.raises(DataError, match="'id' holds text with 60 distinct values"):
        tabular.features_from_frame(many)
    with pytest.raises(DataError, match="Missing feature column.*weight"):
        tabular.features_from_frame(_frame().drop(columns="weight"),
                                    {"colour": ["blue", "red"]}, SPEC["feature_names"])


def test_frame_to_features_reads_rows_in_the_model_order():
    lines = []
    frame = _frame()[["weight", "colour", "size"]]
    frame["label"] = ["a", "b", "a"]  # the target column is left out silently
    matrix = tabular.frame_to_features(frame, SPEC, warn=lines.append)
    np.testing.assert_array_equal(matrix, [[1, 0, 1, 10], [2, 1, 0, 20], [3, 0, 1, 30]])
    assert lines == []


def test_frame_to_features_missing_column_is_named():
    with pytest.raises(DataError) as error:
        tabular.frame_to_features(_frame().drop(columns="weight"), SPEC, warn=print)
    assert "Missing column(s) 'weight'" in str(error.value)
    assert "trained on size, colour, weight" in str(error.value)


@pytest.mark.parametrize("values,fragment", [
    ([1.0, np.inf, 3.0], "'size' holds non-finite numbers (inf) at data row 2 (line 3)"),
    ([1.0, 2.0, -np.inf], "'size' holds non-finite numbers (-inf) at data row 3 (line 4)"),
    (["1", "2", "big"], "Column 'size' must be numeric, as it was in training. Received: "
                        "'big' at data row 3 (line 4)"),
    ([None, 2.0, None], "Missing values in column(s) 'size' (2) at data rows 1, 3 (lines 2, 4)"),
])
def test_frame_to_features_names_column_and_row(values, fragment):
    with pytest.raises(DataError) as error:
        tabular.frame_to_features(_frame(size=values), SPEC, warn=print)
    assert fragment in str(error.value), str(error.value)


def test_rows_are_named_by_the_frame_index_and_shortened():
    frame = pd.DataFrame({"size": ["x"] * 8, "colour": ["red"] * 8, "weight": [1] * 8},
                         index=range(100, 108))
    with pytest.raises(DataError, match=r"data rows 101, 102, 103, 104, 105 "
                                        r"\(lines 102, 103, 104, 105, 106\) and 3 more"):
        tabular.frame_to_features(frame, SPEC, warn=print)


def test_unseen_categories_and_extra_columns_warn_once_with_counts():
    lines = []
    frame = _frame(colour=["green", "green", "pink"])
    frame["notes"] = ["a", "b", "c"]
    frame["extra"] = 1
    matrix = tabular.frame_to_features(frame, SPEC, warn=lines.append)
    assert matrix[:, 1:3].sum() == 0  # encoded as none of the known categories
    assert lines == [
        "Ignored column(s) the model was not trained on: 'notes', 'extra'.",
        "Categories unseen in training, encoded as none of the known ones: "
        "'colour': 'green' (2), 'pink' (1).",
    ]


def test_numbers_in_a_category_column_are_refused():
    with pytest.raises(DataError, match="'colour' held text in training .*received numbers"):
        tabular.frame_to_features(_frame(colour=[1, 2, 3]), SPEC, warn=print)


def test_schema_of_an_older_run_is_recovered_from_feature_names():
    spec = {key: value for key, value in SPEC.items() if key != "columns"}
    assert tabular.schema_columns(spec) == SPEC["columns"]


def test_frame_to_inputs_windows_a_series():
    spec = {"task": "forecasting", "target": "y", "window": 3, "feature_names": ["y"],
            "columns": {"y": "number"}}
    frame = pd.DataFrame({"y": [1.0, 2.0, 3.0, 4.0, 5.0]}, index=list("abcde"))
    inputs, ids = tabular.frame_to_inputs(frame, spec, warn=print)
    assert inputs.shape == (3, 3, 1) and ids == ["c", "d", "e"]
    np.testing.assert_array_equal(inputs[:, :, 0], [[1, 2, 3], [2, 3, 4], [3, 4, 5]])
    with pytest.raises(DataError, match="has 2 rows; the model needs at least window = 3"):
        tabular.frame_to_inputs(frame.iloc[:2], spec, warn=print)


def test_frame_to_inputs_sequences_need_steps_times_features_columns():
    spec = {"task": "sequence_classification", "target": "label", "input_shape": [3, 2]}
    frame = pd.DataFrame(np.arange(12).reshape(2, 6), columns=[f"c{i}" for i in range(6)])
    frame["label"] = ["a", "b"]
    inputs, ids = tabular.frame_to_inputs(frame, spec)
    assert inputs.shape == (2, 3, 2) and ids == [0, 1]
    np.testing.assert_array_equal(inputs[1, 2], [10, 11])
    with pytest.raises(DataError, match="6 numeric columns.*Received 5 column"):
        tabular.frame_to_inputs(frame.iloc[:, 1:], spec)


def test_read_csv_errors(tmp_path):
    with pytest.raises(DataError, match="CSV file not found: .*none.csv"):
        tabular.read_csv(tmp_path / "none.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataError, match="Cannot read .*empty.csv.* as CSV"):
        tabular.read_csv(empty)
    header = tmp_path / "header.csv"
    header.write_text("a,b\n")
    with pytest.raises(DataError, match="header.csv' has no rows"):
        tabular.read_csv(header)
    binary = tmp_path / "binary.csv"
    binary.write_bytes(b"a,b\n\xff\xfe,\x80\n")
    with pytest.raises(DataError, match="Cannot read .*binary.csv"):
        tabular.read_csv(binary)
    good = tmp_path / "good.csv"
    good.write_text("a,b\n1,x\n2,y\n")
    assert tabular.read_csv(good)["b"].tolist() == ["x", "y"]


def test_split_target_classes_and_regression():
    frame = pd.DataFrame({"x": [1, 2, 3], "y": ["b", "a", "b"]})
    features, labels, info = tabular.split_target(frame, "y", "classification", "f.csv")
    assert list(features.columns) == ["x"] and labels.tolist() == [1, 0, 1]
    assert info == {"class_names": ["a", "b"]}
    with pytest.raises(UsageError, match="must be numeric for regression. Received: 'b'. "
                       "A classifier recipe such as perceptron takes class targets"):
        tabular.split_target(frame, "y", "regression", "f.csv")
    with pytest.raises(DataError, match="'z' not found in 'f.csv'. Columns: x, y"):
        tabular.split_target(frame, "z", "classification", "f.csv")


def test_a_header_shorter_than_its_rows_is_refused_not_read_as_an_index(tmp_path):
    """pandas would make the extra leading fields the index: columns silently lost."""
    path = tmp_path / "ragged.csv"
    path.write_text("a,b,target\n1,2,3,4,0\n5,6,7,8,1\n")
    with pytest.raises(DataError, match=r"2 more field\(s\) than its header names \(3: a, b, target\)"):
        tabular.read_csv(path)


def test_a_continuous_target_is_refused_by_a_classifier_with_the_regression_hint():
    frame = pd.DataFrame({"x": range(80), "alcohol": [12.0 + i / 7 for i in range(80)]})
    with pytest.raises(DataError, match="80 distinct numbers, not classes.*train regression"):
        tabular.split_target(frame, "alcohol", "classification", "wine.csv")
    # Whole numbers with few values are class labels.
    labels = tabular.split_target(frame.assign(alcohol=[i % 3 for i in range(80)]), "alcohol",
                                  "classification", "wine.csv")[1]
    assert sorted(set(labels.tolist())) == [0, 1, 2]


def test_whole_number_id_columns_are_dropped_with_a_note_and_features_kept(capsys):
    rows = 40
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({
        "Unnamed: 0": np.arange(rows),                  # pandas' written index
        "sample_id": rng.permutation(rows) + 1000,     # named like an ID, shuffled
        "n": rng.permutation(rows) + 1,                # 1..40 in any order: row numbers
        "income": rng.choice(10 ** 6, rows, replace=False),  # distinct, not consecutive
        "rooms": rng.integers(1, 6, rows),             # repeats: a feature
        "valid": rng.choice(10 ** 6, rows, replace=False),   # not an ID's name
        "size": rng.uniform(size=rows), "price": rng.uniform(size=rows)})
    kept, record = tabular.prepare_frame(frame, {}, "price", "houses.csv")
    assert list(kept.columns) == ["income", "rooms", "valid", "size", "price"]
    assert record["ids"] == ["Unnamed: 0", "sample_id", "n"]
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("Note:")]
    assert len(notes) == 1 and "'Unnamed: 0', 'sample_id', 'n'" in notes[0]
    assert "whole numbers" in notes[0] and "--numeric COLUMN" in notes[0]
    # Kept when the user says so, when it is the target, and in tables too small to tell.
    kept, record = tabular.prepare_frame(frame, {"numeric": ["sample_id"]}, "price", "h")
    assert "sample_id" in kept.columns and "sample_id" not in record["ids"]
    kept, _ = tabular.prepare_frame(frame, {}, "sample_id", "h")
    assert "sample_id" in kept.columns
    kept, record = tabular.prepare_frame(frame.head(tabular.MIN_ID_ROWS - 1), {}, "price", "h")
    assert record["ids"] == []
    # A new file for the run: the recorded IDs are left out as they are.
    again, _ = tabular.prepare_frame(frame.head(3), {"ids": ["n"]}, "price",
                                     "h", learn=False)
    assert "n" not in again.columns


@pytest.mark.parametrize("sep", [",", ";"])
def test_a_header_that_names_a_column_twice_is_refused_naming_it(tmp_path, sep):
    path = tmp_path / "wine.csv"
    path.write_text(sep.join(["alcohol", "hue", "alcohol", "class", "hue"]) + "\n"
                    + sep.join(["1", "2", "3", "4", "5"]) + "\n")
    with pytest.raises(DataError) as refused:
        tabular.read_csv(path, sep=sep)
    message = str(refused.value)
    assert "'alcohol' (columns 1, 3)" in message and "'hue' (columns 2, 5)" in message
    assert "give each column its own name" in message
