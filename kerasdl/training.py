"""Training a recipe into a run directory: the run folder's life and the fit call.

The callbacks live in `kerasdl.callbacks`, the test-split scoring in `kerasdl.scoring`
and the plots in `kerasdl.run_plots`.
"""

import contextlib
import datetime
import os
import platform
import shutil
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import keras
import tensorflow as tf

from kerasdl import devices
from kerasdl import diskspace
from kerasdl import distributed
from kerasdl import locks
from kerasdl import progress
from kerasdl import registry
from kerasdl import run_plots
from kerasdl import runs
from kerasdl import scoring
from kerasdl.callbacks import AtomicBackupAndRestore
from kerasdl.callbacks import GradientNorms
from kerasdl.callbacks import HistoryLogger
from kerasdl.callbacks import KeepBest
from kerasdl.callbacks import SampleGrid
from kerasdl.callbacks import StopOnNaN
from kerasdl.callbacks import backup_epoch
from kerasdl.callbacks import monitored
from kerasdl.errors import NonFiniteLoss
from kerasdl.errors import UsageError
from kerasdl.registry import load_recipe
from kerasdl.session import balance
from kerasdl.session import build
from kerasdl.session import load_splits
from kerasdl.session import pipelines


def versions():
    """Returns the versions of the libraries a run depends on."""
    found = {"python": platform.python_version()}
    for package in ("kerasdl", "tensorflow", "keras", "keras-tuner", "numpy"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


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
        kept = keep_last_good(model, run_dir)
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


def keep_last_good(model, run_dir):
    """Saves the weights of the last completed epoch (from the backup) as model.keras."""
    backup = run_dir / "backup" / "latest.weights.h5"
    if not backup.exists():
        return "No epoch completed, so no model was kept."
    model.load_weights(backup)
    runs.atomic_write(run_dir / "model.keras", lambda tmp: model.save(tmp))
    return f"The model of the last completed epoch is kept in {run_dir / 'model.keras'}."


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
        scores = scoring.test_scores(model, splits, test_data, recipe)
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
        **scores,
        # What a recipe's own `fit` measured on the validation split (its tuner objective).
        "validation": ({name: float(value) for name, value in returned.items()}
                       if isinstance(returned, dict) else None),
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
    runs.write_json(run_dir / "metrics.json", metrics)
    run_plots.write_plots(run_dir, model, splits.spec, test_data, recipe)
    return metrics
