"""The Keras callbacks a run trains with.

Crash-safe epoch backups (`AtomicBackupAndRestore`), the best epoch kept across `--resume`
(`KeepBest`, by the metric `monitored` names), history.csv (`HistoryLogger`), the stop at a
NaN loss (`StopOnNaN`), per-layer gradient norms (`GradientNorms`) and generated samples
(`SampleGrid`).
"""

import json
import os
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasdl import diskspace
from kerasdl import plots
from kerasdl import runs
from kerasdl.errors import NonFiniteLoss


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """BackupAndRestore whose backups are never half-written, and that knows phases.

    Keras writes the weights and the epoch counter in place, so a SIGKILL during the
    write leaves a backup that cannot be loaded (seen in this project's kill test:
    "file signature not found"). Here both go to temporary files renamed into place,
    weights first: a kill between the two renames repeats one epoch, never corrupts.

    A recipe may call `fit` more than once (fine-tuning: the head on a frozen base,
    then the top of the base). The backup records how many weights were trainable,
    and a `fit` whose model differs ignores it: the backup belongs to the other phase.
    Keras leaves the restored start epoch on the model (`_initial_epoch`), where it
    would override the next `fit`'s `initial_epoch`; it is cleared when `fit` ends.
    The backup is kept between phases (`delete_checkpoint=False`): the trainer
    removes it once every phase has ended.
    """

    def __init__(self, backup_dir):
        super().__init__(backup_dir, save_freq="epoch", delete_checkpoint=False)

    def _phase(self):
        return len(self.model.trainable_weights)

    def on_train_begin(self, logs=None):
        metadata = Path(self._training_metadata_path)
        if metadata.exists():
            saved = json.loads(metadata.read_text()).get("trainable")
            if saved is not None and saved != self._phase():
                return
        super().on_train_begin(logs)

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self.model._initial_epoch = None

    def _save_model(self):
        os.makedirs(self.backup_dir, exist_ok=True)
        diskspace.ensure(self.backup_dir, diskspace.model_bytes(self.model))
        weights = f"{self._weights_path[:-len('.weights.h5')]}.partial.weights.h5"
        metadata = f"{self._training_metadata_path}.partial"
        try:
            self.model.save_weights(filepath=weights, overwrite=True)
            with open(metadata, "w") as handle:
                json.dump({"epoch": self._current_epoch, "batch": self._last_batch_seen,
                           "trainable": self._phase()}, handle)
        except BaseException:
            diskspace.remove_partial(weights, metadata)  # the last whole backup stands
            raise
        os.replace(weights, self._weights_path)
        os.replace(metadata, self._training_metadata_path)


def backup_epoch(run_dir):
    """Returns the number of epochs a run's backup has completed (0 without a backup)."""
    metadata = Path(run_dir) / "backup" / "training_metadata.json"
    if not metadata.exists():
        return 0
    return int(json.loads(metadata.read_text())["epoch"])


def monitored(recipe):
    """What a run's best epoch is chosen by: `(metric, mode)`.

    The recipe's `OBJECTIVE` (a name, or a keras_tuner.Objective with its direction),
    else `val_loss`. A name's direction is `max` for accuracies and AUCs, else `min`.
    """
    objective = getattr(recipe, "OBJECTIVE", None) or "val_loss"
    if isinstance(objective, str):
        return objective, "max" if "acc" in objective or "auc" in objective else "min"
    return objective.name, objective.direction


class KeepBest(keras.callbacks.Callback):
    """Keeps the weights of the best epoch by a validation metric, across `--resume`.

    At the end of every epoch whose `monitor` value beats the best so far, the model's
    weights go to `backup_dir/best.weights.npz` and the epoch and value to
    `best.json` (both renamed into place, so a kill never leaves half a file). A
    resumed run reads them back, so the best epoch before a kill still counts.
    `restore(model)` loads the best weights once every phase of training has ended
    (not at the end of each `fit`: a fine-tuning recipe's second phase starts from
    where its first ended). Place it before BackupAndRestore: a kill between the two
    repeats an epoch, whose value then only ties.

    A tie (common for accuracy on a small validation split) goes to the epoch of the
    lower `val_loss`, when the monitor is another metric: otherwise the first epoch
    that reaches the best accuracy, often barely trained, would be kept.
    """

    def __init__(self, backup_dir, monitor, mode):
        super().__init__()
        self.folder = Path(backup_dir)
        self.monitor, self.mode = monitor, mode
        self.best = None
        self.seen = False
        saved = self.folder / "best.json"
        if saved.exists() and (self.folder / "best.weights.npz").exists():
            record = json.loads(saved.read_text())
            if record.get("monitor") == monitor:
                self.best = record

    def _beats(self, value, loss):
        if self.best is None:
            return True
        if value == self.best["value"]:
            previous = self.best.get("val_loss")
            return loss is not None and previous is not None and loss < previous
        return value > self.best["value"] if self.mode == "max" else value < self.best["value"]

    def on_epoch_end(self, epoch, logs=None):
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        self.seen = True
        value = float(value)
        loss = (logs or {}).get("val_loss") if self.monitor != "val_loss" else None
        loss = float(loss) if loss is not None and np.isfinite(float(loss)) else None
        if not np.isfinite(value) or not self._beats(value, loss):
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        weights = self.folder / "best.partial.npz"
        with open(weights, "wb") as handle:
            np.savez(handle, *self.model.get_weights())
        os.replace(weights, self.folder / "best.weights.npz")
        self.best = {"epoch": epoch + 1, "value": value, "monitor": self.monitor,
                     "mode": self.mode, "val_loss": loss}
        runs.write_json(self.folder / "best.json.partial", self.best)
        os.replace(self.folder / "best.json.partial", self.folder / "best.json")

    def restore(self, model):
        """Loads the best epoch's weights into `model`; returns the record, or None."""
        if self.best is None:
            return None
        with np.load(self.folder / "best.weights.npz") as saved:
            model.set_weights([saved[f"arr_{index}"] for index in range(len(saved.files))])
        return self.best


