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
        "date": dates[::-1] if reverse_dates else dates,
        # A whole-number ID, shuffled: learning it would learn the file, not the houses.
        "sample_id": rng.permutation(rows) + 1000})


# Module fixtures run once per test process: the tests of `run` share the xdist group
# "csv_run", so one process runs them and trains it once.
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
    assert "ID-like column(s) 'sample_id'" in result.stderr and "--numeric COLUMN" in result.stderr
    return folder / "run"


@pytest.mark.xdist_group("csv_run")
def test_options_shape_the_model_and_are_recorded(run):
    spec = json.loads((run / "config.json").read_text())["spec"]
    # grade one-hot (its numbers are codes), noise, customer, sample_id and date not
    # features.
    assert spec["columns"] == {"a": "number", "b": "number", "grade": "category"}
    assert spec["feature_names"] == ["a", "b", "grade=1", "grade=2", "grade=3"]
    assert spec["csv"]["sep"] == ";" and spec["csv"]["drop"] == ["noise"]
    assert spec["csv"]["ids"] == ["customer", "sample_id"]
    assert spec["csv"]["time_column"] == "date"
    import keras

    model = keras.saving.load_model(run / "model.keras")
    assert model.input_shape == (None, 5)


@pytest.mark.xdist_group("csv_run")
def test_predict_reads_new_files_the_same_way_and_carries_ids(cli, run, tmp_path):
    rows = _houses(6, seed=1)
    rows.to_csv(tmp_path / "new.csv", sep=";", index=False)
    result = cli("predict", run, tmp_path / "new.csv", "--id-column", "customer")
    assert result.exit_code == 0, result.stderr
    out = pd.read_csv(io.StringIO(result.stdout))
    assert list(out.columns) == ["customer", "prediction"]
    # Rows keep the file's order (a time column orders a forecasting series only).
    assert list(out["customer"]) == [f"c1-{i:04d}" for i in range(6)]
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
    # Without --id-column, a row is named by its number; the grade is a category:
    # changing it changes the prediction of the rows whose grade changed, only.
    changed = (rows["grade"] != 1).to_numpy()
    rows["grade"] = 1
    rows.to_csv(tmp_path / "graded.csv", sep=";", index=False)
    graded = pd.read_csv(io.StringIO(cli("predict", run, tmp_path / "graded.csv").stdout))
    assert list(graded.columns) == ["id", "prediction"]
    assert list(graded["id"]) == list(range(6))
    assert changed.any() and not changed.all()
    np.testing.assert_allclose(graded["prediction"][~changed], out["prediction"][~changed],
                               rtol=1e-5)
    assert not np.isclose(graded["prediction"][changed], out["prediction"][changed]).any()


@pytest.mark.xdist_group("csv_run")
def test_evaluate_data_reads_with_the_run_settings(cli, run, tmp_path):
    _houses(40, seed=2).to_csv(tmp_path / "more.csv", sep=";", index=False)
    result = cli("evaluate", run, "--data", tmp_path / "more.csv", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["examples"] == 40
    assert "Ignored column" not in result.stderr


@pytest.mark.xdist_group("csv_run")
def test_predict_and_evaluate_read_another_separator_with_sep(cli, run, tmp_path):
    rows = _houses(40, seed=3)
    rows.to_csv(tmp_path / "semi.csv", sep=";", index=False)
    rows.to_csv(tmp_path / "comma.csv", index=False)
    rows.to_csv(tmp_path / "tabs.tsv", sep="\t", index=False)
    assert_one_line_error(cli("predict", run, tmp_path / "comma.csv"), 2,
                          "(the header reads as one column: pass --sep ',')")
    expected = cli("predict", run, tmp_path / "semi.csv")
    assert expected.exit_code == 0, expected.stderr
    for name, sep in (("comma.csv", ","), ("tabs.tsv", "tab")):
        result = cli("predict", run, tmp_path / name, "--sep", sep)
        assert result.exit_code == 0, result.stderr
        assert result.stdout == expected.stdout  # the same rows, the same predictions
    assert_one_line_error(cli("evaluate", run, "--data", tmp_path / "comma.csv"), 2,
                          "(the header reads as one column: pass --sep ',')")
    scored = json.loads(cli("evaluate", run, "--data", tmp_path / "semi.csv", "--json").stdout)
    result = cli("evaluate", run, "--data", tmp_path / "comma.csv", "--sep", ",", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout) == scored and scored["examples"] == 40


def test_series_text_columns_are_refused_with_the_drops_to_pass(cli, tmp_path):
    steps = 60
    frame = pd.DataFrame({"visit": pd.date_range("2024-03-01", periods=steps, freq="D")
                          .strftime("%Y-%m-%d"),
                          "clinic": np.resize(["north", "south"], steps),
                          "patients": np.arange(steps) % 7 + 10.0,
                          "risk": np.resize(["low", "mid", "high"], steps)})
    frame.to_csv(tmp_path / "visits.csv", index=False)
    (tmp_path / "window.yaml").write_text("window: 8\nhorizon: 1\n")
    assert_one_line_error(cli("train", "lstm", "--data", tmp_path / "visits.csv", "--target",
                              "patients", "--time-column", "visit", "--epochs", "1",
                              "--output", tmp_path / "run"), 1,
                          "clinic, risk hold text: drop them with --drop clinic --drop risk")
    assert not (tmp_path / "run").exists()
    result = cli("train", "lstm", "--data", tmp_path / "visits.csv", "--target", "patients",
                 "--time-column", "visit", "--drop", "clinic", "--drop", "risk",
                 "--config", tmp_path / "window.yaml", "--epochs", "1",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["feature_names"] == ["patients"]


@pytest.mark.xdist_group("csv_run")
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
                          "'date'", "'someday' at data row 13 (line 14)")
    assert not (tmp_path / "r").exists()
    bad = _houses(40)
    bad["b"] = bad["b"].astype(str)
    bad.loc[3, "b"] = "unknown"
    bad.to_csv(tmp_path / "bad.csv", index=False)
    assert_one_line_error(cli("train", "regression", "--data", tmp_path / "bad.csv",
                              "--target", "price", "--numeric", "b"), 1,
                          "--numeric column 'b' holds text: 'unknown' at data row 4 (line 5)")


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


def _table(rows, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    colour = rng.choice(["red", "green", "blue"], rows)
    shift = pd.Series(colour).map({"red": 3.0, "green": -3.0, "blue": 0.0}).to_numpy()
    y = x @ [1.0, 2.0, -1.0] + shift + rng.normal(0, 0.1, rows)
    return pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "colour": colour,
                         "y": y, "kind": np.where(y > 0, "up", "down")})


