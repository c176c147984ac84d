"""Hyperparameter search with Keras Tuner: resume, report, retrain the best, scale out.

A search directory holds:
- `search.json`: what was asked (recipe, tuner, objective, search space, settings);
  a re-run continues only the same search;
- `tuner/`: Keras Tuner's own project (oracle.json, one trial_* folder per trial);
- `results.csv`, `best_hyperparameters.json`, `plots/`: the report; with several
  `--objective`s also `pareto.csv`, the trials on the Pareto front (`kerasdl.pareto`);
- `best/`: the best configuration retrained on train + validation and scored on the
  test split, an ordinary run directory;
- `logs/` (with `--workers`), `damaged/` (trial files `repair` set aside), and
  `.kerasdl.lock` while a process works in it.
"""

import contextlib
import datetime
import json
import os
import shutil
import socket
import sys
import time
import zlib
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd

from kerasdl import devices
from kerasdl import diskspace
from kerasdl import hparams
from kerasdl import locks
from kerasdl import pareto
from kerasdl import plots
from kerasdl import progress
from kerasdl import pruning
from kerasdl import runs
from kerasdl import warmstart
from kerasdl.errors import RunError
from kerasdl.errors import UsageError
from kerasdl.registry import hook_of
from kerasdl.registry import load_recipe
from kerasdl.registry import recipe_name as recipe_short_name
from kerasdl.registry import recipe_reference
from kerasdl.session import apply_execution_settings
from kerasdl.session import fixed_hp
from kerasdl.session import load_splits
from kerasdl.session import search_space
from kerasdl.session import pipelines
from kerasdl.session import seed_everything

TUNERS = {
    "random": keras_tuner.RandomSearch,
    "bayesian": keras_tuner.BayesianOptimization,
    "hyperband": keras_tuner.Hyperband,
    "grid": keras_tuner.GridSearch,
}
PROJECT = "tuner"
# Settings that change what a search measures: a resumed search must keep them.
SEARCH_SETTINGS = ("data", "target", "data_dir", "epochs", "batch_size", "seed", "split_seed",
                   "validation_split", "test_split", "image_size", "channels", "window",
                   "horizon", "exclude_classes")
# How trials run, not what they measure: a resumed search may change them.
DEVICE_SETTINGS = ("device", "mixed_precision", "jit", "strategy", "steps_per_execution")
OWN_OUTPUTS = ("search.json", PROJECT, "results.csv", "best_hyperparameters.json", "plots",
               "best", "logs", "damaged", "tensorboard", "pareto.csv")
DAMAGED = "damaged"  # damaged trials are set aside here, outside Keras Tuner's project
TENSORBOARD = "tensorboard"  # `tensorboard --logdir SEARCH_DIR`: scalars and HParams per trial


class TrialDiverged(keras_tuner.errors.FailedTrialError):
    """A trial whose loss or objective became NaN or infinite: a result, not a crash.

    Keras Tuner marks it FAILED (never scored, never best, not retried); kerasdl records
    it as `diverged` (results.csv's DIVERGED) and `repair` does not run it again.
    """


class ObjectiveUnusable(UsageError, keras_tuner.errors.FatalError):
    """An `--objective` the trials cannot give (a metric they do not log, a latency the
    model cannot be timed for): fatal for Keras Tuner, one line (exit 2) for the user."""


class SearchDiskFull(diskspace.DiskFull, keras_tuner.errors.FatalError):
    """A full disk during a trial: fatal for Keras Tuner (the trial is not marked done,
    so the next run of the search runs it again), one line for the user."""


def trial_seed(seed, trial_id):
    """The seed of one trial: from the search's seed and the trial's id only.

    So a trial's score does not depend on which process ran it, or what ran before.
    """
    return zlib.crc32(f"{seed}:{trial_id}".encode()) % (2**31 - 1)


class _SpaceCheck(keras.callbacks.Callback):
    """Checks, before Keras Tuner saves the epoch's checkpoint, that it fits on the disk."""

    def __init__(self, folder):
        super().__init__()
        self.folder = folder

    needed = None  # bytes of the last model's save, for the message of a failed write

    def on_train_begin(self, logs=None):
        # Keras Tuner copies callbacks: the figure is kept on the class.
        _SpaceCheck.needed = diskspace.model_bytes(self.model, copies=1)

    def on_epoch_end(self, epoch, logs=None):
        diskspace.ensure(self.folder, _SpaceCheck.needed)


class RecipeHyperModel(keras_tuner.HyperModel):
    """A recipe as a Keras Tuner hypermodel: its `build_model`, pipeline and `fit`."""

    def __init__(self, recipe, splits, batch_size, settings=None, measures=()):
        super().__init__(name=recipe.__name__.rsplit(".", 1)[-1])
        self.recipe, self.splits, self.batch_size = recipe, splits, batch_size
        self.settings = settings or {}
        # Computed objectives (`params`, `latency`) measured on each trained model.
        self.measures = tuple(measures)
        self.measured = None
        # Keras Tuner clears the session before each build, which resets the policy.
        self.policy = keras.config.dtype_policy().name

    def build(self, hp):
        keras.config.set_dtype_policy(self.policy)
        model = self.recipe.build_model(hp, self.splits.spec)
        apply_execution_settings(model, self.settings)  # `jit`, `steps_per_execution`
        return model

    def fit(self, hp, model, *args, **kwargs):
        train_data, validation_data, _ = pipelines(self.recipe, self.splits, hp, self.batch_size)
        recipe_fit = hook_of(self.recipe, "fit")
        if recipe_fit is not None:
            history = recipe_fit(hp, model, train_data, validation_data=validation_data,
                                 **kwargs)
        else:
            history = model.fit(train_data, validation_data=validation_data, shuffle=False,
                                **kwargs)
        if self.measures:
            self.measured = measure(model, validation_data, self.measures, self.name)
        return history


def measure(model, validation_data, names, recipe_name="the recipe"):
    """The computed objectives `names` (`params`, `latency`) of a trained model.

    Returns:
        `{"params": count_params()}` and/or `{"latency_ms": ...}` (`latency_ms`).

    Raises:
        ObjectiveUnusable: when the model cannot predict on its validation inputs.
    """
    values = {}
    if "params" in names:
        values["params"] = int(model.count_params())
    if "latency" in names:
        try:
            values["latency_ms"] = latency_ms(model, validation_data)
        except Exception as error:
            text = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise ObjectiveUnusable(
                f"`--objective latency` times the model's predictions on its validation "
                f"inputs; {recipe_name}'s model cannot predict on them ({text[:200]}); "
                f"choose among the metrics the trials log, or params.") from None
    return values


