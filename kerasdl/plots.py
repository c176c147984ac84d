"""Plots written into a run's `plots/` folder (matplotlib, no display needed)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(history, path):
    """Plots each metric of a history DataFrame, training next to validation."""
    metrics = [name for name in history.columns
               if name not in ("epoch", "learning_rate") and not name.startswith("val_")]
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    epochs = history["epoch"] + 1 if "epoch" in history else range(1, len(history) + 1)
    for axis, name in zip(axes[0], metrics):
        axis.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], label="validation")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    _save(figure, path)


def confusion_matrix(labels, predictions, class_names, path):
    """Plots the confusion matrix of class indices."""
    from sklearn.metrics import ConfusionMatrixDisplay

    size = max(4.0, 0.5 * len(class_names) + 2)
    figure, axis = plt.subplots(figsize=(size, size))
    ConfusionMatrixDisplay.from_predictions(
        labels, predictions, labels=list(range(len(class_names))),
        display_labels=class_names, ax=axis, colorbar=False,
        xticks_rotation="vertical" if len(class_names) > 10 else "horizontal")
    axis.set_title("Confusion matrix (test)")
    _save(figure, path)


def predicted_vs_actual(targets, predictions, name, path):
    """Scatters regression predictions against the true targets."""
    figure, axis = plt.subplots(figsize=(4.5, 4.5))
    axis.scatter(targets, predictions, s=10, alpha=0.6)
    low, high = min(targets.min(), predictions.min()), max(targets.max(), predictions.max())
    axis.plot([low, high], [low, high], color="gray", linestyle="--", linewidth=1)
    axis.set_xlabel(f"actual {name}")
    axis.set_ylabel(f"predicted {name}")
    axis.set_title("Predictions (test)")
    _save(figure, path)


def _save(figure, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
