"""The plots in a run's `plots/` folder: its learning curves, and what shows its task's result best."""

import numpy as np
import pandas as pd

from kerasdl import plots
from kerasdl import registry
from kerasdl.registry import CLASSIFICATION
from kerasdl.scoring import predict_dataset


def write_plots(run_dir, model, spec, test_data, recipe):
    """Writes a finished run's plots into `run_dir/plots`.

    The learning curves from history.csv, the gradient norms from gradients.csv (when
    recorded), then `task_plots`.
    """
    folder = run_dir / "plots"
    plots.learning_curves(pd.read_csv(run_dir / "history.csv"), folder / "learning_curves.png")
    if (run_dir / "gradients.csv").exists():
        plots.gradient_norms(pd.read_csv(run_dir / "gradients.csv"),
                             folder / "gradient_norms.png")
    task_plots(model, spec, test_data, folder, recipe)


def task_plots(model, spec, test_data, folder, recipe):
    """Writes the plot that shows a task's result best, from the test split.

    Then the image grids the recipe's `image_grids` hook returns (learned filters,
    samples from a prior), one `<name>.png` each.
    """
    task = spec["task"]
    grids = registry.hook_of(recipe, "image_grids")
    for name, (images, title) in (grids(model) if grids is not None else {}).items():
        plots.image_grid(np.asarray(images), folder / f"{name}.png", title=title)
    if task == "generation":
        generate = registry.hook_of(recipe, "generate")
        plots.image_grid(np.asarray(generate(model, 64)), folder / "samples.png",
                         title="Generated samples")
        return
    labels, predictions = predict_dataset(model, test_data)
    if task in CLASSIFICATION:
        labels = labels.argmax(axis=-1) if labels.ndim > 1 else labels
        plots.confusion_matrix(labels, predictions.argmax(axis=-1), spec["class_names"],
                               folder / "confusion_matrix.png")
        if task == "classification" and spec.get("input_shape") == [2]:
            features = np.concatenate([np.asarray(x) for x, _ in test_data])
            plots.decision_boundary(model, features, labels, spec["class_names"],
                                    folder / "decision_boundary.png")
    elif task in ("regression", "forecasting"):
        plots.predicted_vs_actual(labels.reshape(-1), predictions.reshape(-1),
                                  spec.get("target", "target"), folder / "predictions.png")
    elif task == "reconstruction":
        plots.reconstructions(labels[:10], predictions[:10], folder / "reconstructions.png")