def latency_ms(model, data):
    """Milliseconds per example of `model.predict_on_batch` (`kerasdl.pareto`'s rule).

    The inputs: the first `pareto.LATENCY_EXAMPLES` examples of the first batch of
    `data` (a dataset of `(inputs, targets)` batches, or such a tuple); one untimed call
    traces the function, then the median of `pareto.LATENCY_REPEATS` timed calls.
    """
    import tensorflow as tf

    if data is None:
        raise ValueError("the search has no validation data")
    batch = next(iter(data.take(1))) if isinstance(data, tf.data.Dataset) else data
    inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
    inputs = tf.nest.map_structure(lambda t: t[:pareto.LATENCY_EXAMPLES], inputs)
    count = int(tf.nest.flatten(inputs)[0].shape[0])
    model.predict_on_batch(inputs)
    times = []
    for _ in range(pareto.LATENCY_REPEATS):
        start = time.perf_counter()
        model.predict_on_batch(inputs)
        times.append(time.perf_counter() - start)
    return 1000.0 * float(np.median(times)) / count


def objective_from(name, recipe):
    """Parses `--objective NAME[:min|max]`, or takes the recipe's `OBJECTIVE`."""
    return objectives_from([name] if name else [], recipe)[0]


def objectives_from(names, recipe):
    """Parses the repeated `--objective NAME[:min|max]` (`kerasdl.pareto`).

    Args:
        names: the values given, in order; None or empty for the recipe's `OBJECTIVE`.

    Returns:
        `(objective, others)`: the `keras_tuner.Objective` that drives the search, and
        a list of `{"name", "direction"}` for the further objectives of the Pareto front.

    Raises:
        UsageError: for a bad direction, a repeated objective, a computed one first.
    """
    if isinstance(names, str):
        names = [names]
    try:
        parsed = pareto.parse_objectives(list(names or []))
    except pareto.ObjectiveError as error:
        raise UsageError(str(error)) from None
    if not parsed:
        objective = recipe.OBJECTIVE
        if isinstance(objective, str):
            objective = keras_tuner.Objective(objective, pareto.default_direction(objective))
        return objective, []
    first = keras_tuner.Objective(parsed[0]["name"], parsed[0]["direction"])
    return first, parsed[1:]


def _check_logged(trial, logs, names):
    """Refuses, at a trial's first epoch, an objective that is no metric the trials log."""
    missing = [name for name in names if name not in (logs or {})]
    if missing:
        valid = sorted(logs or {}) + list(pareto.COMPUTED)
        raise ObjectiveUnusable(
            f"`--objective {missing[0]}` is not a metric the trials log (trial "
            f"{trial.trial_id}'s first epoch logged {', '.join(sorted(logs or {})) or 'none'}); "
            f"valid objectives: {', '.join(valid)}. Run again with --overwrite and a valid "
            "--objective.")


def _tuner_class(kind, seed=None, objective=None, prune=None, others=()):
    """The Keras Tuner class of `kind`, with kerasdl's per-trial records.

    Args:
        objective: a `keras_tuner.Objective`: each epoch's value is recorded as the
            trial's curve (kerasdl_trial.json), for pruning and the results.
        prune: None, or `{"warmup_epochs": N, "startup_trials": M}` to stop a trial by
            the median rule (`kerasdl.pruning`).
        others: the further objectives (`{"name", "direction"}`): the metrics among
            them are checked in each trial's first epoch's logs; the computed ones
            (`params`, `latency`), measured by the hypermodel, are recorded in
            kerasdl_trial.json as `objectives`.
    """
    logged = [o["name"] for o in others if o["name"] not in pareto.COMPUTED]
    if kind not in TUNERS:
        raise UsageError(f"Unknown tuner: {kind!r}. Valid tuners: {', '.join(TUNERS)}")
    base = TUNERS[kind]

    class KerasdlTuner(base):
        """Records each trial's wall time, curve, epochs and status; stops bad trials
        with `--prune`; keeps the weights of the best trial only.

        Hyperband continues trials from the checkpoints of earlier rounds, so it
        keeps those that a later round may still continue; its trial count is bounded
        by `--epochs` and its factor.
        """

        def on_search_begin(self):
            super().on_search_begin()
            if not progress.on_terminal():
                self.oracle.verbose = 0  # logs get one line per trial, not Keras Tuner's tables

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            self._trial_start = time.perf_counter()
            self._curve, self._epochs, self._pruned, self._diverged = {}, 0, False, None
            self.hypermodel.measured = None
            self._others = (finished_curves(self.project_dir, exclude=trial.trial_id)
                            if prune else [])
            # A copy of the trial's values, written atomically: `repair` runs the same
            # configuration again if Keras Tuner's own trial.json gets damaged.
            folder = Path(self.project_dir) / f"trial_{trial.trial_id}"
            diskspace.ensure(folder, 0)
            runs.write_json(folder / "kerasdl_trial.json",
                            {"hyperparameters": dict(trial.hyperparameters.values)})

        def on_epoch_end(self, trial, model, epoch, logs=None):
            if logged and self._epochs == 0:
                _check_logged(trial, logs, logged)
            bad = pruning.non_finite(logs, getattr(objective, "name", None))
            if bad is not None:
                # Before the oracle sees the epoch: a NaN never becomes a score.
                self._epochs += 1
                self._diverged = (f"{bad[0]} became {bad[1]} in epoch {epoch + 1}; a lower "
                                  "learning rate may train")
                model.stop_training = True
                raise TrialDiverged(f"Trial {trial.trial_id} diverged: {self._diverged}.")
            super().on_epoch_end(trial, model, epoch, logs)
            self._epochs += 1
            if objective is None or not isinstance(objective, keras_tuner.Objective) \
                    or objective.name not in (logs or {}):
                return
            value = float(logs[objective.name])
            step = epoch + 1  # Keras counts from `initial_epoch` (Hyperband's later rounds)
            self._curve[step] = value if np.isfinite(value) else None
            if prune and pruning.should_prune(self._curve, self._others, step,
                                              objective.direction, prune["warmup_epochs"],
                                              prune["startup_trials"], self._final_epoch):
                self._pruned = True
                model.stop_training = True

        def run_trial(self, trial, *args, **kwargs):
            keras.backend.clear_session()
            seed_everything(trial_seed(seed, trial.trial_id))
            folder = Path(self.project_dir) / f"trial_{trial.trial_id}"
            kwargs["callbacks"] = [*kwargs.get("callbacks", []), _SpaceCheck(folder)]
            # Hyperband sets each trial's last epoch; the others run `--epochs`.
            self._final_epoch = trial.hyperparameters.values.get("tuner/epochs",
                                                                 kwargs.get("epochs"))
            try:
                return super().run_trial(trial, *args, **kwargs)
            except Exception as error:
                if diskspace.is_disk_full(error):
                    raise SearchDiskFull(str(error if isinstance(error, diskspace.DiskFull)
                                             else diskspace.disk_full(
                                                 folder, needed=_SpaceCheck.needed))) from None
                raise

        def _run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
            try:
                return super()._run_and_update_trial(trial, *fit_args, **fit_kwargs)
            except TrialDiverged as error:
                self._divergence = error  # a result: no traceback on stderr (Keras Tuner's)

        def _try_run_and_update_trial(self, trial, *fit_args, **fit_kwargs):
            self._divergence = None
            super()._try_run_and_update_trial(trial, *fit_args, **fit_kwargs)
            if self._divergence is not None:
                trial.status = keras_tuner.engine.trial.TrialStatus.FAILED
                trial.message = f"{TrialDiverged.__name__}: {self._divergence}"

        def on_trial_end(self, trial):
            seconds = time.perf_counter() - getattr(self, "_trial_start", time.perf_counter())
            super().on_trial_end(trial)
            if not progress.on_terminal():
                print(progress.trial_line(self.oracle.get_trial(trial.trial_id), self.oracle,
                                          seconds)
                      + (f" (pruned after {self._epochs} epochs)" if self._pruned else ""),
                      file=sys.stderr, flush=True)
            elif self._pruned:
                print(f"Trial {trial.trial_id} pruned after {self._epochs} epochs.",
                      file=sys.stderr, flush=True)
            if self._diverged:
                print(f"Note: trial {trial.trial_id} diverged ({self._diverged}); it is "
                      "recorded as DIVERGED and never ranked.", file=sys.stderr, flush=True)
            folder = Path(self.project_dir) / f"trial_{trial.trial_id}"
            record = _read_json(folder / "kerasdl_trial.json") or {}
            status = str(trial.status).lower()
            if self._pruned and trial.status == "COMPLETED":
                status = "pruned"
            if self._diverged:
                status = "diverged"
            measured = getattr(self.hypermodel, "measured", None)
            runs.write_json(folder / "kerasdl_trial.json",
                            {**record, "wall_seconds": round(seconds, 3), "status": status,
                             "epochs": self._epochs,
                             "curve": {str(k): v for k, v in sorted(self._curve.items())},
                             **({"objectives": measured} if measured else {})})
            keep_needed_checkpoints(self, kind, objective)
            devices.clear_session()

    return KerasdlTuner


