"""A trial that diverges (NaN loss) is a result: DIVERGED, never scored, ranked or imported."""

import json

import keras
import keras_tuner
import pandas as pd
import pytest

from kerasdl import pruning
from kerasdl import tuning

# Appended to a copy of the perceptron: one searched knob, `poison`, whose model outputs NaN
# from the first batch. Its loss is NaN while its accuracy stays finite (argmax of NaN), as
# in a real diverged trial whose val_accuracy would otherwise rank.
POISONED = '''

def build_model(hp, spec):
    poison = hp.Boolean("poison", default=False)
    inputs = keras.Input(shape=spec["input_shape"], name="features")
    x = layers.Dense(8, activation="tanh", name="dense1")(inputs)
    outputs = layers.Dense(spec["num_classes"], activation="softmax", name="predictions")(x)
    model = keras.Model(inputs, outputs, name="mlp")
    if poison:
        kernel = model.get_layer("predictions").kernel
        kernel.assign(np.full(kernel.shape, np.nan, "float32"))
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model
'''


@pytest.fixture
def poisoned(cli, tmp_path):
    assert cli("copy", "perceptron", "poisoned.py").exit_code == 0
    path = tmp_path / "poisoned.py"
    path.write_text(path.read_text().split('\nif __name__ == "__main__":')[0] + POISONED)
    return path


def search(cli, *extra):
    return cli("tune", "./poisoned.py", "--max-trials", "2", "--epochs", "2",
               "--set", "loss=sparse_categorical_crossentropy", *extra)


def test_a_diverged_trial_is_never_completed_best_retrained_shown_or_imported(cli, tmp_path,
                                                                            poisoned):
    result = search(cli, "--prune", "--output", "search")
    assert result.exit_code == 0, result.stderr
    assert "All-NaN" not in result.stderr and "RuntimeWarning" not in result.stderr
    assert "Traceback" not in result.stderr  # a result, not a crash
    assert "diverged" in result.stderr
    rows = {row["trial_id"]: row for row in
            pd.read_csv(tmp_path / "search" / "results.csv",
                                          dtype={"trial_id": str}).to_dict("records")}
    poisoned_ids = [t for t, row in rows.items() if row["poison"]]
    healthy_ids = [t for t, row in rows.items() if not row["poison"]]
    assert len(poisoned_ids) == 1 and len(healthy_ids) == 1, rows
    assert rows[poisoned_ids[0]]["status"] == "DIVERGED"
    assert rows[healthy_ids[0]]["status"] == "COMPLETED"

    # Keras Tuner's own view: the diverged trial failed, unscored; the best is the other.
    trial = json.loads((tmp_path / "search" / "tuner" / f"trial_{poisoned_ids[0]}"
                        / "trial.json").read_text())
    assert trial["status"] == "FAILED" and trial["score"] is None
    best = json.loads((tmp_path / "search" / "best_hyperparameters.json").read_text())
    assert best["trial_id"] == healthy_ids[0] and best["hyperparameters"]["poison"] is False
    config = json.loads((tmp_path / "search" / "best" / "config.json").read_text())
    assert config["search_trial"] == healthy_ids[0] and config["passed_over"] == []
    model = keras.saving.load_model(tmp_path / "search" / "best" / "model.keras")
    assert keras.ops.all(keras.ops.isfinite(model.get_layer("predictions").kernel))

    shown = cli("show", "search", "--json")
    assert shown.exit_code == 0, shown.stderr
    summary = cli("show", "search").stdout.splitlines()[0]
    assert "1 diverged" in summary, summary
    assert [t["trial_id"] for t in json.loads(shown.stdout)["trials"]] == healthy_ids

    # A resumed search keeps the diverged trial as a result: nothing runs again.
    again = search(cli, "--prune", "--output", "search")
    assert again.exit_code == 0, again.stderr
    assert "Epoch 1/" not in again.stderr, again.stderr
    assert len(json.loads((tmp_path / "search" / "tuner" / "oracle.json").read_text())
               ["end_order"]) == 2

    # Warm start imports the healthy trial only.
    warm = search(cli, "--warm-start", "search", "--output", "warm", "--max-trials", "1")
    assert warm.exit_code == 0, warm.stderr
    imported = [row for row in pd.read_csv(tmp_path / "warm" / "results.csv")
                .to_dict("records") if row["status"] == "IMPORTED"]
    assert [row["poison"] for row in imported] == [False]


def test_diverged_trials_do_not_count_as_consecutive_failures():
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective("val_accuracy", "max"), max_trials=10)
    tuning._diverged_trials_are_results(oracle)
    for number in range(5):
        trial_id = str(number)
        oracle.trials[trial_id] = keras_tuner.engine.trial.Trial(
            oracle.hyperparameters.copy(), trial_id=trial_id, status="FAILED")
        oracle.trials[trial_id].message = "...TrialDiverged: Trial diverged: loss became nan"
        oracle.end_order.append(trial_id)
    oracle._check_consecutive_failures()  # five diverged in a row: a result each
    for number in range(5, 8):
        trial_id = str(number)
        oracle.trials[trial_id] = keras_tuner.engine.trial.Trial(
            oracle.hyperparameters.copy(), trial_id=trial_id, status="FAILED")
        oracle.trials[trial_id].message = "ValueError: a bug"
        oracle.end_order.append(trial_id)
    with pytest.raises(RuntimeError, match="consecutive failures"):
        oracle._check_consecutive_failures()


def test_non_finite_losses_and_objective_are_found():
    assert pruning.non_finite({"loss": 0.3, "val_loss": float("nan")}, "val_accuracy")[0] \
        == "val_loss"
    assert pruning.non_finite({"loss": 0.3, "val_mae": float("inf")}, "val_mae")[0] == "val_mae"
    assert pruning.non_finite({"loss": 0.3, "accuracy": 0.5}, "val_accuracy") is None


def _state(status, score, loss, message=None):
    return {"status": status, "score": score, "message": message,
            "metrics": {"metrics": {
                "loss": {"observations": [{"value": [0.7], "step": 0},
                                          {"value": [loss], "step": 1}]},
                "val_accuracy": {"observations": [{"value": [score], "step": 1}]}}}}


def test_a_diverged_trial_is_told_apart_also_from_an_older_kerasdl():
    assert pruning.DIVERGED == tuning.TrialDiverged.__name__
    # This kerasdl: FAILED by TrialDiverged; a failure for another reason is not divergence.
    assert pruning.diverged(_state("FAILED", None, 0.5, "...TrialDiverged: Trial 0 ..."))
    assert not pruning.diverged(_state("FAILED", None, 0.5, "ValueError: bad input"))
    assert pruning.diverged(_state("RUNNING", None, 0.5), {"status": "diverged"})
    # An older kerasdl: COMPLETED with a finite accuracy but a NaN loss, as in the report.
    assert pruning.diverged(_state("COMPLETED", 0.5417, float("nan")))
    assert pruning.diverged(_state("COMPLETED", float("nan"), 0.5))
    assert not pruning.diverged(_state("COMPLETED", 0.5417, 0.6))
