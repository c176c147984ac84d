"""Issue 19 item 6: a search with several objectives reports its Pareto front.

A small real random search of the perceptron on XOR (3 trials of 1 epoch) with
`--objective val_accuracy --objective params:min --objective latency`: the recorded
parameter counts are those of the rebuilt models, and the front is recomputed from the
definition of dominance, not read back from strings.
"""

import json

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from conftest import assert_one_line_error
from conftest import run_kerasdl

STABLE = ["--set", "learning_rate=0.01", "--set", "optimizer=adam"]
ARGS = ["perceptron", "--tuner", "random", "--epochs", "1", "--no-retrain", *STABLE,
        "--objective", "val_accuracy", "--objective", "params:min", "--objective", "latency"]


def _tune(out, *args):
    done = run_kerasdl("tune", *args, "--output", out, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip() == str(out)
    return pd.read_csv(out / "results.csv", dtype={"trial_id": str})


def _dominated(point, others, signs):
    """Whether another point is at least as good everywhere and better somewhere."""
    for other in others:
        at_least = all(s * o <= s * p for s, o, p in zip(signs, other, point))
        if at_least and any(s * o < s * p for s, o, p in zip(signs, other, point)):
            return True
    return False


def _rebuilt_params(out, trial_id):
    from kerasdl import registry
    from kerasdl.session import load_splits

    meta = json.loads((out / "search.json").read_text())
    recipe = registry.load_recipe(meta["recipe"])
    splits = load_splits(recipe, meta["settings"])
    state = json.loads((out / "tuner" / f"trial_{trial_id}" / "trial.json").read_text())
    hp = keras_tuner.HyperParameters.from_config(state["hyperparameters"])
    keras.backend.clear_session()
    return recipe.build_model(hp, splits.spec).count_params()


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    out = tmp_path_factory.mktemp("pareto") / "search"
    return out, _tune(out, *ARGS, "--max-trials", "3")


def test_params_are_the_rebuilt_models_and_the_front_is_non_dominated(search):
    out, frame = search
    assert {"val_accuracy", "params", "latency_ms", "pareto"} <= set(frame.columns)
    finished = frame[frame["status"] == "COMPLETED"]
    assert len(finished) >= 2, frame  # a stable learning rate: at most one diverges
    for _, row in finished.iterrows():
        assert row["params"] == _rebuilt_params(out, row["trial_id"])
        assert np.isfinite(row["latency_ms"]) and row["latency_ms"] > 0
    # The front, recomputed: a finished trial is on it iff no other dominates it.
    points = finished[["val_accuracy", "params", "latency_ms"]].to_numpy(float)
    signs = (-1, 1, 1)  # accuracy up, parameters and latency down
    expected = [not _dominated(p, np.delete(points, i, axis=0), signs)
                for i, p in enumerate(points)]
    assert list(finished["pareto"].astype(bool)) == expected
    assert any(expected)
    assert not frame[frame["status"] != "COMPLETED"]["pareto"].astype(bool).any()
    # pareto.csv: the front, best accuracy first; show prints it and gives it in --json.
    front = pd.read_csv(out / "pareto.csv", dtype={"trial_id": str})
    on_front = finished[finished["pareto"].astype(bool)]
    assert sorted(front["trial_id"]) == sorted(on_front["trial_id"])
    assert list(front["val_accuracy"]) == sorted(front["val_accuracy"], reverse=True)
    shown = run_kerasdl("show", out, "--json")
    assert shown.returncode == 0, shown.stderr
    listed = json.loads(shown.stdout)["pareto"]
    assert [t["trial_id"] for t in listed] == list(front["trial_id"])
    assert [t["params"] for t in listed] == list(front["params"])
    table = run_kerasdl("show", out).stdout
    assert "Pareto front of" in table and "params min" in table


def test_resume_keeps_the_measures_and_a_changed_objective_list_is_refused(search):
    out, frame = search
    again = _tune(out, *ARGS, "--max-trials", "4")
    assert len(again) == 4
    kept = again.set_index("trial_id").loc[frame["trial_id"]]
    assert list(kept["params"].astype("Int64")) == list(frame["params"].astype("Int64"))
    new = again[~again["trial_id"].isin(frame["trial_id"])].iloc[0]
    if new["status"] == "COMPLETED":
        assert new["params"] == _rebuilt_params(out, new["trial_id"])
    refused = run_kerasdl("tune", *ARGS[:-4], "--max-trials", "4", "--output", out)
    assert_one_line_error(refused, 2, "holds a different search", "objectives")


def test_a_metric_the_trials_do_not_log_is_refused_after_the_first_epoch(tmp_path):
    out = tmp_path / "typo"
    done = run_kerasdl("tune", "perceptron", "--max-trials", "2", "--epochs", "1",
                       "--no-retrain", *STABLE, "--objective", "val_accuracy",
                       "--objective", "val_los", "--output", out)
    line = assert_one_line_error(done, 2, "`--objective val_los` is not a metric the trials "
                                 "log", "val_loss", "params, latency")
    assert "--overwrite" in line
    assert not (out / "results.csv").exists()