def finished_curves(project_dir, exclude=None):
    """The objective curves (`{epoch: value}`) of a search's completed or imported trials."""
    curves = []
    for record_file in sorted(Path(project_dir).glob("trial_*/kerasdl_trial.json")):
        if record_file.parent.name == f"trial_{exclude}":
            continue
        record = _read_json(record_file) or {}
        if record.get("status") in ("completed", "imported") and record.get("curve"):
            curves.append({int(k): v for k, v in record["curve"].items()})
    return curves


def _best_trial_id(project_dir, direction):
    """The id of the best completed (not pruned) trial, from the trial files."""
    best, best_score = None, None
    for trial_file in Path(project_dir).glob("trial_*/trial.json"):
        state = _readable_trial(trial_file) or {}
        record = _read_json(trial_file.parent / "kerasdl_trial.json") or {}
        score = state.get("score")
        if state.get("status") != "COMPLETED" or score is None or not np.isfinite(score) \
                or record.get("status") == "pruned" or pruning.diverged(state, record):
            continue
        if best is None or (score > best_score if direction == "max" else score < best_score):
            best, best_score = state["trial_id"], score
    return best


def keep_needed_checkpoints(tuner, kind, objective):
    """Deletes the weights of every finished trial but the best (bounded disk).

    Hyperband also keeps the trials of its unfinished brackets that a later round may
    continue; when its oracle runs in another process (workers), it keeps them all.
    """
    project_dir = Path(tuner.project_dir)
    direction = getattr(objective, "direction", "max")
    keep = {_best_trial_id(project_dir, direction)}
    if kind == "hyperband":
        brackets = getattr(tuner.oracle, "_brackets", None)
        if brackets is None:
            return
        for bracket in brackets:
            rounds = bracket["rounds"]
            continued = {info["past_id"] for later in rounds[1:] for info in later
                         if info.get("past_id") is not None and
                         getattr(tuner.oracle.trials.get(info["id"]), "status", None)
                         == "COMPLETED"}
            for round_info in rounds[:-1]:
                keep.update(info["id"] for info in round_info if info["id"] not in continued)
    for folder in project_dir.glob("trial_*"):
        if folder.name[len("trial_"):] in keep:
            continue
        if "status" not in (_read_json(folder / "kerasdl_trial.json") or {}):
            continue  # running (in this or another worker), or not ended: its weights stay
        for checkpoint in folder.glob("checkpoint*"):
            checkpoint.unlink()


def make_tuner(meta, hypermodel, overwrite=False, strategy=None):
    """Creates (or reloads) the Keras Tuner tuner a search directory describes."""
    kind = meta["tuner"]
    objective = keras_tuner.Objective(meta["objective"]["name"], meta["objective"]["direction"])
    pinned = fixed_hp(meta["pinned"])
    options = dict(hypermodel=hypermodel, objective=objective, seed=meta["settings"]["seed"],
                   hyperparameters=pinned, tune_new_entries=True, overwrite=overwrite,
                   directory=meta["directory"], project_name=PROJECT)
    if strategy is not None:
        options["distribution_strategy"] = strategy
    if kind == "hyperband":
        options.update(max_epochs=meta["settings"]["epochs"], factor=3)
    if kind == "bayesian":
        # Keras Tuner's default, 3 random trials per dimension, counts pinned (`--set`)
        # ones too; the dimensions searched are the others.
        searched = [p for p in meta["search_space"]
                    if p["type"] != "Fixed" and p["name"] not in meta["pinned"]]
        options["num_initial_points"] = max(3 * len(searched), 3)
    if kind != "hyperband":
        options["max_trials"] = meta["max_trials"] + len(meta.get("imported", []))
    tuner = _tuner_class(kind, meta["settings"]["seed"], objective=objective,
                         prune=meta.get("prune"), others=pareto.others(meta))(**options)
    if kind != "hyperband":
        # A reloaded oracle keeps its old one; imported trials do not count.
        tuner.oracle.max_trials = meta["max_trials"] + len(meta.get("imported", []))
    if isinstance(tuner.oracle, keras_tuner.Oracle):
        _diverged_trials_are_results(tuner.oracle)
    return tuner


