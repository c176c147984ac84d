"""`kerasdl train`: accuracy targets, the run directory, reproducibility, settings."""

import json
import re

import pandas as pd
import pytest

from kerasdl import registry


def _stated(name, pattern):
    """Reads a figure from a recipe header's `Result:` line."""
    result = registry.recipe_info(name)["doc"].split("Result:")[1].split("\n\n")[0]
    return float(re.search(pattern, result).group(1))


def _metrics(run):
    return json.loads((run / "metrics.json").read_text())


def test_cnn_reaches_97_percent_on_digits_with_defaults(cli, tmp_path):
    result = cli("train", "cnn", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    run = tmp_path / "run"
    assert result.stdout.strip() == str(run)
    metrics = _metrics(run)
    assert metrics["test"]["accuracy"] >= 0.97
    # The header states the median of 3 seeds (0.986-0.997 across them); a band that
    # holds for any seed, not one seed's figure.
    assert metrics["test"]["accuracy"] == pytest.approx(
        _stated("cnn", r"([\d.]+) test accuracy"), abs=0.015)
    assert metrics["best_epoch"] is not None and metrics["monitor"] == "val_accuracy"

    # The run directory as DESIGN.md describes it.
    for name in ("config.json", "model.keras", "history.csv", "metrics.json",
                 "plots/learning_curves.png", "plots/confusion_matrix.png"):
        assert (run / name).is_file(), name
    assert any((run / "tensorboard").rglob("events.out.tfevents*"))
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"] == "cnn" and config["status"] == "completed"
    assert config["settings"]["seed"] == 1337 and config["settings"]["data"] == "digits"
    assert config["hyperparameters"]["filters"] == 32
    assert config["spec"]["input_shape"] == [8, 8, 1]
    assert {"tensorflow", "keras", "keras-tuner"} <= set(config["versions"])
    history = pd.read_csv(run / "history.csv")
    assert len(history) == 40 and {"accuracy", "val_accuracy", "loss"} <= set(history.columns)

    # evaluate on the run's own test split gives the metrics the run recorded.
    evaluated = cli("evaluate", run, "--json")
    assert evaluated.exit_code == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout)
    assert scores["split"] == "test" and scores["examples"] == 360
    assert scores["accuracy"] == pytest.approx(metrics["test"]["accuracy"], abs=1e-6)


def test_regression_beats_linear_baseline(cli, tmp_path):
    result = cli("train", "regression", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    metrics = _metrics(tmp_path / "run")
    assert metrics["baseline"]["model"] == "linear_regression"
    assert metrics["test"]["mae"] < metrics["baseline"]["mae"]
    assert metrics["test"]["mae"] == pytest.approx(
        _stated("regression", r"([\d.]+) test MAE"), abs=0.05)
    assert metrics["baseline"]["mae"] == pytest.approx(
        _stated("regression", r"linear regression on the same split: ([\d.]+)"), abs=0.01)
    assert (tmp_path / "run" / "plots" / "predictions.png").is_file()


@pytest.mark.parametrize("recipe,args", [
    ("regression", ["--epochs", "5"]),
    ("cnn", ["--epochs", "2", "--set", "augment=true", "--set", "conv_blocks=1"]),
])
def test_same_seed_gives_identical_metrics(cli, tmp_path, recipe, args):
    scores = []
    for name in ("first", "second"):
        result = cli("train", recipe, *args, "--seed", 7, "--output", tmp_path / name)
        assert result.exit_code == 0, result.stderr
        scores.append(_metrics(tmp_path / name)["test"])
    assert scores[0] == scores[1]
    other = cli("train", recipe, *args, "--seed", 8, "--output", tmp_path / "other")
    assert other.exit_code == 0
    assert _metrics(tmp_path / "other")["test"] != scores[0]


def test_default_output_never_overwrites_an_earlier_run(cli, tmp_path):
    for _ in range(2):
        assert cli("train", "regression", "--epochs", "1").exit_code == 0
    runs = sorted((tmp_path / "runs" / "regression").iterdir())
    assert len(runs) == 2 and all((run / "model.keras").is_file() for run in runs)


def test_set_and_config_file_with_command_line_winning(cli, tmp_path):
    config = tmp_path / "settings.yaml"
    config.write_text("epochs: 3\nbatch_size: 16\nset:\n  units: 32\n  activation: tanh\n")
    result = cli("train", "regression", "--config", config, "--epochs", "2",
                 "--set", "units=48", "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["settings"]["epochs"] == 2 and saved["settings"]["batch_size"] == 16
    assert saved["hyperparameters"]["units"] == 48
    assert saved["hyperparameters"]["activation"] == "tanh"
    assert len(pd.read_csv(tmp_path / "run" / "history.csv")) == 2
    defaults = {p["name"]: p["default"] for p in registry.recipe_info("regression")["search_space"]}
    assert saved["hyperparameters"]["dropout_rate"] == defaults["dropout_rate"]  # untouched


def test_json_config_file(cli, tmp_path):
    config = tmp_path / "settings.json"
    config.write_text(json.dumps({"epochs": 1, "set": {"num_layers": 1}}))
    result = cli("train", "regression", "--config", config, "--output", tmp_path / "run")
    assert result.exit_code == 0, result.stderr
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["hyperparameters"]["num_layers"] == 1 and saved["settings"]["epochs"] == 1