class HistoryLogger(keras.callbacks.CSVLogger):
    """CSVLogger that appends from its second `fit` on, and logs the trainable parameters.

    The `trainable_params` column changes where a fine-tuning recipe unfreezes its
    base, which the learning-curve plot marks.
    """

    def on_train_end(self, logs=None):
        super().on_train_end(logs)
        self.append = True

    def on_epoch_end(self, epoch, logs=None):
        trainable = sum(int(np.prod(weight.shape)) for weight in self.model.trainable_weights)
        super().on_epoch_end(epoch, {**(logs or {}), "trainable_params": trainable})


class StopOnNaN(keras.callbacks.Callback):
    """Stops training at the first batch whose loss is NaN or infinite.

    Unlike `keras.callbacks.TerminateOnNaN` in its default mode, training does not
    end normally (which would let BackupAndRestore delete its last good backup),
    and the error names the epoch.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        for name, value in (logs or {}).items():
            if "loss" in name and value is not None and not np.isfinite(float(value)):
                raise NonFiniteLoss(
                    f"The loss became {float(value)} in epoch {self.epoch + 1} (batch "
                    f"{batch + 1}); training stopped. Try a lower learning rate, e.g. "
                    f"{_lower_rate_hint(self.model)}."
                )


def _lower_rate_hint(model):
    """`--set learning_rate=X` with X a tenth of the optimizer's current rate."""
    try:
        rate = float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))
    except (AttributeError, TypeError, ValueError):  # no optimizer, or a schedule
        return "`--set learning_rate=` a tenth of the current one"
    return f"`--set learning_rate={rate / 10:.3g}` (a tenth of the current {rate:.3g})"


class GradientNorms(keras.callbacks.Callback):
    """Records each layer's gradient norm at the end of every epoch, on one fixed batch.

    Norms of the kernel gradients (the loss's gradient with respect to each layer's
    weights), first layer first: shrinking towards the input is the vanishing gradient.
    Writes `epoch, layer, depth, norm` rows to a CSV file.
    """

    def __init__(self, batch, path):
        super().__init__()
        self.x, self.y = batch[0], batch[1]
        self.path = Path(path)
        self.rows = []

    def on_epoch_end(self, epoch, logs=None):
        layers = [layer for layer in self.model.layers
                  if getattr(layer, "kernel", None) is not None and layer.trainable]
        kernels = [layer.kernel for layer in layers]
        with tf.GradientTape() as tape:
            predictions = self.model(self.x, training=True)
            loss = self.model.compute_loss(x=self.x, y=self.y, y_pred=predictions)
        gradients = tape.gradient(loss, [kernel.value for kernel in kernels])
        for depth, (layer, gradient) in enumerate(zip(layers, gradients), start=1):
            norm = float(tf.norm(gradient)) if gradient is not None else 0.0
            self.rows.append({"epoch": epoch, "layer": layer.name, "depth": depth, "norm": norm})
        pd.DataFrame(self.rows).to_csv(self.path, index=False)


class SampleGrid(keras.callbacks.Callback):
    """Writes a grid of generated samples every `every` epochs, from fixed codes.

    Args:
        generate: the recipe's `generate(model, num_samples, seed=None)` hook.
    """

    def __init__(self, generate, folder, every=10, num_samples=64):
        super().__init__()
        self.generate = generate
        self.folder, self.every, self.num_samples = folder, every, num_samples

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every == 0:
            images = np.asarray(self.generate(self.model, self.num_samples, seed=0))
            plots.image_grid(images, self.folder / f"samples_epoch_{epoch + 1:03d}.png",
                             title=f"Epoch {epoch + 1}")