def _diverged_trials_are_results(oracle):
    """Keras Tuner stops a search after `max_consecutive_failed_trials` FAILED trials in a
    row (errors); trials that diverged are results (a learning rate too high), so they
    neither count nor break a run of failures."""

    def check_errors_only():
        failures = 0
        for trial_id in oracle.end_order:
            trial = oracle.trials[trial_id]
            if trial.status == "FAILED" and pruning.DIVERGED in str(trial.message or ""):
                continue
            failures = failures + 1 if trial.status == "FAILED" else 0
            if failures == oracle.max_consecutive_failed_trials:
                raise RuntimeError("Number of consecutive failures exceeded the limit of "
                                   f"{oracle.max_consecutive_failed_trials}.\n"
                                   + (trial.message or ""))

    oracle._check_consecutive_failures = check_errors_only


def _space(recipe, splits, batch_size):
    """The recipe's whole search space: what building the default model and pipeline asks."""
    space = search_space(recipe, splits.spec, splits.train, batch_size)
    keras.backend.clear_session()
    return space


def import_trials(oracle, imported, space):
    """Adds an earlier search's finished trials to a fresh oracle as completed trials.

    Each keeps its values, metrics and score (no training), COMPLETED: Bayesian
    optimisation fits them and counts them towards its random start (3 per searched
    dimension), random search does not draw their values again. kerasdl_trial.json
    marks them `imported`, with the source trial.
    """
    oracle.update_space(space)  # the whole space: Bayesian optimisation vectorises by it
    verbose, oracle._display.verbose = oracle._display.verbose, 0  # imported: not run
    try:
        for entry in imported:
            _import_trial(oracle, entry)
    finally:
        oracle._display.verbose = verbose


def _import_trial(oracle, entry):
    """One imported trial: recorded, scored and ended as Keras Tuner ends a trial."""
    trial_id = f"{{:0{len(str(oracle.max_trials))}d}}".format(len(oracle.trials))
    hp = oracle.hyperparameters.copy()
    hp.values = {**{p.name: p.default for p in hp.space if hasattr(p, "default")},
                 **hp.values, **entry["values"]}
    trial = keras_tuner.engine.trial.Trial(hyperparameters=hp, trial_id=trial_id,
                                           status="RUNNING")
    oracle.trials[trial_id] = trial
    oracle.start_order.append(trial_id)
    oracle._record_values(trial)
    folder = Path(oracle._project_dir) / f"trial_{trial_id}"
    folder.mkdir(parents=True, exist_ok=True)
    runs.write_json(folder / "kerasdl_trial.json", {
        "hyperparameters": hp.values, "status": "imported",
        "source_trial": entry["source_trial"], "wall_seconds": entry["wall_seconds"],
        "epochs": entry["epochs"], "curve": entry["curve"],
        **({"objectives": entry["objectives"]} if entry.get("objectives") else {})})
    oracle.update_trial(trial_id, entry["metrics"], step=entry["best_step"])
    trial.status = "COMPLETED"
    oracle.end_trial(trial)


def _search_meta(recipe_name, recipe, splits, settings, tuner, max_trials, objective, directory,
                 others=()):
    space = _space(recipe, splits, settings["batch_size"])
    pinned = hparams.pinned(settings.get("set", {}), space)
    meta = {
        "recipe": recipe_reference(recipe_name),  # a recipe file's absolute path
        "tuner": tuner,
        "max_trials": max_trials,
        "objective": {"name": objective.name, "direction": objective.direction},
        "search_space": hparams.describe(space),
        "pinned": dict(pinned.values),
        "settings": {key: settings.get(key) for key in SEARCH_SETTINGS},
        "devices": {key: settings.get(key) for key in DEVICE_SETTINGS},
        "directory": str(directory),
    }
    if others:  # absent for one objective: searches of earlier kerasdl versions match
        meta["objectives"] = [dict(meta["objective"]), *map(dict, others)]
    return meta


def _differences(old, new):
    changed = []
    # max_trials may change: a finished search continues with more trials.
    for key in ("recipe", "tuner", "objective", "objectives", "search_space", "pinned"):
        if old.get(key) != new.get(key):
            changed.append(key)
    for key in SEARCH_SETTINGS:
        if old.get("settings", {}).get(key) != new["settings"].get(key):
            changed.append(f"settings.{key}")
    return changed


def _read_json(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError, UnicodeDecodeError):
        return None


def _readable_trial(path):
    state = _read_json(path)
    if not isinstance(state, dict):
        return None
    if not {"trial_id", "hyperparameters", "metrics", "status"} <= set(state):
        return None
    return state


def _replacement_trial(trial_id, folder, hyperparameters_config):
    """A fresh trial.json for a damaged trial: the same values when recorded, else new ones."""
    space = keras_tuner.HyperParameters.from_config(hyperparameters_config)
    record = _read_json(folder / "kerasdl_trial.json") or {}
    values = record.get("hyperparameters")
    if not isinstance(values, dict):
        values = {}
        rng_seed = zlib.crc32(f"replacement:{trial_id}".encode())
        for hp in space.space:
            if space.is_active(hp):
                values[hp.name] = hp.random_sample(rng_seed)
                rng_seed += 1
    space.values = {**space.values, **values}
    trial = keras_tuner.engine.trial.Trial(hyperparameters=space, trial_id=trial_id,
                                           status="RUNNING")
    return trial.get_state()


