"""`kerasdl compare`, its presets, and the concept recipes (perceptron, rbm, attention)."""

import json

import pandas as pd
import pytest

from conftest import assert_one_line_error
from kerasdl.compare import PRESETS


def test_the_perceptron_cannot_learn_xor_and_the_mlp_can(cli, tmp_path):
    result = cli("compare", "perceptron", "--vary", "hidden_layers=0,1", "--seeds", "2",
                 "--epochs", "60", "--output", "xor")
    assert result.exit_code == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "xor"  # after the table
    frame = pd.read_csv(tmp_path / "xor" / "comparison.csv").set_index("variant")
    assert list(frame.index) == ["hidden_layers=0", "hidden_layers=1"]
    assert (frame["seeds"] == 2).all()
    assert frame.loc["hidden_layers=0", "test_accuracy_mean"] < 0.7
    assert frame.loc["hidden_layers=1", "test_accuracy_mean"] > 0.9
    for column in ("test_accuracy_std", "seconds_mean", "recall_1_mean", "epochs_run_mean"):
        assert column in frame.columns
    # Two seeds: the median is their mean, within their range.
    accuracy = frame.loc["hidden_layers=1"]
    assert accuracy["test_accuracy_median"] == pytest.approx(accuracy["test_accuracy_mean"])
    assert (accuracy["test_accuracy_min"] <= accuracy["test_accuracy_median"]
            <= accuracy["test_accuracy_max"])
    assert (tmp_path / "xor" / "learning_curves.png").exists()
    runs = sorted(path.name for path in (tmp_path / "xor" / "runs").iterdir())
    assert runs == ["hidden_layers=0-seed1337", "hidden_layers=0-seed1338",
                    "hidden_layers=1-seed1337", "hidden_layers=1-seed1338"]
    assert (tmp_path / "xor" / "runs" / runs[0] / "plots" / "decision_boundary.png").exists()


def test_gradients_vanish_through_sigmoids_not_through_relus(cli, tmp_path):
    result = cli("compare", "perceptron", "--data", "digits64", "--vary",
                 "activation=sigmoid,relu", "--set", "hidden_layers=6", "--set", "units=32",
                 "--set", "optimizer=sgd", "--set", "learning_rate=0.05", "--epochs", "2",
                 "--gradients", "--output", "grads")
    assert result.exit_code == 0, result.stderr
    assert (tmp_path / "grads" / "gradient_norms.png").exists()

    def first_over_last_hidden(variant):
        rows = pd.read_csv(tmp_path / "grads" / "runs" / f"{variant}-seed1337" / "gradients.csv")
        rows = rows[rows["epoch"] == 0].sort_values("depth")
        assert list(rows["layer"])[:2] == ["dense1", "dense2"]
        return rows["norm"].iloc[0] / rows["norm"].iloc[-2]

    sigmoid, relu = first_over_last_hidden("activation=sigmoid"), first_over_last_hidden(
        "activation=relu")
    # Each sigmoid layer scales the gradient by at most 1/4: six of them, about 1e-3.
    assert sigmoid < 0.01 and relu > 0.1, (sigmoid, relu)


@pytest.mark.parametrize("name", list(PRESETS))
def test_every_preset_runs_through_the_cli(cli, tmp_path, name):
    preset = PRESETS[name]
    # One epoch on 100 examples: the presets' variants, data and plumbing, not their findings
    # (those are in docs/concepts.md, from `python benchmarks/concepts.py`).
    result = cli("compare", "--preset", name, "--epochs", "1", "--train-examples", "100",
                 "--json", "--output", "out")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert [row["variant"] for row in report["variants"]] == [v.label for v in preset.variants]
    frame = pd.read_csv(tmp_path / "out" / "comparison.csv")
    assert len(frame) == len(preset.variants)
    finished = frame[frame["diverged"] == 0]
    if preset.measure == "mae":
        assert (finished["test_mae_mean"] >= 0).all() and (finished["train_mae_mean"] >= 0).all()
    else:
        assert finished["test_accuracy_mean"].between(0, 1).all()
        assert finished["train_accuracy_mean"].between(0, 1).all()
    assert (tmp_path / "out" / "gradient_norms.png").exists() == preset.gradients
    if name == "loss":  # one-hot or integer labels: the same cross-entropy, the same model
        assert frame["test_accuracy_mean"].nunique() == 1
        assert abs(frame["test_loss_mean"].iloc[0] - frame["test_loss_mean"].iloc[1]) < 1e-4
    if name == "imbalance":
        assert {"recall_0_mean", "recall_1_mean"} <= set(frame.columns)


