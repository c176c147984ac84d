"""Scoring a trained model: predictions over a split, the classic baseline, anomaly AUC."""

import contextlib
import sys

import numpy as np

from kerasdl import registry


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


def baseline_or_none(splits):
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
