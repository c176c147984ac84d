"""Best-epoch bookkeeping and the NaN stop, fed logs by hand: no training."""

import json

import keras
import numpy as np
import pytest

from kerasdl import registry
from kerasdl.callbacks import KeepBest
from kerasdl.callbacks import StopOnNaN
from kerasdl.callbacks import monitored
from kerasdl.errors import NonFiniteLoss


@pytest.mark.parametrize("name", registry.list_recipes())
def test_monitored_is_the_objective_the_recipe_declares(name):
    declared = registry.recipe_info(name)["objective"]
    assert monitored(registry.load_recipe(name)) == (declared["name"], declared["direction"])


def test_monitored_direction_of_a_plain_name():
    class Recipe:
        OBJECTIVE = "val_auc"

    assert monitored(Recipe) == ("val_auc", "max")
    Recipe.OBJECTIVE = "val_mae"
    assert monitored(Recipe) == ("val_mae", "min")
    Recipe.OBJECTIVE = None
    assert monitored(Recipe) == ("val_loss", "min")


def _model():
    return keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])


def _feed(keep, model, logs):
    for epoch, entry in enumerate(logs):
        model.set_weights([np.full((2, 1), epoch, "float32"), np.zeros(1, "float32")])
        keep.on_epoch_end(epoch, entry)


def test_keep_best_ties_in_loss_keep_the_first_epoch(tmp_path):
    model = _model()
    keep = KeepBest(tmp_path, "val_mae", "min")
    keep.set_model(model)
    _feed(keep, model, [{"val_mae": 3.0, "val_loss": 9.0}, {"val_mae": 2.0, "val_loss": 5.0},
                        {"val_mae": 2.0, "val_loss": 4.0}, {"val_mae": float("inf")},
                        {"loss": 0.1}])  # no monitored value: not an epoch to choose
    # A tie in val_mae goes to the lower val_loss: epoch 3.
    record = keep.restore(model)
    assert record["epoch"] == 3 and record["value"] == 2.0 and record["val_loss"] == 4.0
    np.testing.assert_array_equal(model.get_weights()[0], np.full((2, 1), 2.0))
    assert json.loads((tmp_path / "best.json").read_text())["epoch"] == 3
    assert sorted(path.name for path in tmp_path.iterdir()) == ["best.json",
                                                                "best.weights.npz"]


def test_keep_best_max_mode_and_a_tie_without_val_loss(tmp_path):
    model = _model()
    keep = KeepBest(tmp_path, "val_accuracy", "max")
    keep.set_model(model)
    _feed(keep, model, [{"val_accuracy": 0.7}, {"val_accuracy": 0.9},
                        {"val_accuracy": 0.9}, {"val_accuracy": float("nan")},
                        {"val_accuracy": 0.85}])
    assert keep.restore(model)["epoch"] == 2  # without val_loss a tie keeps the first


def test_keep_best_reads_back_only_its_own_monitor(tmp_path):
    model = _model()
    keep = KeepBest(tmp_path, "val_loss", "min")
    keep.set_model(model)
    _feed(keep, model, [{"val_loss": 0.5}])
    assert KeepBest(tmp_path, "val_loss", "min").best["epoch"] == 1
    other = KeepBest(tmp_path, "val_accuracy", "max")
    assert other.best is None and other.restore(model) is None


def test_stop_on_nan_names_the_epoch_and_a_lower_learning_rate():
    model = _model()
    model.compile(optimizer=keras.optimizers.Adam(0.02), loss="mse")
    stop = StopOnNaN()
    stop.set_model(model)
    stop.on_epoch_begin(2)
    stop.on_train_batch_end(0, {"loss": 0.5, "accuracy": float("nan")})  # not a loss
    with pytest.raises(NonFiniteLoss) as error:
        stop.on_train_batch_end(4, {"loss": 0.5, "val_loss": float("inf")})
    message = str(error.value)
    assert "inf in epoch 3 (batch 5)" in message
    assert "`--set learning_rate=0.002` (a tenth of the current 0.02)" in message


def test_stop_on_nan_hint_without_an_optimizer():
    stop = StopOnNaN()
    stop.set_model(_model())
    stop.on_epoch_begin(0)
    with pytest.raises(NonFiniteLoss, match="a tenth of the current one"):
        stop.on_train_batch_end(0, {"loss": float("nan")})
