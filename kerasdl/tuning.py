"""Hyperparameter search with Keras Tuner: resume, report, retrain the best, scale out.

A search directory holds:
- `search.json`: what was asked (recipe, tuner, objective, search space, settings);
  a re-run continues only the same search;
- `tuner/`: Keras Tuner's own project (oracle.json, one trial_* folder per trial);
- `results.csv`, `best_hyperparameters.json`, `plots/`: the report;
- `best/`: the best configuration retrained on train + validation and scored on the
  test split, an ordinary run directory.
"""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd

from kerasdl import devices
from kerasdl import hparams
from kerasdl import plots
from kerasdl import pretrained
from kerasdl import runs
from kerasdl.data import load_data
from kerasdl.errors import RunError
from kerasdl.errors import UsageError
from kerasdl.registry import load_recipe
from kerasdl.training import apply_execution_settings
from kerasdl.training import model_spec
from kerasdl.training import pipelines
from kerasdl.training import seed_everything

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
               "best")


class RecipeHyperModel(keras_tuner.HyperModel):
    """A recipe as a Keras Tuner hypermodel: its `build_model`, pipeline and `fit`."""

    def __init__(self, recipe, splits, batch_size, settings=None):
        super().__init__(name=recipe.__name__.rsplit(".", 1)[-1])
        self.recipe, self.splits, self.batch_size = recipe, splits, batch_size
        self.settings = settings or {}
        # Keras Tuner clears the session before each build, which resets the policy.
        self.policy = keras.config.dtype_policy().name

    def build(self, hp):
        keras.config.set_dtype_policy(self.policy)
        model = self.recipe.build_model(hp, self.splits.spec)
        apply_execution_settings(model, self.settings)  # `jit`, `steps_per_execution`
        return model

    def fit(self, hp, model, *args, **kwargs):
        train_data, validation_data, _ = pipelines(self.recipe, self.splits, hp, self.batch_size)
        recipe_fit = getattr(self.recipe, "fit", None)
        if recipe_fit is not None:
            return recipe_fit(hp, model, train_data, validation_data=validation_data, **kwargs)
        return model.fit(train_data, validation_data=validation_data, shuffle=False, **kwargs)


def objective_from(name, recipe):
    """Parses `--objective NAME[:min|max]`, or takes the recipe's `OBJECTIVE`."""
    if not name:
        objective = recipe.OBJECTIVE
        if isinstance(objective, str):
            direction = "max" if "acc" in objective or "auc" in objective else "min"
            objective = keras_tuner.Objective(objective, direction)
        return objective
    metric, _, direction = name.partition(":")
    direction = direction or ("max" if "acc" in metric or "auc" in metric else "min")
    if direction not in ("min", "max"):
        raise UsageError(f"`--objective` takes NAME or NAME:min or NAME:max. Received: {name!r}")
    return keras_tuner.Objective(metric, direction)


def _tuner_class(kind):
    if kind not in TUNERS:
        raise UsageError(f"Unknown tuner: {kind!r}. Valid tuners: {', '.join(TUNERS)}")
    base = TUNERS[kind]

    class KerasdlTuner(base):
        """Records each trial's wall time and keeps no per-trial checkpoints.

        Hyperband continues trials from the checkpoints of earlier rounds, so it
        keeps them; its trial count is bounded by `--epochs` and its factor.
        """

        def on_trial_begin(self, trial):
            super().on_trial_begin(trial)
            self._trial_start = time.perf_counter()

        def on_trial_end(self, trial):
            seconds = time.perf_counter() - getattr(self, "_trial_start", time.perf_counter())
            super().on_trial_end(trial)
            folder = Path(self.project_dir) / f"trial_{trial.trial_id}"
            runs.write_json(folder / "kerasdl_trial.json", {"wall_seconds": round(seconds, 3)})
            if kind != "hyperband":
                for checkpoint in folder.glob("checkpoint*"):
                    checkpoint.unlink()
            devices.clear_session()

    return KerasdlTuner


def make_tuner(meta, hypermodel, overwrite=False, strategy=None):
    """Creates (or reloads) the Keras Tuner tuner a search directory describes."""
    kind = meta["tuner"]
    objective = keras_tuner.Objective(meta["objective"]["name"], meta["objective"]["direction"])
    pinned = keras_tuner.HyperParameters()
    for name, value in meta["pinned"].items():
        pinned.Fixed(name, value)
    options = dict(hypermodel=hypermodel, objective=objective, seed=meta["settings"]["seed"],
                   hyperparameters=pinned, tune_new_entries=True, overwrite=overwrite,
                   directory=meta["directory"], project_name=PROJECT)
    if strategy is not None:
        options["distribution_strategy"] = strategy
    if kind == "hyperband":
        options.update(max_epochs=meta["settings"]["epochs"], factor=3)
    else:
        options["max_trials"] = meta["max_trials"]
    tuner = _tuner_class(kind)(**options)
    if kind != "hyperband":
        tuner.oracle.max_trials = meta["max_trials"]  # a reloaded oracle keeps its old one
    return tuner


