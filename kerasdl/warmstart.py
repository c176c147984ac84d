"""`kerasdl tune --warm-start SEARCH_DIR`: an earlier search's finished trials as observations.

Checked before TensorFlow starts: the earlier search must be of the same recipe, on the
same data (the same split), trained for the same epochs with the same batch size, with the
same objective; its completed trials (not pruned, not failed) whose values lie in the new
search's space become the new search's first trials, marked `imported`, without training
them again.
"""

import json
from pathlib import Path

from kerasdl import hparams
from kerasdl import pruning
from kerasdl.errors import UsageError
from kerasdl.registry import recipe_reference

# Settings that make two searches score on the same examples.
SAME_DATA = ("data", "target", "data_dir", "split_seed", "validation_split", "test_split",
             "image_size", "channels", "window", "horizon", "exclude_classes", "classes",
             "train_examples")
# Settings that make two searches' scores comparable: a trial trained for 5 epochs is no
# observation of what 20 epochs give.
SAME_TRAINING = ("epochs", "batch_size")
# Tuners that take earlier trials as observations. Hyperband runs its own brackets; Keras
# Tuner's grid search walks its grid from each trial it started itself, in order, and fails
# (KeyError) on the first new trial after imported ones.
TAKES_OBSERVATIONS = ("random", "bayesian")


def read_source(source, recipe_name, settings, tuner, objective_name=None, directory=None):
    """Reads and checks the earlier search of `--warm-start`; returns its search.json.

    Raises:
        UsageError: naming why the folder cannot seed this search: not a search, another
            recipe, other data, other epochs or batch size, another objective, itself, or a
            Hyperband or grid target.
    """
    source = Path(source)
    if tuner not in TAKES_OBSERVATIONS:
        why = ("runs its own brackets from scratch" if tuner == "hyperband" else
               "walks its whole grid in order, so there is nothing to start from")
        raise UsageError(f"`--warm-start` works with the {' and '.join(TAKES_OBSERVATIONS)} "
                         f"tuners; {tuner} {why}.")
    meta_file = source / "search.json"
    if not meta_file.is_file():
        raise UsageError(f"`--warm-start` {str(source)!r} is not a search directory (no "
                         "search.json); give the folder of an earlier `kerasdl tune`.")
    try:
        meta = json.loads(meta_file.read_text())
        old_settings = meta["settings"]
        old_recipe = meta["recipe"]
    except (OSError, ValueError, KeyError, TypeError):
        raise UsageError(f"`--warm-start` {str(meta_file)!r} is damaged; give another "
                         "search directory.") from None
    if directory is not None and source.resolve() == Path(directory).resolve():
        raise UsageError(f"`--warm-start` {str(source)!r} is this search's own folder; run "
                         "the same command without --warm-start to continue it.")
    # A recipe file is recorded by its absolute path: `./mine.py` is the same recipe.
    if old_recipe != recipe_reference(recipe_name):
        raise UsageError(f"`--warm-start` {str(source)!r} is a search of recipe {old_recipe!r}, "
                         f"not {recipe_name!r}; a warm start needs the same recipe and data.")
    changed = [f"{key}={old_settings.get(key)!r} there, {settings.get(key)!r} here"
               for key in SAME_DATA
               if key in old_settings and old_settings.get(key) != settings.get(key)]
    if changed:
        raise UsageError(f"`--warm-start` {str(source)!r} searched other data ("
                         + "; ".join(changed) + "); a warm start needs the same data.")
    trained = [key for key in SAME_TRAINING if old_settings.get(key) is not None
               and settings.get(key) is not None and old_settings[key] != settings[key]]
    if trained:
        raise UsageError(
            f"`--warm-start` {str(source)!r} trained its trials with "
            + ", ".join(f"{key}={old_settings[key]}" for key in trained) + ", this search with "
            + ", ".join(f"{key}={settings[key]}" for key in trained) + "; their scores would "
            "not compare. Pass " + " ".join(f"--{key.replace('_', '-')} {old_settings[key]}"
                                            for key in trained)
            + ", or start without --warm-start.")
    old_objective = (meta.get("objective") or {}).get("name")
    if objective_name is not None and old_objective != objective_name:
        raise UsageError(f"`--warm-start` {str(source)!r} optimised {old_objective!r}, not "
                         f"{objective_name!r}; pass --objective {old_objective} or another "
                         "search.")
    return meta


def finished_trials(source, search_space, pinned):
    """The completed trials of an earlier search that fit this search's space.

    Args:
        source: the earlier search directory.
        search_space: this search's `hparams.describe` rows.
        pinned: this search's `--set` values (name -> value).

    Returns:
        `(trials, skipped)`: one dict per trial to import (source trial id, values,
        metrics, score, best_step, curve, wall_seconds), and how many finished trials
        lie outside this search's space.
    """
    rows = {row["name"]: row for row in search_space}
    found, skipped = [], 0
    for trial_file in sorted(Path(source, "tuner").glob("trial_*/trial.json")):
        try:
            state = json.loads(trial_file.read_text())
        except (OSError, ValueError):
            continue
        record = _read(trial_file.parent / "kerasdl_trial.json")
        if state.get("status") != "COMPLETED" or state.get("score") is None \
                or record.get("status") not in (None, "completed", "imported") \
                or pruning.diverged(state, record):
            continue
        values = {name: value for name, value in
                  state.get("hyperparameters", {}).get("values", {}).items()
                  if not name.startswith("tuner/")}
        values = _in_space(values, rows, pinned)
        if values is None:
            skipped += 1
            continue
        best_step = state.get("best_step") or 0
        metrics = {name: _at_step(metric["observations"], best_step)
                   for name, metric in state.get("metrics", {}).get("metrics", {}).items()
                   if metric.get("observations")}
        found.append({"source_trial": state["trial_id"],
                      "values": values,
                      "metrics": metrics, "score": state["score"],
                      "best_step": best_step,
                      "curve": record.get("curve") or {},
                      "epochs": record.get("epochs"),
                      "wall_seconds": record.get("wall_seconds"),
                      # Computed objectives (`params`, `latency_ms`) where it recorded them.
                      "objectives": record.get("objectives") or {}})
    return found, skipped


def _in_space(values, rows, pinned):
    """An earlier trial's values as this search's space types them (an Int's 32, a
    Float's 32.0), those of hyperparameters it no longer has left out; None when one
    lies outside it: out of a narrowed range, a Choice value dropped, another `--set`
    value, or another value of a recipe's `hp.Fixed`. Such a trial did not train a
    configuration of this search, so it is no observation of it."""
    for name, value in pinned.items():
        if name in values and values[name] != value:
            return None
    typed = {}
    for name, value in values.items():
        row = rows.get(name)
        if row is None:
            continue
        param = type(row["type"], (), {})()
        param.__dict__.update(row)
        try:
            typed[name] = hparams.check_value(param, value)
        except UsageError:
            return None
    return typed


def _at_step(observations, step):
    """A metric's value at the trial's best step (its score's), else its last: the
    oracle scores an imported trial from these, as the earlier one was scored."""
    for observation in observations:
        if observation.get("step") == step:
            return observation["value"][0]
    return observations[-1]["value"][0]


def _read(path):
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
