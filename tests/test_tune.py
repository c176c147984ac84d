"""`kerasdl tune`: search, report, best run, resume, every kind of recipe, bad input."""

import json

import pytest

from conftest import assert_one_line_error
from conftest import assert_trials_complete_and_unique as _assert_complete_and_unique
from conftest import search_results as _results
from kerasdl import registry

FAST = ["--epochs", "8"]


def test_search_report_best_run_and_resume(cli, tmp_path):
    out = tmp_path / "search"
    result = cli("tune", "regression", "--max-trials", "3", *FAST, "--output", out)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip() == str(out)

    frame = _results(out)
    names = [p["name"] for p in registry.recipe_info("regression")["search_space"]]
    assert list(frame.columns[:2]) == ["trial_id", "status"]
    assert {*names, "val_mae", "best_epoch", "wall_seconds"} <= set(frame.columns)
    _assert_complete_and_unique(frame, 3, names)
    best = json.loads((out / "best_hyperparameters.json").read_text())
    assert best["val_mae"] == pytest.approx(frame["val_mae"].min())
    assert set(best["hyperparameters"]) == set(names)
    for plot in ("objective.png", "hyperparameters.png"):
        assert (out / "plots" / plot).is_file()
    kept = [p.parent.name for p in (out / "tuner").rglob("checkpoint*")]
    assert kept == [f"trial_{best['trial_id']}"], "trial checkpoints pile up"

    # The best configuration, retrained on train + validation, is an ordinary run.
    config = json.loads((out / "best" / "config.json").read_text())
    assert config["status"] == "completed" and config["settings"]["merge_validation"]
    assert {k: config["hyperparameters"][k] for k in names} == best["hyperparameters"]
    scores = cli("evaluate", out / "best", "--json")
    assert scores.exit_code == 0 and json.loads(scores.stdout)["split"] == "test"

    shown = cli("show", out)
    assert shown.exit_code == 0
    assert "3 of 3 trials completed" in shown.stdout
    assert shown.stdout.splitlines()[1].split()[:2] == ["trial_id", "val_mae"]

    # Re-running continues: nothing finished runs again, the best run is kept.
    stamps = {p: p.stat().st_mtime_ns for p in (out / "tuner").glob("trial_*/trial.json")}
    model_stamp = (out / "best" / "model.keras").stat().st_mtime_ns
    again = cli("tune", "regression", "--max-trials", "3", *FAST, "--output", out)
    assert again.exit_code == 0, again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    assert (out / "best" / "model.keras").stat().st_mtime_ns == model_stamp

    # More trials continue the same search.
    more = cli("tune", "regression", "--max-trials", "5", *FAST, "--output", out)
    assert more.exit_code == 0, more.stderr
    _assert_complete_and_unique(_results(out), 5, names)
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps

    # A different search is refused, naming the difference; --overwrite starts afresh.
    changed = cli("tune", "regression", "--max-trials", "5", "--epochs", "9", "--output", out)
    assert_one_line_error(changed, 2, "holds a different search", "settings.epochs",
                          "--overwrite")
    assert len(_results(out)) == 5
    fresh = cli("tune", "regression", "--max-trials", "2", "--epochs", "9", "--output", out,
                "--overwrite", "--set", "loss=mse", "--no-retrain")
    assert fresh.exit_code == 0, fresh.stderr
    frame = _results(out)
    assert len(frame) == 2 and (frame["loss"] == "mse").all()
    assert not (out / "best").exists()


@pytest.mark.parametrize("recipe,extra", [
    ("cnn", ["--set", "conv_blocks=1"]),
    ("lstm", []),
    ("autoencoder", ["--set", "variant=variational"]),
    ("gan", []),
])
def test_every_kind_of_recipe_can_be_tuned(cli, tmp_path, recipe, extra):
    out = tmp_path / "search"
    result = cli("tune", recipe, "--max-trials", "2", "--epochs", "2", "--output", out, *extra)
    assert result.exit_code == 0, result.stderr
    frame = _results(out)
    assert len(frame) == 2 and (frame["status"] == "COMPLETED").all()
    objective = json.loads((out / "search.json").read_text())["objective"]["name"]
    assert frame[objective].notna().all()
    assert (out / "best" / "model.keras").is_file()


def test_tune_bad_inputs(cli, tmp_path):
    assert_one_line_error(cli("tune", "regression", "--tuner", "genetic"), 2,
                          "'genetic' is not one of 'random', 'bayesian', 'hyperband', 'grid'")
    assert_one_line_error(cli("tune", "regression", "--max-trials", "0"), 2,
                          "`max_trials` must be a positive integer")
    assert_one_line_error(cli("tune", "regression", "--set", "units=3"), 2,
                          "`units` must be an integer in [16, 256]")
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = cli("tune", "regression", "--workers", "1", "--port", port,
                     "--output", tmp_path / "s")
    assert_one_line_error(result, 2, f"Port {port} on 127.0.0.1 is busy")
    assert not (tmp_path / "runs").exists()


def test_a_best_configuration_that_diverges_when_retrained_gives_way_to_the_next(
        cli, tmp_path, monkeypatch):
    """The top trial's configuration turns NaN on train + validation: the next best is
    retrained (a note says so), and a re-run of the search does not try the first again."""
    from kerasdl import training
    from kerasdl import tuning
    from kerasdl.errors import NonFiniteLoss

    out = tmp_path / "search"
    stable = ("--set", "learning_rate=0.01", "--set", "optimizer=adam")
    searched = cli("tune", "perceptron", "--max-trials", "2", "--epochs", "2", *stable,
                   "--output", out, "--no-retrain")
    assert searched.exit_code == 0, searched.stderr
    frame, meta = tuning.results_frame(out)
    ranked = tuning.ranked_trials(frame, meta)
    assert len(ranked) == 2
    first, second = ranked[0], ranked[1]
    real_train, tried = training.train, []

    def train_where_the_first_diverges(recipe, settings, **kwargs):
        tried.append(dict(settings["set"]))
        if settings["set"] == first["hyperparameters"]:
            # What training raises when the loss turns NaN (the real check is StopOnNaN's).
            raise NonFiniteLoss("The loss became nan in epoch 1 (batch 1); stopped")
        return real_train(recipe, settings, **kwargs)

    monkeypatch.setattr(training, "train", train_where_the_first_diverges)
    run_dir = tuning.retrain_best(out, {**meta["settings"], "set": {}})
    config = json.loads((run_dir / "config.json").read_text())
    assert config["status"] == "completed"
    assert config["search_trial"] == second["trial_id"]
    assert config["passed_over"] == [first["trial_id"]]
    assert {k: config["hyperparameters"][k] for k in second["hyperparameters"]} \
        == second["hyperparameters"]
    tried.clear()
    assert tuning.retrain_best(out, {**meta["settings"], "set": {}}) == run_dir
    assert tried == [], "a re-run retrained again"