def _search_meta(recipe_name, recipe, splits, settings, tuner, max_trials, objective, directory):
    space = keras_tuner.HyperParameters()
    with pretrained.downloads():
        recipe.build_model(space, splits.spec)
    recipe.make_pipeline(splits.train, splits.spec, space, training=True,
                         batch_size=settings["batch_size"])
    pinned = hparams.pinned(settings.get("set", {}), space)
    keras.backend.clear_session()
    return {
        "recipe": recipe_name,
        "tuner": tuner,
        "max_trials": max_trials,
        "objective": {"name": objective.name, "direction": objective.direction},
        "search_space": hparams.describe(space),
        "pinned": dict(pinned.values),
        "settings": {key: settings.get(key) for key in SEARCH_SETTINGS},
        "devices": {key: settings.get(key) for key in DEVICE_SETTINGS},
        "directory": str(directory),
    }


def _differences(old, new):
    changed = []
    # max_trials may change: a finished search continues with more trials.
    for key in ("recipe", "tuner", "objective", "search_space", "pinned"):
        if old.get(key) != new.get(key):
            changed.append(key)
    for key in SEARCH_SETTINGS:
        if old.get("settings", {}).get(key) != new["settings"].get(key):
            changed.append(f"settings.{key}")
    return changed


def repair(project_dir):
    """Makes a search killed mid-write loadable again.

    Keras Tuner writes trial.json and oracle.json in place; a SIGKILL at the wrong
    moment leaves one half-written. A trial whose file cannot be read is removed
    (it was running and runs again); the oracle's state drops references to it.

    Returns:
        The ids of the removed trials.
    """
    project_dir = Path(project_dir)
    removed = []
    for trial_file in sorted(project_dir.glob("trial_*/trial.json")):
        try:
            json.loads(trial_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            removed.append(trial_file.parent.name[len("trial_"):])
            shutil.rmtree(trial_file.parent)
    for folder in project_dir.glob("trial_*"):
        if folder.is_dir() and not (folder / "trial.json").exists():
            removed.append(folder.name[len("trial_"):])
            shutil.rmtree(folder)
    oracle_file = project_dir / "oracle.json"
    if oracle_file.exists():
        try:
            state = json.loads(oracle_file.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise RunError(
                f"The search state {str(oracle_file)!r} is damaged beyond repair; "
                "re-run with --overwrite to start the search again."
            ) from None
        known = {folder.name[len("trial_"):] for folder in project_dir.glob("trial_*")}
        state["ongoing_trials"] = {tuner_id: trial_id for tuner_id, trial_id
                                   in state.get("ongoing_trials", {}).items() if trial_id in known}
        state["retry_queue"] = [trial_id for trial_id in state.get("retry_queue", [])
                                if trial_id in known]
        runs.write_json(oracle_file, state)
    return removed


def prepare(recipe_name, settings, tuner="random", max_trials=10, objective=None, output=None,
            overwrite=False):
    """Creates or checks a search directory; returns `(meta, recipe, splits)`.

    Raises:
        UsageError: for an unknown tuner, a bad objective, or an existing search that
            asked something else (naming what changed), unless `overwrite`.
    """
    if tuner not in TUNERS:
        raise UsageError(f"Unknown tuner: {tuner!r}. Valid tuners: {', '.join(TUNERS)}")
    if not isinstance(max_trials, int) or isinstance(max_trials, bool) or max_trials < 1:
        raise UsageError(f"`max_trials` must be a positive integer. Received: max_trials={max_trials!r}")
    recipe = load_recipe(recipe_name)
    directory = Path(output or Path("searches") / f"{recipe_name}-{tuner}")
    if directory.is_file():
        raise UsageError(f"`--output` {str(directory)!r} is an existing file; give a folder.")
    seed_everything(settings["seed"])
    splits = load_data(settings["data"], recipe.TASK, settings)
    splits.spec = model_spec(splits, settings)
    meta = _search_meta(recipe_name, recipe, splits, settings, tuner, max_trials,
                        objective_from(objective, recipe), directory)
    meta_file = directory / "search.json"
    if meta_file.exists() and not overwrite:
        old = json.loads(meta_file.read_text())
        changed = _differences(old, meta)
        if changed:
            raise UsageError(
                f"{str(directory)!r} holds a different search (changed: {', '.join(changed)}); "
                "pass --overwrite to start afresh or choose another --output."
            )
        repair(directory / PROJECT)
    elif directory.is_dir() and any(directory.iterdir()) and not overwrite:
        raise UsageError(f"`--output` {str(directory)!r} holds files but no search; "
                         "give a new or empty folder.")
    if overwrite:
        for name in OWN_OUTPUTS:
            target = directory / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    directory.mkdir(parents=True, exist_ok=True)
    runs.write_json(meta_file, meta)
    return meta, recipe, splits


def run_search(meta, recipe, splits, verbose=1):
    """Runs (or continues) the search in this process, as Keras Tuner's worker or alone.

    The `device`, `mixed_precision`, `jit` and `strategy` settings apply to every trial;
    a strategy over several replicas is Keras Tuner's `distribution_strategy`.
    """
    settings = {**meta["settings"], **meta.get("devices", {})}
    strategy, accelerator = devices.configure(settings)
    try:
        hypermodel = RecipeHyperModel(recipe, splits, settings["batch_size"], settings=settings)
        tuner = make_tuner(meta, hypermodel,
                           strategy=strategy if accelerator["replicas"] > 1 else None)
        # Keras Tuner reports progress on stdout; stdout is kept for results.
        with contextlib.redirect_stdout(sys.stderr):
            tuner.search(epochs=meta["settings"]["epochs"], verbose=verbose)
    finally:
        devices.reset_precision()
    return tuner


def worker_main(directory):
    """Entry point of a chief or worker process started by `run_distributed`."""
    meta = json.loads((Path(directory) / "search.json").read_text())
    recipe = load_recipe(meta["recipe"])
    settings = meta["settings"]
    seed_everything(settings["seed"])
    splits = load_data(settings["data"], recipe.TASK, settings)
    splits.spec = model_spec(splits, settings)
    run_search(meta, recipe, splits, verbose=2)


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


def _spawn(directory, tuner_id, host, port, log, gpu=None):
    env = {**os.environ, "KERASTUNER_TUNER_ID": tuner_id, "KERASTUNER_ORACLE_IP": host,
           "KERASTUNER_ORACLE_PORT": str(port), "TF_CPP_MIN_LOG_LEVEL": "3"}
    if gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = str(gpu)
    return subprocess.Popen(
        [sys.executable, "-c", "import sys; from kerasdl.tuning import worker_main; "
         "worker_main(sys.argv[1])", str(directory)],
        env=env, stdout=log, stderr=subprocess.STDOUT)


def run_distributed(meta, workers, host="127.0.0.1", port=None, max_restarts=3, gpus=0):
    """Runs the search with Keras Tuner's chief/worker mode on this host.

    Starts a chief (the oracle, a gRPC server on `host:port`) and `workers` worker
    processes. A worker that dies is started again under the same tuner id: the
    chief hands it back the trial it was running, so no trial is lost or run twice,
    and the chief, which waits while a trial is ongoing, finishes.

    Returns:
        How many times workers were restarted.
    """
    port = port or free_port(host)
    check_port(host, port)
    directory = Path(meta["directory"])
    logs = directory / "logs"
    logs.mkdir(exist_ok=True)
    handles = {name: open(logs / f"{name}.log", "a") for name in
               ["chief", *(f"worker{i}" for i in range(workers))]}
    chief = _spawn(directory, "chief", host, port, handles["chief"])
    time.sleep(2.0)
    procs = {f"worker{i}": _spawn(directory, f"worker{i}", host, port, handles[f"worker{i}"],
                                  gpu=(i % gpus) if gpus else None)
             for i in range(workers)}
    restarts = 0
    try:
        while procs:
            time.sleep(0.5)
            for name, proc in list(procs.items()):
                code = proc.poll()
                if code is None:
                    continue
                if code == 0:
                    del procs[name]
                elif restarts < max_restarts * workers:
                    restarts += 1
                    print(f"Worker {name} exited with {code}; restarting it.", file=sys.stderr)
                    procs[name] = _spawn(directory, name, host, port, handles[name])
                else:
                    raise RunError(f"Worker {name} failed {max_restarts} times; see {logs}.")
            if chief.poll() not in (None, 0):
                raise RunError(f"The tuner chief failed; see {logs / 'chief.log'}.")
        chief.wait(timeout=60)
    finally:
        for proc in [chief, *procs.values()]:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for handle in handles.values():
            handle.close()
    return restarts


def results_frame(directory):
    """Reads every trial of a search directory into a DataFrame (one row per trial)."""
    directory = Path(directory)
    meta = json.loads((directory / "search.json").read_text())
    objective = meta["objective"]["name"]
    rows = []
    for trial_file in sorted((directory / PROJECT).glob("trial_*/trial.json")):
        trial = json.loads(trial_file.read_text())
        timing = trial_file.parent / "kerasdl_trial.json"
        values = trial.get("hyperparameters", {}).get("values", {})
        metric = trial.get("metrics", {}).get("metrics", {}).get(objective, {})
        row = {"trial_id": trial["trial_id"], "status": trial["status"],
               **{name: value for name, value in values.items() if not name.startswith("tuner/")},
               objective: trial.get("score"),
               "best_epoch": (trial["best_step"] + 1) if trial.get("best_step") is not None
               and metric else None,
               "wall_seconds": json.loads(timing.read_text())["wall_seconds"]
               if timing.exists() else None}
        if meta["tuner"] == "hyperband":
            row["epochs"] = values.get("tuner/epochs")
        rows.append(row)
    names = [p["name"] for p in meta["search_space"]]
    frame = pd.DataFrame(rows)
    if len(frame):
        first = ["trial_id", "status", *[n for n in names if n in frame.columns]]
        frame = frame[first + [c for c in frame.columns if c not in first]]
    return frame, meta


def report(directory):
    """Writes results.csv, best_hyperparameters.json and the plots of a search.

    Returns:
        `(frame, best)`: the results and the best completed trial's row (or None).
    """
    directory = Path(directory)
    frame, meta = results_frame(directory)
    objective = meta["objective"]["name"]
    runs.write_text(directory / "results.csv", frame.to_csv(index=False))
    done = frame[(frame["status"] == "COMPLETED") & frame[objective].notna()] if len(frame) else frame
    if done.empty:
        return frame, None
    ascending = meta["objective"]["direction"] == "min"
    best = done.sort_values(objective, ascending=ascending).iloc[0]
    names = [p["name"] for p in meta["search_space"]]
    best_values = {name: _plain(best[name]) for name in names if name in best and pd.notna(best[name])}
    runs.write_json(directory / "best_hyperparameters.json", {
        "trial_id": best["trial_id"], objective: float(best[objective]),
        "best_epoch": _plain(best["best_epoch"]), "hyperparameters": best_values})
    plots.search_objective(done, objective, ascending, directory / "plots" / "objective.png")
    plots.search_hyperparameters(done, [n for n in names if n in done], objective,
                                 directory / "plots" / "hyperparameters.png")
    return frame, best


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and value.is_integer():
        return value
    return value


def tune(recipe_name, settings, tuner="random", max_trials=10, objective=None, output=None,
         overwrite=False, workers=0, host="127.0.0.1", port=None, retrain=True, role=None,
         worker_id=None):
    """Runs or resumes a search, reports it and retrains its best configuration.

    Args:
        workers: with N > 0, a chief and N worker processes on this host.
        role: `chief` or `worker`, for one process of a search spread over machines:
            the chief serves the oracle on `host:port`, each worker (`worker_id`)
            connects to it. Only the chief reports and retrains the best.

    Returns:
        The search directory.
    """
    meta, recipe, splits = prepare(recipe_name, settings, tuner, max_trials, objective, output,
                                   overwrite)
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
    """Retrains the best configuration on train + validation into `directory/best`."""
    from kerasdl.training import train

    directory = Path(directory)
    best = json.loads((directory / "best_hyperparameters.json").read_text())
    meta = json.loads((directory / "search.json").read_text())
    previous = directory / "best" / "config.json"
    if previous.exists():
        config = json.loads(previous.read_text())
        if (config.get("status") == "completed"
                and config.get("search_trial") == best["trial_id"]):
            return directory / "best"
        shutil.rmtree(directory / "best")
    epochs = meta["settings"]["epochs"]
    if best.get("best_epoch") and meta["objective"]["name"].startswith("val_"):
        epochs = int(best["best_epoch"])
    final = {**settings, "set": best["hyperparameters"], "epochs": epochs,
             "merge_validation": True, "output": str(directory / "best")}
    run_dir = train(meta["recipe"], final, command=f"retrain best of {directory}")
    config = json.loads((run_dir / "config.json").read_text())
    runs.write_json(run_dir / "config.json", {**config, "search_trial": best["trial_id"]})
    return run_dir
