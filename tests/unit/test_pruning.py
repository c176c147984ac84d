"""The median rule of `tune --prune` on synthetic objective curves (no TensorFlow)."""

import math

import pytest

from kerasdl.pruning import check_settings
from kerasdl.pruning import should_prune

# Three completed trials' val_accuracy by epoch: the median at epoch 2 is 0.6, at 3 it is 0.7.
OTHERS = [{1: 0.3, 2: 0.5, 3: 0.6}, {1: 0.4, 2: 0.6, 3: 0.7}, {1: 0.5, 2: 0.7, 3: 0.8}]


def test_a_trial_below_the_median_stops_one_above_goes_on():
    assert should_prune({1: 0.2, 2: 0.55}, OTHERS, 2, "max", warmup_epochs=1, startup_trials=2)
    assert not should_prune({1: 0.2, 2: 0.65}, OTHERS, 2, "max", warmup_epochs=1,
                            startup_trials=2)
    # Equal to the median is not worse.
    assert not should_prune({1: 0.2, 2: 0.6}, OTHERS, 2, "max", warmup_epochs=1,
                            startup_trials=2)


def test_the_trials_best_so_far_is_compared_as_optunas_median_pruner_does():
    # It dipped at epoch 3 (0.65 < 0.7) but reached 0.75 at epoch 2: it goes on.
    assert not should_prune({1: 0.3, 2: 0.75, 3: 0.65}, OTHERS, 3, "max", 0, 1)
    assert should_prune({1: 0.3, 2: 0.5, 3: 0.65}, OTHERS, 3, "max", 0, 1)


def test_minimised_objectives_stop_above_the_median():
    losses = [{1: 2.0, 2: 1.0}, {1: 3.0, 2: 1.4}, {1: 2.5, 2: 1.2}]  # median at 2: 1.2
    assert should_prune({1: 2.8, 2: 1.3}, losses, 2, "min", 1, 2)
    assert not should_prune({1: 2.8, 2: 1.1}, losses, 2, "min", 1, 2)


def test_no_decision_during_the_warm_up_or_before_enough_trials():
    awful = {1: 0.0, 2: 0.0, 3: 0.0}
    for epoch in (1, 2):
        assert not should_prune(awful, OTHERS, epoch, "max", warmup_epochs=2, startup_trials=1)
    assert should_prune(awful, OTHERS, 3, "max", warmup_epochs=2, startup_trials=1)
    assert not should_prune(awful, OTHERS, 3, "max", warmup_epochs=0, startup_trials=4)
    assert not should_prune(awful, [], 3, "max", warmup_epochs=0, startup_trials=0)
    # Only trials that reached this epoch count towards the start-up trials.
    short = [{1: 0.9}, {1: 0.9}, {1: 0.9, 2: 0.9}]
    assert not should_prune({1: 0.1, 2: 0.1}, short, 2, "max", 0, 2)
    assert should_prune({1: 0.1, 2: 0.1}, short, 2, "max", 0, 1)


def test_a_nan_curve_stops_past_the_warm_up_and_nan_others_are_ignored():
    assert should_prune({1: None, 2: None}, OTHERS, 2, "max", 1, 2)
    assert not should_prune({1: None}, OTHERS, 1, "max", 1, 2)
    with_nan = [*OTHERS[:2], {1: 0.5, 2: math.nan}]  # the median of 0.5 and 0.6 is 0.55
    assert should_prune({1: 0.1, 2: 0.54}, with_nan, 2, "max", 1, 2)
    assert not should_prune({1: 0.1, 2: 0.56}, with_nan, 2, "max", 1, 2)
    assert not should_prune({1: 0.1, 2: 0.56}, with_nan, 2, "max", 1, 3)


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="--prune-warmup-epochs"):
        check_settings(-1, 2)
    with pytest.raises(ValueError, match="--prune-startup-trials"):
        check_settings(1, 1.5)
    with pytest.raises(ValueError, match="direction"):
        should_prune({1: 0.5}, OTHERS, 1, "up", 0, 0)
    check_settings(0, 0)


def test_a_trial_that_ran_its_last_epoch_is_complete_not_pruned():
    # Below the median at its last epoch: stopping saves nothing, so it counts as completed.
    curve = {1: 0.3, 2: 0.5, 3: 0.6}
    assert should_prune(curve, OTHERS, 3, "max", 0, 1)
    assert not should_prune(curve, OTHERS, 3, "max", 0, 1, final_epoch=3)
    assert should_prune(curve, OTHERS, 3, "max", 0, 1, final_epoch=6)