def repair(project_dir):
    """Makes an interrupted or damaged search continue without losing or repeating work.

    - A trial whose trial.json cannot be read (a SIGKILL during Keras Tuner's in-place
      write, a damaged disk) is set aside into the search's `damaged/` folder, named in
      one line on stderr, and replaced by the same configuration (recorded by kerasdl in
      kerasdl_trial.json) queued to run again; every other trial is kept as it is.
    - Trials that failed or were invalid (a full disk, an error) are queued to run again;
      a trial that diverged (NaN loss) is a result and is not.
    - A completed trial still listed as ongoing (Keras Tuner saves its state before it
      drops the trial from `ongoing_trials`) is not run again.

    Returns:
        The ids of the trials queued to run again.
    """
    project_dir = Path(project_dir)
    oracle_file = project_dir / "oracle.json"
    state = None
    if oracle_file.exists():
        state = _read_json(oracle_file)
        if not isinstance(state, dict) or "hyperparameters" not in state:
            raise RunError(
                f"The search state {str(oracle_file)!r} is damaged beyond repair; "
                "re-run with --overwrite to start the search again."
            )
    rerun, statuses = [], {}
    for folder in sorted(project_dir.glob("trial_*")):
        if not folder.is_dir():
            continue
        trial_id = folder.name[len("trial_"):]
        trial_file = folder / "trial.json"
        trial = _readable_trial(trial_file)
        if trial is None and (state is None or trial_id not in state.get("start_order", [])):
            shutil.rmtree(folder)  # the oracle never recorded it: it never started
            continue
        if trial is None:
            stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
            aside = project_dir.parent / DAMAGED / f"trial_{trial_id}-{stamp}"
            aside.parent.mkdir(parents=True, exist_ok=True)
            shutil.copytree(folder, aside)
            if trial_file.exists():
                trial_file.unlink()
            runs.write_json(trial_file, _replacement_trial(trial_id, folder,
                                                           state["hyperparameters"]))
            for checkpoint in folder.glob("checkpoint*"):
                checkpoint.unlink()
            print(f"Note: trial {trial_id}'s trial.json is damaged; set it aside in "
                  f"{str(aside)!r} and running that trial again.", file=sys.stderr)
            rerun.append(trial_id)
            statuses[trial_id] = "RUNNING"
            continue
        statuses[trial_id] = trial["status"]
        record = _read_json(folder / "kerasdl_trial.json") or {}
        if trial["status"] in ("FAILED", "INVALID") and not pruning.diverged(trial, record):
            runs.write_json(trial_file, {**trial, "status": "RUNNING", "message": None})
            rerun.append(trial_id)
            statuses[trial_id] = "RUNNING"
    if state is None:
        return rerun
    ongoing = {tuner_id: trial_id for tuner_id, trial_id
               in state.get("ongoing_trials", {}).items()
               if statuses.get(trial_id) not in (None, "COMPLETED")}
    # Keras Tuner's reload queues the ongoing trials again: each one once.
    queued = set(ongoing.values())
    retry = []
    for trial_id in [*state.get("retry_queue", []), *rerun]:
        if trial_id in statuses and statuses[trial_id] != "COMPLETED" \
                and trial_id not in queued and trial_id not in retry:
            retry.append(trial_id)
    state["ongoing_trials"] = ongoing
    state["retry_queue"] = retry
    redo = set(rerun)
    state["end_order"] = [t for t in state.get("end_order", [])
                          if t in statuses and t not in redo]
    state["start_order"] = [t for t in state.get("start_order", []) if t in statuses]
    state["run_times"] = {t: (0 if t in redo else n)
                          for t, n in state.get("run_times", {}).items() if t in statuses}
    runs.write_json(oracle_file, state)
    return rerun


def search_directory(recipe_name, tuner, output):
    """The search folder of `kerasdl tune`: `--output`, or searches/RECIPE-TUNER."""
    directory = Path(output or Path("searches") / f"{recipe_short_name(recipe_name)}-{tuner}")
    if directory.is_file():
        raise UsageError(f"`--output` {str(directory)!r} is an existing file; give a folder.")
    return directory


def prepare(recipe_name, settings, tuner="random", max_trials=10, objective=None, output=None,
            overwrite=False, prune=None, warm_start=None):
    """Creates or checks a search directory; returns `(meta, recipe, splits)`.

    Args:
        prune: None, or `{"warmup_epochs": N, "startup_trials": M}` (`--prune`).
        warm_start: an earlier search directory whose finished trials this one imports.

    Raises:
        UsageError: for an unknown tuner, a bad objective, or an existing search that
            asked something else (naming what changed), unless `overwrite`.
    """
    if tuner not in TUNERS:
        raise UsageError(f"Unknown tuner: {tuner!r}. Valid tuners: {', '.join(TUNERS)}")
    if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
        raise UsageError(f"`max_trials` must be a positive integer. Received: max_trials={max_trials!r}")
    recipe = load_recipe(recipe_name)
    directory = search_directory(recipe_name, tuner, output)
    if prune is not None:
        try:
            pruning.check_settings(prune["warmup_epochs"], prune["startup_trials"])
        except ValueError as error:
            raise UsageError(str(error)) from None
    source = None
    if warm_start is not None:
        source = warmstart.read_source(warm_start, recipe_name, settings, tuner,
                                       directory=directory)
    first, others = objectives_from(objective, recipe)  # refused before the data loads
    splits = load_splits(recipe, settings)
    meta = _search_meta(recipe_name, recipe, splits, settings, tuner, max_trials, first,
                        directory, others)
    meta["prune"] = prune
    if source is not None:
        source = warmstart.read_source(warm_start, recipe_name, settings, tuner,
                                       objective_name=meta["objective"]["name"],
                                       directory=directory)
    meta_file = directory / "search.json"
    if meta_file.exists() and not overwrite:
        old = runs.read_json(meta_file, ("recipe", "settings"), "pass --overwrite to start "
                             "the search afresh, or restore the file from a backup")
        changed = _differences(old, meta)
        if changed:
            raise UsageError(
                f"{str(directory)!r} holds a different search (changed: {', '.join(changed)}); "
                "pass --overwrite to start afresh or choose another --output."
            )
        source_path = str(Path(warm_start).resolve()) if warm_start is not None else None
        if source_path is not None and old.get("warm_start") != source_path and \
                (old.get("warm_start") or (directory / PROJECT / "oracle.json").exists()):
            raise UsageError(
                f"{str(directory)!r} already started without warm start from "
                f"{str(warm_start)!r}; pass --overwrite to start afresh from it."
            )
        # The trials imported when the search started stay its own.
        for key in ("warm_start", "imported"):
            if key in old:
                meta[key] = old[key]
        repair(directory / PROJECT)
    elif directory.is_dir() and any(path.name != locks.LOCK_NAME
                                    for path in directory.iterdir()) and not overwrite:
        raise UsageError(f"`--output` {str(directory)!r} holds files but no search; "
                         "give a new or empty folder.")
    if overwrite:
        for name in OWN_OUTPUTS:
            target = directory / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if source is not None and "imported" not in meta:
        meta["warm_start"] = str(Path(warm_start).resolve())
        meta["imported"], skipped = warmstart.finished_trials(
            warm_start, meta["search_space"], meta["pinned"])
        print(f"Warm start: importing {len(meta['imported'])} finished trials of "
              f"{str(warm_start)!r}" + (f"; {skipped} outside this search's space left out"
                                        if skipped else "") + ".", file=sys.stderr)
    directory.mkdir(parents=True, exist_ok=True)
    runs.write_json(meta_file, meta)
    return meta, recipe, splits


