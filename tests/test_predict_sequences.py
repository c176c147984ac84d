"""Sequence and forecasting models predict on the form of their training data."""

import io
import json

import keras
import numpy as np
import pandas as pd
import pytest

from kerasdl.data.series import pattern_arrays
from kerasdl.data.series import seasonal_frame
from tests.conftest import assert_one_line_error


def _sequences_csv(path, count=40, label=True):
    """`count` labelled pattern sequences, one per row: label, t0..t63."""
    sequences, labels, names = pattern_arrays(count=count, seed=7)
    frame = pd.DataFrame(sequences[..., 0], columns=[f"t{i}" for i in range(64)])
    if label:
        frame.insert(0, "label", [names[i] for i in labels])
    frame.to_csv(path, index=False)
    return sequences, [names[i] for i in labels]


@pytest.mark.parametrize("recipe", ["attention", "lstm"])
def test_sequence_classifier_predicts_one_sequence_per_row(cli, tmp_path, recipe):
    result = cli("train", recipe, "--data", "patterns", "--epochs", "1", "--train-examples",
                 "200", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    sequences, truth = _sequences_csv(tmp_path / "new.csv", label=False)
    predicted = cli("predict", tmp_path / "run", tmp_path / "new.csv")
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(io.StringIO(predicted.stdout))
    assert list(frame["id"]) == list(range(40))
    # The same numbers as the model on the arrays: rows read as sequences, steps in order.
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    expected = model.predict(sequences, verbose=0)
    names = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]["class_names"]
    np.testing.assert_allclose(frame[[f"probability_{name}" for name in names]], expected,
                               atol=1e-5)
    assert list(frame["prediction"]) == [names[i] for i in expected.argmax(axis=1)]

    # A CSV with the class column (as training data has it) predicts and evaluates.
    _sequences_csv(tmp_path / "labelled.csv")
    labelled = cli("predict", tmp_path / "run", tmp_path / "labelled.csv")
    assert labelled.exit_code == 0, labelled.stderr
    np.testing.assert_allclose(pd.read_csv(io.StringIO(labelled.stdout))["confidence"],
                               frame["confidence"], atol=1e-6)
    scored = cli("evaluate", tmp_path / "run", "--data", tmp_path / "labelled.csv", "--json")
    assert scored.exit_code == 0, scored.stderr
    scores = json.loads(scored.stdout)
    assert scores["examples"] == 40
    accuracy = np.mean(np.array(truth) == frame["prediction"])
    assert scores["accuracy"] == pytest.approx(accuracy, abs=1e-6)

    pd.DataFrame(sequences[:3, :60, 0]).to_csv(tmp_path / "short.csv", index=False)
    assert_one_line_error(cli("predict", tmp_path / "run", tmp_path / "short.csv"), 1,
                          "sequences of 64 steps", "Received 60 column(s)")


def test_attention_trains_on_a_csv_of_sequences(cli, tmp_path):
    _sequences_csv(tmp_path / "train.csv", count=120)
    result = cli("train", "attention", "--data", tmp_path / "train.csv", "--epochs", "1",
                 "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    spec = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]
    assert spec["task"] == "sequence_classification"
    assert spec["input_shape"] == [64, 1]
    assert spec["class_names"] == ["sawtooth", "sine", "square"]
    assert sum(spec["num_examples"].values()) == 120


def test_forecaster_predicts_every_window_of_a_long_series(cli, tmp_path):
    result = cli("train", "lstm", "--epochs", "1", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    series = seasonal_frame(length=200, seed=3)
    series.to_csv(tmp_path / "series.csv", index=False)
    predicted = cli("predict", tmp_path / "run", tmp_path / "series.csv")
    assert predicted.exit_code == 0, predicted.stderr
    frame = pd.read_csv(io.StringIO(predicted.stdout))
    window = json.loads((tmp_path / "run" / "config.json").read_text())["spec"]["window"]
    assert list(frame["id"]) == list(range(window - 1, 200))
    values = series["value"].to_numpy(np.float32)
    windows = np.stack([values[end - window + 1:end + 1] for end in frame["id"]])[..., None]
    model = keras.saving.load_model(tmp_path / "run" / "model.keras")
    np.testing.assert_allclose(frame["prediction"],
                               model.predict(windows, verbose=0)[:, 0], rtol=1e-4, atol=1e-4)
    assert (frame["horizon"] == 6).all()
    series.loc[50, "value"] = np.inf
    series.to_csv(tmp_path / "series.csv", index=False)
    assert_one_line_error(cli("predict", tmp_path / "run", tmp_path / "series.csv"), 1,
                          "'value'", "data row 51 (line 52)")
