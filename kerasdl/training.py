"""Training a recipe into a run directory."""

import contextlib
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from kerasdl import devices
from kerasdl import diskspace
from kerasdl import distributed
from kerasdl import locks
from kerasdl import plots
from kerasdl import progress
from kerasdl import registry
from kerasdl import runs
from kerasdl.errors import KerasdlError
from kerasdl.errors import UsageError
from kerasdl.registry import load_recipe
from kerasdl.session import build  # noqa: F401 (kerasdl.training.build, for benchmarks)
from kerasdl.session import load_splits
from kerasdl.session import pipelines


class NonFiniteLoss(KerasdlError):
    """The training loss became NaN or infinite."""


def versions():
    """Returns the versions of the libraries a run depends on."""
    found = {"python": platform.python_version()}
    for package in ("kerasdl", "tensorflow", "keras", "keras-tuner", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


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


def train(recipe_name, settings, command=None, resume=None):
    """Trains recipe `recipe_name` with resolved `settings` into a new run directory.

    Writes config.json (status running, then completed, failed or interrupted),
    model.keras, history.csv, metrics.json, tensorboard/ and plots/. A backup of the
    model and optimizer is taken at the end of every epoch (BackupAndRestore), so a
    run that was killed continues from its last completed epoch with `resume`.

    Args:
        resume: the directory of a run that did not complete; `recipe_name` and
            `settings` are then read from its config.json.

    With `strategy` multiworker (TF_CONFIG), every worker runs this; the chief writes
    the run directory and the others return None.

    Returns:
        The run directory's path.

    Raises:
        NonFiniteLoss: when the loss becomes NaN or infinite; the model of the last
            completed epoch is kept as model.keras.
    """
    previous = runs.resumable(resume) if resume is not None else None
    if previous is not None:
        recipe_name, settings = previous["recipe"], dict(previous["settings"])
    recipe = load_recipe(recipe_name)
    # What config.json records: the name, or a recipe file's absolute path.
    recipe_name = registry.recipe_reference(recipe_name)
    multiworker = settings.get("strategy") == "multiworker"
    if multiworker and registry.hook_of(recipe, "fit") is not None:
        raise UsageError(f"`--strategy multiworker` trains recipes that use `model.fit`; "
                         f"{recipe_name} has its own `fit`. Valid here: --strategy auto, "
                         "default or mirrored.")
    if multiworker and previous is not None:
        raise UsageError("A multi-worker run cannot be resumed; train it again.")
    # First: MultiWorkerMirroredStrategy must exist before TensorFlow runs anything.
    strategy, accelerator = devices.configure(settings)
    try:
        splits = load_splits(recipe, settings)
        if multiworker and not distributed.is_chief():
            # Other workers train in step with the chief, which writes the run.
            with tempfile.TemporaryDirectory(prefix="kerasdl-worker-") as folder:
                _train(recipe_name, recipe, {**settings, "output": str(Path(folder) / "run")},
                       splits, strategy, accelerator, command, None, None)
            return None
        return _train(recipe_name, recipe, settings, splits, strategy, accelerator, command,
                      resume, previous)
    finally:
        devices.reset_precision()


def _train(recipe_name, recipe, settings, splits, strategy, accelerator, command, resume,
           previous):
    spec = splits.spec
    model, hp = build(recipe, spec, settings, splits.train, strategy)
    if distributed.is_multiworker(strategy):
        model.jit_compile = False  # the multi-worker loop's step is not XLA-compiled
    # What Keras uses: it falls back to no XLA for a model XLA cannot compile.
    # The policy the model's layers compute in, not the one asked for.
    accelerator = {**accelerator, "precision": devices.model_precision(model),
                   "jit_used": bool(model.jit_compile),
                   "steps_per_execution": model.steps_per_execution}
    train_data, validation_data, test_data = pipelines(recipe, splits, hp, settings["batch_size"])

    if previous is None:
        run_dir = runs.create_run_dir(registry.recipe_name(recipe_name), settings.get("output"))
        config = {
            "recipe": recipe_name,
            "status": "running",
            "created": datetime.datetime.now().isoformat(timespec="seconds"),
            "command": command or " ".join(sys.argv),
            "hyperparameters": dict(hp.values),
            "settings": {key: value for key, value in settings.items() if key != "output"},
            "spec": spec,
            "versions": versions(),
            "devices": [device.name for device in tf.config.list_physical_devices()],
            "accelerator": accelerator,
        }
    else:
        run_dir = Path(resume)
        config = {**previous, "status": "running",
                  "resumed": [*previous.get("resumed", []),
                              datetime.datetime.now().isoformat(timespec="seconds")]}
        config.pop("error", None)
    config.update(pid=os.getpid(), host=platform.node())
    lock = locks.acquire(run_dir, "run")  # one process per run folder (a second --resume)
    runs.write_json(run_dir / "config.json", config)
    try:
        metrics = _fit_and_record(recipe, model, hp, splits, (train_data, validation_data,
                                  test_data), settings, run_dir, resumed=previous is not None)
    except KeyboardInterrupt:
        runs.write_json(run_dir / "config.json", {**config, "status": "interrupted"})
        raise
    except NonFiniteLoss as error:
        kept = _keep_last_good(model, run_dir)
        runs.write_json(run_dir / "config.json", {**config, "status": "failed",
                                                  "error": str(error)})
        raise NonFiniteLoss(f"{error} {kept}") from None
    except BaseException as error:
        if diskspace.is_disk_full(error) and not isinstance(error, diskspace.DiskFull):
            error = diskspace.disk_full(run_dir, needed=diskspace.model_bytes(model))
        # A full disk may refuse a new file: then config.json is rewritten in place.
        diskspace.write_status(run_dir / "config.json", {
            **config, "status": "failed", "error": f"{type(error).__name__}: {error}"})
        if isinstance(error, diskspace.DiskFull):
            raise error from None
        raise
    finally:
        locks.release(lock)
    runs.write_json(run_dir / "config.json", {**config, "status": "completed"})
    summary = ", ".join(f"{name} {value:.4f}" for name, value in metrics["test"].items())
    print(f"Test: {summary}", file=sys.stderr)
    if metrics.get("baseline"):
        base = metrics["baseline"]
        scores = ", ".join(f"{k} {v:.4f}" for k, v in base.items() if k != "model")
        print(f"Baseline ({base['model']}): {scores}", file=sys.stderr)
    return run_dir


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


def _keep_last_good(model, run_dir):
    """Saves the weights of the last completed epoch (from the backup) as model.keras."""
    backup = run_dir / "backup" / "latest.weights.h5"
    if not backup.exists():
        return "No epoch completed, so no model was kept."
    model.load_weights(backup)
    runs.atomic_write(run_dir / "model.keras", lambda tmp: model.save(tmp))
    return f"The model of the last completed epoch is kept in {run_dir / 'model.keras'}."


def balance(splits, how, seed):
    """Counters class imbalance in the training split: `class_weight` or `oversample`.

    Returns:
        The `class_weight` dict for `fit` (or None); with `oversample`, `splits.train`
        is replaced by one where every class is drawn as often as the largest.
    """
    if how in (None, "none"):
        return None
    if splits.spec.get("task") not in CLASSIFICATION:
        raise KerasdlError(f"`balance` needs a classification recipe; this one is "
                           f"{splits.spec.get('task')}.")
    labels = np.concatenate([np.asarray(y) for _, y in splits.train.batch(4096)])
    counts = np.bincount(labels, minlength=splits.spec["num_classes"])
    if how == "class_weight":
        return {i: float(len(labels) / (len(counts) * count)) if count else 0.0
                for i, count in enumerate(counts)}
    rng = np.random.default_rng(seed)
    indices = np.concatenate([rng.choice(np.flatnonzero(labels == label), counts.max())
                              for label in np.flatnonzero(counts)])
    rng.shuffle(indices)
    features = np.concatenate([np.asarray(x) for x, _ in splits.train.batch(4096)])
    splits.train = tf.data.Dataset.from_tensor_slices((features[indices], labels[indices]))
    return None


def _fit_and_record(recipe, model, hp, splits, data, settings, run_dir, resumed=False):
    train_data, validation_data, test_data = data
    class_weight = balance(splits, settings.get("balance"), settings["seed"])
    if settings.get("balance") == "oversample":
        train_data = recipe.make_pipeline(splits.train, splits.spec, hp, training=True,
                                          batch_size=settings["batch_size"])
    if settings.get("merge_validation"):
        # A final model (a search's best configuration) learns from the validation
        # split too; the test split stays unseen.
        train_data = recipe.make_pipeline(splits.train.concatenate(splits.validation),
                                          splits.spec, hp, training=True,
                                          batch_size=settings["batch_size"])
        validation_data = None
    monitor, mode = monitored(recipe)
    # `keep_best` false keeps the last epoch (to show overfitting, as the regularization
    # preset of `kerasdl compare` does).
    keep_best = (KeepBest(run_dir / "backup", monitor, mode)
                 if validation_data is not None and settings.get("keep_best", True) else None)
    callbacks = [
        StopOnNaN(),
        *([keep_best] if keep_best is not None else []),
        # Epoch-boundary backups: a resumed run continues bit for bit from the last
        # completed epoch (mid-epoch backups would restart an epoch half-trained).
        AtomicBackupAndRestore(str(run_dir / "backup")),
        HistoryLogger(str(run_dir / "history.csv"), append=resumed),
        keras.callbacks.TensorBoard(str(run_dir / "tensorboard")),
    ]
    generate = registry.hook_of(recipe, "generate")
    if generate is not None:
        callbacks.append(SampleGrid(generate, run_dir / "plots",
                                    every=max(1, settings["epochs"] // 5)))
    if settings.get("early_stopping") and validation_data is not None:
        # KeepBest restores the best epoch, also after a resume.
        callbacks.append(keras.callbacks.EarlyStopping(
            monitor=monitor, mode=mode, patience=settings["early_stopping"]))
    if settings.get("gradients"):
        callbacks.append(GradientNorms(next(iter(train_data)), run_dir / "gradients.csv"))
    fit = registry.hook_of(recipe, "fit")
    returned = None
    # Progress bars on a terminal, one line per epoch in logs.
    verbose = progress.verbosity()
    callbacks.append(progress.callback())
    start = time.perf_counter()
    # Keras prints progress to stdout; stdout is kept for results (the run path).
    with contextlib.redirect_stdout(sys.stderr):
        if fit is not None:
            # The contract's `fit` takes `initial_epoch`: where a resumed run continues.
            returned = fit(hp, model, train_data, validation_data=validation_data,
                           epochs=settings["epochs"], callbacks=callbacks, verbose=verbose,
                           initial_epoch=backup_epoch(run_dir) if resumed else 0)
        elif distributed.is_multiworker(model.distribute_strategy):
            # Data read from files: each worker reads only its own share of them.
            share = (None if settings.get("merge_validation") else
                     distributed.share_pipeline(recipe, splits, hp, settings["batch_size"]))
            distributed.fit(model, train_data, validation_data=validation_data,
                            epochs=settings["epochs"], callbacks=callbacks, verbose=verbose,
                            class_weight=class_weight, train_share=share)
            # Evaluated, saved and plotted on one device, like a model of one machine.
            model = distributed.single_device_copy(model)
        else:
            # The recipe's pipeline shuffles; Keras cannot shuffle a tf.data.Dataset.
            model.fit(train_data, validation_data=validation_data, shuffle=False,
                      epochs=settings["epochs"], callbacks=callbacks, verbose=verbose,
                      class_weight=class_weight)
        seconds = time.perf_counter() - start
        best = keep_best.restore(model) if keep_best is not None else None
        if best is not None:
            print(f"Kept the best epoch by {monitor}: epoch {best['epoch']} "
                  f"({monitor} {best['value']:.4f}).", file=sys.stderr)
            if isinstance(returned, dict) and monitor in returned:
                returned = {**returned, monitor: best["value"]}  # what the kept model scored
        elif keep_best is not None and not keep_best.seen:
            print(f"No `{monitor}` in the epoch logs: the last epoch's model is kept.",
                  file=sys.stderr)
        test_metrics = model.evaluate(test_data, return_dict=True, verbose=0)
    diskspace.ensure(run_dir, diskspace.model_bytes(model))
    runs.atomic_write(run_dir / "model.keras", lambda tmp: model.save(tmp))
    shutil.rmtree(run_dir / "backup", ignore_errors=True)

    counts = splits.spec.get("num_examples") or {}
    examples = counts.get("train")
    if examples is None:
        examples = int(splits.train.cardinality())
    if settings.get("merge_validation") and counts.get("validation"):
        examples += counts["validation"]
    metrics = {
        "test": {name: float(value) for name, value in test_metrics.items()},
        # What a recipe's own `fit` measured on the validation split (its tuner objective).
        "validation": ({name: float(value) for name, value in returned.items()}
                       if isinstance(returned, dict) else None),
        "baseline": _baseline_or_none(splits),
        "epochs": settings["epochs"],
        # The model kept: the best validation epoch (1-based) by `monitor`; None when
        # there was no validation split (the last epoch's model).
        "best_epoch": best["epoch"] if best is not None else None,
        "monitor": monitor if best is not None else None,
        "monitor_mode": mode if best is not None else None,
        "best_value": best["value"] if best is not None else None,
        "train_seconds": round(seconds, 3),
        "samples_per_second": round(examples * settings["epochs"] / seconds, 1)
        if examples and examples > 0 else None,
        "num_examples": splits.spec.get("num_examples"),
    }
    if splits.spec["task"] == "reconstruction" and splits.spec.get("excluded_classes"):
        metrics["anomaly_roc_auc"] = anomaly_roc_auc(model, splits, recipe)
    if splits.spec["task"] in CLASSIFICATION:
        labels, predictions = predict_dataset(model, test_data)
        labels = labels.argmax(axis=-1) if labels.ndim > 1 else labels
        predicted = predictions.argmax(axis=-1)
        metrics["per_class_recall"] = {
            name: float(np.mean(predicted[labels == i] == i)) if np.any(labels == i) else None
            for i, name in enumerate(splits.spec["class_names"])}
    runs.write_json(run_dir / "metrics.json", metrics)

    history = pd.read_csv(run_dir / "history.csv")
    plots.learning_curves(history, run_dir / "plots" / "learning_curves.png")
    if (run_dir / "gradients.csv").exists():
        plots.gradient_norms(pd.read_csv(run_dir / "gradients.csv"),
                             run_dir / "plots" / "gradient_norms.png")
    task_plots(model, splits.spec, test_data, run_dir / "plots", recipe)
    return metrics


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


CLASSIFICATION = ("image_classification", "classification", "sequence_classification")


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
