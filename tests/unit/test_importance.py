"""Hyperparameter importance of `kerasdl show SEARCH_DIR` on made-up trials."""

import numpy as np
import pandas as pd
import pytest

from kerasdl.importance import importance


def test_the_hyperparameter_that_drives_the_objective_ranks_first():
    rng = np.random.default_rng(0)
    rate = rng.uniform(1e-4, 1e-2, 30)
    frame = pd.DataFrame({"learning_rate": rate, "units": rng.choice([16, 32], 30),
                          "augment": rng.choice([True, False], 30)})
    frame["val_accuracy"] = 0.5 + 40 * rate + rng.normal(0, 0.01, 30)
    shares = importance(frame, ["learning_rate", "units", "augment"], "val_accuracy")
    assert [name for name, _ in shares][0] == "learning_rate"
    assert shares[0][1] > 0.6 and all(share < 0.2 for _, share in shares[1:])


def test_a_choice_that_explains_everything_has_share_one_and_constants_zero():
    frame = pd.DataFrame({"optimizer": ["adam", "sgd"] * 3, "units": [32] * 6,
                          "val_loss": [0.1, 0.9] * 3})
    assert importance(frame, ["optimizer", "units", "missing"], "val_loss") == [
        ("optimizer", pytest.approx(1.0)), ("units", 0.0)]


def test_too_few_trials_or_a_flat_objective_give_nothing():
    two = pd.DataFrame({"units": [1, 2], "val_loss": [0.1, 0.2]})
    assert importance(two, ["units"], "val_loss") == []
    flat = pd.DataFrame({"units": [1, 2, 3], "val_loss": [0.1, 0.1, 0.1]})
    assert importance(flat, ["units"], "val_loss") == []
    unscored = pd.DataFrame({"units": [1, 2, 3], "val_loss": [None, 0.1, 0.2]})
    assert importance(unscored, ["units"], "val_loss") == []


def test_a_hyperparameter_whose_every_trial_is_a_group_of_its_own_is_not_ranked():
    # 3 trials: a number in 3 bins, and a choice never repeated, would "explain" all.
    three = pd.DataFrame({"learning_rate": [0.1, 0.01, 0.001], "units": [16, 32, 64],
                          "optimizer": ["adam", "adam", "sgd"], "val_loss": [0.3, 0.1, 0.2]})
    shares = importance(three, ["learning_rate", "units", "optimizer"], "val_loss")
    # adam's two trials average 0.2, as sgd's one does: the choice explains nothing.
    assert shares == [("optimizer", pytest.approx(0.0))]
    # With repeats, every hyperparameter is ranked again.
    six = pd.concat([three, three.assign(val_loss=[0.35, 0.15, 0.25])], ignore_index=True)
    assert {name for name, _ in importance(six, ["units", "optimizer"], "val_loss")} == {
        "units", "optimizer"}
