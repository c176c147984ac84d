"""New tabular data is read with the run's schema: right answer or a named error."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from kerasdl.data import frame_to_inputs
from kerasdl.errors import DataError
from tests.conftest import assert_one_line_error

# One trained run (the module fixture) serves every test here: keep them on one process.
pytestmark = pytest.mark.xdist_group("schema")


def _table(rows, seed):
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (rows, 2))
    colour = rng.choice(["red", "green", "blue"], rows)
    shift = pd.Series(colour).map({"red": 5.0, "green": -5.0, "blue": 0.0}).to_numpy()
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "colour": colour,
                         "price": 3 * x[:, 0] - 2 * x[:, 1] + shift})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from click.testing import CliRunner

    from kerasdl.cli import cli

    folder = tmp_path_factory.mktemp("schema")
    _table(120, 0).to_csv(folder / "houses.csv", index=False)
    result = CliRunner().invoke(cli, ["train", "regression", "--data", str(folder / "houses.csv"),
                                      "--target", "price", "--epochs", "1",
                                      "--output", str(folder / "run")])
    assert result.exit_code == 0, result.stderr
    return folder / "run"


def _predict(cli, run, tmp_path, frame):
    frame.to_csv(tmp_path / "new.csv", index=False)
    return cli("predict", run, tmp_path / "new.csv")


def _predictions(result):
    assert result.exit_code == 0, result.stderr
    return pd.read_csv(io.StringIO(result.stdout))


def test_schema_is_saved_with_the_run(run):
    spec = json.loads((run / "config.json").read_text())["spec"]
    assert spec["columns"] == {"a": "number", "b": "number", "colour": "category"}
    assert spec["categories"] == {"colour": ["blue", "green", "red"]}
    assert len(spec["feature_mean"]) == len(spec["feature_names"]) == 5


def test_missing_column_is_named(cli, run, tmp_path):
    rows = _table(3, 1).drop(columns=["price", "colour"])
    assert_one_line_error(_predict(cli, run, tmp_path, rows), 1, "Missing column(s) 'colour'")


@pytest.mark.parametrize("value, shown", [(np.inf, "inf"), (-np.inf, "-inf"), (np.nan, "Missing")])
def test_non_finite_number_names_column_and_row(cli, run, tmp_path, value, shown):
    rows = _table(4, 1)
    rows.loc[2, "b"] = value
    line = assert_one_line_error(_predict(cli, run, tmp_path, rows), 1, "'b'",
                                 "data row 3 (line 4)", shown)
    assert "'a'" not in line


def test_text_where_a_number_was_is_an_error_naming_the_column(cli, run, tmp_path):
    rows = _table(4, 1)
    rows["a"] = rows["a"].astype(object)
    rows.loc[1, "a"] = "big"
    assert_one_line_error(_predict(cli, run, tmp_path, rows), 1,
                          "Column 'a' must be numeric", "'big'", "data row 2 (line 3)")
    rows = _table(4, 1)
    rows["colour"] = [1, 2, 3, 1]  # numbers where text categories were
    assert_one_line_error(_predict(cli, run, tmp_path, rows), 1, "Column 'colour' held text")


def test_unseen_categories_still_predict_and_are_counted(cli, run, tmp_path):
    rows = _table(6, 1).drop(columns=["price"])
    known = _predictions(_predict(cli, run, tmp_path, rows))
    rows.loc[[0, 3, 4], "colour"] = ["purple", "purple", "teal"]
    result = _predict(cli, run, tmp_path, rows)
    changed = _predictions(result)
    assert len(changed) == 6
    np.testing.assert_allclose(changed["prediction"][[1, 2, 5]], known["prediction"][[1, 2, 5]],
                               rtol=1e-5)
    assert not np.allclose(changed["prediction"][[0, 3, 4]], known["prediction"][[0, 3, 4]])
    notes = [line for line in result.stderr.splitlines() if "unseen" in line]
    assert len(notes) == 1 and "'purple' (2)" in notes[0] and "'teal' (1)" in notes[0]


def test_extra_columns_are_named_but_not_the_target(cli, run, tmp_path):
    rows = _table(5, 1)
    rows["note"] = "x"
    rows["id2"] = range(5)
    result = _predict(cli, run, tmp_path, rows)
    assert len(_predictions(result)) == 5
    notes = [line for line in result.stderr.splitlines() if "Ignored column" in line]
    assert len(notes) == 1 and "'note'" in notes[0] and "'id2'" in notes[0]
    assert "price" not in notes[0]

    rows.to_csv(tmp_path / "scored.csv", index=False)
    scored = cli("evaluate", run, "--data", tmp_path / "scored.csv", "--json")
    assert scored.exit_code == 0, scored.stderr
    assert json.loads(scored.stdout)["examples"] == 5
    notes = [line for line in scored.stderr.splitlines() if "Ignored column" in line]
    assert len(notes) == 1 and "'note'" in notes[0] and "price" not in notes[0]
    rows.loc[3, "a"] = np.inf
    rows.to_csv(tmp_path / "scored.csv", index=False)
    assert_one_line_error(cli("evaluate", run, "--data", tmp_path / "scored.csv"), 1,
                          "'a'", "data row 4 (line 5)")


def test_runs_without_a_saved_column_list_still_load(cli, run, tmp_path):
    old = tmp_path / "old_run"
    old.mkdir()
    for file in ("model.keras", "config.json"):
        (old / file).write_bytes((run / file).read_bytes())
    config = json.loads((old / "config.json").read_text())
    del config["spec"]["columns"]
    (old / "config.json").write_text(json.dumps(config))
    rows = _table(4, 2).drop(columns=["price"])
    np.testing.assert_allclose(_predictions(_predict(cli, old, tmp_path, rows))["prediction"],
                               _predictions(_predict(cli, run, tmp_path, rows))["prediction"],
                               rtol=1e-5)
    assert_one_line_error(_predict(cli, old, tmp_path, rows.drop(columns=["a"])), 1,
                          "Missing column(s) 'a'")


def test_frame_to_inputs_reads_a_dataframe_with_the_schema(run):
    spec = json.loads((run / "config.json").read_text())["spec"]
    notes = []
    frame = pd.DataFrame({"colour": ["red", "mauve"], "b": [0.5, 1.0], "a": [1.0, 2.0]},
                         index=[10, 11])
    inputs, ids = frame_to_inputs(frame, spec, warn=notes.append)
    assert ids == [10, 11]
    # The model's feature order, whatever the frame's column order.
    np.testing.assert_array_equal(inputs, [[1.0, 0.5, 0, 0, 1], [2.0, 1.0, 0, 0, 0]])
    assert notes == ["Categories unseen in training, encoded as none of the known ones: "
                     "'colour': 'mauve' (1)."]
    frame.loc[11, "a"] = np.inf
    with pytest.raises(DataError, match=r"'a'.*data row 12 \(line 13\)"):
        frame_to_inputs(frame, spec, warn=notes.append)


def test_infinite_values_in_training_data_name_column_and_row(cli, tmp_path):
    rows = _table(40, 3)
    rows.loc[7, "a"] = -np.inf
    rows.to_csv(tmp_path / "bad.csv", index=False)
    result = cli("train", "regression", "--data", tmp_path / "bad.csv", "--target", "price",
                 "--epochs", "1", "--output", tmp_path / "run")
    assert_one_line_error(result, 1, "Column 'a'", "-inf", "data row 8 (line 9)")
    assert not (tmp_path / "run").exists()
