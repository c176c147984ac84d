"""CSV files as people have them: separators, dropped, typed and time columns, IDs."""

import io
import json

import numpy as np
import pandas as pd
import pytest

from tests.conftest import assert_one_line_error


def _houses(rows, seed=0, reverse_dates=True):
    """Price depends on `a`, `b` and a grade coded 1..3 (a category, not a quantity)."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, (rows, 2))
    grade = rng.integers(1, 4, rows)
    dates = pd.date_range("2024-01-01", periods=rows, freq="h").astype(str)
    return pd.DataFrame({
        "customer": [f"c{seed}-{i:04d}" for i in range(rows)],
        "a": x[:, 0], "b": x[:, 1], "grade": grade, "noise": rng.normal(size=rows),
        "price": 3 * x[:, 0] - 2 * x[:, 1] + np.array([0.0, 5.0, -5.0, 0.0])[grade],
        "date": dates[::-1] if reverse_dates else dates})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from click.testing import CliRunner

    from kerasdl.cli import cli

    folder = tmp_path_factory.mktemp("csv")
    _houses(150).to_csv(folder / "houses.csv", sep=";", index=False)
    result = CliRunner().invoke(cli, [
        "train", "regression", "--data", str(folder / "houses.csv"), "--target", "price",
        "--sep", ";", "--drop", "noise", "--categorical", "grade", "--time-column", "date",
        "--epochs", "1", "--output", str(folder / "run")])
    assert result.exit_code == 0, result.stderr
    assert "ID-like column(s) 'customer'" in result.stderr
    return folder / "run"


def test_options_shape_the_model_and_are_recorded(run):
    spec = json.loads((run / "config.json").read_text())["spec"]
    # grade one-hot (its numbers are codes), noise, customer and date not features.
    assert spec["columns"] == {"a": "number", "b": "number", "grade": "category"}
    assert spec["feature_names"] == ["a", "b", "grade=1", "grade=2", "grade=3"]
    assert spec["csv"]["sep"] == ";" and spec["csv"]["drop"] == ["noise"]
    assert spec["csv"]["ids"] == ["customer"] and spec["csv"]["time_column"] == "date"
    import keras

    model = keras.saving.load_model(run / "model.keras")
    assert model.input_shape == (None, 5)


def test_predict_reads_new_files_the_same_way_and_carries_ids(cli, run, tmp_path):
    rows = _houses(6, seed=1)
    rows.to_csv(tmp_path / "new.csv", sep=";", index=False)
    result = cli("predict", run, tmp_path / "new.csv", "--id-column", "customer")
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert list(out.columns) == ["customer", "prediction"]
    # Rows come in time order (the file holds the dates backwards), named by their ID.
    assert list(out["customer"]) == [f"c1-{i:04d}" for i in range(5, -1, -1)]
    notes = result.stderr.splitlines()
    assert any("'price' is the model's target: it is ignored" in line for line in notes)
    assert not any("Ignored column" in line for line in notes)  # noise, customer: dropped
    # The same rows without the target, the ID or the dropped columns predict the same.
    rows.drop(columns=["price", "noise"]).to_csv(tmp_path / "bare.csv", sep=";", index=False)
    bare = cli("predict", run, tmp_path / "bare.csv", "--id-column", "customer")
    assert bare.exit_code == 0, bare.stderr
    assert "target" not in bare.stderr
    np.testing.assert_allclose(pd.read_csv(io.StringIO(bare.stdout))["prediction"],
                               out["prediction"], rtol=1e-5)
    # Without --id-column, a row is named by its time; the grade is a category: changing
    # it changes the prediction of the rows whose grade changed, only.
    changed = (rows["grade"] != 1).to_numpy()[::-1]
    rows["grade"] = 1
    rows.to_csv(tmp_path / "graded.csv", sep=";", index=False)
    graded = pd.read_csv(io.StringIO(cli("predict", run, tmp_path / "graded.csv").stdout))
    assert list(graded.columns) == ["id", "prediction"]
    assert list(graded["id"]) == [f"2024-01-01 0{hour}:00:00" for hour in range(6)]
    assert changed.any() and not changed.all()
    np.testing.assert_allclose(graded["prediction"][~changed], out["prediction"][~changed],
                               rtol=1e-5)
    assert not np.isclose(graded["prediction"][changed], out["prediction"][changed]).any()


def test_evaluate_data_reads_with_the_run_settings(cli, run, tmp_path):
    _houses(40, seed=2).to_csv(tmp_path / "more.csv", sep=";", index=False)
    result = cli("evaluate", run, "--data", tmp_path / "more.csv", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["examples"] == 40
    assert "Ignored column" not in result.stderr


def test_bad_options_are_named_before_training(cli, run, tmp_path):
    path = run.parent / "houses.csv"
    assert_one_line_error(cli("train", "regression", "--data", path, "--target", "price"), 2,
                          "pass --sep ';'")
    assert_one_line_error(cli("train", "regression", "--data", path, "--target", "price",
                              "--sep", ";", "--drop", "nope"), 2,
                          "`--drop` names column(s) 'nope'", "Columns: customer, a, b")
    assert_one_line_error(cli("train", "regression", "--data", path, "--target", "price",
                              "--sep", ";", "--categorical", "a", "--numeric", "a"), 2,
                          "'a' is given to both")
    assert_one_line_error(cli("predict", run, path, "--id-column", "nope"), 2,
                          "`--id-column` 'nope' is not a column", "Columns: customer")
    assert_one_line_error(cli("train", "regression", "--sep", ";"), 2,
                          "'auto_mpg' is an embedded data set")
    bad = _houses(40)
    bad.loc[12, "date"] = "someday"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert_one_line_error(cli("train", "regression", "--data", tmp_path / "bad.csv",
                              "--target", "price", "--time-column", "date",
                              "--output", tmp_path / "r"), 1,
                          "'date'", "'someday' at row 12")
    assert not (tmp_path / "r").exists()
    bad = _houses(40)
    bad["b"] = bad["b"].astype(str)
    bad.loc[3, "b"] = "unknown"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert_one_line_error(cli("train", "regression", "--data", tmp_path / "bad.csv",
                              "--target", "price", "--numeric", "b"), 1,
                          "--numeric column 'b' holds text: 'unknown' at row 3")


def test_time_column_orders_a_series_for_lstm(cli, tmp_path):
    steps = 160
    t = np.arange(steps)
    frame = pd.DataFrame({"when": pd.date_range("2024-03-01", periods=steps, freq="D"),
                          "sales": np.sin(t / 5.0) + 0.01 * t})
    shuffled = frame.sample(frac=1.0, random_state=0)
    shuffled.assign(when=shuffled["when"].dt.strftime("%Y-%m-%d")).to_csv(
        tmp_path / "series.csv", index=False)
    (tmp_path / "window.yaml").write_text("window: 8\nhorizon: 2\n")
    result = cli("train", "lstm", "--data", tmp_path / "series.csv", "--target", "sales",
                 "--time-column", "when", "--config", tmp_path / "window.yaml",
                 "--epochs", "1", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["feature_names"] == ["sales"] and spec["csv"]["time_column"] == "when"
    # The naive forecast of the series in time order is good; of the shuffled rows, poor.
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["baseline"]["mae"] < 0.5, metrics["baseline"]
    predicted = cli("predict", tmp_path / "run", tmp_path / "series.csv")
    assert predicted.exit_code == 0, predicted.stderr
    out = pd.read_csv(io.StringIO(predicted.stdout))
    # One forecast per window, named by the date of its last row, in time order.
    assert len(out) == steps - 8 + 1
    assert out["id"].iloc[0] == "2024-03-08" and out["id"].is_monotonic_increasing
