"""`tune --warm-start`: an earlier search's trials as observations of the new one.

No training: a tiny hypermodel only declares its space, and the earlier search is a
folder of Keras Tuner trial files written here.
"""

import json

import keras_tuner
import numpy as np
import pytest

from kerasdl import hparams
from kerasdl import tuning
from kerasdl import warmstart

PINNED = {"batch_norm": False}


def _space(hp):
    hp.Float("learning_rate", 1e-4, 1e-1, sampling="log")
    hp.Int("units", 8, 64, step=8)
    hp.Choice("activation", ["relu", "tanh"])
    hp.Boolean("batch_norm")
    hp.Fixed("head_epochs", 2)
    return hp


class Declares(keras_tuner.HyperModel):
    """Declares the space (the tuner builds it once for that); no model."""

    def build(self, hp):
        _space(hp)


def _earlier(tmp_path, rows):
    """An earlier search's tuner folder: one COMPLETED trial per (values, val_loss)."""
    for number, (values, loss) in enumerate(rows):
        folder = tmp_path / "earlier" / "tuner" / f"trial_{number:02d}"
        folder.mkdir(parents=True)
        metrics = {name: {"direction": "min", "observations": [
            {"value": [value + 1.0], "step": 1}, {"value": [value], "step": 3},
            {"value": [value + 0.5], "step": 4}]} for name, value in
            (("val_loss", loss), ("loss", loss / 2))}
        (folder / "trial.json").write_text(json.dumps({
            "trial_id": f"{number:02d}", "status": "COMPLETED", "score": loss, "best_step": 3,
            "hyperparameters": {"values": {**values, "tuner/epochs": 4}},
            "metrics": {"metrics": metrics}}))
        (folder / "kerasdl_trial.json").write_text(json.dumps({
            "status": "completed", "epochs": 4, "wall_seconds": 1.5, "curve": {}}))
    return tmp_path / "earlier"


def _landscape(count, seed=0):
    """`count` configurations and a loss that is lowest near learning_rate 3e-3."""
    rng = np.random.default_rng(seed)
    rows = []
    for number in range(count):
        rate = float(10 ** rng.uniform(-4, -1))
        values = {"learning_rate": rate, "units": int(rng.integers(1, 9) * 8),
                  "activation": ["relu", "tanh"][number % 2], "batch_norm": False,
                  "head_epochs": 2}
        rows.append((values, (np.log10(rate) + 2.5) ** 2 + 0.1))
    return rows


def _tuner(tmp_path, imported, max_trials=4):
    space = _space(keras_tuner.HyperParameters())
    meta = {"tuner": "bayesian", "objective": {"name": "val_loss", "direction": "min"},
            "pinned": PINNED, "settings": {"seed": 1, "epochs": 4},
            "directory": str(tmp_path / "new"), "search_space": hparams.describe(space),
            "max_trials": max_trials, "imported": imported}
    tuner = tuning.make_tuner(meta, Declares())
    tuning.import_trials(tuner.oracle, imported, space)
    return tuner.oracle


def test_imported_trials_are_the_observations_bayesian_optimisation_fits(tmp_path):
    space = hparams.describe(_space(keras_tuner.HyperParameters()))
    rows = _landscape(10)
    imported, skipped = warmstart.finished_trials(_earlier(tmp_path, rows), space, PINNED)
    assert skipped == 0 and len(imported) == 10
    oracle = _tuner(tmp_path, imported)
    # 3 dimensions searched (batch_norm pinned, head_epochs fixed): 9 random points,
    # which the 10 imported trials stand for.
    assert oracle.num_initial_points == 9
    trials = [oracle.trials[t] for t in oracle.start_order]
    assert [t.status for t in trials] == ["COMPLETED"] * 10
    # Each scored as the earlier search scored it (its best step, not its last).
    assert [t.score for t in trials] == pytest.approx([loss for _, loss in rows])
    assert [t.best_step for t in trials] == [3] * 10
    for trial, (values, _) in zip(trials, rows):
        assert {k: trial.hyperparameters.values[k] for k in values} == values

    new = oracle.create_trial("tuner0")
    assert new.status == "RUNNING" and new.trial_id == "10"
    # The first new trial is the model's choice, not a random initial point: the
    # Gaussian process was fitted on exactly the imported configurations and scores.
    gpr = oracle.gpr
    assert gpr.X_train_.shape == (10, 3)
    searched = [hp for hp in oracle.hyperparameters.space
                if hp.name in ("learning_rate", "units", "activation")]
    expected = [[hp.value_to_prob(values[hp.name]) for hp in searched] for values, _ in rows]
    assert gpr.X_train_ == pytest.approx(np.array(expected))
    losses = np.array([loss for _, loss in rows])
    assert gpr.y_train_ * gpr._y_train_std + gpr._y_train_mean == pytest.approx(losses)


