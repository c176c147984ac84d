"""A run keeps its best validation epoch, also across `--resume`, and says which it is."""

import json

import keras
import numpy as np
import pandas as pd
import pytest

from kerasdl.callbacks import KeepBest
from kerasdl.callbacks import monitored
from kerasdl.registry import load_recipe

# A learning rate high enough that validation accuracy jumps about between epochs.
NOISY = ["--epochs", "12", "--set", "learning_rate=0.5"]


def test_keep_best_restores_the_best_epoch_and_reads_it_back(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="dense")])
    keep = KeepBest(tmp_path / "backup", "val_loss", "min")
    keep.set_model(model)
    for epoch, value in enumerate([0.9, 0.4, 0.6, float("nan"), 0.4]):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.zeros(1, "float32")])
        keep.on_epoch_end(epoch, {"val_loss": value})
    # A resumed run (a new callback on the same folder) knows the best epoch so far.
    again = KeepBest(tmp_path / "backup", "val_loss", "min")
    assert again.restore(model)["epoch"] == 2  # epoch 5 only ties; NaN never wins
    np.testing.assert_array_equal(model.get_weights()[0], np.full((2, 1), 1.0))


def test_a_tie_in_accuracy_goes_to_the_lower_validation_loss(tmp_path):
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1, name="dense")])
    keep = KeepBest(tmp_path / "backup", "val_accuracy", "max")
    keep.set_model(model)
    logs = [(0.5, 0.9), (0.9, 0.5), (0.9, 0.3), (0.9, 0.4), (0.8, 0.1)]
    for epoch, (accuracy, loss) in enumerate(logs):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.zeros(1, "float32")])
        keep.on_epoch_end(epoch, {"val_accuracy": accuracy, "val_loss": loss})
    assert keep.restore(model)["epoch"] == 3
    np.testing.assert_array_equal(model.get_weights()[0], np.full((2, 1), 2.0))


@pytest.mark.parametrize("recipe,expected", [
    ("cnn", ("val_accuracy", "max")), ("lstm", ("val_loss", "min")),
    ("gan", ("mmd", "min")), ("rbm", ("val_loss", "min")),
    ("autoencoder", ("val_mse", "min")),
])
def test_the_monitored_metric_is_the_recipes_objective(recipe, expected):
    assert monitored(load_recipe(recipe)) == expected


def _best_epoch(history):
    """Highest val_accuracy; among ties, the lowest val_loss (first of exact ties); 1-based."""
    best = history["val_accuracy"].max()
    tied = history[history["val_accuracy"] == best]
    return int(tied["val_loss"].idxmin()) + 1


def _evaluated(cli, run, split):
    result = cli("evaluate", run, "--split", split, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def test_the_kept_model_is_the_best_validation_epoch(cli, tmp_path):
    result = cli("train", "perceptron", *NOISY, "--output", "run")
    assert result.exit_code == 0, result.stderr
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert metrics["monitor"] == "val_accuracy" and metrics["monitor_mode"] == "max"
    assert metrics["best_epoch"] == _best_epoch(history)
    assert metrics["best_value"] == pytest.approx(history["val_accuracy"].max())
    # The saved model scores on the validation split what its best epoch did.
    scores = _evaluated(cli, tmp_path / "run", "validation")
    assert scores["accuracy"] == pytest.approx(history["val_accuracy"].max(), abs=1e-6)
    assert not (tmp_path / "run" / "backup").exists()


def test_the_best_epoch_survives_a_resume(cli, tmp_path):
    """Killed after its best epoch, the resumed run still keeps that epoch's model."""
    original = keras.Model.fit

    def killed_after_four_epochs(self, *args, **kwargs):
        kwargs["epochs"] = 4
        original(self, *args, **kwargs)
        raise KeyboardInterrupt

    keras.Model.fit = killed_after_four_epochs
    try:
        assert cli("train", "perceptron", *NOISY, "--output", "run").exit_code == 130
    finally:
        keras.Model.fit = original
    before = json.loads((tmp_path / "run" / "backup" / "best.json").read_text())
    assert 1 <= before["epoch"] <= 4
    resumed = cli("train", "--resume", tmp_path / "run")
    assert resumed.exit_code == 0, resumed.stderr
    history = pd.read_csv(tmp_path / "run" / "history.csv")
    assert list(history["epoch"]) == list(range(12))
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["best_epoch"] == _best_epoch(history)
    if history["val_accuracy"][4:].max() < before["value"]:
        assert metrics["best_epoch"] == before["epoch"]
    scores = _evaluated(cli, tmp_path / "run", "validation")
    assert scores["accuracy"] == pytest.approx(history["val_accuracy"].max(), abs=1e-6)
