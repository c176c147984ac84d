"""Plots written into a run's `plots/` folder (matplotlib, no display needed)."""

from pathlib import Path

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def learning_curves(history, path):
    """Plots each metric of a history DataFrame, training next to validation."""
    metrics = [name for name in history.columns
               if name not in ("epoch", "learning_rate", "trainable_params")
               and not name.startswith("val_")]
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.6), squeeze=False)
    epochs = history["epoch"] + 1 if "epoch" in history else range(1, len(history) + 1)
    for axis, name in zip(axes[0], metrics):
        axis.plot(epochs, history[name], label="train")
        if f"val_{name}" in history:
            axis.plot(epochs, history[f"val_{name}"], label="validation")
        for boundary in phase_boundaries(history):
            axis.axvline(boundary + 0.5, color="grey", linestyle="--", linewidth=1)
            axis.annotate("fine-tuning", (boundary + 0.5, 1), xycoords=("data", "axes fraction"),
                          xytext=(3, -12), textcoords="offset points", fontsize=8, color="grey")
        axis.set_title(name)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
        axis.legend()
    _save(figure, path)


def phase_boundaries(history):
    """The epochs (1-based) after which the number of trainable parameters changed.

    A fine-tuning recipe unfreezes part of its base there: phase 2 begins.
    """
    if "trainable_params" not in history:
        return []
    counts = history["trainable_params"].to_numpy()
    epochs = (history["epoch"] + 1).to_numpy() if "epoch" in history else range(1, len(counts) + 1)
    return [int(epochs[i - 1]) for i in range(1, len(counts)) if counts[i] != counts[i - 1]]


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


def reconstructions(images, outputs, path):
    """Shows images (top row) above their reconstructions (bottom row); values in [0, 1]."""
    count = len(images)
    figure, axes = plt.subplots(2, count, figsize=(1.2 * count, 2.8), squeeze=False)
    for column in range(count):
        for row, batch in enumerate((images, outputs)):
            _show(axes[row][column], batch[column])
    axes[0][0].set_title("input", loc="left", fontsize=9)
    axes[1][0].set_title("reconstruction", loc="left", fontsize=9)
    _save(figure, path)


def decision_boundary(model, features, labels, class_names, path):
    """Colours the plane by the predicted class of 2-feature data; test points on top."""
    low, high = features.min(axis=0) - 0.3, features.max(axis=0) + 0.3
    xx, yy = np.meshgrid(np.linspace(low[0], high[0], 200), np.linspace(low[1], high[1], 200))
    grid = np.stack([xx.ravel(), yy.ravel()], axis=1).astype("float32")
    predicted = np.asarray(model.predict(grid, batch_size=4096, verbose=0)).argmax(axis=-1)
    figure, axis = plt.subplots(figsize=(4.5, 4.2))
    axis.contourf(xx, yy, predicted.reshape(xx.shape), alpha=0.3, cmap="coolwarm",
                  levels=np.arange(len(class_names) + 1) - 0.5)
    scatter = axis.scatter(features[:, 0], features[:, 1], c=labels, cmap="coolwarm",
                           edgecolors="k", s=14, vmin=0, vmax=len(class_names) - 1)
    axis.legend(*scatter.legend_elements(), title="class", fontsize=8)
    axis.set_title("Decision boundary (test points)")
    _save(figure, path)