def run_search(meta, recipe, splits, verbose=None):
    """Runs (or continues) the search in this process, as Keras Tuner's worker or alone.

    The `device`, `mixed_precision`, `jit` and `strategy` settings apply to every trial;
    a strategy over several replicas is Keras Tuner's `distribution_strategy`.
    """
    settings = {**meta["settings"], **meta.get("devices", {})}
    strategy, accelerator = devices.configure(settings)
    try:
        hypermodel = RecipeHyperModel(recipe, splits, settings["batch_size"], settings=settings,
                                      measures=[o["name"] for o in pareto.others(meta)
                                                if o["name"] in pareto.COMPUTED])
        tuner = make_tuner(meta, hypermodel,
                           strategy=strategy if accelerator["replicas"] > 1 else None)
        # TensorBoard's scalars per epoch; Keras Tuner adds each trial's HParams to them.
        board = keras.callbacks.TensorBoard(Path(meta["directory"]) / TENSORBOARD,
                                            write_graph=False, profile_batch=0)
        # Keras Tuner reports progress on stdout; stdout is kept for results.
        with contextlib.redirect_stdout(sys.stderr):
            if meta.get("imported") and isinstance(tuner.oracle, keras_tuner.Oracle) \
                    and not tuner.oracle.trials:
                import_trials(tuner.oracle, meta["imported"],
                              _space(recipe, splits, settings["batch_size"]))
            tuner.search(epochs=meta["settings"]["epochs"],
                         callbacks=[progress.callback(), board],
                         verbose=progress.verbosity() if verbose is None else verbose)
    finally:
        devices.reset_precision()
    return tuner


def worker_main(directory):
    """Entry point of a chief or worker process started by `run_distributed`.

    It dies with the launcher (`supervisor.child_setup`); an error it cannot go on
    from is its log's last line, `Error: ...`, and exit status 1.
    """
    from kerasdl import supervisor

    supervisor.child_setup()
    try:
        meta = json.loads((Path(directory) / "search.json").read_text())
        recipe = load_recipe(meta["recipe"])
        settings = meta["settings"]
        splits = load_splits(recipe, settings)
        run_search(meta, recipe, splits, verbose=2)
    except KeyboardInterrupt:
        print("Error: stopped by its launcher.", flush=True)
        sys.exit(130)
    except Exception as error:
        if diskspace.is_disk_full(error) and not isinstance(error, diskspace.DiskFull):
            error = diskspace.disk_full(directory)
        text = str(error).strip().splitlines()
        print(f"Error: {type(error).__name__}: {text[0] if text else ''}", flush=True)
        sys.exit(1)


def free_port(host="127.0.0.1"):
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def check_port(host, port):
    """Raises UsageError when `port` on `host` is taken."""
    with socket.socket() as sock:
        try:
            sock.bind((host, port))
        except OSError as error:
            raise UsageError(f"Port {port} on {host} is busy ({error.strerror}); "
                             "choose another with --port.") from None


def _worker_argv(directory):
    return [sys.executable, "-c", "import sys; from kerasdl.tuning import worker_main; "
            "worker_main(sys.argv[1])", str(directory)]


def _worker_env(tuner_id, host, port, gpu=None):
    env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
           "KERASTUNER_ORACLE_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return env


def run_distributed(meta, workers, host="127.0.0.1", port=None, max_restarts=3, gpus=0):
    """Runs the search with Keras Tuner's chief/worker mode on this host.

    Starts a chief (the oracle, a gRPC server on `host:port`) and `workers` worker
    processes, through `kerasdl.supervisor`: they end with this process (SIGTERM is
    forwarded, a SIGKILL of it is noticed by each within a second). A worker that dies
    is started again under the same tuner id: the chief hands it back the trial it was
    running, so no trial is lost or run twice, and the chief finishes.

    Returns:
        How many times workers were restarted.

    Raises:
        RunError: when the chief dies, or a worker dies `max_restarts` times: one line
            naming the process, how it ended and the last error line of its log.
    """
    from kerasdl import supervisor

    port = port or free_port(host)
    check_port(host, port)
    directory = Path(meta["directory"])
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)

    def child(name, gpu=None, delay=0.0):
        return supervisor.Child(name, _worker_argv(directory),
                                env=_worker_env(name, host, port, gpu=gpu),
                                log=logs / f"{name}.log", delay=delay)

    # The chief serves the oracle: the workers start once it is up.
    children = [child("chief", delay=2.0)] + [
        child(f"worker{i}", gpu=(i % gpus) if gpus else None) for i in range(workers)]
    search = _SearchWatch(workers, max_restarts * workers, logs)
    supervisor.launch(children, watch_over=search, poll=0.5)
    return search.restarts


