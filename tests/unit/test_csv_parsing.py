"""CSV reading settings (`--sep`, `--drop`, `--time-column`, ...) without training."""

import numpy as np
import pandas as pd
import pytest

from kerasdl import settings
from kerasdl.data import tabular
from kerasdl.errors import DataError
from kerasdl.errors import UsageError


def _frame(rows=30):
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "customer": [f"c{i:03d}" for i in range(rows)],
        "size": rng.uniform(0, 1, rows),
        "grade": rng.integers(1, 4, rows),
        "colour": rng.choice(["red", "blue"], rows),
        "when": pd.date_range("2024-01-01", periods=rows, freq="D").astype(str)[::-1],
        "price": rng.normal(size=rows)})


def test_id_like_text_columns_are_dropped_with_a_note(capsys):
    frame, record = tabular.prepare_frame(_frame(), {}, "price", "t.csv")
    assert "customer" not in frame.columns and record["ids"] == ["customer", "when"]
    note = capsys.readouterr().err
    assert "'customer', 'when'" in note and "--time-column when" in note
    # Categories (repeated values), numbers and too few rows to tell are kept.
    assert {"size", "grade", "colour"} <= set(frame.columns)
    small, record = tabular.prepare_frame(_frame(5), {}, "price", "t.csv")
    assert "customer" in small.columns and record["ids"] == []
    # A column the user typed is never dropped as an ID.
    kept, record = tabular.prepare_frame(_frame(), {"categorical": ["customer"]}, "price", "t")
    assert "customer" in kept.columns and record["ids"] == ["when"]


def test_time_column_sorts_rows_and_is_not_a_feature():
    frame, record = tabular.prepare_frame(_frame(), {"time_column": "when"}, "price", "t.csv")
    assert "when" not in frame.columns and record["time_column"] == "when"
    assert list(frame.index) == list(range(29, -1, -1))  # the file held the dates backwards


def test_unparseable_or_missing_dates_name_the_row():
    frame = _frame()
    frame.loc[4, "when"] = "not a date"
    with pytest.raises(DataError, match=r"'when'.*'not a date' at data row 5 \(line 6\)"):
        tabular.prepare_frame(frame, {"time_column": "when"}, "price", "t.csv")
    frame.loc[4, "when"] = None
    with pytest.raises(DataError, match=r"missing dates at data row 5 \(line 6\)"):
        tabular.prepare_frame(frame, {"time_column": "when"}, "price", "t.csv")


def test_numeric_override_converts_or_names_the_text(tmp_path):
    frame = _frame()
    frame["size"] = frame["size"].astype(str)
    frame.loc[3, "size"] = "1.5"
    frame["size"] = frame["size"].astype(object)
    converted, _ = tabular.prepare_frame(frame.copy(), {"numeric": ["size"]}, "price", "t")
    assert converted["size"].dtype.kind == "f" and converted.loc[3, "size"] == 1.5
    frame.loc[7, "size"] = "n/a"
    with pytest.raises(DataError, match=r"--numeric column 'size' holds text: 'n/a' at "
                                        r"data row 8 \(line 9\)"):
        tabular.prepare_frame(frame, {"numeric": ["size"]}, "price", "t")


def test_categorical_override_reads_numbers_as_text(tmp_path):
    path = tmp_path / "t.csv"
    _frame().to_csv(path, sep="|", index=False)
    frame = tabular.read_csv(path, sep="|", categorical=["grade"])
    _, names, categories = tabular.features_from_frame(frame[["grade", "size"]])
    assert categories == {"grade": ["1", "2", "3"]}
    assert names == ["grade=1", "grade=2", "grade=3", "size"]


def test_unknown_columns_are_named_with_the_valid_ones():
    with pytest.raises(DataError, match=r"--drop names column\(s\) 'nope'.*Columns: customer"):
        tabular.prepare_frame(_frame(), {"drop": ["nope"]}, "price", "t.csv")


@pytest.mark.parametrize("given, sep", [(";", ";"), ("\\t", "\t"), ("tab", "\t"), ("|", "|")])
def test_separator_names(given, sep):
    assert settings.resolve({}, None, {"sep": given})["sep"] == sep


@pytest.mark.parametrize("values, fragment", [
    ({"sep": ";;"}, "`sep` must be one character"),
    ({"drop": ["a"], "numeric": ["a"]}, "Column 'a' is given to both `drop` and `numeric`"),
    ({"target": "y", "time_column": "y"}, "target column 'y' cannot also be `time_column`"),
])
def test_bad_csv_settings_are_usage_errors(values, fragment):
    with pytest.raises(UsageError) as error:
        settings.resolve({}, None, values)
    assert fragment in str(error.value)


def test_header_checks_name_columns_and_hint_the_separator(tmp_path):
    path = tmp_path / "t.csv"
    _frame().to_csv(path, sep=";", index=False)
    with pytest.raises(UsageError, match=r"pass --sep ';'"):
        settings.check_data({"data": str(path), "target": "price"})
    with pytest.raises(UsageError, match=r"`--time-column` names column\(s\) 'day'.*Columns: "):
        settings.check_data({"data": str(path), "target": "price", "sep": ";",
                             "time_column": "day"})
    settings.check_data({"data": str(path), "target": "price", "sep": ";", "drop": ["size"]})
    with pytest.raises(UsageError, match="`--drop` says how to read a CSV file"):
        settings.check_data({"data": "auto_mpg", "drop": ["weight"]})


def test_streamed_split_is_seeded_deterministic_and_proportional():
    from kerasdl.data import streaming

    rows = np.arange(200_000)
    settings_a = {"split_seed": 1, "validation_split": 0.2, "test_split": 0.2}
    parts = streaming.split_names(rows, settings_a)
    np.testing.assert_array_equal(parts, streaming.split_names(rows, dict(settings_a)))
    shares = np.bincount(parts, minlength=3) / len(rows)
    np.testing.assert_allclose(shares, [0.6, 0.2, 0.2], atol=0.01)
    # Any stretch of the file is split alike (no long runs of one split).
    np.testing.assert_allclose(np.bincount(parts[:1000], minlength=3) / 1000,
                               [0.6, 0.2, 0.2], atol=0.06)
    other = streaming.split_names(rows, {**settings_a, "split_seed": 2})
    assert 0.4 < (other == parts).mean() < 0.6  # another seed, another split


def test_rows_in_errors_are_data_rows_from_one_with_the_file_line(tmp_path):
    frame = _frame()
    frame["size"] = frame["size"].astype(object)
    frame.loc[6, "size"] = "oops"
    path = tmp_path / "t.csv"
    frame.to_csv(path, index=False)
    read = tabular.read_csv(path)
    with pytest.raises(DataError, match=r"'oops' at data row 7 \(line 8\)") as error:
        tabular.prepare_frame(read, {"numeric": ["size"]}, "price", str(path))
    line = int(str(error.value).split("(line ")[1].split(")")[0])
    assert "oops" in path.read_text().splitlines()[line - 1]  # the header is line 1


def test_rows_of_a_server_request_are_not_named_by_file_lines():
    index = pd.RangeIndex(0, 3, name=tabular.REQUEST_ROWS)
    assert tabular.row_places(index[[1]]) == "row 2 of the request"
    assert tabular.row_places(pd.RangeIndex(0, 8)) == (
        "data rows 1, 2, 3, 4, 5 (lines 2, 3, 4, 5, 6) and 3 more")
    assert tabular.row_places(pd.Index([4])) == "data row 5 (line 6)"