def gradient_norms(frame, path, title="Gradient norm by layer"):
    """Plots each layer's gradient norm per epoch (log scale), from GradientNorms rows."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    for layer, rows in frame.groupby("depth"):
        axes[0].plot(rows["epoch"] + 1, rows["norm"], label=f"{layer}: {rows['layer'].iloc[0]}")
    if (frame["norm"] > 0).any():
        axes[0].set_yscale("log")
    axes[0].set_xlabel("epoch")
    axes[0].set_title("per epoch")
    axes[0].legend(fontsize=7)
    for epoch in sorted({frame["epoch"].min(), frame["epoch"].max()}):
        rows = frame[frame["epoch"] == epoch]
        axes[1].plot(rows["depth"], rows["norm"], marker="o", label=f"epoch {epoch + 1}")
    if (frame["norm"] > 0).any():
        axes[1].set_yscale("log")
    axes[1].set_xlabel("layer depth (1 = nearest the input)")
    axes[1].set_title("by depth")
    axes[1].legend(fontsize=8)
    figure.suptitle(title)
    _save(figure, path)


def compare_curves(histories, path):
    """Overlays the variants' learning curves: validation (solid) and training (dotted)."""
    metrics = []
    for history in histories.values():
        metrics += [name for name in history.columns if name not in metrics
                    and name not in ("learning_rate", "trainable_params")
                    and not name.startswith("val_")]
    if not metrics:
        return
    figure, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 3.8), squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for axis, name in zip(axes[0], metrics):
        for index, (label, history) in enumerate(histories.items()):
            colour = colours[index % len(colours)]
            epochs = np.arange(1, len(history) + 1)
            if name in history:
                axis.plot(epochs, history[name], linestyle=":", color=colour)
            if f"val_{name}" in history:
                axis.plot(epochs, history[f"val_{name}"], color=colour, label=label)
        axis.set_title(f"{name} (validation solid, training dotted)", fontsize=9)
        axis.set_xlabel("epoch")
        if name == "loss":
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    _save(figure, path)


def compare_gradients(frames, path):
    """Each variant's gradient norm by layer depth, after the first and the last epoch."""
    figure, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
    for label, frame in frames.items():
        for axis, epoch in zip(axes, (frame["epoch"].min(), frame["epoch"].max())):
            rows = frame[frame["epoch"] == epoch].sort_values("depth")
            axis.plot(rows["depth"], rows["norm"], marker="o", label=label)
            axis.set_title(f"after epoch {epoch + 1}")
    positive = any((frame["norm"] > 0).any() for frame in frames.values())
    for axis in axes:
        if positive:  # all-zero gradients (zero initialization) cannot be log-scaled
            axis.set_yscale("log")
        axis.set_xlabel("layer depth (1 = nearest the input)")
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    axes[0].set_ylabel("gradient norm")
    _save(figure, path)


def image_grid(images, path, title=None, columns=8):
    """Shows images in [0, 1] as a grid."""
    rows = -(-len(images) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(1.2 * columns, 1.2 * rows),
                                squeeze=False)
    for index, axis in enumerate(axes.flat):
        if index < len(images):
            _show(axis, images[index])
        else:
            axis.axis("off")
    if title:
        figure.suptitle(title)
    _save(figure, path)


def search_objective(frame, objective, ascending, path):
    """Plots each completed trial's objective and the best so far, in trial order."""
    frame = frame.sort_values("trial_id")
    values = frame[objective].astype(float).to_numpy()
    best = np.minimum.accumulate(values) if ascending else np.maximum.accumulate(values)
    figure, axis = plt.subplots(figsize=(6, 3.6))
    axis.scatter(range(1, len(values) + 1), values, label="trial", s=18)
    axis.step(range(1, len(values) + 1), best, where="post", label="best so far", color="C1")
    axis.set_xlabel("trial")
    axis.set_ylabel(objective)
    axis.grid(alpha=0.3)
    axis.legend()
    _save(figure, path)


def search_hyperparameters(frame, names, objective, path):
    """Plots the objective against each hyperparameter, one panel each."""
    if not names:
        return
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows),
                                squeeze=False)
    for axis, name in zip(axes.flat, names):
        values = frame[name]
        if values.dtype.kind in "if" and values.nunique() > 2:
            axis.scatter(values.astype(float), frame[objective].astype(float), s=18)
            if values.min() > 0 and values.max() / values.min() >= 100:
                axis.set_xscale("log")
        else:
            labels = [str(v) for v in values]
            categories = sorted(set(labels))
            axis.scatter([categories.index(v) for v in labels], frame[objective].astype(float), s=18)
            axis.set_xticks(range(len(categories)), categories)
        axis.set_xlabel(name)
        axis.set_ylabel(objective)
        axis.grid(alpha=0.3)
    for axis in list(axes.flat)[len(names):]:
        axis.axis("off")
    _save(figure, path)


def _show(axis, image):
    image = image.squeeze(-1) if image.shape[-1] == 1 else image
    axis.imshow(image.clip(0, 1), cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=1)
    axis.axis("off")


def _save(figure, path):
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