class _SearchWatch:
    """`run_distributed`'s policy for `supervisor.launch`: the chief and its workers.

    A worker that dies is started again (at most `max_restarts` times in all); the
    search is done when the chief ends with 0, and workers still running 60 s after
    that are stopped. The chief failing, or a worker past its restarts, stops the
    search with a `RunError` of one line.
    """

    def __init__(self, workers, max_restarts, logs):
        self.pending = workers  # workers not yet ended for good
        self.max_restarts = max_restarts
        self.restarts = 0
        self.logs = logs
        self.chief_done = False
        self.workers_deadline = None

    def __call__(self, watch, ended):
        from kerasdl import supervisor

        for name, code in ended:
            if name == "chief":
                if code != 0:
                    watch.stop()
                    raise RunError("The search stopped: "
                                   f"{watch.report(name, code, 'the tuner chief')}.")
                self.chief_done = True  # every trial is recorded: the search is done
                self.workers_deadline = time.monotonic() + 60
            elif code == 0 or self.chief_done:
                self.pending -= 1
            elif self.restarts < self.max_restarts:
                self.restarts += 1
                print(f"Worker {name} {supervisor.how_it_ended(code)}; restarting it.",
                      file=sys.stderr)
                watch.respawn(name)
            else:
                watch.stop()
                raise RunError(f"The search stopped: {watch.report(name, code)} "
                               f"(after {self.restarts} restarts).")
        if self.chief_done and self.pending and time.monotonic() > self.workers_deadline:
            print("The search is done; stopping workers that did not end within 60 s.",
                  file=sys.stderr)
            return self.restarts  # the launcher stops them
        if not self.pending and not self.chief_done:
            # Every worker is done: the chief ends once its last trial is recorded.
            chief = watch.processes.get("chief")
            if chief is not None:
                try:
                    chief.wait(timeout=60)
                except Exception:
                    watch.stop()
                    raise RunError("The tuner chief did not end within 60 s of its last "
                                   f"worker; see {self.logs / 'chief.log'}.") from None
        return None


def results_frame(directory):
    """Reads every trial of a search directory into a DataFrame (one row per trial).

    Columns: trial_id, status (COMPLETED, PRUNED, IMPORTED, DIVERGED, FAILED, INVALID,
    RUNNING),
    every hyperparameter, the objective (the trial's score), every other metric at the
    trial's best epoch, best_epoch, epochs (trained in this trial), wall_seconds, and
    for imported trials the source trial. With several objectives, also the computed
    ones asked for (`params`, `latency_ms`) and `pareto`: whether the trial is on the
    front of the finished (completed or imported) trials (`kerasdl.pareto.front_frame`).
    """
    directory = Path(directory)
    meta = json.loads((directory / "search.json").read_text())
    objective = meta["objective"]["name"]
    names = [p["name"] for p in meta["search_space"]]
    rows = []
    for trial_file in sorted((directory / PROJECT).glob("trial_*/trial.json")):
        trial = json.loads(trial_file.read_text())
        # Written when the trial starts, completed when it ends.
        record = _read_json(trial_file.parent / "kerasdl_trial.json") or {}
        values = trial.get("hyperparameters", {}).get("values", {})
        metrics = trial.get("metrics", {}).get("metrics", {})
        status = trial["status"]
        if status == "COMPLETED" and record.get("status") in ("pruned", "imported"):
            status = record["status"].upper()
        if status in ("COMPLETED", "FAILED") and pruning.diverged(trial, record):
            status = "DIVERGED"
        epochs = record.get("epochs")
        if epochs is None and status == "COMPLETED":  # a trial of an older kerasdl
            epochs = values.get("tuner/epochs", meta["settings"]["epochs"]) \
                - values.get("tuner/initial_epoch", 0)
        row = {"trial_id": trial["trial_id"], "status": status,
               **{name: value for name, value in values.items() if not name.startswith("tuner/")},
               objective: trial.get("score"),
               # A metric named like a hyperparameter (`loss`) is told apart by a prefix.
               **{(f"metric_{name}" if name in names else name):
                  metric["observations"][-1]["value"][0]
                  for name, metric in sorted(metrics.items())
                  if name != objective and metric.get("observations")},
               "best_epoch": (trial["best_step"] + 1) if trial.get("best_step") is not None
               and metrics.get(objective) else None,
               "epochs": epochs,
               "wall_seconds": record.get("wall_seconds")}
        if meta["tuner"] == "hyperband":
            row["hyperband_epochs"] = values.get("tuner/epochs")
        if record.get("source_trial") is not None:
            row["source_trial"] = f"{meta.get('warm_start')}:{record['source_trial']}"
        for other in pareto.others(meta):
            if other["name"] in pareto.COMPUTED:
                name = pareto.column(other["name"])
                row[name] = (record.get("objectives") or {}).get(name)
        rows.append(row)
    frame = pd.DataFrame(rows)
    if len(frame):
        first = ["trial_id", "status", *[n for n in names if n in frame.columns]]
        frame = frame[first + [c for c in frame.columns if c not in first]]
        if pareto.others(meta):
            columns, directions = zip(*pareto.objective_columns(meta))
            finished = frame["status"].isin(["COMPLETED", "IMPORTED"])
            points = [[row.get(c) for c in columns] if done else None
                      for done, (_, row) in zip(finished, frame.iterrows())]
            frame["pareto"] = pareto.pareto_front(points, directions)
        if "params" in frame:
            frame["params"] = frame["params"].astype("Int64")  # a count, blank when absent
    return frame, meta


def ranked_trials(frame, meta):
    """The completed trials of a search, best first, as the records of best_hyperparameters.json."""
    objective = meta["objective"]["name"]
    finished = frame["status"].isin(["COMPLETED", "IMPORTED"]) if len(frame) else None
    done = frame[finished & frame[objective].notna()] if len(frame) else frame
    if done.empty:
        return []
    done = done.sort_values(objective, ascending=meta["objective"]["direction"] == "min")
    names = [p["name"] for p in meta["search_space"]]
    return [{"trial_id": row["trial_id"], objective: float(row[objective]),
             "best_epoch": _plain(row["best_epoch"]),
             "hyperparameters": {name: _plain(row[name]) for name in names
                                 if name in row and pd.notna(row[name])}}
            for _, row in done.iterrows()]


def report(directory):
    """Writes results.csv, best_hyperparameters.json and the plots of a search.

    Returns:
        `(frame, best)`: the results and the best completed trial's record (or None).
    """
    directory = Path(directory)
    frame, meta = results_frame(directory)
    objective = meta["objective"]["name"]
    runs.write_text(directory / "results.csv", frame.to_csv(index=False))
    if pareto.others(meta):
        _write_pareto(directory, frame, meta)
    ranked = ranked_trials(frame, meta)
    if not ranked:
        return frame, None
    runs.write_json(directory / "best_hyperparameters.json", ranked[0])
    done = frame[frame["trial_id"].isin([trial["trial_id"] for trial in ranked])]
    ascending = meta["objective"]["direction"] == "min"
    names = [p["name"] for p in meta["search_space"]]
    plots.search_objective(done, objective, ascending, directory / "plots" / "objective.png")
    plots.search_hyperparameters(done, [n for n in names if n in done], objective,
                                 directory / "plots" / "hyperparameters.png")
    return frame, ranked[0]