def test_imported_trials_count_towards_the_random_start(tmp_path):
    space = hparams.describe(_space(keras_tuner.HyperParameters()))
    imported, _ = warmstart.finished_trials(_earlier(tmp_path, _landscape(4)), space, PINNED)
    oracle = _tuner(tmp_path, imported, max_trials=8)
    for number in range(5):  # 4 imported + 5 random = the 9 initial points
        trial = oracle.create_trial(f"tuner{number}")
        assert trial.status == "RUNNING" and not hasattr(oracle.gpr, "X_train_")
        oracle.update_trial(trial.trial_id, {"val_loss": 1.0 + number}, step=1)
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    # The next one is the model's (the first test follows that path).
    completed = [t for t in oracle.trials.values() if t.status == "COMPLETED"]
    assert len(completed) == oracle.num_initial_points == 9


def test_only_configurations_of_the_new_space_are_imported_typed_as_it_types_them(tmp_path):
    base = {"learning_rate": 0.01, "units": 32, "activation": "relu", "batch_norm": False,
            "head_epochs": 2}
    rows = [(base, 0.5),
            ({**base, "learning_rate": 0.05}, 0.6),    # outside the narrowed range below
            ({**base, "activation": "gelu"}, 0.7),     # a choice no longer offered
            ({**base, "batch_norm": True}, 0.8),       # another value than `--set` pins
            ({**base, "head_epochs": 3}, 0.9),         # the recipe's hp.Fixed changed
            ({**base, "units": 40.0, "dropped": 1}, 1.0)]  # a float an Int takes; a gone name
    source = _earlier(tmp_path, rows)
    space = keras_tuner.HyperParameters()
    space.Float("learning_rate", 1e-4, 2e-2, sampling="log")
    space.Int("units", 8, 64, step=8)
    space.Choice("activation", ["relu", "tanh"])
    space.Boolean("batch_norm")
    space.Fixed("head_epochs", 2)
    imported, skipped = warmstart.finished_trials(source, hparams.describe(space), PINNED)
    assert skipped == 4
    assert [entry["source_trial"] for entry in imported] == ["00", "05"]
    last = imported[1]["values"]
    assert last == {**base, "units": 40} and type(last["units"]) is int
    # The metrics of the best step (3), which the score is.
    assert imported[1]["metrics"] == {"val_loss": 1.0, "loss": 0.5}


def test_grid_and_hyperband_refuse_a_warm_start_naming_the_tuners_that_take_one(tmp_path):
    # Keras Tuner's grid search fails (KeyError) on its first trial after imported ones.
    for tuner, why in (("grid", "walks its whole grid"), ("hyperband", "its own brackets")):
        with pytest.raises(warmstart.UsageError) as refused:
            warmstart.read_source(tmp_path, "perceptron", {}, tuner)
        message = str(refused.value)
        assert "random and bayesian" in message and why in message


def test_a_warm_start_from_trials_trained_otherwise_is_refused_naming_what_to_pass(tmp_path):
    source = tmp_path / "earlier"
    source.mkdir()
    settings = {"data": "xor", "epochs": 20, "batch_size": 32}
    (source / "search.json").write_text(json.dumps({
        "recipe": "perceptron", "settings": settings,
        "objective": {"name": "val_loss", "direction": "min"}}))
    meta = warmstart.read_source(source, "perceptron", dict(settings), "bayesian")
    assert meta["settings"] == settings
    for changed, passed in (({"epochs": 5}, "--epochs 20"),
                            ({"batch_size": 64}, "--batch-size 32"),
                            ({"epochs": 5, "batch_size": 64}, "--epochs 20 --batch-size 32")):
        with pytest.raises(warmstart.UsageError) as refused:
            warmstart.read_source(source, "perceptron", {**settings, **changed}, "random")
        message = str(refused.value)
        assert "their scores would not compare" in message and passed in message
        for key, value in changed.items():
            assert f"{key}={settings[key]}" in message and f"{key}={value}" in message