def test_class_weight_and_oversampling_raise_the_rare_class_recall(cli, tmp_path):
    result = cli("compare", "--preset", "imbalance", "--epochs", "10", "--output", "out")
    assert result.exit_code == 0, result.stderr
    recall = pd.read_csv(tmp_path / "out" / "comparison.csv").set_index("variant")["recall_1_mean"]
    assert recall["class_weight"] > recall["none"] + 0.1
    assert recall["oversample"] > recall["none"] + 0.1


def test_rbm_learns_to_reconstruct_digits_and_plots_its_filters(cli, tmp_path):
    untrained = cli("train", "rbm", "--epochs", "1", "--set", "learning_rate=0.001",
                    "--output", "untrained")
    trained = cli("train", "rbm", "--epochs", "10", "--output", "trained")
    assert untrained.exit_code == 0 and trained.exit_code == 0, trained.stderr

    def mse(run):
        return json.loads((tmp_path / run / "metrics.json").read_text())["test"]["loss"]

    assert mse("trained") < 0.5 * mse("untrained")
    assert (tmp_path / "trained" / "plots" / "filters.png").exists()
    evaluated = cli("evaluate", "trained", "--json")  # reloads the custom model
    assert evaluated.exit_code == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["loss"] == pytest.approx(mse("trained"), rel=1e-4)


def test_attention_classifies_patterns(cli, tmp_path):
    result = cli("train", "attention", "--epochs", "10", "--output", "run")
    assert result.exit_code == 0, result.stderr
    accuracy = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]["accuracy"]
    assert accuracy > 0.8


@pytest.mark.parametrize("args, code, fragment", [
    (["compare", "perceptron"], 2, "`compare` needs --vary NAME=V1,V2,... or --preset NAME"),
    (["compare"], 2, "Give a RECIPE and --vary"),
    (["compare", "perceptron", "--vary", "widht=1,2"], 2, "Unknown name in `--vary`: 'widht'"),
    (["compare", "perceptron", "--vary", "units"], 2, "`--vary` takes NAME=V1,V2,..."),
    (["compare", "perceptron", "--vary", "batch_size=8,big"], 2, "`batch_size` takes int values"),
    (["compare", "perceptron", "--vary", "units=1,2"], 2, "`units` must be an integer in [2, 256]"),
    (["compare", "--preset", "loss", "--vary", "units=4,8"], 2, "give --vary or --preset"),
    (["compare", "cnn", "--preset", "loss"], 2, "compares the perceptron recipe"),
    (["compare", "perceptron", "--vary", "balance=none,sometimes"], 2,
     "`balance` must be none, class_weight or oversample"),
    (["compare", "perceptron", "--vary", "keep_best=true,maybe"], 2,
     "`keep_best` takes boolean values. Received: keep_best=maybe"),
])
def test_bad_compare_input(cli, tmp_path, args, code, fragment):
    result = cli(*args, "--output", "out")
    assert_one_line_error(result, code, fragment)
    assert not (tmp_path / "out").exists()


def test_regularization_preset_baseline_overfits_and_each_variant_closes_the_gap(cli, tmp_path):
    # The baseline memorises its training rows (the last epoch is kept): a train-test gap
    # in MAE that weight decay, dropout and early stopping each make smaller.
    # The preset as it is (100 training rows, 100 epochs, one seed): about 4 x 10 s.
    result = cli("compare", "--preset", "regularization", "--output", "out")
    assert result.exit_code == 0, result.stderr
    frame = pd.read_csv(tmp_path / "out" / "comparison.csv").set_index("variant")
    gap = frame["gap_mae_mean"]
    assert (frame["test_mae_mean"] - frame["train_mae_mean"]).round(4).equals(gap.round(4))
    none = frame.loc["none"]
    assert none["train_mae_mean"] < 0.5 * none["test_mae_mean"], none
    for variant in ("weight_decay", "dropout", "early_stopping"):
        assert gap[variant] < 0.7 * gap["none"], gap
    # Early stopping ran fewer epochs; the others ran all of them.
    assert frame.loc["early_stopping", "epochs_run_mean"] < 100
    assert (frame.drop(index="early_stopping")["epochs_run_mean"] == 100).all()
