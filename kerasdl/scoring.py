"""Scoring a trained model: its metrics on a split, the classic baseline, anomaly AUC.

`test_scores` is what a run records in metrics.json about its test split; `evaluate_metrics`
is the one way `kerasdl train`, `evaluate` and `compare` turn `model.evaluate` into figures.
"""

import contextlib
import sys

import numpy as np

from kerasdl import registry
from kerasdl.registry import CLASSIFICATION


def evaluate_metrics(model, batches):
    """Returns the model's compiled loss and metrics over `batches`, as floats by name.

    Keras's progress output goes to stderr: stdout is kept for results.
    """
    with contextlib.redirect_stdout(sys.stderr):
        scores = model.evaluate(batches, return_dict=True, verbose=0)
    return {name: float(value) for name, value in scores.items()}


def test_scores(model, splits, test_data, recipe):
    """The scores a run records about its test split (`metrics.json`).

    Args:
        test_data: the test split, batched by the recipe's pipeline.

    Returns:
        A dict with `test` (the compiled metrics), `baseline` (a classic model's, or None),
        and for their tasks `anomaly_roc_auc` (a reconstruction run with excluded classes)
        and `per_class_recall` (a classifier: class name to recall, None for a class
        absent from the test split).
    """
    scores = {"test": evaluate_metrics(model, test_data), "baseline": _baseline_or_none(splits)}
    if splits.spec["task"] == "reconstruction" and splits.spec.get("excluded_classes"):
        scores["anomaly_roc_auc"] = anomaly_roc_auc(model, splits, recipe)
    if splits.spec["task"] in CLASSIFICATION:
        labels, predictions = predict_dataset(model, test_data)
        scores["per_class_recall"] = per_class_recall(labels, predictions,
                                                      splits.spec["class_names"])
    return scores


def per_class_recall(labels, predictions, class_names):
    """Each class's recall: the share of its examples predicted as it.

    Args:
        labels: class indices, or one-hot rows.
        predictions: one row of class scores per example.

    Returns:
        Class name to recall; None for a class without examples.
    """
    labels = labels.argmax(axis=-1) if labels.ndim > 1 else labels
    predicted = predictions.argmax(axis=-1)
    return {name: float(np.mean(predicted[labels == i] == i)) if np.any(labels == i) else None
            for i, name in enumerate(class_names)}


def predict_dataset(model, dataset):
    """Returns `(labels, predictions)` over a batched dataset of `(x, y)` pairs, in order.

    `model.predict` (not `predict_on_batch`) so that a model built under a
    tf.distribute strategy predicts every example of each batch.
    """
    labels = np.concatenate([np.asarray(y) for _, y in dataset])
    with contextlib.redirect_stdout(sys.stderr):
        predictions = np.asarray(model.predict(dataset.map(lambda x, y: x), verbose=0))
    return labels, predictions


def baseline(splits, task):
    """Scores a classic model on the same split, for comparison.

    Tabular data: linear or logistic regression (scikit-learn); forecasting: the naive
    forecast that repeats the last observed value of the target.
    """
    if task == "forecasting":
        index = splits.spec["target_index"]
        errors = [np.abs(y.numpy() - x.numpy()[:, -1, index:index + 1])
                  for x, y in splits.test.batch(1024)]
        return {"model": "naive_last_value", "mae": float(np.concatenate(errors).mean())}
    if splits.arrays is None:
        return splits.baseline  # a streamed source scores its own (or None)
    (x_train, y_train), (x_test, y_test) = splits.arrays["train"], splits.arrays["test"]
    if task == "regression":
        from sklearn.linear_model import LinearRegression

        predictions = LinearRegression().fit(x_train, y_train).predict(x_test)
        return {"model": "linear_regression",
                "mae": float(np.mean(np.abs(predictions - y_test))),
                "rmse": float(np.sqrt(np.mean((predictions - y_test) ** 2)))}
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_train)
    classifier = LogisticRegression(max_iter=2000).fit(scaler.transform(x_train), y_train)
    return {"model": "logistic_regression",
            "accuracy": float(classifier.score(scaler.transform(x_test), y_test))}


def _baseline_or_none(splits):
    try:
        return baseline(splits, splits.spec["task"])
    except ValueError as error:  # data a classic model cannot fit (overflowing values)
        print(f"No baseline: {str(error).splitlines()[0]}", file=sys.stderr)
        return None


def anomaly_roc_auc(model, splits, recipe):
    """ROC AUC of the reconstruction error at telling the excluded classes from the rest.

    Scored on the test split, which holds every class; 1.0 ranks every example of an
    excluded class above every other example. The error is measured against the
    recipe's declared `reconstruction_target`.
    """
    target = registry.hook_of(recipe, "reconstruction_target")
    from sklearn.metrics import roc_auc_score

    excluded = [splits.spec["class_names"].index(name) for name in splits.spec["excluded_classes"]]
    errors, labels = [], []
    for x, y in splits.test.batch(256):
        # `predict`, not `predict_on_batch`: every example under a tf.distribute strategy.
        outputs = np.asarray(model.predict(x, batch_size=256, verbose=0))
        expected = np.asarray(target(x.numpy()))
        errors.append(np.square(outputs - expected).reshape(len(x), -1).mean(axis=1))
        labels.append(np.isin(y.numpy(), excluded))
    return float(roc_auc_score(np.concatenate(labels), np.concatenate(errors)))
