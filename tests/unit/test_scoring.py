"""Test-split scoring, the classic baselines and class balancing, on data made by hand: no training."""

import types

import keras
import numpy as np
import pytest
import tensorflow as tf

from kerasdl import scoring
from kerasdl.data import Splits
from kerasdl.errors import KerasdlError
from kerasdl.session import balance


def _splits(task, x, y, arrays=True, **spec):
    """Splits whose train, validation and test hold the same examples `(x, y)`."""
    data = tf.data.Dataset.from_tensor_slices((x, y))
    return Splits(data, data, data, {"task": task, **spec},
                  arrays={"train": (x, y), "test": (x, y)} if arrays else None)


def test_the_linear_baseline_fits_a_linear_target_exactly():
    x = np.random.default_rng().normal(size=(200, 3)).astype("float32")
    y = x @ np.array([3.0, -2.0, 0.5], "float32") + 1.0
    scores = scoring.baseline(_splits("regression", x, y), "regression")
    assert scores["model"] == "linear_regression"
    assert scores["mae"] < 1e-3 and scores["rmse"] < 1e-3


def test_the_logistic_baseline_separates_separable_classes():
    rng = np.random.default_rng()
    y = rng.integers(0, 2, size=300)
    x = (rng.normal(size=(300, 2)) * 0.1 + np.where(y[:, None] == 1, 5.0, -5.0)).astype("float32")
    scores = scoring.baseline(_splits("classification", x, y), "classification")
    assert scores == {"model": "logistic_regression", "accuracy": 1.0}


def test_the_forecasting_baseline_repeats_the_targets_last_value():
    windows = np.random.default_rng().normal(size=(50, 6, 3)).astype("float32")
    # The target (column 1) moves by 0.5 after each window's last step.
    target = windows[:, -1, 1:2] + 0.5
    splits = _splits("forecasting", windows, target, arrays=False, target_index=1)
    scores = scoring.baseline(splits, "forecasting")
    assert scores["model"] == "naive_last_value"
    assert scores["mae"] == pytest.approx(0.5, abs=1e-5)


def test_a_streamed_source_keeps_the_baseline_it_scored_itself():
    x, y = np.zeros((4, 2), "float32"), np.zeros(4, "float32")
    splits = _splits("regression", x, y, arrays=False)
    splits.baseline = {"model": "linear_regression", "mae": 1.5, "rmse": 2.0}
    assert scoring.baseline(splits, "regression") is splits.baseline


def test_per_class_recall_counts_each_class_and_names_an_absent_one():
    scores = np.eye(3)[[0, 1, 1, 1, 0]]  # predicted classes 0, 1, 1, 1, 0
    labels = np.array([0, 0, 1, 1, 1])  # no example of class "c"
    expected = {"a": 0.5, "b": 2 / 3, "c": None}
    assert scoring.per_class_recall(labels, scores, ["a", "b", "c"]) == pytest.approx(expected)
    # One-hot labels read the same.
    assert scoring.per_class_recall(np.eye(3)[labels], scores, ["a", "b", "c"]) \
        == pytest.approx(expected)


def _sign_classifier():
    """A classifier whose class is 1 where the first feature is positive, else 0."""
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, activation="softmax")])
    model.set_weights([np.array([[-10.0, 10.0], [0.0, 0.0]], "float32"),
                       np.zeros(2, "float32")])
    model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def test_test_scores_of_a_classifier(capfd):
    x = np.array([[1, 0], [2, 1], [-1, 0], [-3, 2], [4, 4], [-2, -2]], "float32")
    y = np.array([1, 1, 0, 1, 1, 0])  # the fourth example is misclassified
    splits = _splits("classification", x, y, class_names=["no", "yes"])
    scores = scoring.test_scores(_sign_classifier(), splits, splits.test.batch(4), recipe=None)
    assert scores["test"]["accuracy"] == pytest.approx(5 / 6)
    assert scores["per_class_recall"] == pytest.approx({"no": 1.0, "yes": 0.75})
    assert scores["baseline"]["model"] == "logistic_regression"
    assert "anomaly_roc_auc" not in scores
    assert capfd.readouterr().out == ""  # stdout is for results only


def test_anomaly_auc_ranks_the_excluded_class_by_reconstruction_error():
    # A model that reconstructs every image as black: bright images reconstruct worst.
    model = keras.Sequential([keras.Input((4, 4, 1)), keras.layers.Lambda(lambda x: x * 0.0)])
    rng = np.random.default_rng()
    labels = rng.permutation(np.arange(40) % 2)
    images = np.where(labels[:, None, None, None] == 1, 0.9, 0.1) \
        + rng.uniform(-0.05, 0.05, (40, 4, 4, 1))
    splits = _splits("reconstruction", images.astype("float32"), labels, arrays=False,
                     class_names=["dark", "bright"], excluded_classes=["bright"])
    recipe = types.SimpleNamespace(reconstruction_target=lambda batch: batch)
    assert scoring.anomaly_roc_auc(model, splits, recipe) == 1.0
    splits.spec["excluded_classes"] = ["dark"]  # the other way round ranks them last
    assert scoring.anomaly_roc_auc(model, splits, recipe) == 0.0


def _imbalanced(counts, num_classes):
    labels = np.repeat(np.arange(len(counts)), counts)
    features = np.stack([labels, np.arange(len(labels))], axis=1).astype("float32")
    return _splits("classification", features, labels, num_classes=num_classes)


def test_class_weights_give_every_present_class_the_same_total_weight():
    splits = _imbalanced([90, 10], num_classes=3)  # class 2 has no example
    weights = balance(splits, "class_weight", seed=1)
    assert weights[2] == 0.0
    assert 90 * weights[0] == pytest.approx(10 * weights[1])
    assert weights[1] > weights[0] > 0


def test_oversampling_draws_every_class_as_often_as_the_largest():
    splits = _imbalanced([30, 5], num_classes=2)
    original = {tuple(x): y for x, y in splits.train.as_numpy_iterator()}
    assert balance(splits, "oversample", seed=1) is None
    drawn = list(splits.train.as_numpy_iterator())
    assert np.bincount([y for _, y in drawn]).tolist() == [30, 30]
    # Every drawn example is one of the originals, with its own label.
    assert all(original[tuple(x)] == y for x, y in drawn)
    assert len({tuple(x) for x, y in drawn if y == 1}) == 5


def test_balance_none_leaves_the_split_and_refuses_a_regression():
    splits = _imbalanced([3, 1], num_classes=2)
    train = splits.train
    assert balance(splits, "none", seed=1) is None and balance(splits, None, seed=1) is None
    assert splits.train is train
    splits.spec["task"] = "regression"
    with pytest.raises(KerasdlError, match="`balance` needs a classification recipe; this one "
                                           "is regression"):
        balance(splits, "class_weight", seed=1)