@pytest.fixture
def streamed(monkeypatch):
    """Every CSV file streams, in chunks of 100 rows (so a file has several)."""
    from kerasdl.data import streaming

    monkeypatch.setenv("KERASDL_CSV_STREAM_MB", "0")
    monkeypatch.setattr(streaming, "CHUNK_ROWS", 100)
    return streaming


def test_streamed_split_and_encoding_match_the_rows_of_the_file(streamed, tmp_path):
    from kerasdl.data import load_data
    from kerasdl.data import tabular

    frame = _table(700)
    frame.to_csv(tmp_path / "t.csv", index=False)
    settings = {"target": "y", "drop": ["kind"], "split_seed": 7, "validation_split": 0.2,
                "test_split": 0.2}
    splits = load_data(tmp_path / "t.csv", "regression", settings)
    spec = splits.spec
    assert spec["streamed"] and spec["cache"] == "none" and splits.arrays is None
    assert spec["feature_names"] == ["a", "b", "c", "colour=blue", "colour=green", "colour=red"]
    # The seeded split: the rows of each split, in file order, about 60/20/20.
    parts = streamed.split_names(np.arange(700), settings)
    assert spec["num_examples"] == {name: int((parts == i).sum())
                                    for i, name in enumerate(("train", "validation", "test"))}
    assert 0.5 < spec["num_examples"]["train"] / 700 < 0.7
    expected, _, _ = tabular.features_from_frame(frame.drop(columns=["y", "kind"]))
    for index, dataset in enumerate((splits.train, splits.validation, splits.test)):
        x, y = (np.concatenate(part) for part in zip(*[(x.numpy(), y.numpy())
                                                      for x, y in dataset.batch(256)]))
        np.testing.assert_allclose(x, expected[parts == index], rtol=1e-6)
        np.testing.assert_allclose(y, frame["y"].to_numpy()[parts == index], rtol=1e-6)
        assert int(dataset.cardinality()) == len(y)
    train = expected[parts == 0]
    np.testing.assert_allclose(spec["feature_mean"], train.mean(axis=0), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(spec["feature_variance"], train.var(axis=0), rtol=1e-5)
    assert spec["target_mean"] == pytest.approx(frame["y"][parts == 0].mean())
    # The baseline is least squares on the training rows, scored on the test rows.
    from sklearn.linear_model import LinearRegression

    fitted = LinearRegression().fit(train, frame["y"][parts == 0])
    errors = fitted.predict(expected[parts == 2]) - frame["y"][parts == 2]
    assert splits.baseline["mae"] == pytest.approx(np.abs(errors).mean(), rel=1e-4)
    assert splits.baseline["rmse"] == pytest.approx(np.sqrt((errors ** 2).mean()), rel=1e-4)


def test_streamed_training_predict_and_evaluate(streamed, cli, tmp_path):
    _table(600).to_csv(tmp_path / "t.csv", index=False)
    result = cli("train", "perceptron", "--data", tmp_path / "t.csv", "--target", "kind",
                 "--drop", "y", "--epochs", "3", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    assert "Scanning t.csv: 600 rows done" in result.stderr  # progress, on stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["baseline"]["model"] == "linear_least_squares"
    # Linearly separable classes: both the network and the baseline learn them.
    assert metrics["baseline"]["accuracy"] > 0.9 and metrics["test"]["accuracy"] > 0.8
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["class_names"] == ["down", "up"] and spec["streamed"]
    scored = cli("evaluate", tmp_path / "run", "--data", tmp_path / "t.csv", "--json")
    assert scored.exit_code == 0, scored.stderr
    assert json.loads(scored.stdout)["examples"] == 600
    assert json.loads(scored.stdout)["accuracy"] > 0.8
    _table(300, seed=1).drop(columns=["b"]).to_csv(tmp_path / "less.csv", index=False)
    assert_one_line_error(cli("evaluate", tmp_path / "run", "--data", tmp_path / "less.csv"),
                          1, "Missing column(s) 'b'")
    # predict streams too: one row out per row in, in the file's order.
    predicted = cli("predict", tmp_path / "run", tmp_path / "t.csv")
    assert predicted.exit_code == 0, predicted.stderr
    out = pd.read_csv(io.StringIO(predicted.stdout))
    assert list(out["id"]) == list(range(600))
    assert (out["prediction"] == _table(600)["kind"]).mean() > 0.8


@pytest.mark.parametrize("row, value, fragment", [
    (250, "lots", "Column 'b' of"),
    (250, "inf", "'b' of"),
    (480, "", "Missing values in column(s) 'b' (1) at"),
])
def test_later_chunks_with_bad_values_name_column_and_row(streamed, cli, tmp_path, row,
                                                          value, fragment):
    frame = _table(500)
    frame["b"] = frame["b"].astype(object)
    frame.loc[row, "b"] = value
    frame.to_csv(tmp_path / "t.csv", index=False)
    result = cli("train", "regression", "--data", tmp_path / "t.csv", "--target", "y",
                 "--drop", "kind", "--epochs", "1", "--output", tmp_path / "run")
    # The streamed chunks count rows through the file: the header is line 1.
    line = assert_one_line_error(result, 1, fragment, f"data row {row + 1} (line {row + 2})")
    assert "Traceback" not in result.stderr and not (tmp_path / "run").exists(), line


def test_stream_threshold_is_checked(monkeypatch, cli, tmp_path):
    _table(50).to_csv(tmp_path / "t.csv", index=False)
    monkeypatch.setenv("KERASDL_CSV_STREAM_MB", "lots")
    assert_one_line_error(cli("train", "regression", "--data", tmp_path / "t.csv",
                              "--target", "y", "--epochs", "1"), 1, "KERASDL_CSV_STREAM_MB")


@pytest.mark.xdist_group("csv_run")
def test_predict_streams_a_csv_file_in_chunks(monkeypatch, cli, run, tmp_path):
    from kerasdl.data import tabular

    rows = _houses(25, seed=3)
    rows.loc[[2, 21], "grade"] = 7  # unseen, in two chunks: counted once over the file
    rows.to_csv(tmp_path / "new.csv", sep=";", index=False)
    whole = cli("predict", run, tmp_path / "new.csv", "--id-column", "customer")
    monkeypatch.setattr(tabular, "PREDICT_CHUNK_ROWS", 4)
    chunked = cli("predict", run, tmp_path / "new.csv", "--id-column", "customer",
                  "--output", tmp_path / "out.csv")
    assert chunked.exit_code == 0, chunked.stderr
    out = pd.read_csv(tmp_path / "out.csv")
    pd.testing.assert_frame_equal(out, pd.read_csv(io.StringIO(whole.stdout)))
    assert list(out["customer"]) == list(rows["customer"])
    notes = chunked.stderr.splitlines()
    assert sum("unseen" in line for line in notes) == 1
    assert any("'grade': '7' (2)" in line for line in notes)
    assert sum("model's target" in line for line in notes) == 1
    # A bad row in a later chunk: one error naming it, and no output file left.
    rows["a"] = rows["a"].astype(object)
    rows.loc[17, "a"] = "oops"
    rows.to_csv(tmp_path / "bad.csv", sep=";", index=False)
    assert_one_line_error(cli("predict", run, tmp_path / "bad.csv", "--output",
                              tmp_path / "bad_out.csv"), 1, "'a'", "'oops'",
                          "data row 18 (line 19)")
    assert not (tmp_path / "bad_out.csv").exists()
    assert list(tmp_path.glob(".bad_out*")) == []


def test_streamed_time_column_is_checked_in_every_chunk(streamed, cli, tmp_path):
    frame = _table(400)
    frame["when"] = pd.date_range("2024-01-01", periods=400, freq="h").astype(str)
    frame.loc[333, "when"] = "31/02/2024 25:00"
    frame.to_csv(tmp_path / "t.csv", index=False)
    result = cli("train", "regression", "--data", tmp_path / "t.csv", "--target", "y",
                 "--drop", "kind", "--time-column", "when", "--epochs", "1",
                 "--output", tmp_path / "run")
    assert_one_line_error(result, 1, "'when'", "'31/02/2024 25:00' at data row 334 (line 335)")
    frame.loc[333, "when"] = "2024-02-01"
    frame.to_csv(tmp_path / "t.csv", index=False)
    result = cli("train", "regression", "--data", tmp_path / "t.csv", "--target", "y",
                 "--drop", "kind", "--time-column", "when", "--epochs", "1",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["streamed"] and "when" not in spec["columns"]
    assert sum(spec["num_examples"].values()) == 400