def _write_pareto(directory, frame, meta):
    """Writes pareto.csv; notes on stderr the finished trials left out for a missing value
    (imported from a search that did not measure `params` or `latency`, or a NaN)."""
    front = pareto.front_frame(frame, meta) if len(frame) else pd.DataFrame()
    runs.write_text(directory / "pareto.csv", front.to_csv(index=False))
    if not len(frame):
        return
    lacking, gaps = pareto.lacking(frame, meta)
    if len(lacking):
        many = len(lacking) > 1
        print(f"Note: {len(lacking)} finished {'trials lack' if many else 'trial lacks'} "
              f"{' or '.join(gaps)} (imported from a search that did not measure it, or not "
              f"a number) and {'are' if many else 'is'} left out of the Pareto front.",
              file=sys.stderr)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value.is_integer():
        return value
    return value


def tune(recipe_name, settings, tuner="random", max_trials=10, objective=None, output=None,
         overwrite=False, workers=0, host="127.0.0.1", port=None, retrain=True, role=None,
         worker_id=None, prune=None, warm_start=None):
    """Runs or resumes a search, reports it and retrains its best configuration.

    Args:
        objective: `NAME[:min|max]`, or a list of them: the first drives the search, the
            others are recorded per trial for the Pareto front (`kerasdl.pareto`); None
            for the recipe's `OBJECTIVE`.
        workers: with N > 0, a chief and N worker processes on this host.
        role: `chief` or `worker`, for one process of a search spread over machines:
            the chief serves the oracle on `host:port`, each worker (`worker_id`)
            connects to it. Only the chief reports and retrains the best.
        prune: None, or `{"warmup_epochs": N, "startup_trials": M}`: stop a trial worse
            than the median of the completed trials at the same epoch (`kerasdl.pruning`).
        warm_start: an earlier search directory of the same recipe and data whose
            finished trials this search imports as observations (`kerasdl.warmstart`);
            `max_trials` counts the new trials.

    Returns:
        The search directory.
    """
    if tuner not in TUNERS:  # before the folder is created for its lock
        raise UsageError(f"Unknown tuner: {tuner!r}. Valid tuners: {', '.join(TUNERS)}")
    directory = search_directory(recipe_name, tuner, output)
    with locks.hold(directory, "search"):
        try:
            return _tune(recipe_name, settings, tuner, max_trials, objective, output, overwrite,
                         workers, host, port, retrain, role, worker_id, prune, warm_start)
        except Exception as error:
            if diskspace.is_disk_full(error) and not isinstance(error, diskspace.DiskFull):
                raise diskspace.disk_full(directory) from None
            raise


def _tune(recipe_name, settings, tuner, max_trials, objective, output, overwrite, workers,
          host, port, retrain, role, worker_id, prune=None, warm_start=None):
    meta, recipe, splits = prepare(recipe_name, settings, tuner, max_trials, objective, output,
                                   overwrite, prune=prune, warm_start=warm_start)
    directory = Path(meta["directory"])
    if role is not None:
        if role not in ("chief", "worker") or port is None:
            raise UsageError("`--role` takes chief or worker, with `--host` and `--port` of "
                             f"the chief. Received: role={role!r}, port={port!r}")
        if role == "chief":
            check_port(host, port)
        os.environ.update(KERASTUNER_TUNER_ID="chief" if role == "chief" else
                          (worker_id or f"worker-{socket.gethostname()}-{os.getpid()}"),
                          KERASTUNER_ORACLE_IP=host, KERASTUNER_ORACLE_PORT=str(port))
        run_search(meta, recipe, splits)
        if role == "worker":
            return directory
    elif workers:
        import tensorflow as tf

        gpus = len(tf.config.list_physical_devices("GPU"))
        run_distributed(meta, workers, host=host, port=port, gpus=gpus)
    else:
        run_search(meta, recipe, splits)
    _, best = report(directory)
    if best is None:
        raise RunError(f"No trial of the search in {str(directory)!r} completed; see its logs.")
    if retrain:
        retrain_best(directory, settings)
    return directory


def retrain_best(directory, settings):
    """Retrains the best configuration on train + validation into `directory/best`.

    A configuration whose loss becomes NaN when retrained (a search may rank first one
    that was lucky on its trial's seed and data) is passed over, with a note, for the
    next best; best/config.json records the trials passed over, so a re-run of the
    search does not retrain them again.

    Raises:
        NonFiniteLoss: when every completed trial's configuration diverges.
    """
    from kerasdl.errors import NonFiniteLoss
    from kerasdl.training import train

    directory = Path(directory)
    frame, meta = results_frame(directory)
    candidates = ranked_trials(frame, meta)
    previous = directory / "best" / "config.json"
    if previous.exists():
        config = runs.read_json(previous)
        passed_over = config.get("passed_over", [])
        expected = next((trial["trial_id"] for trial in candidates
                         if trial["trial_id"] not in passed_over), None)
        if config.get("status") == "completed" and config.get("search_trial") == expected:
            return directory / "best"
        shutil.rmtree(directory / "best")
    passed_over = []
    for best in candidates:
        epochs = meta["settings"]["epochs"]
        if best.get("best_epoch") and meta["objective"]["name"].startswith("val_"):
            epochs = int(best["best_epoch"])
        final = {**settings, "set": best["hyperparameters"], "epochs": epochs,
                 "merge_validation": True, "output": str(directory / "best")}
        try:
            run_dir = train(meta["recipe"], final, command=f"retrain best of {directory}")
        except NonFiniteLoss as error:
            print(f"Note: the configuration of trial {best['trial_id']} diverged when "
                  f"retrained on train + validation ({str(error).split(';')[0]}); retraining "
                  "the next best.", file=sys.stderr)
            passed_over.append(best["trial_id"])
            shutil.rmtree(directory / "best", ignore_errors=True)
            continue
        config = runs.read_json(run_dir / "config.json")
        runs.write_json(run_dir / "config.json", {**config, "search_trial": best["trial_id"],
                                                  "passed_over": passed_over})
        return run_dir
    raise NonFiniteLoss(f"Every completed trial of {str(directory)!r} diverged when retrained "
                        "on train + validation; search lower learning rates "
                        "(`--set learning_rate=...`) or pass --no-retrain.")
